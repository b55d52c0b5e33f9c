"""The context policy (procs/llm/context.py, docs/llm-context.md), and the Ollama backend applying it.

The policy is tested as a pure function with a word-counting stand-in for a tokenizer. The Ollama backend runs
the real `ollama` client over loopback HTTP against FakeOllama (tests/fakes/fake_ollama.py), a FAKE of Ollama's
server that records every request body, so the tests read exactly which messages were sent.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import OllamaConfig, ReplyConfig
from appliance.store.conversations import ConversationStore
from appliance.store.db import connect
from procs.llm.backends.base import Exchange, Finished, LlmError, Piece, Prompt
from procs.llm.backends.ollama import CONTEXT_MARGIN_TOKENS, OllamaBackend
from procs.llm.context import (
    Calibration,
    ContextBudget,
    PromptCounter,
    PromptEstimate,
    TrimPoints,
    drop_oldest_exchange,
    estimate_tokens,
    fit_history,
)
from procs.llm.persona import system_prompt
from tests.fakes.fake_ollama import FakeOllama

FRAME = 10  # the stand-in system prompt's tokens


def _exchange(i: int, words: int = 5) -> tuple[Exchange, Exchange]:
    return Exchange("user", f"question {i} " + "word " * words), Exchange("assistant", f"answer {i} " + "yes " * words)


def _conversation(exchanges: int, words: int = 5) -> tuple[Exchange, ...]:
    return tuple(line for i in range(exchanges) for line in _exchange(i, words))


def _words(user_text: str) -> PromptCounter:
    """A stand-in tokenizer: a frame of FRAME tokens, then one token per word of every line and the user text."""
    return lambda kept: FRAME + sum(len(e.text.split()) for e in kept) + len(user_text.split())


# -- the policy


def test_a_history_that_fits_is_sent_whole() -> None:
    history = _conversation(3)
    fit = fit_history(history, _words("hi"), ContextBudget(context=200, reply=40))
    assert (fit.history, fit.dropped, fit.trimmed) == (history, 0, False)
    assert fit.tokens == FRAME + 6 * 7 + 1


def test_oldest_exchanges_go_first_and_whole() -> None:
    history = _conversation(40)  # 7 words a line: 560 words
    budget = ContextBudget(context=200, reply=40)
    fit = fit_history(history, _words("And the next one?"), budget)
    assert fit.trimmed
    assert fit.history == history[fit.dropped :]  # the newest lines, in order
    assert fit.dropped % 2 == 0
    assert fit.history[0].role == "user"
    assert fit.history[-1] == history[-1]


def test_trimming_goes_down_to_three_quarters_of_the_budget_and_no_further() -> None:
    history = _conversation(40)
    budget = ContextBudget(context=200, reply=40)  # 160 for the prompt, trimmed to 120
    count = _words("And the next one?")
    fit = fit_history(history, count, budget)
    assert budget.trim_to == 120
    assert fit.tokens == count(fit.history) <= 120
    assert count(history[fit.dropped - 2 :]) > 120  # one more exchange would not have fitted 3/4


def test_the_system_prompt_and_the_new_text_stay_when_all_history_goes() -> None:
    history = (Exchange("user", "long " * 300), Exchange("assistant", "answer " * 300))
    fit = fit_history(history, _words("short question"), ContextBudget(context=200, reply=40))
    assert fit.history == ()
    assert fit.tokens == FRAME + 2


def test_new_text_too_long_alone_is_context_full() -> None:
    with pytest.raises(LlmError) as err:
        fit_history(_conversation(2), _words("word " * 500), ContextBudget(context=200, reply=40))
    assert err.value.code == "llm-context-full"
    assert err.value.message == (
        "the new text alone needs 510 tokens; with a reply of 40 tokens that exceeds the context of 200"
    )


def test_an_estimated_count_says_so_and_names_the_margin() -> None:
    budget = ContextBudget(context=512, reply=80, margin=64, estimated=True)
    with pytest.raises(LlmError) as err:
        fit_history((), _words("word " * 500), budget)
    assert "needs about 510 tokens; with a reply of 80 tokens and a margin of 64" in err.value.message


def test_later_turns_keep_the_trim_point_so_each_prompt_extends_the_last() -> None:
    trims = TrimPoints()
    budget = ContextBudget(context=300, reply=50)  # 250 for the prompt, trimmed to 187
    history: tuple[Exchange, ...] = ()
    previous: tuple[Exchange, ...] | None = None
    trimmed_turns = []
    for turn in range(60):
        question, answer = _exchange(turn)
        fit = trims.fit("s", history, _words(question.text), budget)
        assert fit.tokens <= budget.prompt
        if fit.trimmed:
            trimmed_turns.append(turn)
            assert fit.tokens <= budget.trim_to
        elif previous is not None:
            assert fit.history == previous + history[-2:]  # last turn's lines, then its question and answer
        previous = fit.history
        history += (question, answer)
    # 14 tokens an exchange and 17 for the frame and question: the 17th exchange no longer fits 250. Trimming to
    # 3/4 frees room for four more turns before the next trim.
    assert trimmed_turns[0] == 17
    assert len(trimmed_turns) <= 60 // 4


def test_a_failed_turn_leaves_the_trim_point_where_it_was() -> None:
    trims = TrimPoints()
    budget = ContextBudget(context=300, reply=50)
    history = _conversation(20)
    first = trims.fit("s", history, _words("next?"), budget)
    with pytest.raises(LlmError):
        trims.fit("s", history, _words("word " * 400), budget)
    assert trims.fit("s", history, _words("next?"), budget).history == first.history


def test_trim_points_are_per_session_and_bounded() -> None:
    trims = TrimPoints(sessions=2)
    budget = ContextBudget(context=300, reply=50)
    long, short = _conversation(30), _conversation(30)[-4:]
    for session in ("a", "b", "c"):
        trims.fit(session, long, _words("next?"), budget)
    # "a" was forgotten: its next turn starts again from the whole history (here: shorter and fitting).
    assert trims.fit("a", short, _words("next?"), budget).history == short
    assert trims.fit("c", long, _words("next?"), budget).dropped > 0


def test_drop_oldest_exchange_removes_a_whole_exchange() -> None:
    history = _conversation(2)
    assert drop_oldest_exchange(history) == history[2:]
    assert drop_oldest_exchange(history[2:]) == ()
    assert drop_oldest_exchange(()) == ()
    # A user line with no answer (or several answers) goes with whatever answered it.
    odd = (Exchange("user", "a"), Exchange("assistant", "b"), Exchange("assistant", "c"), Exchange("user", "d"))
    assert drop_oldest_exchange(odd) == odd[3:]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=40),
    st.integers(0, 30),
    st.integers(80, 400),
)
def test_every_turn_fits_and_either_extends_the_last_prompt_or_trims_to_three_quarters(
    turns: list[tuple[int, int]], question_words: int, context: int
) -> None:
    trims = TrimPoints()
    budget = ContextBudget(context=context, reply=20)
    history: tuple[Exchange, ...] = ()
    previous: tuple[Exchange, ...] | None = None
    question = " ".join(["w"] * question_words)
    if FRAME + question_words > budget.prompt:
        with pytest.raises(LlmError, match="the new text alone needs"):
            trims.fit("s", _conversation(len(turns)), _words(question), budget)
        return
    for asked, answered in turns:
        fit = trims.fit("s", history, _words(question), budget)  # never context-full: the history can all go
        assert fit.history == history[fit.dropped :]
        assert not fit.history or fit.history[0].role == "user"
        assert fit.tokens <= budget.prompt
        if fit.trimmed:
            assert fit.tokens <= budget.trim_to or not fit.history
        elif previous is not None:
            assert fit.history == previous + history[-2:]
        previous = fit.history
        history += (Exchange("user", "q " * asked), Exchange("assistant", "a " * answered))


# -- the tokenizer-free estimate


def test_the_estimate_is_bytes_over_three_rounded_up_plus_a_message_overhead() -> None:
    assert estimate_tokens("") == 8
    assert estimate_tokens("abc") == 9
    assert estimate_tokens("abcd") == 10
    assert estimate_tokens("The capital of France is Paris.") == 11 + 8  # 31 characters
    assert estimate_tokens("東京") == 2 + 8  # 6 bytes: non-Latin text counts more per character


def test_a_prompt_estimate_is_the_sum_of_its_messages_scaled_up() -> None:
    history = _conversation(3)
    estimate = PromptEstimate("system", history, "question", scale=1.5)
    for dropped in (0, 2, 4, 6):
        kept = history[dropped:]
        raw = sum(estimate_tokens(t) for t in ("system", *(e.text for e in kept), "question"))
        assert estimate.raw(kept) == raw
        assert estimate(kept) >= raw * 1.5


def test_calibration_scales_a_session_up_and_never_down() -> None:
    calibration = Calibration()
    calibration.observe("s", estimated=100, reported=80)  # a cache hit or an over-estimate: no news
    assert calibration.scale("s") == 1.0
    calibration.observe("s", estimated=100, reported=150)
    assert calibration.scale("s") == 1.5
    calibration.observe("s", estimated=100, reported=120)
    assert calibration.scale("s") == 1.5
    assert calibration.scale("other") == 1.0


# -- the Ollama backend, against the FAKE Ollama server

MODEL = "llama3.1:8b"
REPLY = ReplyConfig()  # max_tokens 80
SYSTEM = system_prompt(REPLY)
BUDGET = 512 - REPLY.max_tokens - CONTEXT_MARGIN_TOKENS  # what a num_ctx of 512 leaves for the prompt, estimated


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama(models=[MODEL]) as server:
        server.script.reply = "Water is wet, as everyone knows."
        yield server


@pytest.fixture
async def ollama(fake: FakeOllama) -> AsyncIterator[OllamaBackend]:
    backend = OllamaBackend(OllamaConfig(host=fake.host, model=MODEL, num_ctx=512), REPLY, SYSTEM)
    yield backend
    await backend.close()


def _facts(count: int) -> tuple[Exchange, ...]:
    return tuple(
        line
        for i in range(count)
        for line in (Exchange("user", f"Tell me fact number {i}."), Exchange("assistant", f"Fact {i}: water is wet."))
    )


async def _ask(backend: OllamaBackend, history: tuple[Exchange, ...], text: str, session: str = "s") -> str:
    prompt = Prompt(session_id=session, history=history, user_text=text, max_tokens=REPLY.max_tokens)
    items = [item async for item in backend.stream(prompt)]
    assert isinstance(items[-1], Finished)
    return "".join(item.text for item in items if isinstance(item, Piece))


def _sent_estimate(body: dict[str, object]) -> int:
    messages = body["messages"]
    assert isinstance(messages, list)
    return sum(estimate_tokens(m["content"]) for m in messages)


async def test_ollama_is_sent_a_short_conversation_whole(fake: FakeOllama, ollama: OllamaBackend) -> None:
    await _ask(ollama, _facts(2), "And another?")
    (body,) = fake.bodies("/api/chat")
    assert [m["content"] for m in body["messages"]] == [SYSTEM, *(e.text for e in _facts(2)), "And another?"]
    assert body["options"]["num_ctx"] == 512


async def test_ollama_is_sent_the_recent_exchanges_of_a_long_conversation(
    fake: FakeOllama, ollama: OllamaBackend
) -> None:
    history = _facts(40)
    await _ask(ollama, history, "What is the capital of France?")
    (body,) = fake.bodies("/api/chat")
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM}
    assert messages[-1] == {"role": "user", "content": "What is the capital of France?"}
    sent = tuple(Exchange(m["role"], m["content"]) for m in messages[1:-1])
    assert 0 < len(sent) < len(history)
    assert sent == history[len(history) - len(sent) :]  # the newest exchanges, whole and in order
    assert sent[0].role == "user"
    assert _sent_estimate(body) <= BUDGET * 3 // 4


async def test_ollama_turns_keep_the_trim_point_and_extend_the_last_request(
    fake: FakeOllama, ollama: OllamaBackend
) -> None:
    history = _facts(40)
    for turn in range(12):
        question = f"And fact number {40 + turn}?"
        reply = await _ask(ollama, history, question)
        history += (Exchange("user", question), Exchange("assistant", reply))
    bodies = fake.bodies("/api/chat")
    extended = 0
    for earlier, later in itertools.pairwise(bodies):
        assert _sent_estimate(later) <= BUDGET
        if later["messages"][: len(earlier["messages"])] == earlier["messages"]:
            extended += 1
    # The first turn trims; after it most turns add their lines to the same prefix (Ollama's cache holds).
    assert extended >= 8


async def test_ollama_text_too_long_alone_is_context_full_and_nothing_is_sent(
    fake: FakeOllama, ollama: OllamaBackend
) -> None:
    with pytest.raises(LlmError) as err:
        await _ask(ollama, _facts(2), "word " * 1000)
    assert err.value.code == "llm-context-full"
    assert "exceeds the context of 512" in err.value.message
    assert fake.bodies("/api/chat") == []


async def test_ollama_counting_more_prompt_tokens_than_estimated_scales_that_session_up(
    fake: FakeOllama, ollama: OllamaBackend
) -> None:
    history = _facts(3)
    first_estimate = sum(estimate_tokens(text) for text in (SYSTEM, *(e.text for e in history), "And another?"))
    fake.script.prompt_eval_count = 2 * first_estimate  # the server counts twice as many tokens as estimated
    await _ask(ollama, history, "And another?")
    assert _sent_estimate(fake.bodies("/api/chat")[0]) == first_estimate <= BUDGET  # sent whole

    history += (Exchange("user", "And another?"), Exchange("assistant", "Water is wet, as everyone knows."))
    await _ask(ollama, history, "And one more?")
    fake.script.prompt_eval_count = 1  # a cached prompt: a low count never scales back down
    await _ask(ollama, history, "And one more?")
    await _ask(ollama, history, "And one more?", session="other")

    _, scaled, still_scaled, other = fake.bodies("/api/chat")
    assert len(scaled["messages"]) < len(history) + 2
    assert 2 * _sent_estimate(scaled) <= BUDGET
    assert still_scaled["messages"] == scaled["messages"]
    assert len(other["messages"]) == len(history) + 2  # another session keeps its own (plain) estimate


async def test_the_store_keeps_every_line_while_ollama_is_sent_the_recent_ones(
    tmp_path: Path, fake: FakeOllama, ollama: OllamaBackend
) -> None:
    store = ConversationStore(connect(tmp_path / "mynah.db"))
    session = store.create_session()
    for i in range(30):
        text = f"Tell me fact number {i}."
        # As the coordinator does (appliance/coordinator/chat.py): the whole completed history goes to the worker.
        context = tuple(Exchange(line.role, line.text) for line in store.context(session))
        turn = store.start_turn(session, text)
        store.finish_turn(turn, await _ask(ollama, context, text, session=session), {})
    assert len(store.history(session)) == len(store.context(session)) == 60
    assert store.history(session)[0].text == "Tell me fact number 0."
    last = fake.bodies("/api/chat")[-1]["messages"]
    assert len(last) < 1 + 59
    assert last[-1]["content"] == "Tell me fact number 29."
