"""GET /metrics: Prometheus text, open to this machine only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from appliance.gateway.auth import is_loopback
from appliance.gateway.deps import Link
from appliance.gateway.errors import ApiError
from appliance.gateway.metrics import Metrics
from ipc.messages import MetricsQuery, MetricsReport

router = APIRouter(tags=["health"])


def may_scrape(request: Request) -> bool:
    """From this machine, or from a paired device (TokenAuth checked its token and named it in the state)."""
    return is_loopback(request) or bool(getattr(request.state, "device_id", None))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 403: {"description": "metrics-local-only"}},
    summary="Prometheus metrics: stage latencies, turns, errors, drops, residency, memory, CPU, VRAM, disk",
)
async def metrics(request: Request, link: Link, gateway: Metrics) -> Response:
    if not may_scrape(request):
        raise ApiError("metrics-local-only", "metrics are served to this machine only (or to a paired device)", 403)
    try:
        report = await link.ask_for(MetricsQuery(), MetricsReport, deadline_s=2.0)
    except ApiError:
        report = None  # still answer: mynah_coordinator_up 0 is what a monitor needs to see
    return Response(gateway.render(report), media_type=CONTENT_TYPE_LATEST)
