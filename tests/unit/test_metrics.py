"""Metrics: the coordinator's histograms and report, the gateway's Prometheus text, the health summary."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from appliance.coordinator.gpu import MIB, GpuSnapshot
from appliance.coordinator.metrics import LatencyHistogram, TurnMetrics, build_report
from appliance.coordinator.programs import ProgramTable
from appliance.gateway.errors import install_error_handlers
from appliance.gateway.metrics import CountErrors, GatewayMetrics, error_code
from appliance.gateway.routes import metrics as metrics_routes
from appliance.gateway.routes.health import summarize
from ipc.codec import decode, encode
from ipc.messages import HealthReport, MetricsReport, ProgramStatus, SpeakDone, TurnTimings


def test_histogram_is_cumulative() -> None:
    h = LatencyHistogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        h.observe(seconds)
    assert h.cumulative() == (2, 3) and h.count == 4 and abs(h.sum_s - 3.65) < 1e-9


def _report() -> tuple[TurnMetrics, ProgramTable]:
    turns = TurnMetrics()
    turns.chat_turn("ok", TurnTimings(0.01, 0.2, 1.5, 10, 10, 5))
    turns.chat_turn("failed")
    turns.worker_reply(SpeakDone("t", 1, 48000, False, 0.3, "piper", None))
    programs = ProgramTable(["coordinator", "llm"])
    programs.sync("llm", "RUNNING", 4242, 1.0)
    programs.ready("llm", 4242, "embedded", "smollm2", 0.0)
    programs.heartbeat("llm", 4242, 0.0, ready=True, backend="embedded", model="smollm2", drops={"inbox": 3})
    return turns, programs


def test_report_and_render_parse() -> None:
    turns, programs = _report()
    gpu = GpuSnapshot(0, "H100", 80_000.0, 2_000.0, {4242: 1_000.0, 4243: 200.0, 999: 50.0})
    report = build_report(
        programs, turns, gpu, usage=lambda pid: (123 * MIB, 4.5), family=lambda pid: {pid, pid + 1},
        data_bytes=10, data_quota_bytes=100, janitor_removed={"temporary": 2},
    )  # fmt: skip
    wired = decode(encode(report, "r")).message  # it crosses the wire intact
    assert isinstance(wired, MetricsReport) and wired == report
    gateway = GatewayMetrics()
    gateway.error("chat-timeout", 504)
    text = gateway.render(report).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("mynah_coordinator_up", ())] == 1.0
    assert samples[("mynah_turns_total", (("outcome", "ok"),))] == 1.0
    assert samples[("mynah_turns_total", (("outcome", "failed"),))] == 1.0
    assert samples[("mynah_stage_latency_seconds_count", (("stage", "chat_total"),))] == 1.0
    assert samples[("mynah_stage_latency_seconds_bucket", (("le", "2.5"), ("stage", "chat_total")))] == 1.0
    assert samples[("mynah_stage_latency_seconds_bucket", (("le", "1.0"), ("stage", "chat_total")))] == 0.0
    assert samples[("mynah_stage_latency_seconds_count", (("stage", "tts_first_audio"),))] == 1.0
    assert samples[("mynah_api_errors_total", (("code", "chat-timeout"), ("status", "504")))] == 1.0
    assert samples[("mynah_queue_drops_total", (("program", "llm"), ("queue", "inbox")))] == 3.0
    assert samples[("mynah_model_loaded", (("backend", "embedded"), ("model", "smollm2"), ("program", "llm")))] == 1.0
    assert samples[("mynah_program_resident_memory_bytes", (("program", "llm"),))] == 123 * MIB
    assert samples[("mynah_program_cpu_seconds_total", (("program", "llm"),))] == 4.5
    assert samples[("mynah_program_vram_bytes", (("program", "llm"),))] == 1200 * MIB  # the program and its child
    assert samples[("mynah_gpu_memory_unattributed_bytes", ())] == 800 * MIB
    assert samples[("mynah_janitor_removed_total", (("kind", "temporary"),))] == 2.0
    assert ("mynah_program_resident_memory_bytes", (("program", "coordinator"),)) in samples  # not running: 0


def test_render_without_the_coordinator() -> None:
    text = GatewayMetrics().render(None).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names == {"mynah_coordinator_up", "mynah_api_errors"}
    assert "mynah_coordinator_up 0.0" in text


def test_error_code_from_a_body() -> None:
    assert error_code(b'{"code": "busy", "message": "x"}', 503) == "busy"
    assert error_code(b"<html>", 500) == "http-500"
    assert error_code(b"[1]", 400) == "http-400"


def _program(name: str, **kw: object) -> ProgramStatus:
    base: dict[str, object] = {
        "name": name,
        "state": "RUNNING",
        "ready": True,
        "pid": 1,
        "uptime_s": 1.0,
        "restarts": 0,
    }
    return ProgramStatus(**{**base, **kw})  # type: ignore[arg-type]  # test fixture: fields checked by msgspec


def test_health_summary_names_the_worst_problem() -> None:
    ok = HealthReport("ok", (_program("llm"), _program("tts")))
    assert summarize(ok).model_dump() == {"ready": 2, "total": 2, "restarts_last_hour": 0, "problem": ""}
    restarted = HealthReport("ok", (_program("llm", restarts=4, restarts_last_hour=2), _program("tts")))
    assert summarize(restarted).problem == "llm restarted 2 times in the last hour"
    assert summarize(restarted).restarts_last_hour == 2
    loading = HealthReport("degraded", (_program("llm", ready=False, state="STARTING"), _program("tts")))
    assert summarize(loading).problem == "llm is not ready yet (STARTING)"
    quota = HealthReport("degraded", loading.programs, problems=("disk-quota-exceeded: full",))
    assert summarize(quota).problem == "disk-quota-exceeded: full"
    dead = HealthReport(
        "degraded", (*quota.programs, _program("stt", state="EXITED", ready=False, detail="model-missing: fetch")),
        problems=quota.problems,
    )  # fmt: skip
    assert summarize(dead).problem == "stt is EXITED: model-missing: fetch"
    assert summarize(dead).ready == 1 and summarize(dead).total == 3


class _Link:
    """Answers MetricsQuery like a coordinator with nothing counted yet."""

    async def ask_for(self, message: object, expected: type, deadline_s: float = 2.0) -> object:
        return MetricsReport(programs=(), stages=(), turns={})


def _app() -> FastAPI:
    app = FastAPI()
    app.state.link = _Link()
    app.state.metrics = GatewayMetrics()
    install_error_handlers(app)
    app.include_router(metrics_routes.router)
    app.add_middleware(CountErrors, metrics=app.state.metrics)
    return app


def test_metrics_refused_from_another_address_and_the_refusal_counted() -> None:
    app = _app()
    with TestClient(app, client=("192.168.1.50", 40000)) as lan:
        refused = lan.get("/metrics")
    assert refused.status_code == 403 and refused.json()["code"] == "metrics-local-only"
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        served = local.get("/metrics")
        missing = local.get("/no-such-route")
        after = local.get("/metrics")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/plain")
    assert missing.status_code == 404
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(after.text)
        for s in f.samples
    }
    assert samples[("mynah_api_errors_total", (("code", "metrics-local-only"), ("status", "403")))] == 1.0
    assert samples[("mynah_api_errors_total", (("code", "not-found"), ("status", "404")))] == 1.0
    assert samples[("mynah_coordinator_up", ())] == 1.0
