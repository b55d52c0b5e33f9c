"""A script client of `WS /voice-chat` (docs/voice-chat.md) that behaves like a person at a browser.

It speaks into the microphone in real time (20 ms chunks, silence between utterances), plays the reply speech
at its real rate the moment it arrives (a simulated speaker, which stops at once on a barge-in), reports its
playback position, and can feed what it plays back into its own microphone (delayed and scaled: a hands-free
echo). Every event and media message is kept with its arrival time, so tests and bench/latency.py measure
from the true end of speech, as spoken on the stream's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr
import websockets

MIC_RATE = 16_000
OUTPUT_RATE = 48_000
TICK_S = 0.02
# Like a browser's jitter buffer: playback starts this long after a turn's first speech arrives, so the first
# frame, rendered from that speech, is there when its sound plays (docs/voice-chat.md).
PLAYOUT_DELAY_S = 0.06
REPORT_EVERY_S = 0.1
HEADER = struct.Struct("<BIQ")
AUDIO, FRAME, IDLE = 1, 2, 3

Samples = npt.NDArray[np.float32]


@dataclass
class TurnMedia:
    turn_no: int
    audio: list[tuple[int, bytes, float]] = field(default_factory=list)  # first sample, PCM, arrival
    frames: list[tuple[int, float, bytes]] = field(default_factory=list)  # sample index, arrival, JPEG
    played: int = 0  # samples played by the simulated speaker
    play_started_at: float = 0.0
    play_times: dict[int, float] = field(default_factory=dict)  # sample -> when the speaker reached it (per tick)
    stopped_at: float = 0.0  # when playback stopped on a barge-in
    finished_at: float = 0.0  # when playback reached the end of a finished turn

    def available(self) -> int:
        """Contiguous samples received from 0."""
        end = 0
        for first, pcm, _ in sorted(self.audio, key=lambda a: a[0]):
            if first > end:
                break
            end = max(end, first + len(pcm) // 2)
        return end

    def pcm(self) -> bytes:
        return b"".join(pcm for _, pcm, _ in sorted(self.audio, key=lambda a: a[0]))

    def speech_48k(self) -> Samples:
        return np.frombuffer(self.pcm(), np.int16).astype(np.float32) / 32768.0

    def when_played(self, sample: int) -> float | None:
        """When the speaker reached `sample` (to one tick)."""
        found = [t for s, t in self.play_times.items() if s >= sample]
        return min(found) if found else None


@dataclass
class Spoken:
    """An utterance queued into the microphone: where its speech truly ends on the stream's clock."""

    start_sample: int
    speech_end_at: float  # monotonic


