"""The periodic idle sweep: the pure decision (residency.idle_sweep) with the clock passed in, and the shell
(Residency.sweep) with a fake supervisor, an injected clock and no sleeping.

Budgets and footprints are the planner tests' (tests/unit/test_residency_planner.py): the embedded stack on a
2-core box, the seed stack (Ollama, GPT-SoVITS's server, SadTalker) on a 12 GB card.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from appliance.config import MynahConfig, PathsConfig, ResourcesConfig
from appliance.coordinator.programs import ProgramTable
from appliance.coordinator.residency import Demand, Holder, Loaded, Plan, Policy, idle_sweep
from appliance.coordinator.resources import Residency
from appliance.supervision.rpc import SupervisorClient
from tests.unit.test_residency_planner import (
    CPU_ONLY,
    EMBEDDED_RESIDENTS,
    LIVE,
    RTX_3060,
    SEED_RESIDENTS,
    VOICE_ADAPT,
    loaded,
)

ALL = (*LIVE, "stt-batch")
IDLE_S = 300.0


def swept(found: Plan) -> dict[str, str]:
    return {u.name: u.reason for u in found.unload}


def test_nothing_is_swept_while_idle_unload_s_is_unset() -> None:
    found = idle_sweep(EMBEDDED_RESIDENTS, loaded(*ALL, at=0.0), Demand(), CPU_ONLY, Policy(), now=1e9)
    assert found.unload == () and found.stop == () and found.load == ()
    assert found.resident == tuple(sorted(ALL))


def test_units_unused_for_idle_unload_s_are_stopped_and_the_rest_stay() -> None:
    state = loaded(*LIVE, at=100.0) | loaded("stt-batch", at=0.0)
    policy = Policy(idle_unload_s=IDLE_S)
    assert idle_sweep(EMBEDDED_RESIDENTS, state, Demand(), CPU_ONLY, policy, now=299.0).unload == ()
    found = idle_sweep(EMBEDDED_RESIDENTS, state, Demand(), CPU_ONLY, policy, now=300.0)
    assert swept(found) == {"stt-batch": "idle"} and found.stop == ("stt-batch",)
    assert found.resident == tuple(sorted(LIVE)) and found.load == () and found.restart == ()
    later = idle_sweep(EMBEDDED_RESIDENTS, state, Demand(), CPU_ONLY, policy, now=400.0)
    assert set(swept(later)) == set(ALL) and set(later.stop) == set(ALL) and later.resident == ()


def test_a_unit_in_use_is_never_swept_however_long_ago_it_was_used() -> None:
    state = loaded(*ALL, at=0.0) | {"llm": Loaded(0.0, in_use=True)}
    found = idle_sweep(EMBEDDED_RESIDENTS, state, Demand(), CPU_ONLY, Policy(idle_unload_s=IDLE_S), now=1e6)
    assert "llm" not in swept(found) and "llm" in found.resident
    assert set(swept(found)) == {"stt", "stt-batch", "tts", "lipsync"}


def test_a_live_sessions_units_are_never_swept() -> None:
    found = idle_sweep(EMBEDDED_RESIDENTS, loaded(*ALL, at=0.0), Demand(sessions=1), CPU_ONLY,
                       Policy(idle_unload_s=IDLE_S), now=1e6)  # fmt: skip
    assert swept(found) == {"stt-batch": "idle"} and found.resident == tuple(sorted(LIVE))


def test_the_sweep_loads_nothing_and_evicts_nothing_for_room() -> None:
    # A training lease reserves the adaptation's footprint; the plan for it alone would evict for room.
    state = loaded(*ALL, at=1000.0)
    demand = Demand(training=VOICE_ADAPT.times(20))
    policy = Policy(idle_unload_s=IDLE_S)
    found = idle_sweep(EMBEDDED_RESIDENTS, state, demand, CPU_ONLY, policy, now=1001.0)
    assert found.unload == () and found.load == () and not found.fits
    # ...and a live session's units that are not loaded are not started by it either.
    assert idle_sweep(EMBEDDED_RESIDENTS, {}, Demand(sessions=1), CPU_ONLY, policy, now=0.0).load == ()


def test_an_idle_unit_sharing_its_program_with_a_used_one_stays() -> None:
    # SadTalker lives in the face's program: stopping it would take the face too, and a restart frees nothing.
    state = loaded("stt", "stt-batch", "llm", "tts", "lipsync", at=1000.0) | loaded("sadtalker", at=0.0)
    found = idle_sweep(SEED_RESIDENTS, state, Demand(), RTX_3060, Policy(idle_unload_s=IDLE_S), now=1100.0)
    assert found.unload == () and found.restart == ()
    # Both idle: the program stops, and the external GPT-SoVITS server is never unloaded.
    everything = idle_sweep(SEED_RESIDENTS, loaded(*ALL, "sadtalker", at=0.0), Demand(), RTX_3060,
                            Policy(idle_unload_s=IDLE_S), now=1100.0)  # fmt: skip
    assert {"lipsync", "sadtalker"} <= set(swept(everything)) and "tts" not in swept(everything)
    assert "lipsync" in everything.stop and "llm" not in everything.stop  # Ollama's model: keep_alive 0
    assert {u.name: u.holder for u in everything.unload}["llm"] is Holder.OLLAMA


# --- the shell -----------------------------------------------------------------------------------------------


class FakeSupervisor(SupervisorClient):
    def __init__(self, programs: ProgramTable) -> None:
        self.programs = programs
        self.calls: list[tuple[str, str]] = []

    async def astop(self, name: str) -> None:
        self.calls.append(("stop", name))
        self.programs.sync(name, "STOPPED", 0, None)

    async def astart(self, name: str) -> None:
        self.calls.append(("start", name))
        self.programs.sync(name, "RUNNING", 4242, None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def shell(tmp_path: Path, idle_unload_s: float | None) -> tuple[Residency, FakeSupervisor, Clock]:
    config = MynahConfig(
        paths=PathsConfig(data_dir=tmp_path),
        resources=ResourcesConfig(ram_mib=7168, cpu_cores=2, gpu_mib=0, idle_unload_s=idle_unload_s),
    )
    programs = ProgramTable(("llm", "stt", "stt-batch", "tts", "lipsync"))
    for name in programs.names():
        programs.sync(name, "RUNNING", 100, None)
    supervisor = FakeSupervisor(programs)
    clock = Clock()
    return Residency(config, supervisor, programs, clock=clock), supervisor, clock


async def test_the_shell_sweeps_idle_programs_keeps_busy_ones_and_wakes_one_on_request(tmp_path: Path) -> None:
    residency, supervisor, clock = shell(tmp_path, IDLE_S)
    residency.used("tts")  # a reply at t=0
    clock.now = 200.0
    residency.heard("llm", busy=True)  # generating: in use however long it takes
    residency.wanted("lipsync")  # a request at t=200
    clock.now = 1000.0
    residency.heard("lipsync", busy=False)
    assert set(await residency.sweep()) == {"program:stt", "program:stt-batch", "program:tts", "program:lipsync"}
    assert ("stop", "llm") not in supervisor.calls
    assert await residency.sweep() == ()  # what is stopped is not stopped again
    residency.wanted("stt-batch")  # a file to transcribe: the sweep's stop is undone
    for _ in range(10):  # the wake takes the lock, then starts it in the background
        await asyncio.sleep(0)
    assert supervisor.calls[-1] == ("start", "stt-batch")
    residency.heard("llm", busy=False)
    clock.now = 1000.0 + IDLE_S
    assert set(await residency.sweep()) == {"program:stt-batch", "program:llm"}  # its idle period starts again
    residency.close()


async def test_the_shell_sweeps_nothing_with_idle_unload_s_unset(tmp_path: Path) -> None:
    residency, supervisor, clock = shell(tmp_path, None)
    clock.now = 1e9
    residency.start()
    assert await residency.sweep() == () and supervisor.calls == []
    residency.close()
