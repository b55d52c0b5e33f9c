"""The control and event buses over real ZeroMQ sockets (ipc:// in a temporary runtime directory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zmq.asyncio

from ipc.bus import ControlClient, ControlServer, EventPublisher, EventSubscriber, Inbox
from ipc.codec import Packet
from ipc.errors import BusTimeout, PeerUnreachable
from ipc.messages import CancelTurn, ChatRequest, ChatToken, ErrorReply, Ping, Pong, ShutdownWorker, WorkerReady
from ipc.paths import control_endpoint, events_endpoint


@pytest.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    context = zmq.asyncio.Context()
    yield context
    context.term()


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    return tmp_path


async def _serve_pongs(server: ControlServer, count: int) -> None:
    for _ in range(count):
        incoming = await server.recv()
        assert isinstance(incoming.packet.message, Ping)
        await server.send(incoming.peer, Pong(incoming.packet.message.seq), incoming.packet.request_id)


async def test_request_gets_its_own_reply(ctx: zmq.asyncio.Context, runtime: Path) -> None:
    server = ControlServer(ctx, control_endpoint(runtime))
    client = ControlClient(ctx, control_endpoint(runtime), "client-a")
    serving = asyncio.create_task(_serve_pongs(server, 3))
    replies = await asyncio.gather(*(client.request(Ping(seq), deadline_s=2.0) for seq in (7, 8, 9)))
    assert [r.seq for r in replies if isinstance(r, Pong)] == [7, 8, 9]
    await serving
    await client.close()
    server.close()


async def test_request_without_reply_times_out_with_a_typed_error(ctx: zmq.asyncio.Context, runtime: Path) -> None:
    server = ControlServer(ctx, control_endpoint(runtime))
    client = ControlClient(ctx, control_endpoint(runtime), "client-b")
    with pytest.raises(BusTimeout) as caught:
        await client.request(Ping(1), deadline_s=0.2)
    assert caught.value.code == "ipc-timeout"
    await client.close()
    server.close()


async def test_router_refuses_a_send_to_an_unknown_peer(ctx: zmq.asyncio.Context, runtime: Path) -> None:
    server = ControlServer(ctx, control_endpoint(runtime))
    with pytest.raises(PeerUnreachable) as caught:
        await server.send(b"nobody", Pong(1))
    assert caught.value.code == "ipc-peer-unreachable"
    server.close()


async def test_stream_yields_until_the_final_message(ctx: zmq.asyncio.Context, runtime: Path) -> None:
    server = ControlServer(ctx, control_endpoint(runtime))
    client = ControlClient(ctx, control_endpoint(runtime), "client-c")

    async def answer() -> None:
        incoming = await server.recv()
        for word in ("one", "two"):
            await server.send(incoming.peer, ChatToken(word), incoming.packet.request_id)
        await server.send(incoming.peer, ErrorReply("done-here", "end"), incoming.packet.request_id)

    serving = asyncio.create_task(answer())
    got = [p.message async for p in client.stream(ChatRequest("hi"), first_timeout=2, idle_timeout=2)]
    assert got == [ChatToken("one"), ChatToken("two"), ErrorReply("done-here", "end")]
    await serving
    await client.close()
    server.close()


async def test_unsolicited_messages_land_in_the_inbox_and_control_goes_to_its_handler(
    ctx: zmq.asyncio.Context, runtime: Path
) -> None:
    controls: list[Packet] = []
    server = ControlServer(ctx, control_endpoint(runtime))
    client = ControlClient(ctx, control_endpoint(runtime), "worker-x", on_control=controls.append)
    client.start()
    await client.send(WorkerReady("worker-x", 1, "b", "m"))  # lets the server learn the peer
    await server.recv()
    await server.send(b"worker-x", ChatRequest("data"), "r1")
    await server.send(b"worker-x", CancelTurn("t1"), "r2")
    packet = await asyncio.wait_for(client.inbox.get(), 2)
    assert packet.message == ChatRequest("data")
    for _ in range(50):
        if controls:
            break
        await asyncio.sleep(0.01)
    assert [c.message for c in controls] == [CancelTurn("t1")]
    await client.close()
    server.close()


async def test_a_full_inbox_answers_busy_instead_of_dropping_silently(ctx: zmq.asyncio.Context, runtime: Path) -> None:
    server = ControlServer(ctx, control_endpoint(runtime))
    client = ControlClient(ctx, control_endpoint(runtime), "worker-y", inbox_size=2)
    client.start()
    await client.send(WorkerReady("worker-y", 1, "b", "m"))
    await server.recv()
    for n in range(3):
        await server.send(b"worker-y", ChatRequest(f"job {n}"), f"r{n}")
    refused = await asyncio.wait_for(server.recv(), 2)
    assert refused.packet.request_id == "r2"
    assert isinstance(refused.packet.message, ErrorReply)
    assert refused.packet.message.code == "busy"
    assert client.inbox.drops == 1
    await client.close()
    server.close()


def _packet(message: object) -> Packet:
    assert isinstance(message, ChatRequest | CancelTurn | ShutdownWorker)
    return Packet("", message)


async def test_inbox_control_overtakes_queued_data() -> None:
    inbox = Inbox(maxsize=10)
    for n in range(5):
        assert inbox.put(_packet(ChatRequest(f"data {n}")))
    inbox.put(_packet(CancelTurn("t")))
    inbox.put(_packet(ShutdownWorker("bye")))
    order = [inbox.get_nowait() for _ in range(7)]
    assert [type(p.message).__name__ for p in order if p] == ["CancelTurn", "ShutdownWorker"] + ["ChatRequest"] * 5
    assert inbox.get_nowait() is None


async def test_inbox_is_bounded_for_data_but_never_refuses_control() -> None:
    inbox = Inbox(maxsize=1)
    assert inbox.put(_packet(ChatRequest("a")))
    assert not inbox.put(_packet(ChatRequest("b")))
    assert inbox.put(_packet(CancelTurn("t")))
    assert inbox.drops == 1
    assert len(inbox) == 2


async def test_events_fan_out_to_subscribers_by_topic(ctx: zmq.asyncio.Context, runtime: Path) -> None:
    publisher = EventPublisher(ctx, events_endpoint(runtime))
    everything = EventSubscriber(ctx, events_endpoint(runtime))
    readiness = EventSubscriber(ctx, events_endpoint(runtime), topics=[WorkerReady])
    await asyncio.sleep(0.2)  # a SUB socket joins asynchronously (the slow-joiner rule of PUB/SUB)
    await publisher.publish(Ping(1))
    await publisher.publish(WorkerReady("llm", 2, "embedded", "m"))
    assert await asyncio.wait_for(everything.recv(), 2) == Ping(1)
    assert await asyncio.wait_for(everything.recv(), 2) == WorkerReady("llm", 2, "embedded", "m")
    assert await asyncio.wait_for(readiness.recv(), 2) == WorkerReady("llm", 2, "embedded", "m")
    for sock in (everything, readiness, publisher):
        sock.close()


async def test_a_dropped_coordinator_ends_every_request_in_flight_at_once(
    ctx: zmq.asyncio.Context, runtime: Path
) -> None:
    server = ControlServer(ctx, control_endpoint(runtime))
    client = ControlClient(ctx, control_endpoint(runtime), "gateway")
    client.start()
    client.fail_pending_on_disconnect("coordinator-restarted", "gone")
    asked = asyncio.create_task(client.request(Ping(1), deadline_s=30.0))
    incoming = await server.recv()  # the request arrived; its answer never will
    assert isinstance(incoming.packet.message, Ping)
    started = asyncio.get_running_loop().time()
    server.close()  # the coordinator's process dies: its socket goes with it
    reply = await asyncio.wait_for(asked, 5.0)
    assert reply == ErrorReply("coordinator-restarted", "gone")
    assert asyncio.get_running_loop().time() - started < 2.0
    # A coordinator that comes back is asked again as usual.
    again = ControlServer(ctx, control_endpoint(runtime))
    serving = asyncio.create_task(_serve_pongs(again, 1))
    assert await client.request(Ping(2), deadline_s=5.0) == Pong(2)
    await serving
    await client.close()
    again.close()
