"""One client's live voice session in the gateway, whatever carries it (WS /voice-chat, WebRTC).

A VoiceCall opens the session on the coordinator (VoiceOpen), takes the client's microphone (16 kHz PCM16: the
echo of the avatar's own voice taken out, echo.py, then into the mic ring), and turns the session's replies
into what a transport shows: JSON events, speech (PCM16 48 kHz with its sample index) and frames (RGB, read
from the lipsync worker's ring, with theirs), through a MediaSink. The transports differ only in their sink.
The protocol is docs/voice-chat.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from appliance.gateway.echo import EchoGate
from appliance.gateway.errors import ApiError
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.mic import SAMPLE_BYTES, MicRing
from appliance.gateway.routes.transcribe import event_json
from ipc.bus import Replies
from ipc.errors import BusTimeout, PeerUnreachable
from ipc.messages import (
    ErrorReply,
    FrameReady,
    Message,
    PlaybackPosition,
    ReplyText,
    StreamFault,
    VoiceAudio,
    VoiceClose,
    VoiceClosed,
    VoiceOpen,
    VoiceStarted,
    VoiceTurnEnded,
    VoiceTurnStarted,
)
from ipc.rings import RingReader

log = logging.getLogger(__name__)

OUTPUT_RATE = 48_000
FRAME_SAMPLES = 1600  # one 30 fps frame of the 48 kHz timeline
START_TIMEOUT_S = 90.0  # admission may load models first
SESSION_IDLE_S = 24 * 3600.0  # a session may stay silent; the client ends it
IDLE_FRAMES = "idle.jpgs"
IDLE_INDEX = "idle.idx.npy"

Frame = npt.NDArray[np.uint8]


class MediaSink(Protocol):
    """A transport's side of a call."""

    async def event(self, payload: dict[str, Any]) -> None:
        """A JSON event of the protocol."""

    async def audio(self, turn_no: int, first_sample: int, pcm: bytes) -> None:
        """Reply speech: PCM16 mono 48 kHz at `first_sample` of turn `turn_no`."""

    async def frame(self, turn_no: int, sample_index: int, rgb: Frame) -> None:
        """A frame of the talking face for the 1600 samples from `sample_index` of turn `turn_no`. `rgb` is the
        call's frame buffer, refilled for the next frame once this returns: a sink that keeps it must copy it."""

    async def interrupt(self, turn_no: int) -> None:
        """Stop playing turn `turn_no` now (barge-in) and go back to the idle loop."""


def idle_loop(folder: Path) -> list[bytes]:
    """The avatar's idle loop as JPEG frames (the lipsync worker writes them once per avatar); [] if unreadable."""
    try:
        data = (folder / IDLE_FRAMES).read_bytes()
        offsets = np.load(folder / IDLE_INDEX, allow_pickle=False)
    except (OSError, ValueError):
        return []
    if len(offsets) < 2 or int(offsets[-1]) != len(data):
        return []
    return [data[int(a) : int(b)] for a, b in itertools.pairwise(offsets)]


