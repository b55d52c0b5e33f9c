"""The Ollama backend against a fake of Ollama's server (tests/fakes/fake_ollama.py).

No Ollama binary can be installed here, so these tests run the real `ollama` client and the real backend over
real loopback HTTP against a fake server that speaks Ollama's documented wire format (docs/api.md). They check
what the backend sends (the fake records every request body) and how it reads replies and failures.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

import httpx
import ollama
import pytest

from appliance.config import OllamaConfig, ReplyConfig
from procs.llm.backends.base import Exchange, Finished, LlmError, Piece, Prompt
from procs.llm.backends.ollama import OllamaBackend
from tests.fakes.fake_ollama import FakeOllama

MODEL = "llama3.1:8b"
SYSTEM = "You are Mynah. Answer in one or two short spoken sentences."


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama(models=[MODEL]) as server:
        yield server


def _backend(host: str, model: str = MODEL) -> OllamaBackend:
    config = OllamaConfig(host=host, model=model, num_ctx=2048, keep_alive="30m", temperature=0.3)
    return OllamaBackend(config, ReplyConfig(assistant_name="Mynah"), SYSTEM)


@pytest.fixture
async def backend(fake: FakeOllama) -> AsyncIterator[OllamaBackend]:
    llm = _backend(fake.host)
    yield llm
    await llm.close()


def _prompt(user_text: str = "What time is it?", max_tokens: int = 80) -> Prompt:
    history = (Exchange("user", "Hi there."), Exchange("assistant", "Hello! How can I help?"))
    return Prompt(session_id="s1", history=history, user_text=user_text, max_tokens=max_tokens)


async def _collect(llm: OllamaBackend, prompt: Prompt) -> list[Piece | Finished]:
    return [item async for item in llm.stream(prompt)]


async def _drain(llm: OllamaBackend, prompt: Prompt, received: list[Piece | Finished]) -> None:
    """Read the stream into `received`, so a test sees what arrived before a failure."""
    async for item in llm.stream(prompt):
        received.append(item)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here once the socket is closed


async def test_reply_streams_as_pieces_then_one_finished(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script.reply = "It is half past three. Anything else?"
    fake.script.prompt_eval_count = 37

    items = await _collect(backend, _prompt())

    pieces, finished = items[:-1], items[-1]
    assert all(isinstance(p, Piece) for p in pieces)
    assert [p.text for p in pieces if isinstance(p, Piece)] == [
        "It",
        " is",
        " half",
        " past",
        " three.",
        " Anything",
        " else?",
    ]
    assert finished == Finished(prompt_tokens=37, prefilled_tokens=37, generated_tokens=7, stop_reason="stop")
    assert [s.outcome for s in fake.streams] == ["done"]


async def test_chat_request_carries_options_keep_alive_and_the_whole_conversation(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    await _collect(backend, _prompt("Tell me a joke.", max_tokens=64))

    (body,) = fake.bodies("/api/chat")
    assert body["model"] == MODEL
    assert body["stream"] is True
    assert body["keep_alive"] == "30m"
    assert body["options"] == {
        "num_ctx": 2048,
        "num_predict": 64,
        "temperature": 0.3,
        "stop": ["\nUser:", "\nuser:", "\nMynah:"],
    }
    assert body["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ]


async def test_num_predict_cuts_the_reply_and_reports_length(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script.reply = "one two three four five six"

    items = await _collect(backend, _prompt(max_tokens=3))

    assert [i.text for i in items if isinstance(i, Piece)] == ["one", " two", " three"]
    finished = items[-1]
    assert isinstance(finished, Finished)
    assert (finished.generated_tokens, finished.stop_reason) == (3, "length")


async def test_preload_and_unload_go_through_generate_and_show_in_ps(fake: FakeOllama, backend: OllamaBackend) -> None:
    assert await backend.resident_models() == []

    await backend.load()

    assert fake.bodies("/api/generate")[-1] == {
        "model": MODEL,
        "stream": False,
        "options": {"num_ctx": 2048},
        "keep_alive": "30m",
    }
    assert await backend.resident_models() == [MODEL]
    assert fake.resident() == [MODEL]

    # The preload sized the context as the chat does, so the first turn does not reload the model.
    await _collect(backend, _prompt())
    assert fake.loads == [(MODEL, 2048)]

    await backend.unload()

    unload = fake.bodies("/api/generate")[-1]
    assert unload == {"model": MODEL, "stream": False, "keep_alive": 0}
    assert "prompt" not in unload
    assert await backend.resident_models() == []


async def test_missing_model_names_the_pull_command(fake: FakeOllama) -> None:
    llm = _backend(fake.host, model="qwen2.5:0.5b")
    try:
        with pytest.raises(LlmError) as loading:
            await llm.load()
        with pytest.raises(LlmError) as streaming:
            await _collect(llm, _prompt())
    finally:
        await llm.close()

    for caught in (loading.value, streaming.value):
        assert caught.code == "llm-model-not-found"
        assert "ollama pull qwen2.5:0.5b" in caught.message
        assert isinstance(caught.__cause__, ollama.ResponseError)


async def test_no_server_is_unreachable_for_load_stream_and_ps() -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    llm = _backend(host)
    try:
        with pytest.raises(LlmError) as loading:
            await llm.load()
        with pytest.raises(LlmError) as streaming:
            await _collect(llm, _prompt())
        with pytest.raises(LlmError) as listing:
            await llm.resident_models()
        assert await llm.has_model() is False
    finally:
        await llm.close()

    for caught in (loading.value, streaming.value, listing.value):
        assert caught.code == "llm-unreachable"
        assert host in caught.message
    assert loading.value.__cause__ is not None


@pytest.mark.parametrize(("status", "code"), [(503, "llm-overloaded"), (500, "llm-failed")])
async def test_http_failures_map_to_codes(fake: FakeOllama, backend: OllamaBackend, status: int, code: str) -> None:
    fake.script.fail_status = status

    with pytest.raises(LlmError) as streaming:
        await _collect(backend, _prompt())
    with pytest.raises(LlmError) as loading:
        await backend.load()

    assert streaming.value.code == code
    assert loading.value.code == code
    assert fake.script.fail_message in streaming.value.message


async def test_error_line_mid_stream_fails_after_the_first_pieces(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script.error_after_chunks = 2
    received: list[Piece | Finished] = []

    with pytest.raises(LlmError) as caught:
        await _drain(backend, _prompt(), received)

    assert received == [Piece("Hello"), Piece(" there!")]
    assert caught.value.code == "llm-stream-failed"
    assert fake.script.error_message in caught.value.message
    assert [s.outcome for s in fake.streams] == ["error-line"]


async def test_dropped_connection_mid_stream_is_a_stream_failure(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script.drop_after_chunks = 3
    received: list[Piece | Finished] = []

    with pytest.raises(LlmError) as caught:
        await _drain(backend, _prompt(), received)

    assert received == [Piece("Hello"), Piece(" there!"), Piece(" I")]
    assert caught.value.code == "llm-stream-failed"
    assert isinstance(caught.value.__cause__, httpx.TransportError)  # an incomplete chunked body
    assert [s.outcome for s in fake.streams] == ["dropped"]


async def test_stream_ending_without_done_is_a_stream_failure(fake: FakeOllama, backend: OllamaBackend) -> None:
    fake.script.end_without_done = True

    with pytest.raises(LlmError) as caught:
        await _collect(backend, _prompt())

    assert caught.value.code == "llm-stream-failed"
    assert fake.streams[0].chunks_sent > 0


async def test_closing_the_stream_early_disconnects_and_the_fake_stops_sending(
    fake: FakeOllama, backend: OllamaBackend
) -> None:
    fake.script.reply = " ".join(f"word{i}" for i in range(200))
    fake.script.chunk_delay_s = 0.02
    stream = backend.stream(_prompt(max_tokens=500))

    assert isinstance(stream, AsyncGenerator)  # what aclose() needs; the protocol promises an AsyncIterator

    first = [await anext(stream) for _ in range(3)]
    await stream.aclose()

    assert [p.text for p in first if isinstance(p, Piece)] == ["word0", " word1", " word2"]
    # Waited for with this test's event loop blocked: the connection closed inside aclose(), not later when
    # a garbage-collected generator's clean-up task gets to run.
    assert fake.wait_blocking(lambda: fake.streams[0].outcome != "streaming")
    record = fake.streams[0]
    assert record.outcome == "disconnected"
    assert record.chunks_sent < 20  # of 200: it stopped soon after the close, not at the end


async def test_has_model_true_only_for_a_pulled_model(fake: FakeOllama) -> None:
    assert await _backend(fake.host).has_model() is True
    assert await _backend(fake.host, model="mistral").has_model() is False
    assert fake.bodies("/api/show") == [{"model": MODEL}, {"model": "mistral"}]


async def test_the_fake_answers_the_official_client_like_ollama(fake: FakeOllama) -> None:
    """Checks on the fake itself: replies parse as the client's typed responses."""
    async with ollama.AsyncClient(host=fake.host) as client:
        whole = await client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=False)
        listing = await client.list()
        shown = await client.show(MODEL)
        with pytest.raises(ollama.ResponseError) as missing:
            await client.show("llama3.1")  # no tag means :latest, which is not pulled
    assert whole.done is True
    assert whole.done_reason == "stop"
    assert whole.message.content == fake.script.reply
    assert [m.model for m in listing.models] == [MODEL]
    assert shown.details is not None
    assert shown.details.family == "llama"
    assert (missing.value.status_code, missing.value.error) == (404, "model 'llama3.1' not found")
