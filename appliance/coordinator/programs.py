"""What the coordinator knows of each program: supervisord's state, readiness, heartbeats, restarts.

Pure bookkeeping with the clock passed in, so every transition is tested without sleeping. Two sources feed
it: supervisord (process state events, forwarded by the event listener) and the programs themselves
(hello, ready, heartbeat, failed). Readiness comes only from the program's own message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from ipc.messages import HealthReport, ProgramStatus

# supervisord states in which a process is not (or no longer) serving.
DOWN_STATES = frozenset({"STOPPED", "STOPPING", "EXITED", "BACKOFF", "FATAL", "UNKNOWN"})
HOUR_S = 3600.0


@dataclass
class ProgramRecord:
    name: str
    state: str = "UNKNOWN"
    pid: int = 0
    started_at: float | None = None  # wall clock, for uptime
    ready: bool = False
    backend: str = ""
    model: str = ""
    detail: str = ""
    degraded: str = ""  # why it runs on a fallback backend, as the program last said
    last_seen: float | None = None  # monotonic time of the last message from the process itself
    restarts: int = 0
    run_pid: int = 0  # the pid of the current (or last) RUNNING life; a new one means a restart
    drops: dict[str, int] = field(default_factory=dict)
    restarted_at: list[float] = field(default_factory=list)  # wall clock of each restart, the last hour's
    load_failed: bool = False  # it said it cannot load (WorkerFailed): supervisord leaves it down (exit 3)
    load_tried_at: float = 0.0  # monotonic time of its last start attempt after that


class ProgramTable:
    def __init__(self, programs: Iterable[str]) -> None:
        self._records = {name: ProgramRecord(name) for name in programs}

    def __getitem__(self, name: str) -> ProgramRecord:
        return self._records[name]

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def names(self) -> list[str]:
        return list(self._records)

    def sync(self, name: str, state: str, pid: int, started_at: float | None) -> None:
        """Adopt supervisord's view at start-up (no transition is implied, so no restart is counted)."""
        if name not in self._records:
            return
        record = self._records[name]
        record.state, record.pid, record.started_at = state, pid, started_at
        if state == "RUNNING":
            record.run_pid = pid

    def process_state(self, name: str, state: str, pid: int, now_wall: float) -> bool:
        """Apply a supervisord transition; True when the program just went down (fail its work)."""
        if name not in self._records:
            return False
        record = self._records[name]
        was_up = record.state not in DOWN_STATES
        record.state = state
        if state == "STARTING":
            # A new life: readiness and liveness must be earned again.
            record.ready, record.last_seen, record.pid = False, None, pid
        elif state == "RUNNING":
            if pid and pid != record.run_pid:
                # Events queued before the coordinator started replay the current life: same pid, no restart.
                if record.run_pid:
                    record.restarts += 1
                    record.restarted_at = [t for t in record.restarted_at if now_wall - t < HOUR_S] + [now_wall]
                record.run_pid, record.started_at = pid, now_wall
            record.pid = pid or record.pid
        elif state in DOWN_STATES:
            record.ready, record.last_seen, record.pid = False, None, 0
            return was_up
        return False

    def adopt_self(self, name: str, pid: int, now_wall: float) -> None:
        """The table's owner is ready by definition (it is answering) and is not watched for heartbeats."""
        record = self._records[name]
        record.state, record.pid, record.ready, record.last_seen = "RUNNING", pid, True, None
        record.started_at = record.started_at or now_wall

    def hello(self, name: str, pid: int, now: float) -> None:
        record = self._records.get(name)
        if record is None:
            return
        record.pid, record.ready, record.last_seen, record.detail, record.load_failed = pid, False, now, "", False

    def ready(self, name: str, pid: int, backend: str, model: str, now: float, degraded: str = "") -> None:
        record = self._records.get(name)
        if record is None:
            return
        record.pid, record.ready, record.last_seen = pid, True, now
        record.backend, record.model, record.detail, record.degraded = backend, model, "", degraded

    def heartbeat(self, name: str, pid: int, now: float, *, ready: bool, backend: str, model: str,
                  drops: dict[str, int], degraded: str = "") -> None:  # fmt: skip
        record = self._records.get(name)
        if record is None or (record.pid and pid != record.pid and record.last_seen is not None):
            return  # a late beat from a previous life must not revive the record
        record.pid, record.last_seen, record.drops = pid, now, dict(drops)
        if ready:  # a ready program may switch backends (a fallback, and back): each beat says which it uses
            record.ready, record.backend, record.model, record.degraded = True, backend, model, degraded

    def failed(self, name: str, code: str, message: str, now: float = 0.0) -> None:
        record = self._records.get(name)
        if record is not None:
            record.ready, record.detail = False, f"{code}: {message}"
            if not record.load_failed:
                record.load_failed, record.load_tried_at = True, now

    def hung(self, now: float, timeout_s: float) -> list[str]:
        """Programs that said hello but have been silent for longer than `timeout_s`.

        Each is reported once: its liveness is cleared until its next life says hello again.
        """
        silent = [
            r.name
            for r in self._records.values()
            if r.last_seen is not None and r.state == "RUNNING" and now - r.last_seen > timeout_s
        ]
        for name in silent:
            record = self._records[name]
            record.last_seen, record.ready, record.detail = None, False, f"hung: silent for over {timeout_s:g} s"
        return silent

    def is_ready(self, name: str) -> bool:
        record = self._records.get(name)
        return record is not None and record.ready and record.state == "RUNNING"

    def load_retries_due(self, now: float, interval_s: float) -> list[str]:
        """Programs down because they could not load, not tried for `interval_s`: start them again (a restored
        model file, or the engine they need back, and they load), so that nobody has to. Marks them tried."""
        due = [r for r in self._records.values()
               if r.load_failed and r.state in DOWN_STATES and now - r.load_tried_at >= interval_s]  # fmt: skip
        for record in due:
            record.load_tried_at = now
        return [r.name for r in due]

    def down_for_good(self, name: str) -> bool:
        """Down after saying it cannot load (its model is missing or fails its hash): waiting will not help."""
        record = self._records.get(name)
        return record is not None and record.load_failed and record.state in DOWN_STATES

    def report(self, now_wall: float, problems: tuple[str, ...] = ()) -> HealthReport:
        programs = tuple(
            ProgramStatus(
                name=r.name,
                state=r.state,
                ready=r.ready and r.state == "RUNNING",
                pid=r.pid,
                uptime_s=max(0.0, now_wall - r.started_at) if r.started_at and r.state == "RUNNING" else 0.0,
                restarts=r.restarts,
                backend=r.backend,
                model=r.model,
                drops=dict(r.drops),
                detail=r.detail or (r.degraded if r.state == "RUNNING" else ""),
                restarts_last_hour=sum(1 for t in r.restarted_at if now_wall - t < HOUR_S),
            )
            for r in self._records.values()
        )
        fallbacks = tuple(f"{r.name}: {r.degraded}" for r in self._records.values()
                          if r.degraded and r.ready and r.state == "RUNNING")  # fmt: skip
        problems = (*problems, *fallbacks)
        status = "ok" if all(p.ready for p in programs) and not problems else "degraded"
        return HealthReport(status=status, programs=programs, problems=problems)


async def wait_until_ready(programs: ProgramTable, name: str, timeout_s: float) -> bool:
    """Wait for a (re)starting program to say it is ready; False after `timeout_s`, or at once for a program that
    is down because it cannot load (its callers fail now, with /health saying why, instead of after a wait)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not programs.is_ready(name):
        if loop.time() > deadline or programs.down_for_good(name):
            return False
        await asyncio.sleep(0.05)
    return True