class VoiceCall:
    def __init__(self, link: CoordinatorLink, mic: MicRing, rings: RingReader, sink: MediaSink) -> None:
        self._link = link
        self._mic = mic
        self._rings = rings
        self._sink = sink
        self.stream_id = uuid.uuid4().hex
        self.echo = EchoGate()
        self.started: VoiceStarted | None = None
        self.idle_frames: list[bytes] = []
        self.closed_reason = ""
        self._replies: Replies | None = None
        self._events: asyncio.Task[None] | None = None
        self._samples = 0  # microphone samples so far
        self._turns: dict[str, int] = {}  # turn id -> turn number
        self._ended: set[int] = set()  # turns interrupted or failed: their late media is dropped
        self.late_frames = 0
        # The face's frames are copied out of the ring into this one buffer, not a new 768 KiB block each (512 px:
        # 90 a second with three calls churned the C heap, which kept growing from its holes in a soak).
        self._pixels = bytearray()

    async def start(self, session_id: str | None, voice_id: str | None, avatar_id: str | None,
                    language: str | None, *, sequential: bool = False) -> VoiceStarted:  # fmt: skip
        """Open the session; an ApiError says why it cannot be (refused, unknown session, not ready)."""
        opening = VoiceOpen(self.stream_id, session_id, voice_id, avatar_id, language, sequential)
        self._replies = await self._link.open(opening, idle_timeout_s=SESSION_IDLE_S)
        try:
            packet = await asyncio.wait_for(anext(self._replies), START_TIMEOUT_S)
        except (TimeoutError, StopAsyncIteration, BusTimeout, PeerUnreachable) as err:
            self._replies.close()
            await self._link.tell(VoiceClose(self.stream_id, "start-timeout"))  # should it start after all
            raise ApiError("coordinator-unavailable", f"the voice session did not start: {err!r}") from err
        if isinstance(packet.message, ErrorReply):
            self._replies.close()
            raise ApiError(packet.message.code, packet.message.message)
        if not isinstance(packet.message, VoiceStarted):
            self._replies.close()
            raise ApiError("unexpected-reply", f"VoiceOpen was answered by {type(packet.message).__name__}")
        self.started = packet.message
        self.idle_frames = await asyncio.to_thread(idle_loop, Path(self.started.idle_dir))
        self._events = asyncio.get_running_loop().create_task(self._relay(self._replies))
        return self.started

    @property
    def done(self) -> bool:
        return self._events is not None and self._events.done()

    async def wait_closed(self) -> None:
        if self._events is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._events

    async def mic(self, pcm: bytes) -> None:
        """Microphone audio: PCM16 16 kHz mono, any length of whole samples."""
        if len(pcm) % SAMPLE_BYTES:
            raise ApiError("audio-bad-frame", "binary frames carry whole 16-bit samples")
        cleaned = self.echo.clean(pcm, time.monotonic())
        if not cleaned:
            return
        for chunk in self._mic.chunks(self.stream_id, cleaned, self._samples):
            await self._link.tell(chunk)
        self._samples += len(cleaned) // SAMPLE_BYTES

    async def played(self, turn_no: int, samples: int) -> None:
        """The client has played `samples` of turn `turn_no`'s speech."""
        self.echo.played(turn_no, samples, time.monotonic())
        await self._link.tell(PlaybackPosition(self.stream_id, turn_no, max(0, samples)))

    async def close(self, reason: str) -> None:
        """End the call: the coordinator stops its work and frees its slot."""
        if self._replies is None:
            return
        if self._events is not None and not self._events.done():
            await self._link.tell(VoiceClose(self.stream_id, reason))
            try:
                await asyncio.wait_for(asyncio.shield(self._events), 5.0)
            except TimeoutError:
                self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._events
        self._replies.close()

    async def _relay(self, replies: Replies) -> None:
        try:
            async for packet in replies:
                await self._deliver(packet.message, packet.payload)
                if isinstance(packet.message, VoiceClosed | ErrorReply):
                    self.closed_reason = getattr(packet.message, "reason", "") or getattr(packet.message, "code", "")
                    return
        except (BusTimeout, PeerUnreachable) as err:
            self.closed_reason = "coordinator-unavailable"
            await self._sink.event({"type": "error", "code": "coordinator-unavailable",
                                    "message": f"the coordinator stopped answering: {err}"})  # fmt: skip

    async def _deliver(self, message: Message, payload: tuple[memoryview, ...]) -> None:
        match message:
            case VoiceTurnStarted():
                self._turns[message.turn_id] = message.turn_no
                await self._sink.event({"type": "turn", "turn_id": message.turn_id, "turn": message.turn_no,
                                        "user_text": message.user_text})  # fmt: skip
            case ReplyText():
                await self._sink.event({"type": "reply", "turn_id": message.turn_id, "text": message.text})
            case VoiceAudio() if payload and message.turn_no not in self._ended:
                pcm = bytes(payload[0])
                self.echo.speech(message.turn_no, message.first_sample, pcm, time.monotonic())
                await self._sink.audio(message.turn_no, message.first_sample, pcm)
            case FrameReady():
                await self._frame(message)
            case VoiceTurnEnded():
                if message.status != "done":
                    self._ended.add(message.turn_no)
                if message.status == "interrupted":
                    self.echo.stop(message.turn_no, time.monotonic())
                    await self._sink.interrupt(message.turn_no)
                await self._sink.event(_turn_end_json(message))
            case VoiceClosed():
                await self._sink.event({"type": "closed", "reason": message.reason})
            case StreamFault() | ErrorReply():
                await self._sink.event({"type": "error", "code": message.code, "message": message.message})
            case _:
                found = event_json(message)
                if found is not None:
                    await self._sink.event(found)

    async def _frame(self, ready: FrameReady) -> None:
        turn_no = self._turns.get(ready.turn_id)
        if turn_no is None or turn_no in self._ended:
            return
        if len(self._pixels) < ready.ref.length:
            self._pixels = bytearray(ready.ref.length)  # a new one: the last may still be viewed by a numpy array
        length = self._rings.read_into(ready.ref, self._pixels)
        if length is None:
            self.late_frames += 1  # overwritten in the ring before we read it
            return
        rgb = np.frombuffer(self._pixels, np.uint8, count=length).reshape(ready.height, ready.width, 3)
        await self._sink.frame(turn_no, ready.sample_index, rgb)


def _turn_end_json(message: VoiceTurnEnded) -> dict[str, Any]:
    return {"type": "turn_end", "turn_id": message.turn_id, "turn": message.turn_no, "status": message.status,
            "reply": message.reply, "heard": message.heard, "code": message.code, "trace": message.trace,
            "samples": message.samples, "frames": message.frames,
            "dropped_frames": message.dropped_frames, "stopped": list(message.stopped)}  # fmt: skip
