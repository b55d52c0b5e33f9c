"""The interface every LLM backend implements, and the error type they raise."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ipc.errors import CodedError


class LlmError(CodedError):
    """A backend failure with a stable code (docs/errors.md), raised `from` its cause."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One line of the conversation so far: role is 'user' or 'assistant'."""

    role: str
    text: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a backend is asked to continue: the session's earlier lines, then the new user text."""

    session_id: str
    history: tuple[Exchange, ...]
    user_text: str
    max_tokens: int


@dataclass(frozen=True, slots=True)
class Piece:
    """A piece of reply text as the model produced it."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The last item of a stream: token accounting for the turn trace and the benchmarks."""

    prompt_tokens: int
    prefilled_tokens: int  # prompt tokens actually evaluated (the rest came from kept KV state)
    generated_tokens: int
    stop_reason: str  # "stop", "length" or "cancelled"


class LlmBackend(Protocol):
    name: ClassVar[str]

    @property
    def model(self) -> str:
        """A human-readable name of the loaded model, for /health and `mynah status`."""
        ...

    async def load(self) -> None:
        """Load (or preload) the model. Raises LlmError with a clear code when it cannot."""
        ...

    def stream(self, prompt: Prompt) -> AsyncGenerator[Piece | Finished, None]:
        """Yield reply pieces as they are generated, then exactly one Finished.

        Closing the iterator early (aclose) cancels generation promptly.
        """
        ...

    async def unload(self) -> None: ...
