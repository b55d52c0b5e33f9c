"""The coordinator's program table: every transition, with the clock passed in (no sleeping)."""

from __future__ import annotations

import asyncio

from appliance.coordinator.programs import ProgramTable, wait_until_ready


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


def test_a_program_that_cannot_load_is_not_waited_for_once_it_is_down() -> None:
    table = ProgramTable(["tts"])
    _running(table, "tts")
    table.hello("tts", 100, 0.0)
    assert not table.down_for_good("tts"), "loading: worth waiting for"
    table.failed("tts", "model-hash-mismatch", "run: mynah models fetch joe")
    assert not table.down_for_good("tts"), "still running (it exits next)"
    table.process_state("tts", "EXITED", 100, 1.0)
    assert table.down_for_good("tts")

    async def wait() -> tuple[bool, float]:
        started = asyncio.get_running_loop().time()
        ready = await wait_until_ready(table, "tts", timeout_s=30.0)
        return ready, asyncio.get_running_loop().time() - started

    ready, waited = asyncio.run(wait())
    assert not ready and waited < 1.0
    # Restarted by a person after fixing the file: a new life is waited for again.
    _running(table, "tts", pid=200, now=2.0)
    table.hello("tts", 200, 2.0)
    assert not table.down_for_good("tts")


def test_a_crash_leaves_the_program_worth_waiting_for() -> None:
    table = ProgramTable(["llm"])
    _running(table)
    table.ready("llm", 100, "embedded", "m", now=1.0)
    table.process_state("llm", "EXITED", 100, 2.0)  # supervisord restarts it
    assert not table.down_for_good("llm")


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


def test_a_program_on_a_fallback_backend_is_degraded_with_why_until_it_is_back() -> None:
    table = ProgramTable(["tts"])
    _running(table, "tts")
    why = "gpt-sovits unavailable (tts-unreachable: refused); using piper until it is back"
    table.ready("tts", 100, "piper", "joe", now=1.0, degraded=why)
    report = table.report(2.0)
    assert report.status == "degraded"
    assert report.problems == (f"tts: {why}",)
    assert report.programs[0].ready and report.programs[0].detail == why
    # Its preferred backend loaded again: the next beat says so.
    table.heartbeat("tts", 100, 3.0, ready=True, backend="gpt-sovits", model="v2", drops={}, degraded="")
    report = table.report(4.0)
    assert report.status == "ok" and report.problems == ()
    assert (report.programs[0].backend, report.programs[0].detail) == ("gpt-sovits", "")
    # Falling back in use (its server went away mid-answer) shows up the same way, from a beat.
    table.heartbeat("tts", 100, 5.0, ready=True, backend="piper", model="joe", drops={}, degraded=why)
    assert table.report(6.0).problems == (f"tts: {why}",)


def test_a_program_that_could_not_load_is_started_again_every_interval_until_it_loads() -> None:
    table = ProgramTable(["tts", "llm"])
    for name, pid in (("tts", 100), ("llm", 101)):
        _running(table, name, pid)
        table.hello(name, pid, 0.0)
    table.failed("tts", "model-hash-mismatch", "run: mynah models fetch joe", now=1.0)
    table.process_state("tts", "EXITED", 100, 1.0)
    table.process_state("llm", "EXITED", 101, 1.0)  # a crash: supervisord restarts it, not this
    assert table.load_retries_due(now=20.0, interval_s=30.0) == []
    assert table.load_retries_due(now=31.0, interval_s=30.0) == ["tts"]
    assert table.load_retries_due(now=32.0, interval_s=30.0) == [], "tried: not again before the interval"
    # The attempt fails again: the next one is an interval after this failure.
    _running(table, "tts", 200, 33.0)
    table.hello("tts", 200, 33.0)
    table.failed("tts", "model-hash-mismatch", "still bad", now=34.0)
    table.process_state("tts", "EXITED", 200, 34.0)
    assert table.load_retries_due(now=60.0, interval_s=30.0) == []
    assert table.load_retries_due(now=64.0, interval_s=30.0) == ["tts"]
    # This time it loads: nothing more to retry.
    _running(table, "tts", 300, 65.0)
    table.hello("tts", 300, 65.0)
    table.ready("tts", 300, "piper", "joe", now=66.0)
    assert table.load_retries_due(now=200.0, interval_s=30.0) == []
