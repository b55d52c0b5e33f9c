"""`WS /voice-chat`: talk to the avatar over one WebSocket, from any browser or a script (docs/voice-chat.md).

Up: the auth message first (auth.py), then binary frames of 16 kHz mono PCM16 (the microphone) and JSON
`{"type": "played", "turn": N, "samples": S}` playback reports; `{"type": "bye"}` ends the call. Down: JSON
events, and binary media, each with a 13-byte header (little-endian: kind u8, turn u32, sample index u64):
kind 1 reply speech (PCM16 mono 48 kHz), kind 2 a JPEG frame of the talking face, kind 3 a JPEG frame of the
idle loop (its index is the loop's frame number). Query parameters: `session_id` (resume), `voice`, `avatar`,
`language`, `idle=0` (no idle-loop frames), `pipeline=sequential` (for measurement: no stage streams into the next).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from appliance.config import MynahConfig
from appliance.gateway.errors import ApiError
from appliance.gateway.metrics import count_stream_error
from appliance.gateway.voice import FRAME_SAMPLES, OUTPUT_RATE, Frame, VoiceCall
from appliance.settings import SettingsError, read_settings

router = APIRouter(tags=["voice"])

HEADER = struct.Struct("<BIQ")
AUDIO, FRAME, IDLE = 1, 2, 3
FPS = 30
# The web UI's video quality setting (gateway.video_quality), read when a conversation starts.
JPEG_QUALITY = {"low": 60, "standard": 80, "high": 92}
QUEUE = 256  # messages waiting for a slow client; frames are dropped first
IDLE_AFTER_S = 0.25  # no speech frame for this long: the idle loop plays
WS_CLOSE_REFUSED = 4409  # the session could not start (its error event says why)
WS_CLOSE_RETRY = 4503  # the session ended because the coordinator went away: reconnect with its session_id


def media(kind: int, turn_no: int, index: int, data: bytes) -> bytes:
    return HEADER.pack(kind, turn_no, index) + data


@dataclass
class Outgoing:
    turn_no: int  # 0: not a turn's media
    text: str | None = None
    data: bytes | None = None
    is_frame: bool = False


class WebSocketSink:
    """The call's media onto one WebSocket: a writer task sends in order; a slow client loses frames, never
    speech or events; frames already behind the client's playback are not sent (counted as late)."""

    def __init__(self, websocket: WebSocket, *, idle: bool, quality: int = JPEG_QUALITY["standard"]) -> None:
        self._ws = websocket
        self._quality = quality
        self._bgr = np.empty((0, 0, 3), np.uint8)  # the frame being encoded, reused: frames come one at a time
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(QUEUE)
        self._idle = idle
        self._idle_frames: list[bytes] = []
        self._stopped: set[int] = set()
        self._positions: dict[int, tuple[int, float]] = {}  # turn -> (played samples, when reported)
        self._last_face = 0.0
        self.late_frames = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, idle_frames: list[bytes]) -> None:
        self._idle_frames = idle_frames
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._write())]
        if self._idle and idle_frames:
            self._tasks.append(loop.create_task(self._idle_loop()))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def drain(self) -> None:
        """Until what was queued is sent (the writer must be running)."""
        await self._queue.join()

    def position(self, turn_no: int, samples: int) -> None:
        self._positions[turn_no] = (samples, time.monotonic())

    async def event(self, payload: dict[str, Any]) -> None:
        await self._queue.put(Outgoing(0, text=json.dumps(payload)))

    async def audio(self, turn_no: int, first_sample: int, pcm: bytes) -> None:
        await self._queue.put(Outgoing(turn_no, data=media(AUDIO, turn_no, first_sample, pcm)))

    async def frame(self, turn_no: int, sample_index: int, rgb: Frame) -> None:
        self._last_face = time.monotonic()
        if self._late(turn_no, sample_index) or self._queue.qsize() > QUEUE // 2:
            self.late_frames += 1
            return
        if self._bgr.shape != rgb.shape:
            self._bgr = np.empty_like(rgb)
        message = await asyncio.to_thread(_frame_message, rgb, self._bgr, self._quality, turn_no, sample_index)
        self._queue.put_nowait(Outgoing(turn_no, data=message, is_frame=True))

    async def interrupt(self, turn_no: int) -> None:
        self._stopped.add(turn_no)
        self._last_face = 0.0

    def _late(self, turn_no: int, sample_index: int) -> bool:
        played, at = self._positions.get(turn_no, (0, 0.0))
        if not played:
            return False
        now_playing = played + int((time.monotonic() - at) * OUTPUT_RATE)
        return sample_index + FRAME_SAMPLES <= now_playing

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item.turn_no in self._stopped:
                    continue  # interrupted: what was queued for it is not played
                if item.text is not None:
                    await self._ws.send_text(item.text)
                elif item.data is not None:
                    await self._ws.send_bytes(item.data)
            finally:
                self._queue.task_done()

    async def _idle_loop(self) -> None:
        started = time.monotonic()
        shown = -1
        while True:
            await asyncio.sleep(1 / FPS)
            now = time.monotonic()
            if now - self._last_face < IDLE_AFTER_S or self._queue.qsize() > QUEUE // 4:
                continue
            index = int((now - started) * FPS)
            if index != shown:
                shown = index
                jpeg = self._idle_frames[index % len(self._idle_frames)]
                self._queue.put_nowait(Outgoing(0, data=media(IDLE, 0, index, jpeg), is_frame=True))


