"""GET /metrics in Prometheus text: the gateway's own counters plus what the coordinator reports.

Each app has its own registry (never prometheus_client's global one, so two apps in one test process do not
share counts). The gateway counts the errors it answers, by code and status, in an ASGI middleware that reads
the `{code, message}` of every JSON error response; an error sent inside a stream that is already open (an SSE
`error` event, a WebSocket `{"type": "error"}` frame) is counted by the code that sends it, through
`count_stream_error`, under the status the stream was opened with: 200 for SSE, 101 for a WebSocket.
Everything else comes from the coordinator's MetricsReport, asked for on each scrape and rendered by a collector.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipc.messages import MetricsReport

MAX_ERROR_BODY = 8192  # an error body is `{code, message}`: anything longer is not one of ours
SSE_STATUS = 200  # an SSE stream's error events are counted under the status its response began with
WEBSOCKET_STATUS = 101  # a WebSocket's, under its handshake's (Switching Protocols)


class CoordinatorCollector(Collector):
    """Renders the report set for the scrape under way (None: the coordinator did not answer)."""

    def __init__(self) -> None:
        self.report: MetricsReport | None = None

    def collect(self) -> Iterator[Metric]:
        report = self.report
        up = GaugeMetricFamily("mynah_coordinator_up", "1 when the coordinator answered this scrape")
        up.add_metric([], 1.0 if report is not None else 0.0)
        yield up
        if report is not None:
            yield from report_families(report)


def report_families(report: MetricsReport) -> Iterator[Metric]:
    stages = HistogramMetricFamily(
        "mynah_stage_latency_seconds", "Latency of each pipeline stage, from the timings the stages report",
        labels=["stage"],
    )  # fmt: skip
    for stage in report.stages:
        buckets = [(str(float(b)), float(n)) for b, n in zip(stage.bounds, stage.counts, strict=True)]
        stages.add_metric([stage.stage], [*buckets, ("+Inf", float(stage.count))], stage.sum_s)
    yield stages
    turns = CounterMetricFamily("mynah_turns", "Chat turns ended, by outcome", labels=["outcome"])
    for outcome, n in sorted(report.turns.items()):
        turns.add_metric([outcome], float(n))
    yield turns
    ready = GaugeMetricFamily("mynah_program_ready", "1 when the program said it is ready", labels=["program"])
    loaded = GaugeMetricFamily(
        "mynah_model_loaded", "1 for each program's loaded backend and model while it is ready",
        labels=["program", "backend", "model"],
    )  # fmt: skip
    restarts = CounterMetricFamily("mynah_program_restarts", "Restarts seen by the coordinator", labels=["program"])
    drops = CounterMetricFamily(
        "mynah_queue_drops", "Messages dropped by a bounded queue (the program's heartbeat counters)",
        labels=["program", "queue"],
    )  # fmt: skip
    rss = GaugeMetricFamily("mynah_program_resident_memory_bytes", "RSS of the program and its children",
                            labels=["program"])  # fmt: skip
    cpu = CounterMetricFamily("mynah_program_cpu_seconds", "CPU seconds (user + system) of the program's current life "
                              "and its children", labels=["program"])  # fmt: skip
    vram = GaugeMetricFamily("mynah_program_vram_bytes", "GPU memory the program's processes hold (NVML)",
                             labels=["program"])  # fmt: skip
    for p in report.programs:
        ready.add_metric([p.name], 1.0 if p.ready else 0.0)
        if p.ready and (p.backend or p.model):
            loaded.add_metric([p.name, p.backend, p.model], 1.0)
        restarts.add_metric([p.name], float(p.restarts))
        for queue, n in sorted(p.drops.items()):
            drops.add_metric([p.name, queue], float(n))
        rss.add_metric([p.name], float(p.rss_bytes))
        cpu.add_metric([p.name], p.cpu_s)
        if report.gpu_total_bytes:
            vram.add_metric([p.name], float(p.vram_bytes))
    yield from (ready, loaded, restarts, drops, rss, cpu)
    if report.gpu_total_bytes:
        yield vram
        for name, value, doc in (
            ("mynah_gpu_memory_total_bytes", report.gpu_total_bytes, "The card's memory"),
            ("mynah_gpu_memory_used_bytes", report.gpu_used_bytes, "In use on the card, by anyone"),
            ("mynah_gpu_memory_unattributed_bytes", report.gpu_unattributed_bytes, "In use, not by Mynah's programs"),
        ):
            yield GaugeMetricFamily(name, doc, value=float(value))
    if report.data_bytes >= 0:
        yield GaugeMetricFamily("mynah_data_bytes", "The data directory's size at the janitor's last run",
                                value=float(report.data_bytes))  # fmt: skip
    if report.data_quota_bytes:
        yield GaugeMetricFamily("mynah_data_quota_bytes", "The data directory's quota",
                                value=float(report.data_quota_bytes))  # fmt: skip
    removed = CounterMetricFamily("mynah_janitor_removed", "What the janitor removed, by kind", labels=["kind"])
    for kind, n in sorted(report.janitor_removed.items()):
        removed.add_metric([kind], float(n))
    yield removed


RECENT_ERRORS = 50  # kept for the status page


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.errors = Counter(
            "mynah_api_errors",
            "Errors the API answered, by code and HTTP status (stream error events: 200 for SSE, 101 for WebSocket)",
            ["code", "status"], registry=self.registry,
        )  # fmt: skip
        self._coordinator = CoordinatorCollector()
        self.registry.register(self._coordinator)
        self.recent: deque[tuple[float, str, int]] = deque(maxlen=RECENT_ERRORS)  # (wall clock, code, status)

    def error(self, code: str, status: int) -> None:
        self.errors.labels(code=code[:64], status=str(status)).inc()
        self.recent.append((time.time(), code[:64], status))

    def render(self, report: MetricsReport | None) -> bytes:
        # No await between setting the report and reading it: a concurrent scrape cannot see another's.
        self._coordinator.report = report
        try:
            return generate_latest(self.registry)
        finally:
            self._coordinator.report = None


def count_stream_error(connection: HTTPConnection, code: str) -> None:
    """An error event sent inside an open stream: counted like an error response, under the stream's status.

    `connection` is the route's Request (SSE) or WebSocket; an app without metrics (a bare test app) counts nothing.
    """
    metrics = getattr(connection.app.state, "metrics", None)
    if isinstance(metrics, GatewayMetrics):
        metrics.error(code, WEBSOCKET_STATUS if connection.scope["type"] == "websocket" else SSE_STATUS)


def _metrics(request: Request) -> GatewayMetrics:
    metrics: GatewayMetrics = request.app.state.metrics
    return metrics


Metrics = Annotated[GatewayMetrics, Depends(_metrics)]


class CountErrors:
    """ASGI middleware: every JSON error response (status >= 400) counts once, by its `code`."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 0
        body: bytearray | None = None  # collected only for a JSON error

        async def watch(message: Message) -> None:
            nonlocal status, body
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = dict(message.get("headers", []))
                if status >= 400 and headers.get(b"content-type", b"").startswith(b"application/json"):
                    body = bytearray()
                elif status >= 400:
                    self._metrics.error(f"http-{status}", status)
            elif message["type"] == "http.response.body" and body is not None:
                body += message.get("body", b"")[: MAX_ERROR_BODY - len(body)]
                if not message.get("more_body", False):
                    self._metrics.error(error_code(bytes(body), status), status)
                    body = None
            await send(message)

        await self._app(scope, receive, watch)


def error_code(body: bytes, status: int) -> str:
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and code else f"http-{status}"
