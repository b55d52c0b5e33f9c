"""Speech to text: `POST /api/transcribe` for files, `WS /api/transcribe/live` for live PCM.

Both go to the same STT code path (the worker's faster-whisper backend); files are batch work and yield
to live audio. The live protocol is documented in docs/stt.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, WebSocket, WebSocketDisconnect

from appliance.gateway.deps import Config, Link
from appliance.gateway.errors import ApiError
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.metrics import count_stream_error
from appliance.gateway.mic import SAMPLE_BYTES, MicRing
from appliance.gateway.schemas import ApiErrorOut, SegmentOut, TranscriptOut
from ipc.messages import (
    AudioStreamClose,
    AudioStreamClosed,
    AudioStreamOpen,
    ErrorReply,
    FinalTranscript,
    Message,
    PartialTranscript,
    StreamFault,
    TranscribeFile,
    TranscriptResult,
    VadEvent,
)

router = APIRouter(prefix="/api/transcribe", tags=["speech"])

ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ApiErrorOut, "description": "request-too-large, audio-too-large"},
    422: {"model": ApiErrorOut, "description": "audio-empty, audio-undecodable, audio-too-short, audio-too-long, ..."},
    503: {"model": ApiErrorOut, "description": "stt-not-ready, stt-worker-crashed, ..."},
}
LIVE_IDLE_S = 24 * 3600.0  # a live stream may stay silent for a long time; the client ends it


@router.post("", response_model=TranscriptOut, responses=ERRORS, summary="Transcribe an audio file")
async def transcribe(
    link: Link,
    config: Config,
    file: Annotated[UploadFile, File(description="Audio in any common container: WAV, FLAC, Ogg/Opus, WebM, MP3, M4A")],
    language: Annotated[str | None, Form(description="A Whisper language code; default: the configured one")] = None,
) -> TranscriptOut:
    data = await file.read(config.stt.limits.max_upload_bytes + 1)
    if len(data) > config.stt.limits.max_upload_bytes:
        raise ApiError("audio-too-large", f"uploads are limited to {config.stt.limits.max_upload_bytes} bytes")
    name = (file.filename or "upload")[-200:]
    request = TranscribeFile(filename=name, language=language)
    reply = await link.last_reply(request, idle_timeout_s=config.stt.limits.transcribe_timeout_s, payload=[data])
    if isinstance(reply, ErrorReply):
        raise ApiError(reply.code, reply.message)
    if not isinstance(reply, TranscriptResult):
        raise ApiError("stt-failed", "no transcript came back")
    return TranscriptOut(
        text=reply.text,
        language=reply.language,
        duration_s=round(reply.duration_s, 3),
        segments=[SegmentOut(start=round(s.start, 3), end=round(s.end, 3), text=s.text) for s in reply.segments],
        timings={"decode_s": round(reply.timings.decode_s, 4), "total_s": round(reply.timings.total_s, 4),
                 "queued_s": round(reply.timings.queued_s, 4)},
    )  # fmt: skip


def event_json(message: Message) -> dict[str, Any] | None:
    """The live protocol's JSON for a worker event (docs/stt.md)."""
    match message:
        case VadEvent():
            return {"type": "vad", "kind": message.kind, "utterance": message.utterance, "sample": message.sample,
                    "at": message.at}  # fmt: skip
        case PartialTranscript():
            return {"type": "partial", "utterance": message.utterance, "committed": message.committed,
                    "unstable": message.unstable, "audio_end_sample": message.audio_end_sample,
                    "at": message.at}  # fmt: skip
        case FinalTranscript():
            return {"type": "final", "utterance": message.utterance, "text": message.text,
                    "start_sample": message.start_sample, "end_sample": message.end_sample,
                    "end_detected_at": message.end_detected_at, "at": message.at,
                    "speculative": message.speculative, "decode_s": message.decode_s}  # fmt: skip
        case StreamFault() | ErrorReply():
            return {"type": "error", "code": message.code, "message": message.message}
        case AudioStreamClosed():
            return {"type": "closed", "dropped_chunks": message.dropped_chunks}
    return None


@router.websocket("/live")
async def live(websocket: WebSocket, language: str | None = None) -> None:
    """Binary frames in: 16 kHz mono PCM16LE. JSON events out. Send {"type": "end"} to finish."""
    await websocket.accept()
    link: CoordinatorLink = websocket.app.state.link
    mic: MicRing = websocket.app.state.mic
    stream_id = uuid.uuid4().hex
    events = link.converse(AudioStreamOpen(stream_id, language), idle_timeout_s=LIVE_IDLE_S)
    forward = asyncio.create_task(_forward_events(websocket, events))
    samples = 0
    try:
        while not forward.done():
            incoming = await websocket.receive()
            if incoming["type"] == "websocket.disconnect":
                break
            if incoming.get("bytes") is not None:
                pcm: bytes = incoming["bytes"]
                if len(pcm) % SAMPLE_BYTES:
                    count_stream_error(websocket, "audio-bad-frame")
                    await websocket.send_json({"type": "error", "code": "audio-bad-frame",
                                               "message": "binary frames carry whole 16-bit samples"})  # fmt: skip
                    continue
                for chunk in mic.chunks(stream_id, pcm, samples):
                    await link.tell(chunk)
                samples += len(pcm) // SAMPLE_BYTES
            elif _is_end(incoming.get("text")):
                await link.tell(AudioStreamClose(stream_id))
                await asyncio.wait_for(asyncio.shield(forward), 30)
                break
    except (WebSocketDisconnect, TimeoutError):
        pass
    finally:
        if not forward.done():
            await link.tell(AudioStreamClose(stream_id))
            forward.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await forward
        with contextlib.suppress(RuntimeError):
            await websocket.close()


def _is_end(text: str | None) -> bool:
    if not text:
        return False
    with contextlib.suppress(ValueError, AttributeError):
        return bool(json.loads(text).get("type") == "end")
    return False


async def _forward_events(websocket: WebSocket, events: Any) -> None:
    async for message in events:
        payload = event_json(message)
        if payload is not None:
            if payload["type"] == "error":
                count_stream_error(websocket, payload["code"])
            await websocket.send_json(payload)
        if isinstance(message, AudioStreamClosed):
            return
