"""The residency planner: what to load, what to unload, and whether one more live session fits.

Pure: the budget, the footprints, what is loaded (with when it was last used) and the clock are all passed in,
so every decision is tested in milliseconds (STYLE.md principle 11). The coordinator's shell
(appliance/coordinator/resources.py) measures the budget, carries the plan out through supervisord and Ollama,
and answers the requests that asked.

Rules (DESIGN.md section 5):
- what the demand needs is loaded: a live session needs the live residents (stt, llm, tts, the face);
- a resident serving a live turn, or any live resident while sessions are live, is never unloaded, nor is any
  other resident of its program (unloading means stopping the program);
- idle residents (unused for `idle_unload_s`) are unloaded even without pressure; the periodic sweep
  (`idle_sweep`) carries out only these, and only for a whole program;
- under pressure, idle ones go first, then the lowest priority, then the least recently used; a candidate that
  frees nothing on an axis that is over budget stays;
- optional residents (SadTalker for batch videos) are loaded only where they fit without evicting anyone;
- a program-held resident is unloaded by stopping the program (`restart`): in-process unload keeps the CUDA
  context (618 MiB measured, docs/architecture.md), only the process's exit frees it all. Ollama's model is
  unloaded with keep_alive 0. An external resident (GPT-SoVITS's own server) is counted, never unloaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

REFUSED = "session-refused-budget"


class Need(StrEnum):
    LIVE = "live"  # a live session: hears, thinks, speaks, shows a face
    BATCH = "batch"  # file transcription (and the trainer's transcripts)
    VIDEO = "video"  # batch avatar videos: optional, loaded only where room allows


class Holder(StrEnum):
    PROGRAM = "program"  # a supervisord program: stopping it frees everything it holds
    OLLAMA = "ollama"  # Ollama's server: keep_alive 0 unloads the model
    EXTERNAL = "external"  # started outside Mynah: counted, never unloaded


@dataclass(frozen=True, slots=True)
class Footprint:
    vram_mib: float = 0.0
    ram_mib: float = 0.0
    cpu_cores: float = 0.0

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.vram_mib + other.vram_mib, self.ram_mib + other.ram_mib, self.cpu_cores + other.cpu_cores)

    def times(self, n: int) -> Footprint:
        return Footprint(self.vram_mib * n, self.ram_mib * n, self.cpu_cores * n)


@dataclass(frozen=True, slots=True)
class Budget:
    gpu_mib: float | None  # what Mynah may use on the card; None: no GPU
    ram_mib: float
    cpu_cores: float


@dataclass(frozen=True, slots=True)
class Resident:
    name: str  # the unit of residency: a program's model ("stt", "llm", "sadtalker")
    program: str  # the supervisord program that holds it (or talks to its server)
    footprint: Footprint  # for a program on the GPU, the CUDA context included
    priority: int  # higher stays longer
    needed_for: frozenset[Need]
    holder: Holder = Holder.PROGRAM
    model: str = ""  # the model's own name, for people


@dataclass(frozen=True, slots=True)
class Loaded:
    last_used: float  # the injected clock's time
    in_use: bool = False  # serving a live turn now


@dataclass(frozen=True, slots=True)
class Demand:
    sessions: int = 0  # live sessions admitted now
    admit: bool = False  # one more asks to start
    batch: bool = False
    video: bool = False
    training: Footprint | None = None  # a training job's own footprint, reserved before anything optional


@dataclass(frozen=True, slots=True)
class Policy:
    max_sessions: int = 3
    per_session: Footprint = Footprint(0.0, 100.0, 0.6)
    idle_unload_s: float | None = None  # None: never unload for idleness alone


@dataclass(frozen=True, slots=True)
class Unload:
    name: str
    program: str
    holder: Holder
    reason: str  # "idle" | "room"

    @property
    def restart(self) -> bool:
        """True: only stopping the program frees it (then started again when it is needed)."""
        return self.holder is Holder.PROGRAM


@dataclass(frozen=True, slots=True)
class Plan:
    load: tuple[str, ...]
    unload: tuple[Unload, ...]
    resident: tuple[str, ...]  # what is resident once the plan is carried out
    usage: Footprint  # residents, sessions and training together
    fits: bool  # the demand fits the budget
    admitted: bool | None = None  # None: no session asked
    refusal: str = ""  # why a session was refused
    over: tuple[str, ...] = field(default=())  # the axes over budget, e.g. ("cpu",)
    stop: tuple[str, ...] = ()  # programs to stop: nothing they hold stays resident
    restart: tuple[str, ...] = ()  # programs to stop and start again: another resident of theirs stays

    @property
    def code(self) -> str:
        return REFUSED if self.admitted is False else ""


def over_budget(usage: Footprint, budget: Budget) -> tuple[str, ...]:
    axes: list[str] = []
    if usage.vram_mib > (budget.gpu_mib or 0.0):
        axes.append("gpu")
    if usage.ram_mib > budget.ram_mib:
        axes.append("ram")
    if usage.cpu_cores > budget.cpu_cores + 1e-9:
        axes.append("cpu")
    return tuple(axes)


def _helps(footprint: Footprint, axes: Iterable[str]) -> bool:
    frees = {"gpu": footprint.vram_mib, "ram": footprint.ram_mib, "cpu": footprint.cpu_cores}
    return any(frees[axis] > 0 for axis in axes)


def plan(
    residents: Iterable[Resident],
    loaded: Mapping[str, Loaded],
    demand: Demand,
    budget: Budget,
    policy: Policy,
    now: float,
) -> Plan:
    by_name = {r.name: r for r in residents}
    if demand.admit:
        asked = _plan(by_name, loaded, demand, budget, policy, now)
        reasons = _refusals(asked, demand, budget, policy)
        if not reasons:
            return _with(asked, admitted=True)
        # A refused session changes nothing: plan as if it had not asked.
        unchanged = _plan(by_name, loaded, Demand(demand.sessions, False, demand.batch, demand.video,
                                                  demand.training), budget, policy, now)  # fmt: skip
        return _with(unchanged, admitted=False, refusal="; ".join(reasons))
    return _plan(by_name, loaded, demand, budget, policy, now)


def _with(found: Plan, *, admitted: bool, refusal: str = "") -> Plan:
    return dataclasses.replace(found, admitted=admitted, refusal=refusal)


def _refusals(asked: Plan, demand: Demand, budget: Budget, policy: Policy) -> list[str]:
    sessions = demand.sessions + 1
    reasons = []
    if sessions > policy.max_sessions:
        reasons.append(f"{policy.max_sessions} live sessions at most ([resources] max_sessions)")
    usage = asked.usage
    if "cpu" in asked.over:
        reasons.append(f"CPU: {sessions} sessions need {usage.cpu_cores:.2f} of {budget.cpu_cores:g} cores")
    if "ram" in asked.over:
        reasons.append(f"RAM: {sessions} sessions need {usage.ram_mib:.0f} of {budget.ram_mib:.0f} MiB")
    if "gpu" in asked.over:
        reasons.append(f"GPU: {sessions} sessions need {usage.vram_mib:.0f} of {budget.gpu_mib or 0:.0f} MiB")
    return reasons


def _plan(
    by_name: Mapping[str, Resident],
    loaded: Mapping[str, Loaded],
    demand: Demand,
    budget: Budget,
    policy: Policy,
    now: float,
) -> Plan:
    sessions = demand.sessions + (1 if demand.admit else 0)
    needs = ({Need.LIVE} if sessions else set()) | ({Need.BATCH} if demand.batch else set())
    required = {name for name, r in by_name.items() if r.needed_for & needs}
    live_now = {name for name, r in by_name.items() if Need.LIVE in r.needed_for} if demand.sessions else set()
    pinned = {name for name, state in loaded.items() if state.in_use} | live_now
    pinned_programs = {by_name[name].program for name in pinned if name in by_name}
    reserved = policy.per_session.times(sessions) + (demand.training or Footprint())

    def removable(name: str) -> bool:
        resident = by_name[name]
        return (
            name not in required and resident.holder is not Holder.EXTERNAL and resident.program not in pinned_programs
        )

    def idle(name: str) -> bool:
        state = loaded.get(name)
        return policy.idle_unload_s is not None and state is not None and now - state.last_used >= policy.idle_unload_s

    def usage(names: Iterable[str]) -> Footprint:
        total = reserved
        for name in names:
            total += by_name[name].footprint
        return total

    keep = {name for name in loaded if name in by_name} | required
    unload: list[Unload] = []

    def evict(name: str, reason: str) -> None:
        keep.discard(name)
        resident = by_name[name]
        unload.append(Unload(name, resident.program, resident.holder, reason))

    for name in sorted(n for n in keep if n in loaded and idle(n) and removable(n)):
        evict(name, "idle")
    candidates = sorted(
        (n for n in keep if removable(n)),
        key=lambda n: (not idle(n), by_name[n].priority, loaded[n].last_used if n in loaded else now, n),
    )
    for name in candidates:
        over = over_budget(usage(keep), budget)
        if not over:
            break
        if _helps(by_name[name].footprint, over):
            evict(name, "room")
    if demand.video:
        optional = (r for r in by_name.values() if Need.VIDEO in r.needed_for and r.name not in keep)
        for resident in sorted(optional, key=lambda r: -r.priority):
            if not over_budget(usage(keep | {resident.name}), budget):
                keep.add(resident.name)
    total = usage(keep)
    over = over_budget(total, budget)
    load = tuple(sorted(n for n in keep if n not in loaded and by_name[n].holder is not Holder.EXTERNAL))
    stopped = dict.fromkeys(u.program for u in unload if u.restart)
    staying = {by_name[n].program for n in keep}
    stop = tuple(p for p in stopped if p not in staying)
    restart = tuple(p for p in stopped if p in staying)
    return Plan(load, tuple(unload), tuple(sorted(keep)), total, not over, over=over, stop=stop, restart=restart)


def idle_sweep(
    residents: Iterable[Resident],
    loaded: Mapping[str, Loaded],
    demand: Demand,
    budget: Budget,
    policy: Policy,
    now: float,
) -> Plan:
    """The periodic sweep: the plan for `demand` (what already runs, nothing new) cut down to its idle unloads.

    It loads nothing and evicts nothing for room (that is for a plan some request asked for). An idle unit is
    unloaded only with every loaded unit of its program: stopping a program for one idle unit would take a busy
    one with it, and restarting it would not free the idle one (SadTalker comes back with the face), so every
    sweep would restart it again. With `idle_unload_s` unset, or nothing idle, the plan is empty.
    """
    by_name = {r.name: r for r in residents}
    found = plan(by_name.values(), loaded, demand, budget, policy, now)
    idle = [u for u in found.unload if u.reason == "idle"]
    gone = {u.name for u in idle}
    present = [name for name in loaded if name in by_name]

    def whole(unload: Unload) -> bool:
        return unload.holder is not Holder.PROGRAM or all(
            name in gone for name in present if by_name[name].program == unload.program
        )

    unload = tuple(u for u in idle if whole(u))
    gone = {u.name for u in unload}
    keep = tuple(sorted(name for name in present if name not in gone))
    usage = policy.per_session.times(demand.sessions) + (demand.training or Footprint())
    for name in keep:
        usage += by_name[name].footprint
    over = over_budget(usage, budget)
    stop = tuple(dict.fromkeys(u.program for u in unload if u.restart))
    return Plan((), unload, keep, usage, not over, over=over, stop=stop)
