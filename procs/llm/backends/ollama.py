"""The Ollama backend: a local Ollama server, reached over its HTTP API with the official `ollama` client.

Wire contract (docs/api.md of ollama/ollama): `/api/chat` streams NDJSON chunks and ends with one `done: true`
chunk carrying the token counts; `/api/generate` with no prompt loads a model (`keep_alive: 0` unloads it);
`/api/ps` lists resident models; `/api/show` answers 404 for a model that is not pulled.

Long conversations are trimmed here, by the policy every backend shares (procs/llm/context.py,
docs/llm-context.md), before Ollama sees them: left to itself Ollama drops old messages by its own rule, with
no room kept for the reply and a cut point that moves every turn (so its prompt cache is lost each time).
The API has no tokenizer, so the size is an estimate, calibrated per session by the server's own count.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx
import ollama

from appliance.config import OllamaConfig, ReplyConfig
from procs.llm.backends.base import Exchange, Finished, LlmError, Piece, Prompt
from procs.llm.context import Calibration, ContextBudget, PromptEstimate, TrimPoints

log = logging.getLogger(__name__)

# A refused connection surfaces as ConnectionError from plain calls (the client converts httpx.ConnectError)
# but as httpx.ConnectError from a stream, and the client never converts a connect timeout.
_UNREACHABLE = (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)
# Everything the client and its transport raise for a failed call; ValueError covers a malformed JSON line
# (json.JSONDecodeError) and a chunk that does not validate (pydantic.ValidationError).
_CLIENT_ERRORS = (ollama.ResponseError, ollama.RequestError, httpx.HTTPError, ConnectionError, ValueError)
# The client sets no status code on an `{"error": ...}` line that arrives after a 200 stream began.
_MID_STREAM = -1
# `auto` asks whether Ollama has the model while the appliance starts; a hung server must not hang it.
_PROBE_READ_TIMEOUT_S = 10.0
# Context kept free beyond the reply for what the estimate cannot see: the BOS token, the open assistant header
# and a template's fixed text (docs/llm-context.md).
CONTEXT_MARGIN_TOKENS = 64


class OllamaBackend:
    name: ClassVar[str] = "ollama"

    def __init__(self, config: OllamaConfig, reply: ReplyConfig, system_prompt: str) -> None:
        self._config = config
        self._system_prompt = system_prompt
        self._trims = TrimPoints()
        self._calibration = Calibration()
        # Spoken replies are one turn: stop if the model starts writing the next speaker's line itself.
        self._stop = ["\nUser:", "\nuser:", f"\n{reply.assistant_name}:"]
        # Only connecting is bounded: a first load can take minutes, and a turn's deadline belongs to the
        # caller, which closes the stream (and with it the HTTP request) when it gives up.
        self._client = ollama.AsyncClient(
            host=config.host, timeout=httpx.Timeout(None, connect=config.connect_timeout_s)
        )

    @property
    def model(self) -> str:
        return self._config.model

    async def load(self) -> None:
        """Make the model resident: /api/generate with no prompt loads it and answers once it is loaded."""
        try:
            # num_ctx sized as every chat asks, or Ollama reloads the model at the first turn to resize it.
            await self._client.generate(
                model=self._config.model,
                options={"num_ctx": self._config.num_ctx},
                keep_alive=self._config.keep_alive,
            )
        except _CLIENT_ERRORS as err:
            raise self._error(err) from err
        log.info("ollama: %s resident at %s (keep_alive %s)", self.model, self._config.host, self._config.keep_alive)

    async def stream(self, prompt: Prompt) -> AsyncIterator[Piece | Finished]:
        history, estimated = self._fit(prompt)
        try:
            # This only builds the request: nothing is sent until the first part is read, so connecting and
            # every HTTP failure surface in the loop below.
            parts = await self._client.chat(
                model=self._config.model,
                messages=self._messages(history, prompt.user_text),
                stream=True,
                options=self._options(prompt),
                keep_alive=self._config.keep_alive,
            )
        except _CLIENT_ERRORS as err:
            raise self._error(err) from err
        finished: Finished | None = None
        try:
            async for part in parts:
                if part.message.content:
                    yield Piece(part.message.content)
                if part.done:
                    finished = _finished(part)
                    self._calibration.observe(prompt.session_id, estimated, part.prompt_eval_count or 0)
                    break
        except _CLIENT_ERRORS as err:
            raise self._error(err, streaming=True) from err
        finally:
            # Closing the client's generator leaves its `async with` and closes the response, so an early
            # aclose() of this stream drops the connection and Ollama stops generating.
            if isinstance(parts, AsyncGenerator):
                await parts.aclose()
        if finished is None:
            raise LlmError(
                "llm-stream-failed",
                f"the reply stream from Ollama at {self._config.host} ended before its final chunk",
            )
        yield finished

    async def unload(self) -> None:
        """keep_alive 0 on an empty /api/generate unloads the model now and frees its memory."""
        try:
            await self._client.generate(model=self._config.model, keep_alive=0)
        except _CLIENT_ERRORS as err:
            raise self._error(err) from err

    async def resident_models(self) -> list[str]:
        """The models Ollama holds in memory now (/api/ps), for residency decisions and `mynah status`."""
        try:
            running = await self._client.ps()
        except _CLIENT_ERRORS as err:
            raise self._error(err) from err
        return [name for m in running.models if (name := m.model or m.name)]

    async def has_model(self) -> bool:
        """Whether the server answers and has the configured model pulled; used to resolve `auto`.

        A short-lived client with a bounded read, so a probe leaves nothing open and never hangs start-up.
        """
        timeout = httpx.Timeout(_PROBE_READ_TIMEOUT_S, connect=self._config.connect_timeout_s)
        try:
            async with ollama.AsyncClient(host=self._config.host, timeout=timeout) as probe:
                await probe.show(self._config.model)
        except _CLIENT_ERRORS as err:
            # Not an error to report: "no" is the answer, and the reason goes into the log for `auto`.
            log.info("ollama: %s not available at %s: %s", self.model, self._config.host, err)
            return False
        return True

    async def close(self) -> None:
        """Release the HTTP connection pool (not part of LlmBackend; the worker calls it at exit)."""
        await self._client.close()  # type: ignore[no-untyped-call]  # ollama 0.6.3 leaves close() unannotated

    def _fit(self, prompt: Prompt) -> tuple[tuple[Exchange, ...], int]:
        """The history to send (procs/llm/context.py) and the prompt's unscaled estimate with it.

        Raises LlmError `llm-context-full` when the system prompt and the new text alone do not fit.
        """
        session = prompt.session_id
        estimate = PromptEstimate(
            self._system_prompt, prompt.history, prompt.user_text, self._calibration.scale(session)
        )
        budget = ContextBudget(
            context=self._config.num_ctx, reply=prompt.max_tokens, margin=CONTEXT_MARGIN_TOKENS, estimated=True
        )
        fit = self._trims.fit(session, prompt.history, estimate, budget)
        if fit.trimmed:
            log.info("session %s: %d of %d history lines sent (about %d of %d prompt tokens)",
                     session, len(fit.history), len(prompt.history), fit.tokens, budget.prompt)  # fmt: skip
        return fit.history, estimate.raw(fit.history)

    def _messages(self, history: tuple[Exchange, ...], user_text: str) -> list[Mapping[str, Any]]:
        messages: list[Mapping[str, Any]] = []
        if self._system_prompt:
            messages.append({"role": "system", "content": self._system_prompt})
        messages.extend({"role": line.role, "content": line.text} for line in history)
        messages.append({"role": "user", "content": user_text})
        return messages

    def _options(self, prompt: Prompt) -> dict[str, Any]:
        return {
            # Always explicit: the server's default context differs across Ollama versions and models.
            "num_ctx": self._config.num_ctx,
            "num_predict": prompt.max_tokens,
            "temperature": self._config.temperature,
            "stop": self._stop,
        }

    def _error(self, err: Exception, *, streaming: bool = False) -> LlmError:
        host, model = self._config.host, self._config.model
        if isinstance(err, _UNREACHABLE):
            return LlmError(
                "llm-unreachable",
                f"cannot reach the Ollama server at {host}: start it (`ollama serve` or "
                f"`systemctl start ollama`) or fix [llm.ollama] host",
            )
        if isinstance(err, ollama.ResponseError):
            if err.status_code == 404:
                return LlmError(
                    "llm-model-not-found",
                    f"Ollama at {host} does not have the model {model!r} ({err.error}): run `ollama pull {model}`",
                )
            if err.status_code == 503:
                return LlmError(
                    "llm-overloaded",
                    f"Ollama at {host} is busy and refused the request ({err.error}): try again shortly, "
                    "or raise OLLAMA_MAX_QUEUE on the server",
                )
            if err.status_code == _MID_STREAM:
                return LlmError("llm-stream-failed", f"Ollama failed while generating with {model!r}: {err.error}")
            return LlmError("llm-failed", f"Ollama at {host} answered HTTP {err.status_code}: {err.error}")
        if streaming and isinstance(err, httpx.TransportError | ValueError):
            return LlmError("llm-stream-failed", f"the reply stream from Ollama at {host} broke off: {err!r}")
        return LlmError("llm-failed", f"the call to Ollama at {host} failed: {err!r}")


def _finished(part: ollama.ChatResponse) -> Finished:
    # Ollama reports only the prompt tokens it evaluated (a reused KV-cache prefix is not counted), so the
    # prompt size is not known here: both fields carry the evaluated count.
    evaluated = part.prompt_eval_count or 0
    return Finished(
        prompt_tokens=evaluated,
        prefilled_tokens=evaluated,
        generated_tokens=part.eval_count or 0,
        stop_reason="length" if part.done_reason == "length" else "stop",
    )
