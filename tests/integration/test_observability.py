"""Observability end to end: /metrics moves with a chat turn, an error and a stream's error, /health's summary,
JSON logs."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Appliance

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(appliance: Appliance) -> Samples:
    with appliance.client() as http:
        response = http.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_move_after_a_turn_and_an_error(appliance: Appliance) -> None:
    before = scrape(appliance)
    assert before[("mynah_coordinator_up", ())] == 1.0
    assert before[("mynah_program_ready", (("program", "llm"),))] == 1.0
    assert before[("mynah_program_resident_memory_bytes", (("program", "llm"),))] > 10_000_000
    loaded = [k for k in before if k[0] == "mynah_model_loaded" and ("program", "llm") in k[1]]
    assert loaded and ("backend", "embedded") in loaded[0][1]
    turns = ("mynah_turns_total", (("outcome", "ok"),))
    chat_count = ("mynah_stage_latency_seconds_count", (("stage", "chat_total"),))
    first_token = ("mynah_stage_latency_seconds_count", (("stage", "llm_first_token"),))
    empty = ("mynah_api_errors_total", (("code", "empty-text"), ("status", "422")))
    with appliance.client() as http:
        answered = http.post("/chat", json={"text": "What is the capital of France?"})
        refused = http.post("/chat", json={"text": "   "})
    assert answered.status_code == 200 and refused.status_code == 422
    after = scrape(appliance)
    assert after[turns] == before.get(turns, 0.0) + 1
    assert after[chat_count] == before.get(chat_count, 0.0) + 1
    assert after[first_token] == before.get(first_token, 0.0) + 1
    assert after[empty] == before.get(empty, 0.0) + 1
    assert after[("mynah_program_cpu_seconds_total", (("program", "llm"),))] > 0


async def _bad_frame(appliance: Appliance) -> dict[str, object]:
    """Send the live transcription socket half a sample; its error event."""
    url = appliance.url.replace("http", "ws", 1) + "/api/transcribe/live"
    context = ssl.create_default_context(cafile=str(appliance.ca)) if appliance.ca else None
    async with websockets.connect(url, ssl=context) as ws:
        await ws.send(json.dumps({"type": "auth", "token": appliance.token}))
        await ws.send(b"\x00")
        while True:  # other events (the stream's own) may come first
            event: dict[str, object] = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if event.get("type") == "error" and event.get("code") == "audio-bad-frame":
                await ws.send(json.dumps({"type": "end"}))
                return event


def test_a_websocket_error_event_is_counted(appliance: Appliance) -> None:
    bad = ("mynah_api_errors_total", (("code", "audio-bad-frame"), ("status", "101")))
    before = scrape(appliance)
    asyncio.run(_bad_frame(appliance))
    assert scrape(appliance)[bad] == before.get(bad, 0.0) + 1


def test_health_has_a_summary(appliance: Appliance) -> None:
    with appliance.client() as http:
        body = http.get("/health").json()
    summary = body["summary"]
    assert summary["total"] == len(body["programs"]) and summary["ready"] == summary["total"]
    assert summary["problem"] == "" and summary["restarts_last_hour"] == 0


def test_logs_are_json_lines_with_the_turn(appliance: Appliance) -> None:
    with appliance.client() as http:
        turn = http.post("/chat", json={"text": "Say hello."}).json()
    lines = (appliance.home / "log" / "coordinator.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and all({"time", "level", "program", "logger", "message"} <= set(r) for r in records)
    mine = [r for r in records if r.get("turn_id") == turn["turn_id"]]
    assert mine and all(r["session_id"] == turn["session_id"] and r["program"] == "coordinator" for r in mine)
    shown = appliance.mynah("logs", "coordinator", "-n", "200").stdout
    assert f"turn_id={turn['turn_id']}" in shown and '{"time"' not in shown
