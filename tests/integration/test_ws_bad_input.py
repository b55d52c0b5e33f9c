"""Malformed, oversized, out-of-order and truncated messages on the voice WebSocket: each gets a coded error or a
close code, the session goes on where it can, and the gateway keeps serving everyone else."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from tests.conftest import Appliance

pytestmark = pytest.mark.integration


def ws_url(appliance: Appliance) -> str:
    return appliance.url.replace("http://", "ws://") + "/voice-chat?idle=0"


async def next_json(ws: Any, within: float = 30.0) -> dict[str, Any]:
    while True:
        raw = await asyncio.wait_for(ws.recv(), within)
        if isinstance(raw, str):
            found: dict[str, Any] = json.loads(raw)
            return found


@pytest.mark.parametrize(
    "first",
    [b"\x00\x01binary before auth", "not json", json.dumps({"type": "played"}), json.dumps(["auth"]),
     json.dumps({"type": "auth", "token": 42}), json.dumps({"type": "auth", "token": "x" * 100_000})],
)  # fmt: skip
def test_a_first_message_that_is_not_the_auth_is_refused_with_4401(appliance: Appliance, first: Any) -> None:
    async def attempt() -> tuple[dict[str, Any], int | None]:
        async with websockets.connect(ws_url(appliance), max_size=None) as ws:
            await ws.send(first)
            event = await next_json(ws)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return event, ws.close_code

    event, code = asyncio.run(attempt())
    assert event["type"] == "error" and event["code"] in ("auth-required", "auth-invalid"), event
    assert code == 4401


def test_bad_messages_in_a_session_are_refused_and_the_session_goes_on(appliance: Appliance) -> None:
    async def session() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url(appliance), max_size=None) as ws:
            await ws.send(json.dumps({"type": "auth", "token": appliance.token}))
            assert (await next_json(ws, 120))["type"] == "session"
            errors = []
            for bad in (b"\x01\x02\x03",  # a truncated sample
                        "{not json", json.dumps({"type": "dance"}), json.dumps([1, 2]),
                        json.dumps({"type": "played", "turn": "one", "samples": None}),  # wrong types
                        json.dumps({"type": "played", "turn": 99, "samples": 10**12})):  # fmt: skip
                await ws.send(bad)
                if bad == json.dumps({"type": "played", "turn": 99, "samples": 10**12}):
                    continue  # a report for a turn that never was: ignored, nothing to refuse
                errors.append(await next_json(ws))
            await ws.send(b"\x00\x00" * 1600)  # good audio still flows
            await ws.send(json.dumps({"type": "bye"}))
            closed = await next_json(ws)
            assert closed == {"type": "closed", "reason": "bye"}, closed
            return errors

    errors = asyncio.run(session())
    assert [e["code"] for e in errors] == ["audio-bad-frame"] + ["invalid-message"] * 4, errors


async def drain(ws: Any) -> None:
    while True:
        await ws.recv()


def test_an_oversized_message_closes_only_its_own_connection(appliance: Appliance) -> None:
    async def flood() -> int | None:
        async with websockets.connect(ws_url(appliance), max_size=None) as ws:
            await ws.send(json.dumps({"type": "auth", "token": appliance.token}))
            assert (await next_json(ws, 120))["type"] == "session"
            await ws.send(b"\x00" * (20 * 2**20))  # 20 MiB in one message
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(drain(ws), 10)
            return ws.close_code

    code = asyncio.run(flood())
    assert code == 1009, code  # "message too big"
    with appliance.client() as http:
        assert http.get("/health").json()["status"] == "ok"
        assert http.post("/chat", json={"text": "Hello."}).status_code == 200
