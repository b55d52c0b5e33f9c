"""Speech out: speech streams go to the `tts` worker, its audio events back to the client that opened them.

A stream's text is held, in order, until the worker has the stream open (it may be restarting), so a client can
send text right after opening (appliance/coordinator/streams.py). The active voice is resolved here: the worker
is told which files to speak with, never reads the database.
"""

from __future__ import annotations

from appliance.config import MynahConfig
from appliance.coordinator.outbox import Sender
from appliance.coordinator.programs import ProgramTable
from appliance.coordinator.streams import TurnStreams
from appliance.coordinator.voices import VoiceRouter
from appliance.store.db import StoreError
from ipc.messages import ErrorReply, Message, SpeakDone, SpeakEnd, SpeakOpen, SpeakText, SynthesisOpen, VoiceSpec

TTS = "tts"


class SpeechOutRouter:
    def __init__(self, config: MynahConfig, server: Sender, programs: ProgramTable, voices: VoiceRouter) -> None:
        self._server = server
        self._voices = voices
        self._streams = TurnStreams(config, server, programs, TTS, "speech synthesis")

    async def open(self, peer: bytes, request_id: str, request: SpeakOpen) -> None:
        try:
            voice: VoiceSpec | None = self._voices.spec(request.voice_id)
        except StoreError as err:
            await self._server.answer(peer, ErrorReply(err.code, err.message), request_id)
            return
        opening = SynthesisOpen(request.turn_id, voice, request.speed)
        await self._streams.open(peer, request_id, request.turn_id, opening)

    async def text(self, message: SpeakText | SpeakEnd) -> None:
        await self._streams.forward(message.turn_id, message)

    async def cancel(self, turn_id: str) -> None:
        stream = self._streams.get(turn_id)
        if stream is None:
            return
        opening = stream.opening
        voice = opening.voice.voice_id if isinstance(opening, SynthesisOpen) and opening.voice else None
        await self._streams.cancel(turn_id, SpeakDone(turn_id, 0, 0, True, 0.0, "", voice))

    async def worker_event(self, turn_id: str, message: Message) -> None:
        await self._streams.worker_event(turn_id, message)

    async def program_down(self, program: str, code: str, why: str) -> None:
        await self._streams.program_down(program, code, why)
