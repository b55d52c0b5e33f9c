"""The coordinator's program table: every transition, with the clock passed in (no sleeping)."""

from __future__ import annotations

from appliance.coordinator.programs import ProgramTable


def _running(table: ProgramTable, name: str = "llm", pid: int = 100, now: float = 0.0) -> None:
    table.process_state(name, "STARTING", pid, now)
    table.process_state(name, "RUNNING", pid, now)


def test_readiness_comes_only_from_the_program_itself() -> None:
    table = ProgramTable(["llm"])
    _running(table)
    assert not table.is_ready("llm"), "RUNNING in supervisord is not ready"
    table.hello("llm", 100, now=1.0)
    assert not table.is_ready("llm")
    table.ready("llm", 100, "embedded", "smollm2", now=2.0)
    assert table.is_ready("llm")
    assert table.report(10.0).status == "ok"


def test_a_crash_is_reported_as_going_down_and_counted_as_a_restart() -> None:
    table = ProgramTable(["llm"])
    _running(table)
    table.ready("llm", 100, "embedded", "m", now=1.0)
    assert table.process_state("llm", "EXITED", 100, 5.0) is True
    assert not table.is_ready("llm")
    assert table.report(5.0).status == "degraded"
    _running(table, pid=200, now=6.0)
    table.ready("llm", 200, "embedded", "m", now=7.0)
    status = table.report(8.0).programs[0]
    assert (status.restarts, status.pid, status.ready, status.uptime_s) == (1, 200, True, 2.0)


def test_going_down_twice_is_reported_once() -> None:
    table = ProgramTable(["llm"])
    _running(table)
    assert table.process_state("llm", "EXITED", 100, 1.0)
    assert not table.process_state("llm", "BACKOFF", 0, 1.1)


def test_a_silent_program_is_hung_once_and_a_beating_one_never() -> None:
    table = ProgramTable(["llm", "gateway"])
    _running(table, "llm")
    _running(table, "gateway", pid=101)
    table.hello("llm", 100, now=0.0)
    table.hello("gateway", 101, now=0.0)
    for t in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5):
        table.heartbeat("gateway", 101, t, ready=True, backend="uvicorn", model="", drops={})
    assert table.hung(now=3.5, timeout_s=3.0) == ["llm"]
    assert table.hung(now=10.0, timeout_s=3.0) == ["gateway"]  # it stopped beating after 3.5 s
    assert table.hung(now=20.0, timeout_s=3.0) == []
    assert "hung" in table["llm"].detail


def test_a_heartbeat_from_a_previous_life_does_not_revive_the_record() -> None:
    table = ProgramTable(["llm"])
    _running(table, pid=100)
    table.hello("llm", 200, now=1.0)
    table.heartbeat("llm", 100, 2.0, ready=True, backend="b", model="m", drops={})
    assert not table.is_ready("llm")
    assert table["llm"].last_seen == 1.0


def test_a_restarted_coordinator_learns_readiness_from_heartbeats() -> None:
    table = ProgramTable(["llm"])
    table.sync("llm", "RUNNING", 100, started_at=50.0)
    table.heartbeat("llm", 100, 1.0, ready=True, backend="embedded", model="m", drops={"inbox": 2})
    status = table.report(60.0).programs[0]
    assert status.ready
    assert status.model == "m"
    assert status.drops == {"inbox": 2}
    assert status.restarts == 0


def test_a_failed_load_says_why() -> None:
    table = ProgramTable(["llm"])
    _running(table)
    table.hello("llm", 100, 0.0)
    table.failed("llm", "model-missing", "run: mynah models fetch x")
    assert table.report(1.0).programs[0].detail == "model-missing: run: mynah models fetch x"


def test_unknown_programs_are_ignored() -> None:
    table = ProgramTable(["llm"])
    assert table.process_state("events", "RUNNING", 5, 0.0) is False
    table.hello("cli-123", 5, 0.0)
    assert table.names() == ["llm"]


def test_events_replayed_after_a_sync_do_not_count_as_a_restart() -> None:
    table = ProgramTable(["llm"])
    table.sync("llm", "RUNNING", 100, started_at=5.0)
    table.process_state("llm", "STARTING", 0, 6.0)
    table.process_state("llm", "RUNNING", 100, 6.0)
    assert table["llm"].restarts == 0


def test_the_owner_of_the_table_is_ready_and_never_judged_hung() -> None:
    table = ProgramTable(["coordinator"])
    table.adopt_self("coordinator", 9, now_wall=1.0)
    assert table.is_ready("coordinator")
    assert table.hung(now=1e9, timeout_s=3.0) == []
