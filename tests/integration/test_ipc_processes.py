"""Two real OS processes exchange 10,000 messages and ring slots over ZeroMQ and shared memory."""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
import tempfile
from pathlib import Path

import pytest
import zmq.asyncio

from ipc.bus import ControlServer
from ipc.messages import Ping, Pong, RingSlotRef, ShutdownWorker
from ipc.paths import SEGMENT_ROOT, control_endpoint, segment_prefix
from ipc.rings import FrameRing

pytestmark = pytest.mark.integration

MESSAGES = 10_000
WINDOW = 32  # replies outstanding at once; below the rings' 64 slots, so no slot is reused while in flight


async def test_ten_thousand_messages_and_ring_slots_none_lost_or_corrupted() -> None:
    runtime = Path(tempfile.mkdtemp(prefix="mynah-ipc-"))
    rng = random.Random(1234)
    ctx = zmq.asyncio.Context()
    server = ControlServer(ctx, control_endpoint(runtime))
    ring = FrameRing.create(runtime, "parent", "ping", slots=64, slot_bytes=4096)
    peer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.helpers.echo_peer", str(runtime), ring.name
    )
    try:
        hello = await asyncio.wait_for(server.recv(), 20)
        assert hello.packet.message == Pong(0)
        echo = hello.peer
        expected: dict[str, bytes] = {}
        received = corrupted = 0
        answers: dict[str, RingSlotRef | Pong] = {}

        async with asyncio.timeout(120):
            sent = 0
            while received < MESSAGES:
                while sent < MESSAGES and sent - received < WINDOW:
                    data = rng.randbytes(rng.randint(1, 4096))
                    request_id = f"m{sent}"
                    expected[request_id] = hashlib.sha256(data[::-1]).digest()
                    if sent % 2:
                        await server.send(echo, Ping(sent, payload_frames=1), request_id, [data])
                    else:
                        await server.send(echo, ring.write(data, pts=sent), request_id)
                    sent += 1
                incoming = await server.recv()
                packet = incoming.packet
                message = packet.message
                if isinstance(message, Pong):
                    got = bytes(packet.payload[0])
                else:
                    assert isinstance(message, RingSlotRef)
                    with FrameRing.attach(message.ring) as theirs:
                        got = theirs.read(message)
                corrupted += hashlib.sha256(got).digest() != expected.pop(packet.request_id)
                answers[packet.request_id] = message
                received += 1
        assert (received, corrupted, len(expected)) == (MESSAGES, 0, 0)
        assert sum(isinstance(m, Pong) for m in answers.values()) == MESSAGES // 2
        await server.send(echo, ShutdownWorker("done"))
        assert await asyncio.wait_for(peer.wait(), 10) == 0
    finally:
        if peer.returncode is None:
            peer.kill()
            await peer.wait()
        ring.unlink()
        ring.close()
        server.close()
        ctx.term()
    assert not leftover_segments(runtime)


def leftover_segments(runtime: Path) -> list[str]:
    return [p.name for p in SEGMENT_ROOT.iterdir() if p.name.startswith(segment_prefix(runtime))]
