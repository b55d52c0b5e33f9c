"""GET /api/status: the status page's data in one answer: programs, resources against the budget, recent turns'
stage latencies and recent errors."""

from __future__ import annotations

import json
import os
import sqlite3

import psutil
from fastapi import APIRouter, Request

from appliance.gateway.deps import Config, Link
from appliance.gateway.errors import ApiError
from appliance.gateway.metrics import Metrics
from appliance.gateway.routes.health import summarize
from appliance.gateway.schemas import (
    ErrorSeenOut,
    HealthSummary,
    ProgramStatusOut,
    ResourcesOut,
    StatusOut,
    TurnStatusOut,
)
from appliance.store.db import connect
from ipc.messages import HealthQuery, HealthReport, MetricsQuery, MetricsReport

router = APIRouter(tags=["health"])
RECENT_TURNS = 30
MIB = 1024 * 1024


@router.get("/api/status", response_model=StatusOut, summary="Programs, resources, recent turns and errors")
async def status(request: Request, link: Link, config: Config, gateway: Metrics) -> StatusOut:
    try:
        health = await link.ask_for(HealthQuery(), HealthReport, deadline_s=1.0)
        usage = await link.ask_for(MetricsQuery(), MetricsReport, deadline_s=2.0)
    except ApiError as err:
        problem = f"coordinator unreachable: {err.message}"
        return StatusOut(status="down", summary=HealthSummary(ready=0, total=0, restarts_last_hour=0, problem=problem),
                         programs=[], resources=_resources(config, None), turns=_recent_turns(request),
                         errors=_errors(gateway))  # fmt: skip
    used = {u.name: u for u in usage.programs}
    programs = []
    for p in health.programs:
        u = used.get(p.name)
        programs.append(ProgramStatusOut(
            name=p.name, state=p.state, ready=p.ready, pid=p.pid, uptime_s=round(p.uptime_s, 1), restarts=p.restarts,
            backend=p.backend, model=p.model, drops=dict(p.drops), detail=p.detail,
            rss_bytes=u.rss_bytes if u else 0, cpu_s=round(u.cpu_s, 2) if u else 0.0,
            vram_bytes=u.vram_bytes if u else 0,
        ))  # fmt: skip
    return StatusOut(
        status="ok" if health.status == "ok" else "degraded",
        summary=summarize(health),
        programs=programs,
        resources=_resources(config, usage),
        turns=_recent_turns(request),
        errors=_errors(gateway),
    )


def _resources(config: Config, usage: MetricsReport | None) -> ResourcesOut:
    limits = config.resources
    memory = psutil.virtual_memory()
    budget = limits.ram_mib * MIB if limits.ram_mib else memory.total - limits.reserve_ram_mib * MIB
    return ResourcesOut(
        ram_total_bytes=memory.total,
        ram_used_bytes=memory.total - memory.available,
        ram_budget_bytes=int(max(0, budget)),
        cpu_cores=limits.cpu_cores or float(len(os.sched_getaffinity(0))),
        cpu_percent=psutil.cpu_percent(interval=None),
        gpu_total_bytes=usage.gpu_total_bytes if usage else 0,
        gpu_used_bytes=usage.gpu_used_bytes if usage else 0,
        data_bytes=usage.data_bytes if usage else -1,
        data_quota_bytes=usage.data_quota_bytes if usage else 0,
        max_sessions=limits.max_sessions,
    )


def _recent_turns(request: Request) -> list[TurnStatusOut]:
    """Read straight from the store (WAL: never blocks the coordinator, which writes it)."""
    rows = (
        _connection(request)
        .execute(
            "SELECT id, session_id, started_at, status, error_code, timings FROM turns"
            " ORDER BY started_at DESC LIMIT ?",
            (RECENT_TURNS,),
        )
        .fetchall()
    )
    return [
        TurnStatusOut(turn_id=row["id"], session_id=row["session_id"], started_at=row["started_at"],
                      status=row["status"], error_code=row["error_code"] or "", stages=_stages(row["timings"]))
        for row in rows
    ]  # fmt: skip


def _connection(request: Request) -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(request.app.state, "status_db", None)
    if conn is None:
        conn = request.app.state.status_db = connect(request.app.state.config.paths.data_dir / "mynah.db")
    return conn


def _stages(timings: str | None) -> dict[str, float]:
    """A voice turn's trace (seconds from the end of speech) when it has one, else a text turn's timings."""
    try:
        raw = json.loads(timings or "{}")
    except ValueError:
        return {}
    if isinstance(raw.get("trace"), dict):
        raw = raw["trace"]
    return {k: float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _errors(gateway: Metrics) -> list[ErrorSeenOut]:
    return [ErrorSeenOut(at=at, code=code, status=status) for at, code, status in reversed(gateway.recent)]
