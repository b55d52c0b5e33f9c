"""A live-audio client for tests and benchmarks: streams PCM over `WS /api/transcribe/live` in real time.

It records when each piece of audio left, so the time from the TRUE end of speech (known from the synthesized
clip) to the arrival of the final transcript can be measured exactly as a user would feel it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import websockets

SAMPLE_RATE = 16_000


@dataclass
class LiveResult:
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (arrival, event), in order
    sent_at: dict[int, float] = field(default_factory=dict)  # chunk's first sample -> monotonic time it was sent
    started: float = 0.0  # the stream's time zero: sample n was "spoken" at started + n / SAMPLE_RATE

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event["type"] == kind]

    def arrival(self, event: dict[str, Any]) -> float:
        return next(at for at, e in self.events if e is event)


def to_pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


async def stream_audio(
    url: str,
    samples: npt.NDArray[np.float32],
    *,
    chunk_ms: int = 100,
    realtime: bool = True,
    settle_s: float = 3.0,
    end: bool = True,
    token: str = "",
    ca: Path | None = None,
) -> LiveResult:
    """Send `samples` in `chunk_ms` pieces (paced in real time), then wait `settle_s` for events; then end.

    The first message is the device token (docs/stt.md), as a browser sends it."""
    result = LiveResult()
    ws_url = url.replace("https://", "wss://").replace("http://", "ws://") + "/api/transcribe/live"
    tls = ssl.create_default_context(cafile=str(ca)) if ca else None
    async with websockets.connect(ws_url, max_size=None, ssl=tls) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))

        async def receive() -> None:
            async for raw in ws:
                event = json.loads(raw)
                result.events.append((time.monotonic(), event))
                if event["type"] == "closed":
                    return

        receiver = asyncio.create_task(receive())
        step = SAMPLE_RATE * chunk_ms // 1000
        started = time.monotonic()
        result.started = started
        for offset in range(0, len(samples), step):
            if realtime:
                # Like a microphone: a chunk leaves once all of its audio has been "spoken".
                chunk_end = min(offset + step, len(samples))
                await asyncio.sleep(max(0.0, started + chunk_end / SAMPLE_RATE - time.monotonic()))
            result.sent_at[offset] = time.monotonic()
            await ws.send(to_pcm16(samples[offset : offset + step]))
        await asyncio.sleep(settle_s)
        if end:
            await ws.send(json.dumps({"type": "end"}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver, 30)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await receiver
    return result


def end_of_speech_latency(result: LiveResult, true_end_s: float) -> float | None:
    """Seconds from the true end of speech (as spoken, on the stream's clock) to the first final's arrival."""
    finals = result.of("final")
    if not finals:
        return None
    return result.arrival(finals[0]) - (result.started + true_end_s)
