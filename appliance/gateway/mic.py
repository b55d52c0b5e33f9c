"""The gateway's microphone ring: live PCM from every client goes into one shared-memory ring it owns.

Only slot references cross the socket; the STT worker attaches to the ring and copies the samples out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ipc.messages import AudioChunk
from ipc.rings import FrameRing

SAMPLE_BYTES = 2  # PCM16
SLOT_BYTES = 3200  # 100 ms of 16 kHz mono PCM16
SLOTS = 1024  # ~100 s of audio across all streams: far more than the worker ever lags


class MicRing:
    def __init__(self, runtime_dir: Path) -> None:
        self._ring = FrameRing.create(runtime_dir, "gateway", "mic", slots=SLOTS, slot_bytes=SLOT_BYTES)

    def chunks(self, stream_id: str, pcm: bytes, first_sample: int) -> Iterator[AudioChunk]:
        """Write `pcm` into the ring in slot-sized pieces; one AudioChunk per piece."""
        view = memoryview(pcm)
        for offset in range(0, len(view), SLOT_BYTES):
            piece = view[offset : offset + SLOT_BYTES]
            ref = self._ring.write(piece, pts=first_sample + offset // SAMPLE_BYTES)
            yield AudioChunk(stream_id, ref, first_sample + offset // SAMPLE_BYTES)

    def close(self) -> None:
        self._ring.unlink()
        self._ring.close()