def _frame_message(rgb: Frame, bgr: Frame, quality: int, turn_no: int, sample_index: int) -> bytes:
    """The frame as JPEG, framed for the client, off the event loop; `bgr` is the sink's buffer for OpenCV's
    channel order (a new one per frame, at 90 frames a second with three calls, churned the C heap)."""
    cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=bgr)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return media(FRAME, turn_no, sample_index, encoded.tobytes())


def _video_quality(config: MynahConfig) -> str:
    """The setting as stored now (the gateway is not restarted to apply it), else the configured one."""
    try:
        chosen = read_settings(config.paths.data_dir).get("gateway.video_quality")
    except SettingsError:
        chosen = None
    return chosen if chosen in JPEG_QUALITY else config.gateway.video_quality


@router.websocket("/voice-chat")
async def voice_chat(websocket: WebSocket, session_id: str | None = None, voice: str | None = None,
                     avatar: str | None = None, language: str | None = None, idle: int = 1,
                     pipeline: str = "streamed") -> None:  # fmt: skip
    """A live voice conversation: the protocol is docs/voice-chat.md."""
    await websocket.accept()
    state = websocket.app.state
    sink = WebSocketSink(websocket, idle=bool(idle), quality=JPEG_QUALITY[_video_quality(state.config)])
    call = VoiceCall(state.link, state.mic, state.speech_rings, sink)
    try:
        if pipeline not in ("streamed", "sequential"):
            raise ApiError("invalid-request", "pipeline is streamed or sequential")
        started = await call.start(session_id, voice, avatar, language, sequential=pipeline == "sequential")
    except ApiError as err:
        count_stream_error(websocket, err.code)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.send_json({"type": "error", "code": err.code, "message": err.message})
            await websocket.close(WS_CLOSE_REFUSED, err.code)
        return
    sink.start(call.idle_frames)
    await sink.event({"type": "session", "session_id": started.session_id, "resumed": started.resumed,
                      "turns": started.turns, "sessions": started.sessions, "max_sessions": started.max_sessions,
                      "avatar": {"id": started.avatar_id, "width": started.width, "height": started.height},
                      "sample_rate_in": 16000, "sample_rate_out": OUTPUT_RATE, "fps": FPS})  # fmt: skip
    reason = "client-gone"
    try:
        while not call.done:
            incoming = await websocket.receive()
            if incoming["type"] == "websocket.disconnect":
                break
            if incoming.get("bytes") is not None:
                try:
                    await call.mic(incoming["bytes"])
                except ApiError as err:
                    count_stream_error(websocket, err.code)
                    await sink.event({"type": "error", "code": err.code, "message": err.message})
            elif (control := _control(incoming.get("text"))) is not None:
                if control.get("type") == "bye":
                    reason = "bye"
                    break
                if control.get("type") == "played":
                    turn_no, samples = control.get("turn"), control.get("samples")
                    if isinstance(turn_no, int) and isinstance(samples, int):
                        sink.position(turn_no, samples)
                        await call.played(turn_no, samples)
                        continue
                count_stream_error(websocket, "invalid-message")
                await sink.event({"type": "error", "code": "invalid-message",
                                  "message": "expected played or bye (docs/voice-chat.md)"})  # fmt: skip
    except WebSocketDisconnect:
        pass
    finally:
        await call.close(reason)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sink.drain(), 1.0)
        await sink.close()
        retry = call.closed_reason in ("coordinator-restarted", "coordinator-unavailable")
        with contextlib.suppress(RuntimeError):
            await websocket.close(WS_CLOSE_RETRY if retry else 1000, call.closed_reason if retry else "")


def _control(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        found = json.loads(text)
        if isinstance(found, dict):
            return found
    return {}
