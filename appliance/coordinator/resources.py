"""Residency, carried out: the coordinator's shell around the pure planner (appliance/coordinator/residency.py).

It measures the budget (NVML when there is a GPU, psutil, the core count; `[resources]` overrides each), knows
what is loaded (supervisord's program states, Ollama's /api/ps), and carries plans out: a program is unloaded by
stopping it through supervisord (the one sure way to return its memory, CUDA context included) and started again
when it is needed; Ollama's model is unloaded with keep_alive 0.

Two kinds of request ask for a plan:
- a live session (`AdmitSession`): admitted or refused with `session-refused-budget`; the models it needs are
  loaded, what is in the way is unloaded; `ReleaseSession` gives the slot back;
- a training job's lease (`GpuLease`, from the trainer on either path): the plan reserves the job's footprint and
  evicts what is in the way (lowest priority first, never a live session's models); `GpuRelease` starts the
  evicted programs again and waits for each to report ready.

And every `[resources] idle_sweep_s`, while `idle_unload_s` is set, a sweep plans with no new demand and carries
out only its idle unloads (residency.idle_sweep). "Used" is what the coordinator sees: a request routed to a
program (`wanted`), a reply from it (`used`) or a busy heartbeat (`heard`); a busy program is in use and stays,
and so do a live session's programs. A program the sweep stopped starts again when a request for it arrives;
the request waits for it as for any program not ready yet (`supervision.worker_wait_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import xmlrpc.client
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psutil

from appliance.config import MynahConfig
from appliance.coordinator.gpu import MIB, GpuUnavailable, NvmlMeter
from appliance.coordinator.ollama_residency import OllamaResidency
from appliance.coordinator.programs import ProgramTable, wait_until_ready
from appliance.coordinator.residency import (
    REFUSED,
    Budget,
    Demand,
    Footprint,
    Holder,
    Loaded,
    Need,
    Plan,
    Policy,
    Resident,
    idle_sweep,
    plan,
)
from appliance.models.footprints import FootprintError, FootprintTable, ModelFootprint, load_footprints
from appliance.supervision.rpc import SupervisorClient, SupervisorUnavailable
from ipc.messages import ErrorReply, Message, SessionAdmitted, SessionReleased

log = logging.getLogger(__name__)

UP_STATES = frozenset({"STARTING", "RUNNING", "BACKOFF"})


def residents_of(
    config: MynahConfig, table: FootprintTable, serving: Mapping[str, str] | None = None
) -> list[Resident]:
    """What this configuration can hold resident, one unit per program's model. `serving`: the backend each ready
    program says it runs (a fallback's, when its configured one failed to load); where a program has said
    nothing yet, the configured backend counts ("auto" LLM: the embedded one)."""
    serving = serving or {}
    llm_backend = serving.get("llm") or ("embedded" if config.llm.backend == "auto" else config.llm.backend)
    tts_backend = serving.get("tts") or config.tts.backend
    lipsync_backend = serving.get("lipsync") or config.lipsync.backend

    def unit(name: str, program: str, model: str, needs: Need, holder: Holder = Holder.PROGRAM,
             device: str | None = None) -> Resident:  # fmt: skip
        found = table.of(model)
        vram, ram = found.vram_mib, found.ram_mib
        if device == "cpu" and vram:  # a GPU model configured onto the CPU holds its weights in RAM instead
            vram, ram = 0.0, ram + vram
        if vram and holder is not Holder.OLLAMA:  # Ollama's estimate already counts its runner's context
            vram += table.cuda_context_mib
        footprint = Footprint(vram, ram, found.cpu_cores)
        return Resident(name, program, footprint, table.priority(program, model), frozenset({needs}), holder, model)

    stt, live_stt = config.stt.active_profile(), config.stt.active_profile(live=True)
    found = [
        unit("stt", "stt", live_stt.model, Need.LIVE, device="cpu" if live_stt.device == "cpu" else "cuda"),
        unit("stt-batch", "stt-batch", stt.model, Need.BATCH, device="cpu" if stt.device == "cpu" else "cuda"),
    ]
    if llm_backend == "ollama":
        found.append(unit("llm", "llm", config.llm.ollama.model, Need.LIVE, Holder.OLLAMA))
    else:
        found.append(unit("llm", "llm", config.llm.embedded.model, Need.LIVE))
    if tts_backend == "gpt-sovits":
        found.append(unit("tts", "tts", "gpt-sovits", Need.LIVE, Holder.EXTERNAL))
    else:
        found.append(unit("tts", "tts", config.tts.piper.model, Need.LIVE))
    found.append(unit("lipsync", "lipsync", config.lipsync.face_model, Need.LIVE))
    if lipsync_backend == "sadtalker":
        found.append(unit("sadtalker", "lipsync", "sadtalker", Need.VIDEO, device=config.lipsync.sadtalker.device))
    return found


def training_footprint(config: MynahConfig, table: FootprintTable) -> Footprint:
    job = table.job.get("gpt-sovits-train" if config.trainer.gpt_sovits_root else "voice-adapt", ModelFootprint())
    return Footprint(job.vram_mib, job.ram_mib, job.cpu_cores)


def policy_of(config: MynahConfig) -> Policy:
    limits = config.resources
    per_session = Footprint(limits.session_vram_mib, limits.session_ram_mib, limits.session_cpu_cores)
    return Policy(limits.max_sessions, per_session, limits.idle_unload_s)


@dataclass
class Eviction:
    """What one plan took away, to give back later."""

    programs: list[str] = field(default_factory=list)
    ollama: list[str] = field(default_factory=list)


class Residency:
    def __init__(
        self,
        config: MynahConfig,
        supervisor: SupervisorClient,
        programs: ProgramTable,
        *,
        ollama: OllamaResidency | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._supervisor = supervisor
        self._programs = programs
        self._ollama = ollama or OllamaResidency(config.llm.ollama)
        self._clock = clock
        try:
            self._table = load_footprints(config.paths.data_dir)
        except FootprintError as err:
            log.error("%s; using the built-in defaults", err.message)
            self._table = load_footprints(None)
        self._policy = policy_of(config)
        self._meter: NvmlMeter | None = None
        self._meter_tried = False
        self._sessions: dict[str, float] = {}  # session id -> admitted at
        self._leases: dict[str, Eviction] = {}  # job id -> what its lease evicted
        self._for_sessions = Eviction()  # what admissions evicted, given back when the last session ends
        self._started = clock()  # what "last used" is for a unit nothing has used yet
        self._last_used: dict[str, float] = {}
        self._busy: set[str] = set()  # programs whose last heartbeat said busy
        self._idle_stopped: set[str] = set()  # programs the sweep stopped: a request for one starts it again
        self._sweeper: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one plan is carried out at a time
        self._restoring: set[asyncio.Task[None]] = set()

    # --- live sessions ------------------------------------------------------------------------------------

    async def admit(self, session_id: str) -> Message:
        async with self._lock:
            if session_id in self._sessions:
                return SessionAdmitted(session_id, len(self._sessions), self._policy.max_sessions)
            demand = Demand(sessions=len(self._sessions), admit=True, training=self._training_reserved())
            found = await self._plan(demand)
            if not found.admitted:
                log.info("live session %s refused: %s", session_id, found.refusal)
                return ErrorReply(REFUSED, f"no room for another live session: {found.refusal}")
            self._sessions[session_id] = self._clock()
            self._touch(Need.LIVE)
            evicted = await self._carry_out(found)
            self._for_sessions.programs += evicted.programs
            self._for_sessions.ollama += evicted.ollama
            log.info("live session %s admitted (%s of %s)", session_id, len(self._sessions), self._policy.max_sessions)
            return SessionAdmitted(session_id, len(self._sessions), self._policy.max_sessions, found.load)

    async def release_session(self, session_id: str) -> Message:
        async with self._lock:
            if self._sessions.pop(session_id, None) is not None:
                self._touch(Need.LIVE)
            if not self._sessions and (self._for_sessions.programs or self._for_sessions.ollama):
                given_back, self._for_sessions = self._for_sessions, Eviction()
                self._spawn_restore("the live sessions", given_back)
            return SessionReleased(session_id, len(self._sessions))

    # --- training leases ----------------------------------------------------------------------------------

    async def grant(self, job_id: str) -> tuple[str, ...]:
        """Make room for `job_id`'s training per the plan; return what was stopped or unloaded."""
        await self._settle()
        async with self._lock:
            demand = Demand(sessions=len(self._sessions), training=training_footprint(self._config, self._table))
            found = await self._plan(demand)
            if not found.fits:
                log.warning("training job %s does not fit even after evictions (over: %s); it runs anyway",
                            job_id, ", ".join(found.over))  # fmt: skip
            evicted = await self._carry_out(found)
            self._leases[job_id] = evicted
        freed = [f"program:{p}" for p in evicted.programs] + [f"ollama:{m}" for m in evicted.ollama]
        log.info("training lease for job %s: freed %s", job_id, ", ".join(freed) or "nothing (it fits as it is)")
        return tuple(freed)

    async def release(self, job_id: str) -> None:
        """Give back what `job_id`'s lease evicted: the programs start again (readiness awaited in the background)."""
        evicted = self._leases.pop(job_id, None)
        if evicted is not None:
            self._spawn_restore(f"job {job_id}", evicted)

    # --- use and the idle sweep ---------------------------------------------------------------------------

    def heard(self, program: str, *, busy: bool) -> None:
        """A heartbeat from `program`: while it says busy, its units are in use."""
        if busy:
            self._busy.add(program)
            self._touch_program(program)
        else:
            self._busy.discard(program)

    def used(self, program: str) -> None:
        """A reply from `program` (a result, progress, a stream's event): its units were used now."""
        self._touch_program(program)

    def wanted(self, *programs: str) -> None:
        """A request for `programs` arrived: they were used now, and one the sweep stopped starts again."""
        for program in programs:
            self._touch_program(program)
            if program in self._idle_stopped:
                task = asyncio.get_running_loop().create_task(self._wake(program))
                self._restoring.add(task)
                task.add_done_callback(self._restoring.discard)

    async def _wake(self, program: str) -> None:
        async with self._lock:  # after a sweep that is stopping it, never before
            if program in self._idle_stopped:
                self._idle_stopped.discard(program)
                self._spawn_restore(f"a request for {program}", Eviction([program]))

    async def sweep(self) -> tuple[str, ...]:
        """Unload what has been idle for `idle_unload_s`; return what was stopped or unloaded."""
        if self._policy.idle_unload_s is None:
            return ()
        async with self._lock:
            demand = Demand(sessions=len(self._sessions), training=self._training_reserved())
            residents, loaded, budget = await self._state(busy=True)
            found = idle_sweep(residents, loaded, demand, budget, self._policy, self._clock())
            if not found.unload:
                return ()
            log.info("idle sweep: unloading %s (unused for %.0f s)", [u.name for u in found.unload],
                     self._policy.idle_unload_s)  # fmt: skip
            evicted = await self._carry_out(found)
            self._idle_stopped.update(evicted.programs)
        return tuple(f"program:{p}" for p in evicted.programs) + tuple(f"ollama:{m}" for m in evicted.ollama)

    def start(self) -> None:
        """Start the periodic idle sweep (none when `idle_sweep_s` is 0 or `idle_unload_s` unset)."""
        if self._config.resources.idle_sweep_s > 0 and self._policy.idle_unload_s is not None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="idle-sweep")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.resources.idle_sweep_s)
            try:
                await self.sweep()
            except OSError as err:  # e.g. /proc unreadable for a moment: the next sweep tries again
                log.error("idle sweep failed: %s", err)

    # --- the plan -----------------------------------------------------------------------------------------

    async def _plan(self, demand: Demand) -> Plan:
        residents, loaded, budget = await self._state()
        found = plan(residents, loaded, demand, budget, self._policy, self._clock())
        log.info("residency plan (%s): load %s, unload %s, over %s", demand, found.load,
                 [(u.name, u.reason) for u in found.unload], found.over)  # fmt: skip
        return found

    async def _state(self, *, busy: bool = False) -> tuple[list[Resident], dict[str, Loaded], Budget]:
        """What can be resident, what is, and the budget. `busy`: mark busy programs' units in use; only the sweep
        asks, since a heartbeat's `busy` may be up to an interval stale and a plan a request asked for would then
        evict a program that just finished (e.g. the trainer's transcription) in its place."""
        residents = residents_of(self._config, self._table, self._serving())
        llm = next(r for r in residents if r.name == "llm")
        in_ollama = await self._ollama.resident() if llm.holder is Holder.OLLAMA else None
        loaded: dict[str, Loaded] = {}
        for resident in residents:
            if resident.holder is Holder.OLLAMA:
                up = in_ollama is not None and resident.model in in_ollama
            elif resident.holder is Holder.EXTERNAL:
                up = True  # counted while it runs outside Mynah; it cannot be told apart from here
            else:
                up = resident.program in self._programs and self._programs[resident.program].state in UP_STATES
            if up:
                in_use = busy and resident.program in self._busy  # Ollama's model too, while llm is busy
                loaded[resident.name] = Loaded(self._last_used.get(resident.name, self._started), in_use)
        if in_ollama:  # what Ollama reports beats the estimate
            residents = [
                Resident(r.name, r.program, Footprint(in_ollama[r.model], r.footprint.ram_mib, r.footprint.cpu_cores),
                         r.priority, r.needed_for, r.holder, r.model)
                if r.holder is Holder.OLLAMA and r.model in in_ollama else r
                for r in residents
            ]  # fmt: skip
        return residents, loaded, self._budget(sum((in_ollama or {}).values()))

    def _serving(self) -> dict[str, str]:
        """The backend each ready program runs, as its heartbeats say (a fallback's included)."""
        records = {name: self._programs[name] for name in self._programs.names()}
        return {name: record.backend for name, record in records.items() if record.ready and record.backend}

    def _budget(self, ollama_vram_mib: float) -> Budget:
        limits = self._config.resources
        ram = limits.ram_mib or psutil.virtual_memory().total / MIB - limits.reserve_ram_mib
        cores = limits.cpu_cores or float(len(os.sched_getaffinity(0)))
        gpu = limits.gpu_mib
        if gpu is None and (meter := self._gpu_meter()) is not None:
            snapshot = meter.snapshot()
            pids = {name: self._programs[name].pid for name in self._programs.names() if self._programs[name].pid}
            # Others' share of the card is not ours to plan with; Ollama's runner is ours (counted as a resident).
            others = max(0.0, snapshot.unattributed_mib(pids) - ollama_vram_mib)
            gpu = snapshot.total_mib - others
        return Budget(gpu, ram, cores)

    def _gpu_meter(self) -> NvmlMeter | None:
        if not self._meter_tried:
            self._meter_tried = True
            try:
                self._meter = NvmlMeter(self._config.trainer.gpu_index)
            except GpuUnavailable as err:
                log.info("no GPU budget: %s", err)
        return self._meter

    def _training_reserved(self) -> Footprint | None:
        return training_footprint(self._config, self._table) if self._leases else None

    def _touch(self, need: Need) -> None:
        now = self._clock()
        for resident in residents_of(self._config, self._table, self._serving()):
            if need in resident.needed_for:
                self._last_used[resident.name] = now

    def _touch_program(self, program: str) -> None:
        now = self._clock()
        for resident in residents_of(self._config, self._table, self._serving()):
            if resident.program == program:
                self._last_used[resident.name] = now

    async def _carry_out(self, found: Plan) -> Eviction:
        evicted = Eviction()
        for unload in found.unload:
            if unload.holder is Holder.OLLAMA:
                model = self._config.llm.ollama.model
                if await self._ollama.unload(model):
                    evicted.ollama.append(model)
        for program in found.stop:
            if await self._stop(program):
                evicted.programs.append(program)
        for program in found.restart:
            if await self._stop(program):
                self._spawn_restore(f"a restart of {program}", Eviction([program]))
        to_start = [p for p in dict.fromkeys(self._program_of(name) for name in found.load) if p]
        if to_start:
            self._idle_stopped.difference_update(to_start)
            self._spawn_restore("the plan's loads", Eviction(to_start))
        return evicted

    def _program_of(self, name: str) -> str:
        for resident in residents_of(self._config, self._table, self._serving()):
            if resident.name == name and resident.holder is Holder.PROGRAM:
                return resident.program
        return ""

    async def _stop(self, program: str) -> bool:
        try:
            await self._supervisor.astop(program)
        except (SupervisorUnavailable, xmlrpc.client.Fault) as err:  # a Fault: e.g. NOT_RUNNING
            log.warning("could not stop %s to make room: %s", program, err)
            return False
        log.info("stopped %s to make room", program)
        return True

    # --- giving back --------------------------------------------------------------------------------------

    def _spawn_restore(self, why: str, evicted: Eviction) -> None:
        for program in evicted.programs:  # back in use: a full idle period before the sweep may take it again
            self._touch_program(program)
        task = asyncio.get_running_loop().create_task(self._restore(why, evicted))
        self._restoring.add(task)
        task.add_done_callback(self._restoring.discard)

    async def _restore(self, why: str, evicted: Eviction) -> None:
        for program in evicted.programs:
            try:
                await self._supervisor.astart(program)
            except (SupervisorUnavailable, xmlrpc.client.Fault) as err:  # a Fault: e.g. ALREADY_STARTED
                log.error("could not start %s again after %s: %s", program, why, err)
        for model in evicted.ollama:
            await self._ollama.load(model)
        timeout = self._config.supervision.ready_timeout_s
        for program in evicted.programs:
            if await wait_until_ready(self._programs, program, timeout):
                log.info("%s is back after %s", program, why)
            else:
                log.error("%s did not report ready within %.0f s after %s", program, timeout, why)

    async def _settle(self) -> None:
        """Wait for restorations in flight, so a new plan sees them loaded."""
        if self._restoring:
            await asyncio.gather(*self._restoring, return_exceptions=True)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in self._restoring:
            task.cancel()
        if self._meter is not None:
            with contextlib.suppress(Exception):
                self._meter.close()
