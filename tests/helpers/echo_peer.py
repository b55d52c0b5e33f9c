"""A real second process for IPC tests: answers Pings and ring-slot references over the control bus.

Usage: python -m tests.helpers.echo_peer RUNTIME_DIR PEER_RING_NAME
Every Ping's payload comes back reversed in a Pong; every RingSlotRef to the peer's ring is read, its bytes
reversed into this process's own ring, and a reference to that slot is sent back.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import zmq.asyncio

from ipc.bus import ControlClient
from ipc.messages import Ping, Pong, RingSlotRef, ShutdownWorker
from ipc.paths import control_endpoint
from ipc.rings import FrameRing


async def main(runtime_dir: Path, peer_ring: str) -> None:
    ctx = zmq.asyncio.Context()
    client = ControlClient(ctx, control_endpoint(runtime_dir), "echo", inbox_size=256)
    client.start()
    with (
        FrameRing.create(runtime_dir, "echo", "pong", slots=64, slot_bytes=4096) as own,
        FrameRing.attach(peer_ring) as theirs,
    ):
        await client.send(Pong(0))  # hello: the parent now knows this peer
        while True:
            packet = await client.inbox.get()
            message = packet.message
            if isinstance(message, ShutdownWorker):
                break
            if isinstance(message, Ping):
                await client.send(Pong(message.seq), packet.request_id, [bytes(packet.payload[0])[::-1]])
            elif isinstance(message, RingSlotRef):
                data = theirs.read(message)
                await client.send(own.write(data[::-1], message.pts), packet.request_id)
    await client.close()
    ctx.term()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
