"""Crashes and hangs: the in-flight request fails fast with its code, supervisord restarts the worker,
and the next request succeeds. Real supervisord, real signals, the embedded model."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Appliance, start_appliance, stop_appliance
from tests.sse import events

pytestmark = pytest.mark.integration

LONG_ANSWER = "Count from one to forty, in words, separated by commas."


@pytest.fixture(scope="module")
def appliance() -> Iterator[Appliance]:
    # Long replies give the test time to strike mid-stream.
    running = start_appliance("[llm.reply]\nmax_tokens = 400\nmax_sentences = 20\n")
    try:
        yield running
    finally:
        stop_appliance(running)


def wait_until_ready(appliance: Appliance, name: str, old_pid: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        program = appliance.program(name)
        if program["ready"] and program["pid"] not in (0, old_pid):
            return program
        time.sleep(0.2)
    raise AssertionError(f"{name} did not come back: {appliance.status()}")


def test_kill_9_of_the_llm_worker_during_a_streamed_chat(appliance: Appliance) -> None:
    before = appliance.program("llm")
    got: list[tuple[str, dict[str, Any]]] = []
    with appliance.client() as http, http.stream("POST", "/chat", json={"text": LONG_ANSWER, "stream": True}) as r:
        stream = events(r)
        for kind, data in stream:
            got.append((kind, data))
            if kind == "token":
                break
        os.kill(before["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        got.extend(stream)
        ended_after = time.monotonic() - killed_at
    kind, data = got[-1]
    assert kind == "error", got[-3:]
    assert data["code"] == "llm-worker-crashed"
    assert ended_after < 5.0
    after = wait_until_ready(appliance, "llm", before["pid"])
    assert after["restarts"] == before["restarts"] + 1
    table = appliance.mynah("status").stdout.splitlines()
    llm_row = next(line.split() for line in table if line.startswith("llm "))
    assert llm_row[5] == str(after["restarts"]), table  # PROGRAM STATE READY PID UPTIME RESTARTS MODEL
    with appliance.client() as http:
        reply = http.post("/chat", json={"text": "What colour is the sky?"})
    assert reply.status_code == 200
    assert reply.json()["reply"]
    # What the user said in the failed turn is kept; the failed turn is not context for the model.
    session = got[0][1]["session_id"]
    with appliance.client() as http:
        lines = http.get(f"/api/sessions/{session}/history").json()["lines"]
    assert [(line["role"], line["text"]) for line in lines] == [("user", LONG_ANSWER)]


def test_a_stopped_worker_is_detected_as_hung_and_restarted(appliance: Appliance) -> None:
    before = appliance.program("llm")
    os.kill(before["pid"], signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        failures: list[int] = []

        def chat_while_hung() -> None:
            with appliance.client() as http:
                failures.append(http.post("/chat", json={"text": LONG_ANSWER}).status_code)

        asker = threading.Thread(target=chat_while_hung)
        asker.start()
        deadline = time.monotonic() + 20
        saw_degraded = False
        while time.monotonic() < deadline:
            with appliance.client() as http:
                saw_degraded = saw_degraded or http.get("/health").json()["status"] == "degraded"
            program = appliance.program("llm")
            if program["pid"] not in (0, before["pid"]):
                break
            time.sleep(0.2)
        detected_after = time.monotonic() - stopped_at
        asker.join(60)
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed, as it should have been
            os.kill(before["pid"], signal.SIGCONT)
    assert saw_degraded
    assert detected_after < 10
    after = wait_until_ready(appliance, "llm", before["pid"])
    assert after["restarts"] == before["restarts"] + 1
    assert failures
    assert failures[0] in (200, 503)
    with appliance.client() as http:
        assert http.get("/health").json()["status"] == "ok"
        assert http.post("/chat", json={"text": "Is water wet?"}).status_code == 200