class EventLog:
    """A client's protocol events as they arrived (monotonic time, event), and waiting on them."""

    def __init__(self) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._changed = asyncio.Event()  # set on every event (and whatever else a client wants waited on)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.events if e["type"] == kind]

    def arrival(self, event: dict[str, Any]) -> float:
        return next(t for t, e in self.events if e is event)

    async def wait_for(self, check: Any, within: float) -> Any:
        """Until `check()` gives something truthy (re-checked whenever something arrives), or TimeoutError."""
        deadline = time.monotonic() + within
        while not (found := check()):
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited {within} s; events: {[e['type'] for _, e in self.events][-30:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
        return found


class VoiceClient(EventLog):
    def __init__(self, url: str, token: str, *, ca: Path | None = None, session_id: str | None = None,
                 echo_gain: float = 0.0, echo_delay_s: float = 0.12, idle: bool = False,
                 extra: dict[str, str] | None = None) -> None:  # fmt: skip
        params = {"idle": "1" if idle else "0", **(extra or {})}
        if session_id:
            params["session_id"] = session_id
        query = "&".join(f"{k}={v}" for k, v in params.items())
        self.url = url.replace("https://", "wss://").replace("http://", "ws://") + f"/voice-chat?{query}"
        self._token = token
        self._tls = ssl.create_default_context(cafile=str(ca)) if ca else None
        self.echo_gain = echo_gain
        self._echo = deque(np.zeros(round(echo_delay_s * MIC_RATE), np.float32))
        self._echo_resampler = soxr.ResampleStream(OUTPUT_RATE, MIC_RATE, 1, dtype="float32")
        super().__init__()
        self.turns: dict[int, TurnMedia] = {}
        self.idle_frames = 0
        self.session: dict[str, Any] = {}
        self._queue: deque[Samples] = deque()
        self._sent = 0  # microphone samples sent
        self._ws: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0
        self.closed: dict[str, Any] | None = None

    async def __aenter__(self) -> VoiceClient:
        self._ws = await websockets.connect(self.url, max_size=None, ssl=self._tls)
        await self._ws.send(json.dumps({"type": "auth", "token": self._token}))
        first = json.loads(await asyncio.wait_for(self._ws.recv(), 120))
        self.events.append((time.monotonic(), first))
        if first.get("type") != "session":
            await self._ws.close()
            raise SessionRefused(first)
        self.session = first
        self._started = time.monotonic()
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._tick())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, *, bye: bool = True) -> None:
        if self._ws is None:
            return
        for task in self._tasks[1:]:
            task.cancel()
        with contextlib.suppress(websockets.ConnectionClosed):
            if bye:
                await self._ws.send(json.dumps({"type": "bye"}))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed_event(), 10)
        await self._ws.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await task
        self._ws = None

    async def drop(self) -> None:
        """Vanish without a goodbye (a lost network): the socket just closes."""
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            self._ws.transport.abort()
        self._ws = None

    # --- the microphone -------------------------------------------------------------------------------------

    def say(self, clip: Samples, speech_end_s: float) -> Spoken:
        """Queue an utterance; it plays into the microphone after what is queued, in real time."""
        start = self._sent + sum(len(c) for c in self._queue)
        self._queue.append(clip.astype(np.float32))
        return Spoken(start, self._started + (start / MIC_RATE) + speech_end_s)

    async def _tick(self) -> None:
        last_report = 0.0
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            due = int((now - self._started) * MIC_RATE) - self._sent
            if due <= 0:
                continue
            mic = self._take(due)
            played = self._play(due * OUTPUT_RATE // MIC_RATE, now)
            if self.echo_gain:
                mic = mic + self.echo_gain * self._echo_of(played, len(mic))
            await self._ws.send((np.clip(mic, -1, 1) * 32767).astype("<i2").tobytes())
            self._sent += due
            if now - last_report >= REPORT_EVERY_S and (current := self._current()) is not None:
                last_report = now
                await self._ws.send(json.dumps({"type": "played", "turn": current.turn_no, "samples": current.played}))

    def _take(self, n: int) -> Samples:
        out = np.zeros(n, np.float32)
        filled = 0
        while filled < n and self._queue:
            head = self._queue[0]
            k = min(n - filled, len(head))
            out[filled : filled + k] = head[:k]
            filled += k
            if k == len(head):
                self._queue.popleft()
            else:
                self._queue[0] = head[k:]
        return out

    def _echo_of(self, played: Samples, n: int) -> Samples:
        if len(played):
            self._echo.extend(self._echo_resampler.resample_chunk(played))
        return np.array([self._echo.popleft() if self._echo else 0.0 for _ in range(n)], np.float32)

    # --- the speaker ----------------------------------------------------------------------------------------

    def _current(self, now: float | None = None) -> TurnMedia | None:
        playing = [t for t in self.turns.values() if t.audio and not t.stopped_at and not t.finished_at
                   and (now is None or now >= t.audio[0][2] + PLAYOUT_DELAY_S)]  # fmt: skip
        return min(playing, key=lambda t: t.turn_no) if playing else None

    def _play(self, n: int, now: float) -> Samples:
        turn = self._current(now)
        if turn is None:
            return np.zeros(0, np.float32)
        start = turn.played
        turn.play_started_at = turn.play_started_at or now
        turn.played = min(turn.available(), start + n)
        turn.play_times[turn.played] = now
        if self._turn_end(turn.turn_no) is not None and turn.played >= turn.available():
            turn.finished_at = now
            self._changed.set()
        if turn.played == start:
            return np.zeros(0, np.float32)
        speech = turn.speech_48k()
        return speech[start : turn.played]

    # --- what comes back ----------------------------------------------------------------------------------

    async def _receive(self) -> None:
        async for raw in self._ws:
            now = time.monotonic()
            if isinstance(raw, bytes):
                kind, turn_no, index = HEADER.unpack_from(raw)
                if kind == IDLE:
                    self.idle_frames += 1
                    continue
                turn = self.turns.setdefault(turn_no, TurnMedia(turn_no))
                if turn.stopped_at:
                    continue
                if kind == AUDIO:
                    turn.audio.append((index, raw[HEADER.size :], now))
                elif kind == FRAME:
                    turn.frames.append((index, now, raw[HEADER.size :]))
                continue
            event = json.loads(raw)
            self.events.append((now, event))
            if event["type"] == "turn_end" and event["status"] == "interrupted":
                turn = self.turns.setdefault(event["turn"], TurnMedia(event["turn"]))
                turn.stopped_at = now
            if event["type"] == "closed":
                self.closed = event
            self._changed.set()

    def _turn_end(self, turn_no: int) -> dict[str, Any] | None:
        return next((e for _, e in self.events if e["type"] == "turn_end" and e["turn"] == turn_no), None)

    async def turn_heard(self, turn_no: int, within: float = 120.0) -> dict[str, Any]:
        """Until turn `turn_no` ended and its speech was played to the end (or it was cut): its turn_end."""

        def heard() -> dict[str, Any] | None:
            end = self._turn_end(turn_no)
            turn = self.turns.get(turn_no)
            if end is None:
                return None
            if end["status"] != "done" or end["samples"] == 0:
                return end
            return end if turn is not None and (turn.finished_at or turn.stopped_at) else None

        found: dict[str, Any] = await self.wait_for(heard, within)
        return found

    async def _closed_event(self) -> None:
        await self.wait_for(lambda: self.closed, 10)


class SessionRefused(Exception):
    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(f"{event.get('code')}: {event.get('message')}")
        self.event = event
