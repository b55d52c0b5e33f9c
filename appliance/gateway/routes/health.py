"""GET /health: the appliance's state as a monitor polls it."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from appliance.gateway.deps import Link
from appliance.gateway.errors import ApiError
from appliance.gateway.schemas import HealthOut, HealthSummary, ProgramOut
from ipc.messages import HealthQuery, HealthReport, ProgramStatus

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The coordinator does not answer: status is down"}},
    summary="Overall status, a one-line summary, and each program's state, readiness, model and drop counters",
)
async def health(link: Link) -> JSONResponse:
    try:
        report = await link.ask(HealthQuery(), deadline_s=1.0)
    except ApiError as err:
        problem = f"coordinator unreachable: {err.message}"
        down = HealthOut(
            status="down",
            summary=HealthSummary(ready=1, total=2, restarts_last_hour=0, problem=problem),
            programs=[
                ProgramOut(
                    name="coordinator", state="UNREACHABLE", ready=False, pid=0, uptime_s=0.0, restarts=0,
                    backend="", model="", drops={}, detail=err.message,
                ),
                ProgramOut(
                    name="gateway", state="RUNNING", ready=True, pid=os.getpid(), uptime_s=0.0, restarts=0,
                    backend="uvicorn", model="", drops={}, detail="",
                ),
            ],
        )  # fmt: skip
        return JSONResponse(down.model_dump(), status_code=503)
    assert isinstance(report, HealthReport)
    out = HealthOut(
        status="ok" if report.status == "ok" else "degraded",
        summary=summarize(report),
        programs=[
            ProgramOut(
                name=p.name, state=p.state, ready=p.ready, pid=p.pid, uptime_s=round(p.uptime_s, 1),
                restarts=p.restarts, backend=p.backend, model=p.model, drops=dict(p.drops), detail=p.detail,
            )
            for p in report.programs
        ],
        problems=list(report.problems),
    )  # fmt: skip
    return JSONResponse(out.model_dump())


# supervisord states in which a program is not running and will not be without help.
STOPPED = frozenset({"FATAL", "EXITED", "BACKOFF", "STOPPED", "UNKNOWN"})


def summarize(report: HealthReport) -> HealthSummary:
    """Counts a monitor can compare, and the worst problem in one line (most serious first)."""
    programs = report.programs
    return HealthSummary(
        ready=sum(1 for p in programs if p.ready),
        total=len(programs),
        restarts_last_hour=sum(p.restarts_last_hour for p in programs),
        problem=worst_problem(programs, report.problems),
    )


def worst_problem(programs: tuple[ProgramStatus, ...], problems: tuple[str, ...] = ()) -> str:
    def why(p: ProgramStatus) -> str:
        return f": {p.detail}" if p.detail else ""

    for p in programs:
        if p.state in STOPPED:
            return f"{p.name} is {p.state}{why(p)}"
    if problems:
        return problems[0]
    for p in programs:
        if not p.ready and p.detail:
            return f"{p.name} is not ready{why(p)}"
    for p in programs:
        if not p.ready:
            return f"{p.name} is not ready yet ({p.state})"
    restarting = max(programs, key=lambda p: p.restarts_last_hour, default=None)
    if restarting is not None and restarting.restarts_last_hour:
        return f"{restarting.name} restarted {restarting.restarts_last_hour} times in the last hour"
    return ""
