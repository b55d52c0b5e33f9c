"""The LLM worker's service: turns GenerateRequests into a stream of TokenChunks and one GenerateDone."""

from __future__ import annotations

import logging
import time

from appliance.config import LlmConfig
from appliance.logs import log_context
from appliance.models.store import ModelStore
from ipc.codec import Packet
from ipc.errors import CodedError
from ipc.messages import CancelTurn, ErrorReply, GenerateDone, GenerateRequest, GenerationStats, TokenChunk
from procs.common.fallback import BackendChain
from procs.common.worker import Replier, WorkerError
from procs.llm.backends import backend_chain, create_backend
from procs.llm.backends.base import Exchange, Finished, LlmBackend, LlmError, Prompt

log = logging.getLogger(__name__)

# Errors in use that mean the backend is gone (its server stopped, the model was removed), not that one request
# was bad: the worker falls back to the next backend and retries this one until it is back.
GONE = frozenset({"llm-unreachable", "llm-stream-failed", "llm-model-not-found"})


class LlmService:
    def __init__(self, config: LlmConfig, models: ModelStore, *, retry_s: float = 30.0) -> None:
        self._config = config
        self._models = models
        self._retry_s = retry_s
        self._chain: BackendChain[LlmBackend] | None = None
        self._current_turn: str | None = None
        self._cancelled: set[str] = set()

    @property
    def _backend(self) -> LlmBackend | None:
        return self._chain.current if self._chain is not None and self._chain.loaded else None

    @property
    def backend(self) -> str:
        return self._backend.name if self._backend else ""

    @property
    def model(self) -> str:
        return self._backend.model if self._backend else ""

    @property
    def degraded(self) -> str:
        return self._chain.degraded if self._chain is not None else ""

    async def load(self) -> None:
        self._chain = BackendChain(await backend_chain(self._config), self._make, retry_s=self._retry_s,
                                   on_switch=_release)  # fmt: skip
        try:
            await self._chain.load()
        except CodedError as err:
            raise WorkerError(err.code, err.message) from err

    async def _make(self, name: str) -> LlmBackend:
        backend = create_backend(name, self._config, self._models)
        try:
            await backend.load()
        except LlmError:
            await _close(backend)
            raise
        return backend

    def control(self, packet: Packet) -> None:
        if isinstance(packet.message, CancelTurn):
            self._cancelled.add(packet.message.turn_id)

    async def handle(self, packet: Packet, reply: Replier) -> None:
        request = packet.message
        if not isinstance(request, GenerateRequest):
            await reply(ErrorReply("unsupported-request", f"the llm worker does not serve {type(request).__name__}"))
            return
        if self._backend is None:
            await reply(ErrorReply("llm-not-ready", "the model is not loaded"))
            return
        if request.turn_id in self._cancelled:
            self._cancelled.discard(request.turn_id)
            return
        prompt = Prompt(
            session_id=request.session_id,
            history=tuple(Exchange(line.role, line.text) for line in request.history),
            user_text=request.user_text,
            max_tokens=min(request.max_tokens, self._config.reply.max_tokens),
        )
        with log_context(session_id=request.session_id, turn_id=request.turn_id):
            await self._generate(request.turn_id, prompt, reply)

    async def _generate(self, turn_id: str, prompt: Prompt, reply: Replier) -> None:
        assert self._backend is not None  # checked by handle()
        started = time.monotonic()
        first_token_s = 0.0
        pieces: list[str] = []
        stream = self._backend.stream(prompt)
        try:
            async for item in stream:
                if turn_id in self._cancelled:
                    self._cancelled.discard(turn_id)
                    log.info("turn %s cancelled after %s pieces", turn_id, len(pieces))
                    return
                if isinstance(item, Finished):
                    stats = GenerationStats(
                        prompt_tokens=item.prompt_tokens,
                        prefilled_tokens=item.prefilled_tokens,
                        generated_tokens=item.generated_tokens,
                        first_token_s=first_token_s,
                        total_s=time.monotonic() - started,
                        stop_reason=item.stop_reason,
                    )
                    await reply(GenerateDone(turn_id, "".join(pieces).strip(), stats))
                    return
                if not pieces:
                    first_token_s = time.monotonic() - started
                pieces.append(item.text)
                await reply(TokenChunk(turn_id, item.text))
        except LlmError as err:
            await reply(ErrorReply(err.code, err.message))
            if err.code in GONE and self._chain is not None:
                self._chain.failed(err)
        finally:
            await stream.aclose()

    async def close(self) -> None:
        if self._chain is None:
            return
        await self._chain.close()
        if self._chain.loaded:
            await _release(self._chain.current, None)


async def _release(old: LlmBackend, new: LlmBackend | None) -> None:
    """Free what the backend holds: its model (best effort: a server that is gone holds nothing of ours)."""
    try:
        await old.unload()
    except LlmError as err:
        log.info("could not unload %s (%s): %s", old.name, err.code, err.message)
    await _close(old)


async def _close(backend: LlmBackend) -> None:
    close = getattr(backend, "close", None)  # the Ollama backend's HTTP pool
    if close is not None:
        await close()
