"""The appliance end to end: `mynah up` with real supervisord, the real processes and the embedded model."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Appliance
from tests.sse import events

pytestmark = pytest.mark.integration


def test_up_prints_the_url_with_every_program_ready(appliance: Appliance) -> None:
    assert f"Mynah is ready at {appliance.url}" in appliance.up_output
    status = appliance.status()
    assert status["status"] == "ok"
    programs = {p["name"]: p for p in status["programs"]}
    assert set(programs) == {"coordinator", "llm", "stt", "stt-batch", "tts", "trainer", "lipsync", "gateway"}
    assert all(p["ready"] and p["state"] == "RUNNING" and p["pid"] > 0 for p in programs.values())
    assert programs["llm"]["backend"] == "embedded"
    assert programs["llm"]["model"].startswith("smollm2")
    table = appliance.mynah("status").stdout
    assert "Mynah: ok" in table
    assert "llm" in table
    assert "embedded" in table


def test_health_says_ok_and_lists_each_program(appliance: Appliance) -> None:
    with appliance.client() as http:
        response = http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {p["name"] for p in body["programs"]} == {
        "coordinator",
        "llm",
        "stt",
        "stt-batch",
        "tts",
        "trainer",
        "lipsync",
        "gateway",
    }
    assert all("drops" in p and p["ready"] for p in body["programs"])


def test_the_capital_of_france_then_a_follow_up_answered_from_context(appliance: Appliance) -> None:
    with appliance.client() as http:
        first = http.post("/chat", json={"text": "What is the capital of France?"})
        assert first.status_code == 200, first.text
        answer = first.json()
        assert "paris" in answer["reply"].lower()
        follow = http.post("/chat", json={"text": "And of Italy?", "session_id": answer["session_id"]})
        assert follow.status_code == 200, follow.text
        assert "rome" in follow.json()["reply"].lower()
        timings = follow.json()["timings"]
        assert timings["prefilled_tokens"] < timings["prompt_tokens"], "the session's KV state was reused"


def test_a_streamed_chat_sends_tokens_as_they_come_then_done(appliance: Appliance) -> None:
    with appliance.client() as http, http.stream("POST", "/chat", json={"text": "Say hello.", "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        got = list(events(r))
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "started"
    assert kinds[-1] == "done"
    assert kinds.count("token") >= 2
    tokens = "".join(data["text"] for kind, data in got if kind == "token")
    assert tokens.strip() == got[-1][1]["reply"]
    assert got[-1][1]["session_id"] == got[0][1]["session_id"]


def test_sessions_can_be_listed_read_and_deleted(appliance: Appliance) -> None:
    with appliance.client() as http:
        made = http.post("/chat", json={"text": "How many legs does a dog have?"}).json()
        session = made["session_id"]
        listed = http.get("/api/sessions").json()["sessions"]
        assert session in [s["session_id"] for s in listed]
        history = http.get(f"/api/sessions/{session}/history").json()
        assert [line["role"] for line in history["lines"]] == ["user", "assistant"]
        assert history["lines"][1]["text"] == made["reply"]
        assert http.delete(f"/api/sessions/{session}").status_code == 204
        gone = http.get(f"/api/sessions/{session}/history")
        assert gone.status_code == 404
        assert gone.json()["code"] == "session-not-found"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"text": "unterminated', {"content-type": "application/json"}, 400, "invalid-json"),
        (b"{}", {"content-type": "application/json"}, 422, "invalid-request"),
        (b'{"text": 5}', {"content-type": "application/json"}, 422, "invalid-request"),
        (b'{"text": "hi", "colour": "red"}', {"content-type": "application/json"}, 422, "invalid-request"),
        (b'{"text": "   "}', {"content-type": "application/json"}, 422, "empty-text"),
        (json.dumps({"text": "a" * 5000}).encode(), {"content-type": "application/json"}, 422, "text-too-long"),
        (json.dumps({"text": "x" * 1_000_000}).encode(), {}, 413, "request-too-large"),
        (json.dumps({"text": "hi", "session_id": "0" * 32}).encode(), {}, 404, "session-not-found"),
        (json.dumps({"text": "hi", "session_id": "../../etc/passwd"}).encode(), {}, 404, "session-not-found"),
    ],
)
def test_malformed_requests_get_json_errors_and_the_store_is_intact(
    appliance: Appliance, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    with appliance.client() as http:
        kept = http.post("/chat", json={"text": "Name a colour."}).json()["session_id"]
        before = http.get(f"/api/sessions/{kept}/history").json()
        response = http.post("/chat", content=body, headers={"content-type": "application/json", **headers})
        assert response.status_code == status, response.text
        assert response.json()["code"] == code
        assert response.json()["message"]
        assert http.get(f"/api/sessions/{kept}/history").json() == before


def test_a_megabyte_sent_without_a_length_is_refused_too(appliance: Appliance) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(16):
            yield b"x" * 65536

    with appliance.client() as http:
        response = http.post("/chat", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "request-too-large"


def test_unknown_routes_and_methods_are_json_errors(appliance: Appliance) -> None:
    with appliance.client() as http:
        missing = http.get("/nope")
        wrong = http.get("/chat")
    assert (missing.status_code, missing.json()["code"]) == (404, "not-found")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method-not-allowed")


def test_openapi_documents_every_route(appliance: Appliance) -> None:
    with appliance.client() as http:
        spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    routes = {"/chat", "/health", "/api/sessions", "/api/sessions/{session_id}/history", "/api/sessions/{session_id}"}
    assert routes <= set(paths)
    assert "ChatOut" in spec["components"]["schemas"]
    assert "ApiErrorOut" in spec["components"]["schemas"]
    assert "422" in paths["/chat"]["post"]["responses"]


def test_logs_shows_a_programs_output(appliance: Appliance) -> None:
    out = appliance.mynah("logs", "llm", "-n", "20").stdout
    assert "ready" in out
    bad = appliance.mynah("logs", "nonsense", check=False)
    assert bad.returncode == 1
    assert "known:" in bad.stdout
