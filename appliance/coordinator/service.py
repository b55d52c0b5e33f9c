"""The coordinator process: one ROUTER for every peer, a watchdog, and the dispatch between them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import xmlrpc.client
from collections.abc import Coroutine
from typing import Any

import zmq.asyncio

from appliance.config import MynahConfig
from appliance.coordinator.avatars import AvatarRouter
from appliance.coordinator.chat import LLM, ChatRouter
from appliance.coordinator.face import LIPSYNC, FaceRouter
from appliance.coordinator.janitor import Janitor
from appliance.coordinator.metrics import GpuReader, TurnMetrics, build_report
from appliance.coordinator.outbox import Outbox
from appliance.coordinator.programs import ProgramTable
from appliance.coordinator.resources import Residency
from appliance.coordinator.speech_in import BATCH as BATCH_STT
from appliance.coordinator.speech_in import LIVE as LIVE_STT
from appliance.coordinator.speech_in import SpeechInRouter
from appliance.coordinator.speech_out import TTS, SpeechOutRouter
from appliance.coordinator.training import TRAINER, TrainingRouter
from appliance.coordinator.voice_chat import VoiceChats
from appliance.coordinator.voices import VoiceRouter
from appliance.store.conversations import ConversationStore
from appliance.store.db import StoreError, connect
from appliance.store.jobs import JobStore
from appliance.store.voices import VoiceStore
from appliance.supervision.rpc import SupervisorClient, SupervisorUnavailable
from ipc.bus import ControlServer, EventPublisher, Incoming
from ipc.errors import PeerUnreachable
from ipc.messages import (
    ActivateVoice,
    AdmitSession,
    AnimateEnd,
    AnimateOpen,
    AnimateSpeech,
    AudioChunk,
    AudioStreamClose,
    AudioStreamOpen,
    CancelJob,
    CancelTurn,
    ChatRequest,
    DeleteSession,
    DeleteVoice,
    ErrorReply,
    GenerateAvatar,
    GenerateDone,
    GetHistory,
    GetJob,
    GetJobResult,
    GetVoice,
    GpuLease,
    GpuRelease,
    HealthQuery,
    Heartbeat,
    History,
    JobProgress,
    ListSessions,
    ListVoices,
    Message,
    MetricsQuery,
    PlaybackPosition,
    PrepareAvatar,
    ProcessStateChanged,
    ReleaseSession,
    SampleAccepted,
    SessionDeleted,
    SessionList,
    SessionSummary,
    SpeakEnd,
    SpeakOpen,
    SpeakText,
    StoredLine,
    TokenChunk,
    TrainedVoice,
    TrainVoiceRequest,
    TranscribeFile,
    VoiceClose,
    VoiceOpen,
    WorkerFailed,
    WorkerHello,
    WorkerReady,
)
from ipc.paths import control_endpoint, events_endpoint

log = logging.getLogger(__name__)

COORDINATOR = "coordinator"
PROGRAMS = (COORDINATOR, LLM, LIVE_STT, BATCH_STT, TTS, TRAINER, LIPSYNC, "gateway")
# Messages a worker sends as replies to what the coordinator asked it; anything else from it is a request.
TRAINER_REPLIES = (SampleAccepted, JobProgress, TrainedVoice, ErrorReply)
# The programs each request is routed to: it counts as their use, and wakes one the idle sweep stopped.
WANTS: dict[type[Message], tuple[str, ...]] = {
    ChatRequest: (LLM,),
    AudioStreamOpen: (LIVE_STT,),
    TranscribeFile: (BATCH_STT,),
    SpeakOpen: (TTS,),
    AnimateOpen: (LIPSYNC,),
    GenerateAvatar: (TTS, LIPSYNC),
    PrepareAvatar: (LIPSYNC,),
    VoiceOpen: (LIVE_STT, LLM, TTS, LIPSYNC),
}


class Coordinator:
    def __init__(self, config: MynahConfig) -> None:
        self._config = config
        self._programs = ProgramTable(PROGRAMS)
        self._supervisor = SupervisorClient(config.paths.runtime_dir)
        self._tasks: set[asyncio.Task[None]] = set()
        self._metrics = TurnMetrics()
        self._gpu = GpuReader(config.trainer.gpu_index)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            conn = connect(self._config.paths.data_dir / "mynah.db")
        except (StoreError, OSError) as err:
            log.error("cannot open the conversation store: %s", err)
            return 2
        store = ConversationStore(conn)
        orphaned = store.fail_running_turns("coordinator-restarted")
        if orphaned:
            log.warning("%s turns were cut short by a previous coordinator exit", orphaned)
        ctx = zmq.asyncio.Context()
        self._server = ControlServer(ctx, control_endpoint(self._config.paths.runtime_dir))
        self._events = EventPublisher(ctx, events_endpoint(self._config.paths.runtime_dir))
        self._store = store
        outbox = Outbox(self._server)  # the voice pipeline is a local client of these routers
        self._chat = ChatRouter(self._config, outbox, store, self._programs, self._metrics)
        self._speech_in = SpeechInRouter(self._config, outbox, self._programs)
        voices = VoiceStore(conn, self._config.paths.data_dir / "voices")
        self._voices = VoiceRouter(voices)
        self._speech_out = SpeechOutRouter(self._config, outbox, self._programs, self._voices)
        self._face = FaceRouter(self._config, outbox, self._programs)
        leases = Residency(self._config, self._supervisor, self._programs)
        self._residency = leases
        leases.start()  # the idle sweep; close() stops it
        jobs = JobStore(conn)
        self._avatars = AvatarRouter(self._config, self._server, self._programs, jobs, self._voices)
        self._avatars.recover()  # before training's: it would hand a queued video job to the trainer
        self._training = TrainingRouter(self._config, self._server, self._programs, jobs, voices, leases)
        self._training.recover()
        self._voice = VoiceChats(self._config, outbox, store, self._chat, self._speech_in, self._speech_out,
                                 self._face, self._avatars, leases, self._metrics)  # fmt: skip
        self._janitor = Janitor(self._config.retention, self._config.paths.data_dir, store, jobs,
                                self._avatars.busy_ids)  # fmt: skip
        await self._sync_with_supervisor()
        self._programs.adopt_self(COORDINATOR, os.getpid(), time.time())
        workers = [
            loop.create_task(self._receive(), name="receive"),
            loop.create_task(self._watchdog(), name="watchdog"),
            loop.create_task(self._janitor.forever(), name="janitor"),
        ]
        log.info("coordinator listening on %s", self._server.endpoint)
        await stop.wait()
        for task in [*workers, *self._tasks]:
            task.cancel()
        for task in [*workers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._avatars.close()
        self._voice.close()
        self._residency.close()
        self._gpu.close()
        self._server.close()
        self._events.close()
        ctx.term()
        conn.close()
        return 0

    async def _sync_with_supervisor(self) -> None:
        try:
            processes = await self._supervisor.aprocesses()
        except SupervisorUnavailable as err:
            log.warning("%s; process states will come from events only", err)
            return
        for info in processes:
            self._programs.sync(info.name, info.state, info.pid, info.start or None)

    async def _receive(self) -> None:
        while True:
            incoming = await self._server.recv()
            try:
                await self._dispatch(incoming)
            except PeerUnreachable:
                log.info("peer %r went away before its reply", incoming.peer)

    async def _dispatch(self, incoming: Incoming) -> None:
        message = incoming.packet.message
        request_id = incoming.packet.request_id
        now = time.monotonic()
        if request_id and not isinstance(message, Heartbeat) and await self._worker_reply(incoming):
            self._residency.used(incoming.peer.decode(errors="replace"))
            return
        if isinstance(message, TrainVoiceRequest | GenerateAvatar | PrepareAvatar) and await self._over_quota(incoming):
            return
        if (programs := WANTS.get(type(message))) is not None:
            self._residency.wanted(*programs)
        match message:
            case Heartbeat():
                self._programs.heartbeat(
                    message.program, message.pid, now,
                    ready=message.ready, backend=message.backend, model=message.model, drops=message.drops,
                    degraded=message.degraded,
                )  # fmt: skip
                self._residency.heard(message.program, busy=message.busy)
            case WorkerHello():
                self._programs.hello(message.program, message.pid, now)
                if message.program == "gateway":  # a new gateway holds none of the old one's connections
                    self._spawn(self._voice.close_all("gateway-restarted"))
            case WorkerReady():
                self._programs.ready(message.program, message.pid, message.backend, message.model, now,
                                     message.degraded)  # fmt: skip
                await self._events.publish(message)
                await self._speech_in.program_ready(message.program)
                await self._training.program_ready(message.program)
                log.info("%s is ready (%s, %s)", message.program, message.backend, message.model)
            case WorkerFailed():
                self._programs.failed(message.program, message.code, message.message, now)
                log.error("%s failed: %s (%s)", message.program, message.message, message.code)
            case ProcessStateChanged():
                self._on_process_state(message)
                await self._events.publish(message)
            case ChatRequest():
                self._spawn(self._chat.chat(incoming.peer, request_id, message))
            case CancelTurn():
                self._spawn(self._chat.cancel(message.turn_id))
                await self._speech_out.cancel(message.turn_id)
                await self._face.cancel(message.turn_id)
            case AnimateOpen():
                await self._face.open(incoming.peer, request_id, message)
            case AnimateSpeech() | AnimateEnd():
                await self._face.speech(message, incoming.packet.payload)
            case SpeakOpen():
                await self._speech_out.open(incoming.peer, request_id, message)
            case SpeakText() | SpeakEnd():
                await self._speech_out.text(message)
            case ListVoices() | GetVoice() | DeleteVoice() | ActivateVoice():
                await self._server.send(incoming.peer, self._voices.answer(message), request_id)
            case TrainVoiceRequest():
                self._spawn(self._training.train(incoming.peer, request_id, message, incoming.packet.payload))
            case CancelJob() if self._avatars.owns(message.job_id):
                await self._avatars.cancel(incoming.peer, request_id, message)
            case CancelJob():
                await self._training.cancel(incoming.peer, request_id, message)
            case GenerateAvatar():
                self._spawn(self._avatars.generate(incoming.peer, request_id, message, incoming.packet.payload))
            case PrepareAvatar():
                self._spawn(self._avatars.prepare(incoming.peer, request_id, message, incoming.packet.payload))
            case GetJobResult():
                self._spawn(self._avatars.result(incoming.peer, request_id, message))
            case GetJob():
                await self._server.send(incoming.peer, self._training.detail(message), request_id)
            case AdmitSession():
                self._spawn(self._answer(incoming.peer, request_id, self._residency.admit(message.session_id)))
            case ReleaseSession():
                self._spawn(
                    self._answer(incoming.peer, request_id, self._residency.release_session(message.session_id))
                )
            case GpuLease() | GpuRelease():
                self._spawn(self._training.lease(incoming.peer, request_id, message))
            case VoiceOpen():
                self._spawn(self._voice.open(incoming.peer, request_id, message))
            case PlaybackPosition():
                self._voice.playback(message)
            case VoiceClose():
                self._spawn(self._voice.hang_up(message))
            case AudioChunk():
                await self._speech_in.chunk(message)
            case AudioStreamOpen():
                await self._speech_in.open_stream(incoming.peer, request_id, message)
            case AudioStreamClose():
                await self._speech_in.close_stream(message)
            case TranscribeFile():
                self._spawn(
                    self._speech_in.transcribe_file(incoming.peer, request_id, message, incoming.packet.payload)
                )
            case HealthQuery():
                problems = tuple(p for p in (self._janitor.problem(),) if p)
                await self._server.send(incoming.peer, self._programs.report(time.time(), problems), request_id)
            case MetricsQuery():
                report = build_report(
                    self._programs, self._metrics, self._gpu.snapshot(), data_bytes=self._janitor.data_bytes,
                    data_quota_bytes=self._janitor.quota_bytes, janitor_removed=self._janitor.removed,
                )  # fmt: skip
                await self._server.send(incoming.peer, report, request_id)
            case ListSessions() | GetHistory() | DeleteSession():
                await self._server.send(incoming.peer, self._sessions(message), request_id)
            case _:
                log.warning("unexpected %s from %r", type(message).__name__, incoming.peer)

    async def _worker_reply(self, incoming: Incoming) -> bool:
        """Route a reply from a worker to the router that asked, by who sent it; True when it was one."""
        message, request_id = incoming.packet.message, incoming.packet.request_id
        self._metrics.worker_reply(message)
        match incoming.peer.decode(errors="replace"):
            case "llm" if isinstance(message, TokenChunk | GenerateDone | ErrorReply):
                self._chat.worker_reply(request_id, message)
            case "stt":
                await self._speech_in.stream_event(request_id, message)
            case "stt-batch":
                await self._speech_in.file_result(request_id, message)
            case "tts" if self._avatars.speaking(request_id):
                self._avatars.speech_event(request_id, message)
            case "tts":
                await self._speech_out.worker_event(request_id, message)
            case "trainer" if isinstance(message, TRAINER_REPLIES):
                await self._training.worker_event(request_id, message)
            case "lipsync" if self._face.streaming(request_id):
                await self._face.worker_event(request_id, message)
            case "lipsync" if self._avatars.asked(request_id):
                await self._avatars.worker_event(request_id, message)
            case _:
                return False
        return True

    async def _over_quota(self, incoming: Incoming) -> bool:
        """Refuse an upload while the data directory is over its quota (the janitor could not make room)."""
        if not self._janitor.over_quota or not incoming.packet.payload:
            return False
        problem = self._janitor.problem() or "the data directory is over its quota"
        reply = ErrorReply("disk-quota-exceeded", problem.removeprefix("disk-quota-exceeded: "))
        await self._server.send(incoming.peer, reply, incoming.packet.request_id)
        return True

    def _sessions(self, message: Message) -> Message:
        try:
            match message:
                case ListSessions():
                    found = self._store.list_sessions(message.limit)
                    return SessionList(
                        tuple(SessionSummary(s.session_id, s.created_at, s.updated_at, s.turns, s.title) for s in found)
                    )
                case GetHistory():
                    lines = self._store.history(message.session_id)
                    stored = tuple(StoredLine(line.role, line.text, line.turn_id, line.created_at) for line in lines)
                    return History(message.session_id, stored)
                case DeleteSession():
                    self._store.delete_session(message.session_id)
                    return SessionDeleted(message.session_id)
        except StoreError as err:
            return ErrorReply(err.code, err.message)
        return ErrorReply("unsupported-request", type(message).__name__)

    def _on_process_state(self, event: ProcessStateChanged) -> None:
        went_down = self._programs.process_state(event.program, event.to_state, event.pid, time.time())
        if event.program == COORDINATOR and event.pid in (0, os.getpid()):
            # Our own start-up events arrive after we are already serving: we are the proof of readiness.
            self._programs.adopt_self(COORDINATOR, os.getpid(), time.time())
        log.info("%s: %s -> %s (pid %s)", event.program, event.from_state, event.to_state, event.pid)
        if went_down:
            code = f"{event.program}-worker-crashed"
            why = f"the {event.program} worker stopped ({event.to_state}); it is being restarted"
            self._chat.program_down(event.program, code, why)
            self._spawn(self._speech_in.program_down(event.program, code, why))
            self._spawn(self._speech_out.program_down(event.program, code, why))
            self._spawn(self._face.program_down(event.program, code, why))
            self._spawn(self._training.program_down(event.program, code, why))
            self._spawn(self._avatars.program_down(event.program, code, why))

    async def _watchdog(self) -> None:
        interval = self._config.supervision.heartbeat_interval_s
        timeout = self._config.supervision.hang_timeout_s
        while True:
            await asyncio.sleep(interval)
            for name in self._programs.hung(time.monotonic(), timeout):
                log.error("%s sent no heartbeat for %.1f s: killing it so supervisord restarts it", name, timeout)
                self._chat.program_down(name, f"{name}-worker-hung", f"the {name} worker stopped responding")
                for router in (self._speech_in, self._speech_out, self._face, self._training, self._avatars):
                    await router.program_down(name, f"{name}-worker-hung", f"the {name} worker stopped responding")
                try:
                    await self._supervisor.asignal(name, "KILL")
                except SupervisorUnavailable as err:
                    log.error("could not kill hung %s: %s", name, err)
            for name in self._programs.load_retries_due(time.monotonic(), self._config.supervision.fallback_retry_s):
                log.warning("%s could not load (%s): starting it again", name, self._programs[name].detail)
                try:
                    await self._supervisor.astart(name)
                except (SupervisorUnavailable, xmlrpc.client.Fault) as err:  # a Fault: e.g. ALREADY_STARTED
                    log.error("could not start %s again: %s", name, err)

    async def _answer(self, peer: bytes, request_id: str, reply: Coroutine[Any, Any, Message]) -> None:
        await self._server.answer(peer, await reply, request_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
