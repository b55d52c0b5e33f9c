"""Ask the running coordinator for the appliance's health, from a short-lived CLI process."""

from __future__ import annotations

import asyncio
import os
import uuid

import zmq.asyncio

from appliance.config import MynahConfig
from ipc.bus import ControlClient
from ipc.errors import BusTimeout, PeerUnreachable
from ipc.messages import HealthQuery, HealthReport
from ipc.paths import control_endpoint


async def _ask(config: MynahConfig, deadline_s: float) -> HealthReport | None:
    ctx = zmq.asyncio.Context()
    identity = f"cli-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    client = ControlClient(ctx, control_endpoint(config.paths.runtime_dir), identity)
    try:
        reply = await client.request(HealthQuery(), deadline_s=deadline_s)
    except (BusTimeout, PeerUnreachable):
        return None
    finally:
        await client.close()
        ctx.term()
    return reply if isinstance(reply, HealthReport) else None


def health(config: MynahConfig, deadline_s: float = 1.0) -> HealthReport | None:
    """The coordinator's report, or None when it does not answer within the deadline."""
    return asyncio.run(_ask(config, deadline_s))
