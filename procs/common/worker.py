"""What every worker program shares: hello, heartbeats, readiness after load, and serving requests.

A worker connects a DEALER named after its program to the coordinator, says hello, keeps heartbeating
while it loads and works (so a hung process is told apart from a busy one), reports ready only once its
model is loaded, and serves data requests one at a time. Control messages (cancel, shutdown) reach the
service the moment they arrive. An unrecoverable error is a non-zero exit: supervisord restarts the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Protocol

import zmq.asyncio

from appliance.config import MynahConfig
from ipc.bus import ControlClient, heartbeat_forever
from ipc.codec import Packet
from ipc.errors import CodedError, IpcError
from ipc.messages import ErrorReply, Heartbeat, Message, ShutdownWorker, WorkerFailed, WorkerHello, WorkerReady
from ipc.paths import control_endpoint

log = logging.getLogger(__name__)

EXIT_LOAD_FAILED = 3


class WorkerError(CodedError):
    """A failure the worker cannot recover from in-process; it carries a documented code."""


class Replier(Protocol):
    async def __call__(self, message: Message) -> None: ...


class WorkerService(Protocol):
    """One model family behind the worker runtime.

    Optional attributes the runtime looks for: `bind(client)`, for a service that asks the coordinator for things
    itself; `degraded: str`, why it runs on a fallback backend (procs/common/fallback.py), sent with each beat."""

    @property
    def backend(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def load(self) -> None:
        """Load the model; raise WorkerError when it cannot be loaded."""
        ...

    async def handle(self, packet: Packet, reply: Replier) -> None:
        """Serve one data request, replying (possibly several times) through `reply`."""
        ...

    def control(self, packet: Packet) -> None:
        """React at once to a control message (e.g. cancel the request in progress)."""
        ...

    async def close(self) -> None: ...


class WorkerRuntime:
    def __init__(self, config: MynahConfig, program: str, service: WorkerService) -> None:
        self._config = config
        self._program = program
        self._service = service
        self._busy = False
        self._ready = False
        self._stop = asyncio.Event()

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT or a shutdown message; return the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        ctx = zmq.asyncio.Context()
        client = ControlClient(
            ctx, control_endpoint(self._config.paths.runtime_dir), self._program, on_control=self._on_control
        )
        client.start()
        bind = getattr(self._service, "bind", None)
        if callable(bind):
            bind(client)  # a service that asks the coordinator for things itself (the trainer)
        interval = self._config.supervision.heartbeat_interval_s
        beats = heartbeat_forever(client, interval, lambda missed: self._beat(client, missed))
        heartbeats = loop.create_task(beats, name="heartbeat")
        try:
            await client.send(WorkerHello(program=self._program, pid=os.getpid()))
            try:
                await self._service.load()
            except WorkerError as err:
                log.error("%s could not load its model: %s (%s)", self._program, err.message, err.code)
                await client.send(WorkerFailed(self._program, os.getpid(), err.code, err.message))
                await asyncio.sleep(0.2)  # let the message leave before the process does
                return EXIT_LOAD_FAILED
            await client.send(WorkerReady(self._program, os.getpid(), self._service.backend, self._service.model,
                                          _degraded(self._service)))  # fmt: skip
            self._ready = True
            log.info("%s ready: %s backend, model %s", self._program, self._service.backend, self._service.model)
            await self._serve(client)
            return 0
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
            await self._service.close()
            await client.close()
            ctx.term()

    def _on_control(self, packet: Packet) -> None:
        if isinstance(packet.message, ShutdownWorker):
            log.info("shutdown requested: %s", packet.message.reason)
            self._stop.set()
        self._service.control(packet)

    async def _serve(self, client: ControlClient) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                next_packet = asyncio.ensure_future(client.inbox.get())
                done, _ = await asyncio.wait({next_packet, stop}, return_when=asyncio.FIRST_COMPLETED)
                if next_packet not in done:
                    next_packet.cancel()
                    break
                await self._handle(client, next_packet.result())
        finally:
            stop.cancel()

    async def _handle(self, client: ControlClient, packet: Packet) -> None:
        async def reply(message: Message) -> None:
            await client.send(message, packet.request_id)

        self._busy = True
        try:
            await self._service.handle(packet, reply)
        except WorkerError as err:
            await reply(ErrorReply(err.code, err.message))
        except IpcError as err:
            # The coordinator went away mid-reply: nothing to answer; it fails the request on its side.
            log.warning("could not reply to %s: %s (%s)", packet.request_id, err, err.code)
        finally:
            self._busy = False

    def _beat(self, client: ControlClient, missed: int) -> Heartbeat:
        return Heartbeat(
            self._program,
            os.getpid(),
            ready=self._ready,
            backend=self._service.backend,
            model=self._service.model,
            busy=self._busy,
            drops={"inbox": client.inbox.drops, "heartbeat": missed},
            degraded=_degraded(self._service),
        )


def _degraded(service: WorkerService) -> str:
    """Why a service runs on a fallback backend (its optional `degraded` attribute; "" when it has none)."""
    return str(getattr(service, "degraded", "") or "")


def run_worker(config: MynahConfig, program: str, service: WorkerService) -> int:
    return asyncio.run(WorkerRuntime(config, program, service).run())
