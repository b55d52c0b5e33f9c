"""Speech out: speech streams go to the `tts` worker, its audio events back to the client that opened them.

A stream's text is held here, in order, until the worker has the stream open (it may be restarting), so a
client can send text right after opening. The active voice is resolved here: the worker is told which files to
speak with, never reads the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from appliance.config import MynahConfig
from appliance.coordinator.programs import ProgramTable, wait_until_ready
from appliance.coordinator.voices import VoiceRouter
from appliance.store.db import StoreError
from ipc.bus import ControlServer
from ipc.errors import PeerUnreachable
from ipc.messages import (
    CancelTurn,
    ErrorReply,
    Message,
    SpeakDone,
    SpeakEnd,
    SpeakOpen,
    SpeakText,
    SynthesisOpen,
    VoiceSpec,
)

log = logging.getLogger(__name__)

TTS = "tts"


@dataclass
class SpeechStream:
    peer: bytes
    request_id: str
    open: SynthesisOpen
    held: list[Message] = field(default_factory=list)  # text that came before the worker had the stream
    on_worker: bool = False


class SpeechOutRouter:
    def __init__(self, config: MynahConfig, server: ControlServer, programs: ProgramTable, voices: VoiceRouter) -> None:
        self._config = config
        self._server = server
        self._programs = programs
        self._voices = voices
        self._streams: dict[str, SpeechStream] = {}
        self._attaching: set[asyncio.Task[None]] = set()

    async def open(self, peer: bytes, request_id: str, request: SpeakOpen) -> None:
        if request.turn_id in self._streams:
            await self._server.answer(
                peer, ErrorReply("invalid-request", f"turn {request.turn_id} is open"), request_id
            )
            return
        try:
            voice: VoiceSpec | None = self._voices.spec(request.voice_id)
        except StoreError as err:
            await self._server.answer(peer, ErrorReply(err.code, err.message), request_id)
            return
        stream = SpeechStream(peer, request_id, SynthesisOpen(request.turn_id, voice, request.speed))
        self._streams[request.turn_id] = stream
        task = asyncio.get_running_loop().create_task(self._attach(stream))
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def _attach(self, stream: SpeechStream) -> None:
        """Open the stream on the worker once it is ready, then pass on what was held, in order."""
        if not await wait_until_ready(self._programs, TTS, self._config.supervision.worker_wait_s):
            await self._end(stream, ErrorReply("tts-not-ready", "speech synthesis is not ready"))
            return
        if self._streams.get(stream.open.turn_id) is not stream:
            return  # cancelled meanwhile
        try:
            await self._server.send(TTS.encode(), stream.open, stream.open.turn_id)
            while stream.held:
                await self._server.send(TTS.encode(), stream.held.pop(0))
        except PeerUnreachable:
            await self._end(stream, ErrorReply("tts-unreachable", "the speech synthesis worker cannot be reached"))
            return
        stream.on_worker = True

    async def text(self, message: SpeakText | SpeakEnd) -> None:
        stream = self._streams.get(message.turn_id)
        if stream is None:
            return
        if not stream.on_worker:
            stream.held.append(message)
            return
        try:
            await self._server.send(TTS.encode(), message)
        except PeerUnreachable:
            await self._end(stream, ErrorReply("tts-unreachable", "the speech synthesis worker cannot be reached"))

    async def cancel(self, turn_id: str) -> None:
        stream = self._streams.get(turn_id)
        if stream is None:
            return
        if stream.on_worker:
            with contextlib.suppress(PeerUnreachable):
                await self._server.send(TTS.encode(), CancelTurn(turn_id))
                return  # the worker answers SpeakDone(cancelled) at once
        voice = stream.open.voice.voice_id if stream.open.voice else None
        await self._end(stream, SpeakDone(turn_id, 0, 0, True, 0.0, "", voice))

    async def worker_event(self, turn_id: str, message: Message) -> None:
        stream = self._streams.get(turn_id)
        if stream is None:
            return
        if type(message).final:
            await self._end(stream, message)
        else:
            await self._relay(stream, message)

    async def program_down(self, program: str, code: str, why: str) -> None:
        if program == TTS:
            for stream in list(self._streams.values()):
                if stream.on_worker:
                    await self._end(stream, ErrorReply(code, why))

    async def _end(self, stream: SpeechStream, message: Message) -> None:
        self._streams.pop(stream.open.turn_id, None)
        await self._relay(stream, message)

    async def _relay(self, stream: SpeechStream, message: Message) -> None:
        try:
            await self._server.send(stream.peer, message, stream.request_id)
        except PeerUnreachable:
            if self._streams.pop(stream.open.turn_id, None) is not None and stream.on_worker:
                log.info("turn %s: its client went away; cancelling its speech", stream.open.turn_id)
                with contextlib.suppress(PeerUnreachable):
                    await self._server.send(TTS.encode(), CancelTurn(stream.open.turn_id))
