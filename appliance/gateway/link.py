"""The gateway's link to the coordinator: a DEALER on the control bus, plus the gateway's own liveness."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

import zmq.asyncio

from appliance.config import MynahConfig
from appliance.gateway.errors import ApiError
from ipc.bus import ControlClient, Replies, heartbeat_forever
from ipc.codec import Buffer
from ipc.errors import BusTimeout, PeerUnreachable
from ipc.messages import ErrorReply, Heartbeat, Message, WorkerHello, WorkerReady
from ipc.paths import control_endpoint

PROGRAM = "gateway"
Expected = TypeVar("Expected", bound=Message)
QUERY_DEADLINE_S = 2.0


class CoordinatorLink:
    def __init__(self, config: MynahConfig) -> None:
        self._config = config
        self._ctx = zmq.asyncio.Context()
        self._client = ControlClient(self._ctx, control_endpoint(config.paths.runtime_dir), PROGRAM)
        self._heartbeats: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client.start()
        # A coordinator that dies (kill -9, a crash) answers nothing it was asked: say so at once, rather than
        # when each request's deadline passes (a voice session's is minutes).
        self._client.fail_pending_on_disconnect(
            "coordinator-restarted", "the coordinator stopped (it is being restarted): reconnect to go on"
        )
        pid = os.getpid()
        with contextlib.suppress(PeerUnreachable):
            await self._client.send(WorkerHello(PROGRAM, pid))
            await self._client.send(WorkerReady(PROGRAM, pid, "uvicorn", ""))

        def beat(missed: int) -> Heartbeat:
            return Heartbeat(PROGRAM, pid, ready=True, backend="uvicorn", drops={"heartbeat": missed})

        interval = self._config.supervision.heartbeat_interval_s
        self._heartbeats = asyncio.get_running_loop().create_task(heartbeat_forever(self._client, interval, beat))

    async def close(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeats
        await self._client.close()
        self._ctx.term()

    async def ask(self, message: Message, deadline_s: float = QUERY_DEADLINE_S) -> Message:
        """One request, one reply; an ErrorReply becomes an ApiError."""
        try:
            reply = await self._client.request(message, deadline_s=deadline_s)
        except (BusTimeout, PeerUnreachable) as err:
            raise ApiError("coordinator-unavailable", f"the coordinator did not answer: {err}") from err
        if isinstance(reply, ErrorReply):
            raise ApiError(reply.code, reply.message)
        return reply

    async def converse(
        self, message: Message, *, idle_timeout_s: float | None = None, payload: Sequence[Buffer] = ()
    ) -> AsyncIterator[Message]:
        """A streamed request: yield every reply message up to and including the final one."""
        deadline = idle_timeout_s or self._config.gateway.chat_timeout_s
        stream = self._client.stream(
            message,
            first_timeout=max(QUERY_DEADLINE_S + 1, idle_timeout_s or 0),
            idle_timeout=deadline,
            payload=payload,
        )
        try:
            async for packet in stream:
                yield packet.message
        except (BusTimeout, PeerUnreachable) as err:
            yield ErrorReply("coordinator-unavailable", f"the coordinator did not answer: {err}")
        finally:
            await stream.aclose()

    async def ask_for(
        self, message: Message, expected: type[Expected], deadline_s: float = QUERY_DEADLINE_S
    ) -> Expected:
        """ask(), where any reply but an `expected` is an error."""
        reply = await self.ask(message, deadline_s)
        if not isinstance(reply, expected):
            raise ApiError("unexpected-reply", f"{type(message).__name__} was answered by {type(reply).__name__}")
        return reply

    async def open(self, message: Message, *, idle_timeout_s: float) -> Replies:
        """Start an exchange whose later messages (sent with `tell`) go out before any reply is awaited."""
        try:
            return await self._client.open(message, first_timeout=idle_timeout_s, idle_timeout=idle_timeout_s)
        except PeerUnreachable as err:
            raise ApiError("coordinator-unavailable", f"the coordinator did not answer: {err}") from err

    async def last_reply(
        self, message: Message, *, idle_timeout_s: float, payload: Sequence[Buffer] = ()
    ) -> Message | None:
        """A long request with one answer (e.g. a file to transcribe); None if nothing came back."""
        last: Message | None = None
        async for reply in self.converse(message, idle_timeout_s=idle_timeout_s, payload=payload):
            last = reply
        return last

    async def tell(self, message: Message) -> None:
        with contextlib.suppress(PeerUnreachable):
            await self._client.send(message)
