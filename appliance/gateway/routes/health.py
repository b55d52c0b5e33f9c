"""GET /health: the appliance's state as a monitor polls it."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from appliance.gateway.deps import Link
from appliance.gateway.errors import ApiError
from appliance.gateway.schemas import HealthOut, ProgramOut
from ipc.messages import HealthQuery, HealthReport

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The coordinator does not answer: status is down"}},
    summary="Overall status and each program's state, readiness, model and drop counters",
)
async def health(link: Link) -> JSONResponse:
    try:
        report = await link.ask(HealthQuery(), deadline_s=1.0)
    except ApiError as err:
        down = HealthOut(
            status="down",
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
        programs=[
            ProgramOut(
                name=p.name, state=p.state, ready=p.ready, pid=p.pid, uptime_s=round(p.uptime_s, 1),
                restarts=p.restarts, backend=p.backend, model=p.model, drops=dict(p.drops), detail=p.detail,
            )
            for p in report.programs
        ],
    )  # fmt: skip
    return JSONResponse(out.model_dump())
