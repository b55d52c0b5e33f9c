"""A stand-in ring owner for tests: create a ring, write frames, report their refs, then wait.

Usage: python -m tests.helpers.ring_owner RUNTIME_DIR PROGRAM RING LABEL [--stream]

Prints one JSON-encoded RingSlotRef per written frame (the data is b"LABEL frame N", pts N), then "ready".
With --stream it then writes frames whose bytes all equal seq % 256 for up to 30 s (the test kills it
sooner; the bound keeps an orphan from spinning). Then it waits for stdin to close and exits cleanly,
unlinking its ring.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import msgspec

from ipc.rings import FrameRing

SLOTS = 4
SLOT_BYTES = 4096
FRAMES = 3


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    runtime_dir, program, ring_name, label = argv[:4]
    stream = "--stream" in argv[4:]
    with FrameRing.create(Path(runtime_dir), program, ring_name, slots=SLOTS, slot_bytes=SLOT_BYTES) as ring:
        for pts in range(FRAMES):
            ref = ring.write(f"{label} frame {pts}".encode(), pts=pts)
            print(msgspec.json.encode(ref).decode(), flush=True)
        print("ready", flush=True)
        if stream:
            seq, deadline = FRAMES + 1, time.monotonic() + 30
            while time.monotonic() < deadline:  # a slot of one repeated byte makes a torn read visible
                ring.write(bytes([seq % 256]) * SLOT_BYTES, pts=seq)
                seq += 1
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
