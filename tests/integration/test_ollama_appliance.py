"""The appliance with `backend = "auto"` finds an Ollama server and uses it, end to end.

The server is a FAKE of Ollama (tests/fakes/fake_ollama.py) speaking its documented NDJSON wire format:
no Ollama binary can be installed on this machine. Everything else is real: supervisord, the processes,
the buses, the official `ollama` client inside the LLM worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Appliance, start_appliance, stop_appliance
from tests.fakes.fake_ollama import FakeOllama

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama(models=["llama3.2:3b"]) as server:
        server.script.reply = "Paris is the capital of France."
        yield server


@pytest.fixture(scope="module")
def appliance(fake_ollama: FakeOllama) -> Iterator[Appliance]:
    extra = f'[llm.ollama]\nhost = "{fake_ollama.host}"\nmodel = "llama3.2:3b"\nnum_ctx = 3072\n'
    running = start_appliance(extra, backend="auto")
    try:
        yield running
    finally:
        stop_appliance(running)


def test_auto_chooses_ollama_when_it_has_the_model(appliance: Appliance, fake_ollama: FakeOllama) -> None:
    llm = appliance.program("llm")
    assert llm["backend"] == "ollama"
    assert "llama3.2:3b" in llm["model"]
    assert "llama3.2:3b" in fake_ollama.resident(), "the worker preloads the model before it says ready"


def test_a_chat_goes_through_ollamas_api_with_history(appliance: Appliance, fake_ollama: FakeOllama) -> None:
    with appliance.client() as http:
        first = http.post("/chat", json={"text": "What is the capital of France?"}).json()
        assert first["reply"] == "Paris is the capital of France."
        http.post("/chat", json={"text": "And of Italy?", "session_id": first["session_id"]})
    body = fake_ollama.bodies("/api/chat")[-1]
    assert body["options"]["num_ctx"] == 3072
    assert body["stream"] is True
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "And of Italy?"
    assert body["messages"][2]["content"] == "Paris is the capital of France."
