"""ZeroMQ buses: a control bus (ROUTER/DEALER, request/reply with deadlines) and an event bus (PUB/SUB).

The coordinator binds one ROUTER; every other process (workers, the gateway, the CLI, supervisord's event
listener) connects a DEALER named for itself. The ROUTER is ROUTER_MANDATORY, so a send to a peer that is
gone raises instead of vanishing, and ROUTER_HANDOVER, so a restarted worker takes its name back at once.
Sends never block: a full queue is an error the caller sees (and counts), not a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

import zmq
import zmq.asyncio

from ipc.codec import Buffer, Packet, decode, encode
from ipc.errors import BusTimeout, PeerUnreachable, ProtocolError
from ipc.messages import ErrorReply, Heartbeat, Message, Priority

log = logging.getLogger(__name__)

DEFAULT_HWM = 10_000


def _configure(sock: zmq.asyncio.Socket, hwm: int) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)


async def _send(sock: zmq.asyncio.Socket, frames: Sequence[Buffer], what: str) -> None:
    try:
        await sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
    except zmq.Again as err:
        raise PeerUnreachable(f"{what}: send queue full") from err
    except zmq.ZMQError as err:
        if err.errno == zmq.EHOSTUNREACH:
            raise PeerUnreachable(f"{what}: not connected") from err
        raise


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message received by the server, with the identity of the peer that sent it."""

    peer: bytes
    packet: Packet


class Inbox:
    """A bounded inbox in which control messages overtake queued data.

    Data beyond `maxsize` is refused (the caller answers "busy" and the drop is counted); control messages
    (cancel, shutdown) are few and always accepted, and `get` returns them before any queued data.
    """

    def __init__(self, maxsize: int = 64) -> None:
        self._control: deque[Packet] = deque()
        self._data: deque[Packet] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.drops = 0

    def put(self, packet: Packet) -> bool:
        if packet.message.priority is Priority.CONTROL:
            self._control.append(packet)
        elif len(self._data) >= self._maxsize:
            self.drops += 1
            return False
        else:
            self._data.append(packet)
        self._ready.set()
        return True

    def get_nowait(self) -> Packet | None:
        queue = self._control or self._data
        if not queue:
            self._ready.clear()
            return None
        return queue.popleft()

    async def get(self) -> Packet:
        while True:
            packet = self.get_nowait()
            if packet is not None:
                return packet
            await self._ready.wait()

    def __len__(self) -> int:
        return len(self._control) + len(self._data)


