"""Live faces: a turn's animation stream goes to the `lipsync` worker, its frames' events back to whoever opened
it (the turn pipeline, a test, a benchmark). Speech chunks carry their PCM as a payload, passed on as it came;
until the worker has the stream open (it may be restarting) they are held in order
(appliance/coordinator/streams.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from appliance.config import MynahConfig
from appliance.coordinator.outbox import Sender
from appliance.coordinator.programs import ProgramTable
from appliance.coordinator.streams import TurnStreams
from ipc.messages import AnimateDone, AnimateEnd, AnimateOpen, AnimateSpeech, Message

LIPSYNC = "lipsync"


class FaceRouter:
    def __init__(self, config: MynahConfig, server: Sender, programs: ProgramTable) -> None:
        self._streams = TurnStreams(config, server, programs, LIPSYNC, "the face renderer")

    def streaming(self, turn_id: str) -> bool:
        return self._streams.streaming(turn_id)

    async def open(self, peer: bytes, request_id: str, request: AnimateOpen) -> None:
        await self._streams.open(peer, request_id, request.turn_id, request)

    async def speech(self, message: AnimateSpeech | AnimateEnd, payload: Sequence[memoryview]) -> None:
        await self._streams.forward(message.turn_id, message, payload)

    async def cancel(self, turn_id: str) -> None:
        await self._streams.cancel(turn_id, AnimateDone(turn_id, 0, 0, True, 0.0))

    async def worker_event(self, turn_id: str, message: Message) -> None:
        await self._streams.worker_event(turn_id, message)

    async def program_down(self, program: str, code: str, why: str) -> None:
        await self._streams.program_down(program, code, why)
