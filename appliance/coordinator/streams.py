"""A turn's stream between a client and one worker program: opened by the client, attached to the worker once it
is ready (it may be restarting), its later messages held here in order until then, the worker's events relayed
back to the client, its last event (a `final` message) closing it. Speech out (tts) and live faces (lipsync)
are both such streams. Each entry point logs under the stream's turn id (`log_context`), and the attaching task
inherits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from appliance.config import MynahConfig
from appliance.coordinator.outbox import Sender
from appliance.coordinator.programs import ProgramTable, wait_until_ready
from appliance.logs import log_context
from ipc.errors import PeerUnreachable
from ipc.messages import CancelTurn, ErrorReply, Message

log = logging.getLogger(__name__)

Held = tuple[Message, tuple[bytes, ...]]


@dataclass
class TurnStream:
    peer: bytes
    request_id: str
    turn_id: str
    opening: Message  # what opens it on the worker
    held: list[Held] = field(default_factory=list)  # what came before the worker had the stream
    on_worker: bool = False


class TurnStreams:
    def __init__(self, config: MynahConfig, server: Sender, programs: ProgramTable, worker: str,
                 what: str) -> None:  # fmt: skip
        self._config = config
        self._server = server
        self._programs = programs
        self._worker = worker
        self._what = what  # for messages: "speech synthesis", "the face renderer"
        self._streams: dict[str, TurnStream] = {}
        self._attaching: set[asyncio.Task[None]] = set()

    def streaming(self, turn_id: str) -> bool:
        return turn_id in self._streams

    def get(self, turn_id: str) -> TurnStream | None:
        return self._streams.get(turn_id)

    async def open(self, peer: bytes, request_id: str, turn_id: str, opening: Message) -> None:
        with log_context(turn_id=turn_id):
            await self._open(peer, request_id, turn_id, opening)

    async def _open(self, peer: bytes, request_id: str, turn_id: str, opening: Message) -> None:
        if turn_id in self._streams:
            await self._server.answer(peer, ErrorReply("invalid-request", f"turn {turn_id} is open"), request_id)
            return
        stream = TurnStream(peer, request_id, turn_id, opening)
        self._streams[turn_id] = stream
        task = asyncio.get_running_loop().create_task(self._attach(stream))  # it copies the log context
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def _attach(self, stream: TurnStream) -> None:
        """Open the stream on the worker once it is ready, then pass on what was held, in order."""
        if not await wait_until_ready(self._programs, self._worker, self._config.supervision.worker_wait_s):
            await self._end(stream, ErrorReply(f"{self._worker}-not-ready", f"{self._what} is not ready"))
            return
        if self._streams.get(stream.turn_id) is not stream:
            return  # cancelled meanwhile
        try:
            await self._server.send(self._worker.encode(), stream.opening, stream.turn_id)
            while stream.held:
                message, payload = stream.held.pop(0)
                await self._server.send(self._worker.encode(), message, payload=payload)
        except PeerUnreachable:
            await self._unreachable(stream)
            return
        stream.on_worker = True

    async def forward(self, turn_id: str, message: Message, payload: Sequence[memoryview | bytes] = ()) -> None:
        """More for an open stream (held until the worker has it); nothing when the stream is gone."""
        stream = self._streams.get(turn_id)
        if stream is None:
            return
        data = tuple(bytes(part) for part in payload)
        if not stream.on_worker:
            stream.held.append((message, data))
            return
        try:
            await self._server.send(self._worker.encode(), message, payload=data)
        except PeerUnreachable:
            with log_context(turn_id=turn_id):
                await self._unreachable(stream)

    async def cancel(self, turn_id: str, closing: Message) -> None:
        """Stop a stream: the worker answers its own last event; one not on the worker yet ends with `closing`."""
        stream = self._streams.get(turn_id)
        if stream is None:
            return
        with log_context(turn_id=turn_id):
            if stream.on_worker:
                with contextlib.suppress(PeerUnreachable):
                    await self._server.send(self._worker.encode(), CancelTurn(turn_id))
                    return
            await self._end(stream, closing)

    async def worker_event(self, turn_id: str, message: Message) -> None:
        stream = self._streams.get(turn_id)
        if stream is None:
            return
        with log_context(turn_id=turn_id):
            if type(message).final:
                await self._end(stream, message)
            else:
                await self._relay(stream, message)

    async def program_down(self, program: str, code: str, why: str) -> None:
        if program == self._worker:
            for stream in list(self._streams.values()):
                if stream.on_worker:
                    with log_context(turn_id=stream.turn_id):
                        await self._end(stream, ErrorReply(code, why))

    async def _unreachable(self, stream: TurnStream) -> None:
        await self._end(stream, ErrorReply(f"{self._worker}-unreachable", f"{self._what} cannot be reached"))

    async def _end(self, stream: TurnStream, message: Message) -> None:
        self._streams.pop(stream.turn_id, None)
        await self._relay(stream, message)

    async def _relay(self, stream: TurnStream, message: Message) -> None:
        try:
            await self._server.send(stream.peer, message, stream.request_id)
        except PeerUnreachable:
            if self._streams.pop(stream.turn_id, None) is not None and stream.on_worker:
                log.info("turn %s: its client went away; cancelling its %s work", stream.turn_id, self._worker)
                with contextlib.suppress(PeerUnreachable):
                    await self._server.send(self._worker.encode(), CancelTurn(stream.turn_id))
