"""What of a long conversation the model is shown: one policy for every LLM backend (docs/llm-context.md).

The coordinator's store keeps every line and sends the session's whole completed history; a backend uses
this module to choose the part that fits its model's context:
- the system prompt (or prompt frame) and the new user text are always kept;
- whole exchanges (a user line and the assistant lines that answered it) are dropped, oldest first;
- when trimming is needed at all, it trims to 3/4 of the budget, and the trim point is remembered per
  session, so the next turns send the same kept lines plus the new ones: the prompt stays an extension of
  the previous one, and the server keeps its cached prefix instead of prefilling everything again.

The counting is the backend's: llama.cpp's tokenizer for the embedded model, an estimate for Ollama
(`PromptEstimate`: its documented API has no tokenize endpoint).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from procs.llm.backends.base import Exchange, LlmError

# The prompt's size in tokens with this history kept (system prompt or frame and the new user text included).
# It is only ever called with a suffix of the history passed to `fit_history`.
PromptCounter = Callable[[tuple[Exchange, ...]], int]

# How many sessions remember their trim point and calibration; the least recently trimmed are forgotten
# (a forgotten session trims afresh, which costs one full prefill).
SESSION_MEMORY = 256

# The tokenizer-free estimate (docs/llm-context.md): UTF-8 bytes / 3, rounded up, plus a chat template's tokens
# around each message. English averages about 4 characters per token with a modern vocabulary (Llama 3) and a
# CJK character (3 bytes) is about one token, so this over-counts ordinary prose rather than under-counts it.
BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 8  # role header, separators and end-of-turn marker: 5 in Llama 3's and ChatML's templates

T = TypeVar("T")


def drop_oldest_exchange(history: tuple[Exchange, ...]) -> tuple[Exchange, ...]:
    """History without its oldest exchange: the first line and any assistant lines that answered it."""
    rest = history[1:]
    while rest and rest[0].role != "user":
        rest = rest[1:]
    return rest


@dataclass(frozen=True, slots=True)
class ContextBudget:
    """How many prompt tokens may be sent: the context less the reply's room less a safety margin."""

    context: int  # the model's context size (n_ctx, num_ctx)
    reply: int  # room kept for the reply: the turn's max_tokens
    margin: int = 0  # room kept for what the count cannot see (an estimate's error, template tokens)
    estimated: bool = False  # counts are an estimate, not a tokenizer's; the error message says so

    @property
    def prompt(self) -> int:
        return self.context - self.reply - self.margin

    @property
    def trim_to(self) -> int:
        """Where trimming stops: 3/4 of the budget, so the next few turns fit without trimming again."""
        return self.prompt * 3 // 4


@dataclass(frozen=True, slots=True)
class Fit:
    history: tuple[Exchange, ...]  # the lines the model is shown: a suffix of the session's history
    dropped: int  # how many of the oldest lines were left out
    tokens: int  # the prompt's size with `history`, as the counter counted it
    trimmed: bool  # this turn trimmed (the trim point moved)


def fit_history(history: tuple[Exchange, ...], count: PromptCounter, budget: ContextBudget, dropped: int = 0) -> Fit:
    """The history to send: from the remembered trim point `dropped` when that fits, else trimmed to 3/4.

    Raises LlmError `llm-context-full` when even the system prompt and the new user text alone do not fit.
    """
    # A trim point at or past the end does not belong to this history (it shrank): start from the whole of it.
    kept = history[dropped:] if dropped < len(history) else history
    tokens = count(kept)
    trimmed = tokens > budget.prompt
    if trimmed:
        while kept and tokens > budget.trim_to:
            kept = drop_oldest_exchange(kept)
            tokens = count(kept)
    if tokens > budget.prompt:
        about = "about " if budget.estimated else ""
        margin = f" and a margin of {budget.margin}" if budget.margin else ""
        raise LlmError(
            "llm-context-full",
            f"the new text alone needs {about}{tokens} tokens; with a reply of {budget.reply} tokens{margin} "
            f"that exceeds the context of {budget.context}",
        )
    return Fit(kept, len(history) - len(kept), tokens, trimmed)


class SessionMemory(Generic[T]):
    """A bounded per-session memory: the least recently written session is forgotten first."""

    def __init__(self, sessions: int = SESSION_MEMORY) -> None:
        self._sessions = sessions
        self._values: OrderedDict[str, T] = OrderedDict()

    def get(self, session: str, default: T) -> T:
        return self._values.get(session, default)

    def put(self, session: str, value: T) -> None:
        self._values[session] = value
        self._values.move_to_end(session)
        while len(self._values) > self._sessions:
            self._values.popitem(last=False)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


class TrimPoints:
    """Where each session's history was last trimmed, so later turns trim at the same place."""

    def __init__(self, sessions: int = SESSION_MEMORY) -> None:
        self._dropped: SessionMemory[int] = SessionMemory(sessions)

    def fit(self, session: str, history: tuple[Exchange, ...], count: PromptCounter, budget: ContextBudget) -> Fit:
        fit = fit_history(history, count, budget, self._dropped.get(session, 0))
        if fit.trimmed:
            self._dropped.put(session, fit.dropped)
        return fit

    def clear(self) -> None:
        self._dropped.clear()


def estimate_tokens(text: str) -> int:
    """A conservative token count of one message without a tokenizer: UTF-8 bytes / 3 rounded up, plus overhead."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


class PromptEstimate:
    """The estimated size of a chat prompt (system message, a suffix of the history, the user message).

    Each message is estimated once, so counting a candidate history is O(1) however often trimming asks.
    `scale` (at least 1) is the session's calibration: see `Calibration`.
    """

    def __init__(self, system: str, history: Sequence[Exchange], user_text: str, scale: float = 1.0) -> None:
        self._fixed = (estimate_tokens(system) if system else 0) + estimate_tokens(user_text)
        self._scale = scale
        self._lines = len(history)
        # _suffix[i]: the estimate of history[i:]
        self._suffix = [0] * (len(history) + 1)
        for i in range(len(history) - 1, -1, -1):
            self._suffix[i] = self._suffix[i + 1] + estimate_tokens(history[i].text)

    def raw(self, kept: Sequence[Exchange]) -> int:
        """The unscaled estimate with `kept` (a suffix of the history) as the history."""
        return self._fixed + self._suffix[self._lines - len(kept)]

    def __call__(self, kept: tuple[Exchange, ...]) -> int:
        return math.ceil(self.raw(kept) * self._scale)


class Calibration:
    """Per session, how far the estimate must be scaled up to cover what the server counted.

    Ollama's final chunk reports `prompt_eval_count`: the prompt tokens it evaluated, which leaves out a prefix
    it reused from its cache, so it never exceeds the prompt's true size. When it exceeds the estimate, the
    estimate was too low for this session's text, and its later turns are scaled up by the ratio. A lower
    count proves nothing (it may be a cache hit), so the scale never goes down.
    """

    def __init__(self, sessions: int = SESSION_MEMORY) -> None:
        self._scale: SessionMemory[float] = SessionMemory(sessions)

    def scale(self, session: str) -> float:
        return self._scale.get(session, 1.0)

    def observe(self, session: str, estimated: int, reported: int) -> None:
        """The server counted `reported` prompt tokens for a prompt estimated (unscaled) at `estimated`."""
        if estimated > 0 and reported > estimated * self.scale(session):
            self._scale.put(session, reported / estimated)

    def clear(self) -> None:
        self._scale.clear()
