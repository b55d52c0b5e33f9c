"""`mynah status` and `mynah logs`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from appliance.cli.probe import health
from appliance.config import MynahConfig
from appliance.logs import pretty
from appliance.supervision.rpc import SupervisorClient, SupervisorUnavailable
from ipc.messages import HealthReport, ProgramStatus


def collect(config: MynahConfig) -> HealthReport:
    """The coordinator's view when it answers; else what supervisord alone can tell."""
    report = health(config)
    if report is not None:
        return report
    try:
        processes = SupervisorClient(config.paths.runtime_dir).processes()
    except SupervisorUnavailable:
        return HealthReport(status="down", programs=())
    now = time.time()
    programs = tuple(
        ProgramStatus(
            name=p.name, state=p.state, ready=False, pid=p.pid,
            uptime_s=now - p.start if p.state == "RUNNING" and p.start else 0.0, restarts=0,
            detail="the coordinator does not answer" if p.name == "coordinator" else "",
        )
        for p in processes
    )  # fmt: skip
    return HealthReport(status="down", programs=programs)


def _uptime(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def render_table(report: HealthReport) -> str:
    header = ("PROGRAM", "STATE", "READY", "PID", "UPTIME", "RESTARTS", "MODEL")
    rows = [header]
    for p in report.programs:
        model = f"{p.backend}: {p.model}" if p.model else p.backend or "-"
        rows.append((p.name, p.state, "yes" if p.ready else "no", str(p.pid or "-"), _uptime(p.uptime_s),
                     str(p.restarts), model))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"Mynah: {report.status}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += [f"  {p.name}: {p.detail}" for p in report.programs if p.detail]
    return "\n".join(lines)


def status(config: MynahConfig, *, as_json: bool) -> int:
    """Print the status; exit 0 when ok, 1 when degraded, 2 when down."""
    report = collect(config)
    if as_json:
        print(json.dumps(msgspec.to_builtins(report), indent=2))
    elif not report.programs:
        print("Mynah is not running (start it with `mynah up`)")
    else:
        print(render_table(report))
    return {"ok": 0, "degraded": 1}.get(report.status, 2)


def logs(config: MynahConfig, program: str, *, lines: int, follow: bool, raw: bool = False) -> int:
    path = config.paths.log_dir / f"{program}.log"
    if not path.exists():
        known = sorted(p.stem for p in config.paths.log_dir.glob("*.log"))
        print(f"no log for {program!r} in {config.paths.log_dir}; known: {', '.join(known) or 'none yet'}")
        return 1
    show = (lambda text: text) if raw else _pretty
    print(show(_tail(path, lines)), end="")
    if follow:
        _follow(path, show)
    return 0


def _pretty(text: str) -> str:
    """JSON log lines as a person reads them (appliance/logs.py); a partial last line is kept as it is."""
    return "".join(pretty(line) + "\n" if line.endswith("\n") else line for line in text.splitlines(keepends=True))


def _tail(path: Path, lines: int) -> str:
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 256 * 1024))
        text = f.read().decode("utf-8", errors="replace")
    return "".join(text.splitlines(keepends=True)[-lines:])


def _follow(path: Path, show: Callable[[str], str]) -> None:
    with path.open("rb") as f:
        f.seek(0, 2)
        pending = b""  # a line not finished yet: shown once it is, so a JSON line is never cut in two
        try:
            while True:
                chunk = f.read()
                if chunk:
                    pending += chunk
                    complete, _, pending = pending.rpartition(b"\n")
                    if complete:
                        print(show(complete.decode("utf-8", errors="replace") + "\n"), end="", flush=True)
                elif path.stat().st_size < f.tell():
                    f.seek(0)  # the log was rotated
                else:
                    time.sleep(0.25)
        except KeyboardInterrupt:
            return
