"""POST /api/speak: text in, speech out, as one WAV file or as raw PCM streamed while it is synthesized."""

from __future__ import annotations

import io
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from appliance.gateway.deps import Config, Link
from appliance.gateway.errors import ApiError
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.metrics import count_stream_error
from appliance.gateway.schemas import ApiErrorOut, SpeakIn
from ipc.bus import Replies
from ipc.errors import BusTimeout
from ipc.messages import CancelTurn, ErrorReply, Message, SpeakDone, SpeakEnd, SpeakOpen, SpeakText, SpeechAudio
from ipc.rings import RingReader

router = APIRouter(prefix="/api", tags=["speech"])

OUTPUT_RATE = 48_000
PCM_MEDIA_TYPE = "audio/L16;rate=48000;channels=1"
VOICE_HEADER = "X-Mynah-Voice"  # the voice id that spoke (WAV answers), or "builtin"
BACKEND_HEADER = "X-Mynah-TTS-Backend"
BUILTIN = "builtin"
SPEECH_IDLE_S = 60.0  # the longest gap between two pieces of one answer (a long sentence on a busy box)
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorOut, "description": "voice-not-found"},
    422: {"model": ApiErrorOut, "description": "invalid-request, empty-text, text-too-long, nothing-to-say"},
    503: {"model": ApiErrorOut, "description": "tts-not-ready, tts-worker-crashed, voice-needs-gpt-sovits, ..."},
}


@router.post(
    "/speak",
    responses={**ERRORS, 200: {"content": {"audio/wav": {}, PCM_MEDIA_TYPE: {}}, "description": "the speech"}},
    response_class=Response,
    summary="Say a text in a voice",
)
async def speak(body: SpeakIn, request: Request, link: Link, config: Config) -> Response:
    text = body.text.strip()
    if not text:
        raise ApiError("empty-text", "text is empty")
    if len(text) > config.gateway.max_text_chars:
        raise ApiError("text-too-long", f"text is limited to {config.gateway.max_text_chars} characters")
    turn_id = uuid.uuid4().hex
    replies = await link.open(SpeakOpen(turn_id, body.voice, body.speed), idle_timeout_s=SPEECH_IDLE_S)
    await link.tell(SpeakText(turn_id, text))
    await link.tell(SpeakEnd(turn_id))
    rings: RingReader = request.app.state.speech_rings
    outcome = Outcome()
    audio = _audio(replies, rings, outcome)
    try:
        first = await anext(audio)  # an error before any audio is still an HTTP error
    except StopAsyncIteration:
        raise ApiError("nothing-to-say", f"there is nothing to say in {text[:80]!r}") from None
    except ApiError:
        await link.tell(CancelTurn(turn_id))
        raise
    if body.format == "pcm":
        return StreamingResponse(_rest(first, audio, link, turn_id, request), media_type=PCM_MEDIA_TYPE)
    pcm = bytearray(first)
    async for piece in audio:
        pcm += piece
    headers = {VOICE_HEADER: outcome.voice_id or BUILTIN, BACKEND_HEADER: outcome.backend}
    return Response(wav_bytes(bytes(pcm)), media_type="audio/wav", headers=headers)


@dataclass
class Outcome:
    """What SpeakDone said, once it came."""

    voice_id: str | None = None
    backend: str = ""


async def _audio(replies: Replies, rings: RingReader, outcome: Outcome) -> AsyncIterator[bytes]:
    """The PCM of each audio event, in order; raises ApiError for an error event (or silence from the worker)."""
    try:
        async for packet in replies:
            message: Message = packet.message
            if isinstance(message, SpeechAudio):
                pcm = rings.read(message.ref)
                if pcm is None:
                    raise ApiError("audio-lost", "speech audio was overwritten before it could be sent")
                yield pcm
            elif isinstance(message, ErrorReply):
                raise ApiError(message.code, message.message)
            elif isinstance(message, SpeakDone):
                outcome.voice_id, outcome.backend = message.voice_id, message.backend
                return
    except BusTimeout as err:
        raise ApiError("tts-timeout", f"speech synthesis stopped answering: {err}") from err
    finally:
        replies.close()


async def _rest(
    first: bytes, audio: AsyncIterator[bytes], link: CoordinatorLink, turn_id: str, request: Request
) -> AsyncIterator[bytes]:
    finished = False
    try:
        yield first
        try:
            async for piece in audio:
                yield piece
        except ApiError as err:  # the status is sent: an error mid-stream can only end the stream (and count)
            count_stream_error(request, err.code)
        finished = True
    finally:
        if not finished:
            await link.tell(CancelTurn(turn_id))  # the client went away: stop speaking for nobody


def wav_bytes(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(OUTPUT_RATE)
        wav.writeframes(pcm)
    return out.getvalue()
