"""Where the coordinator's routers send their replies: a peer on the control bus, or the coordinator itself.

The voice pipeline (appliance/coordinator/voice_chat.py) is a client of the same routers a remote client uses:
it opens speech-in, chat, speech-out and face streams with the LOCAL peer and a request id it registered here,
and their replies come to its handler instead of over a socket. A reply for a local request nobody handles any
more raises PeerUnreachable, exactly like a vanished remote client, so the routers stop that work the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ipc.bus import ControlServer
from ipc.codec import Buffer
from ipc.errors import PeerUnreachable
from ipc.messages import Message

log = logging.getLogger(__name__)

LOCAL = b"\x00coordinator"
Handler = Callable[[Message, Sequence[Buffer]], Awaitable[None]]


class Sender(Protocol):
    """What a router needs of its transport: ControlServer, or the Outbox in front of it."""

    async def send(
        self, peer: bytes, message: Message, request_id: str = "", payload: Sequence[Buffer] = ()
    ) -> None: ...

    async def answer(self, peer: bytes, message: Message, request_id: str = "") -> bool: ...


class Outbox:
    def __init__(self, server: ControlServer) -> None:
        self._server = server
        self._local: dict[str, Handler] = {}

    @property
    def endpoint(self) -> str:
        return self._server.endpoint

    def register(self, request_id: str, handler: Handler) -> None:
        self._local[request_id] = handler

    def unregister(self, request_id: str) -> None:
        self._local.pop(request_id, None)

    async def send(self, peer: bytes, message: Message, request_id: str = "", payload: Sequence[Buffer] = ()) -> None:
        if peer != LOCAL:
            await self._server.send(peer, message, request_id, payload)
            return
        handler = self._local.get(request_id)
        if handler is None:
            raise PeerUnreachable(f"no local handler for {request_id!r}")
        await handler(message, payload)

    async def answer(self, peer: bytes, message: Message, request_id: str = "") -> bool:
        """Send, and say whether the peer was there (as ControlServer.answer)."""
        try:
            await self.send(peer, message, request_id)
        except PeerUnreachable:
            return False
        return True