class ControlServer:
    """The coordinator's ROUTER socket."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, *, hwm: int = DEFAULT_HWM) -> None:
        self._sock = ctx.socket(zmq.ROUTER)
        _configure(self._sock, hwm)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self._sock.bind(endpoint)
        self.endpoint = endpoint
        self.protocol_errors = 0

    async def recv(self) -> Incoming:
        """The next well-formed message; malformed ones are counted and logged with their peer."""
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            peer = frames[0].bytes
            try:
                return Incoming(peer, decode([f.buffer for f in frames[1:]]))
            except ProtocolError as err:
                self.protocol_errors += 1
                log.warning("dropped a malformed message from %r: %s (%s)", peer, err, err.code)

    async def send(self, peer: bytes, message: Message, request_id: str = "", payload: Sequence[Buffer] = ()) -> None:
        await _send(self._sock, [peer, *encode(message, request_id, payload)], f"peer {peer!r}")

    async def answer(self, peer: bytes, message: Message, request_id: str = "") -> bool:
        """send(), for an answer nobody may be waiting for any more: False when the peer is gone."""
        try:
            await self.send(peer, message, request_id)
        except PeerUnreachable:
            return False
        return True

    def close(self) -> None:
        self._sock.close(linger=0)


class ControlClient:
    """A DEALER connected to the coordinator: it makes requests and receives requests addressed to it.

    Replies are routed to the waiting request by id; control messages go to `on_control` at once when it is
    set; anything else lands in `inbox`.
    """

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        endpoint: str,
        identity: str,
        *,
        hwm: int = DEFAULT_HWM,
        inbox_size: int = 64,
        on_control: Callable[[Packet], None] | None = None,
    ) -> None:
        self._sock = ctx.socket(zmq.DEALER)
        _configure(self._sock, hwm)
        self._sock.setsockopt(zmq.IDENTITY, identity.encode())
        self._sock.connect(endpoint)
        self.identity = identity
        self.inbox = Inbox(inbox_size)
        # Control messages are handed to this callback the moment they arrive, ahead of any queued data.
        self._on_control = on_control
        self._pending: dict[str, asyncio.Queue[Packet]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.protocol_errors = 0

    def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read(), name="bus-reader")

    def fail_pending_on_disconnect(self, code: str, why: str) -> None:
        """When the connection to the coordinator drops (its process died), end every request in flight with an
        ErrorReply(code): the coordinator that comes back knows none of them, so none would ever be answered."""
        if self._watcher is None:
            monitor = self._sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self._watcher = asyncio.get_running_loop().create_task(self._watch(monitor, code, why), name="bus-watch")

    async def _watch(self, monitor: zmq.asyncio.Socket, code: str, why: str) -> None:
        try:
            while True:
                await monitor.recv_multipart()  # only disconnections are monitored
                pending = list(self._pending.items())
                if pending:
                    log.warning("the coordinator's connection dropped: %d requests in flight end with %s",
                                len(pending), code)  # fmt: skip
                for request_id, queue in pending:
                    queue.put_nowait(Packet(request_id, ErrorReply(code, why)))
        finally:
            with contextlib.suppress(zmq.ZMQError):
                self._sock.disable_monitor()
            monitor.close(linger=0)

    async def _read(self) -> None:
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            try:
                packet = decode([f.buffer for f in frames])
            except ProtocolError as err:
                self.protocol_errors += 1
                log.warning("dropped a malformed message: %s (%s)", err, err.code)
                continue
            waiting = self._pending.get(packet.request_id)
            if self._on_control is not None and packet.message.priority is Priority.CONTROL:
                self._on_control(packet)
            elif waiting is not None:
                waiting.put_nowait(packet)
            elif not self.inbox.put(packet):
                name = type(packet.message).__name__
                log.warning("inbox full: refused %s", name)
                with contextlib.suppress(PeerUnreachable):
                    await self.send(ErrorReply("busy", f"{self.identity} is busy: {name} refused"), packet.request_id)

    def new_request_id(self) -> str:
        return f"{self.identity}:{next(self._ids)}"

    async def send(self, message: Message, request_id: str = "", payload: Sequence[Buffer] = ()) -> None:
        await _send(self._sock, encode(message, request_id, payload), "coordinator")

    async def request(self, message: Message, *, deadline_s: float, payload: Sequence[Buffer] = ()) -> Message:
        """Send and wait for the single reply; raise BusTimeout after `deadline_s` seconds."""
        replies = self.stream(message, first_timeout=deadline_s, idle_timeout=deadline_s, payload=payload)
        try:
            packet = await anext(replies)
        finally:
            await replies.aclose()
        return packet.message

    async def open(
        self, message: Message, *, first_timeout: float, idle_timeout: float, payload: Sequence[Buffer] = ()
    ) -> Replies:
        """Send now and return the replies to come, so that more messages for the same exchange (the text of a
        speech stream) can follow before the first reply arrives."""
        self.start()
        request_id = self.new_request_id()
        queue: asyncio.Queue[Packet] = asyncio.Queue()
        self._pending[request_id] = queue
        try:
            await self.send(message, request_id, payload)
        except BaseException:
            self._pending.pop(request_id, None)
            raise
        return Replies(self._pending, request_id, queue, type(message).__name__, first_timeout, idle_timeout)

    async def stream(
        self,
        message: Message,
        *,
        first_timeout: float,
        idle_timeout: float,
        payload: Sequence[Buffer] = (),
    ) -> AsyncGenerator[Packet, None]:
        """Send and yield replies until one whose class is `final`; a silent gap raises BusTimeout."""
        replies = await self.open(message, first_timeout=first_timeout, idle_timeout=idle_timeout, payload=payload)
        try:
            async for packet in replies:
                yield packet
        finally:
            replies.close()

    async def close(self) -> None:
        for task in (self._watcher, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sock.close(linger=0)


class Replies:
    """The replies to one request, up to and including the first whose class is `final`."""

    def __init__(
        self,
        pending: dict[str, asyncio.Queue[Packet]],
        request_id: str,
        queue: asyncio.Queue[Packet],
        name: str,
        first_timeout: float,
        idle_timeout: float,
    ) -> None:
        self._pending = pending
        self.request_id = request_id
        self._queue = queue
        self._name = name
        self._timeout = first_timeout
        self._idle_timeout = idle_timeout
        self._done = False

    def __aiter__(self) -> Replies:
        return self

    async def __anext__(self) -> Packet:
        if self._done:
            raise StopAsyncIteration
        try:
            packet = await asyncio.wait_for(self._queue.get(), self._timeout)
        except TimeoutError as err:
            self.close()
            raise BusTimeout(f"no reply to {self._name} within {self._timeout:.1f} s") from err
        self._timeout = self._idle_timeout
        if type(packet.message).final:
            self.close()
        return packet

    def close(self) -> None:
        """Stop listening: replies that come later are dropped (counted by nobody: the exchange is over)."""
        self._done = True
        self._pending.pop(self.request_id, None)


class EventPublisher:
    """PUB side of the event bus. PUB drops at its high-water mark by design; events are advisory."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, *, hwm: int = DEFAULT_HWM) -> None:
        self._sock = ctx.socket(zmq.PUB)
        _configure(self._sock, hwm)
        self._sock.bind(endpoint)
        self.drops = 0

    async def publish(self, message: Message) -> None:
        topic = type(message).__name__.encode()
        try:
            await self._sock.send_multipart([topic, *encode(message)], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.drops += 1

    def close(self) -> None:
        self._sock.close(linger=0)


class EventSubscriber:
    """SUB side: `topics` are message class names; none means every event."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, topics: Sequence[type[Message]] = ()) -> None:
        self._sock = ctx.socket(zmq.SUB)
        _configure(self._sock, DEFAULT_HWM)
        for topic in topics or (None,):
            self._sock.setsockopt(zmq.SUBSCRIBE, b"" if topic is None else topic.__name__.encode())
        self._sock.connect(endpoint)

    async def recv(self) -> Message:
        frames = await self._sock.recv_multipart(copy=False)
        return decode([f.buffer for f in frames[1:]]).message

    def close(self) -> None:
        self._sock.close(linger=0)


async def heartbeat_forever(client: ControlClient, interval_s: float, make_beat: Callable[[int], Heartbeat]) -> None:
    """Send `make_beat(missed)` every interval; a beat that cannot leave is counted, never waited on."""
    missed = 0
    while True:
        try:
            await client.send(make_beat(missed))
        except PeerUnreachable:
            missed += 1  # the coordinator is not there (yet): counted, shown on /health once it is
        await asyncio.sleep(interval_s)
