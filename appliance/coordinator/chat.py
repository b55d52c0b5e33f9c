"""Chat turns: store the user's words, ask the LLM worker, relay its tokens, store the reply.

Every in-flight turn has a queue that the worker's replies are routed into by turn id. When the worker
dies or hangs, every turn it held gets a synthetic error at once, so the client hears about it in
milliseconds rather than at a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from appliance.config import MynahConfig
from appliance.coordinator.metrics import TurnMetrics
from appliance.coordinator.outbox import Sender
from appliance.coordinator.programs import ProgramTable, wait_until_ready
from appliance.logs import log_context
from appliance.store.conversations import ConversationStore, Line
from appliance.store.db import StoreError
from ipc.errors import PeerUnreachable
from ipc.messages import (
    CancelTurn,
    ChatLine,
    ChatReply,
    ChatRequest,
    ChatStarted,
    ChatToken,
    ErrorReply,
    GenerateDone,
    GenerateRequest,
    Message,
    TokenChunk,
    TurnTimings,
)

log = logging.getLogger(__name__)

LLM = "llm"


@dataclass
class Turn:
    turn_id: str
    session_id: str
    peer: bytes
    request_id: str
    replies: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)


class ChatRouter:
    def __init__(
        self,
        config: MynahConfig,
        server: Sender,
        store: ConversationStore,
        programs: ProgramTable,
        metrics: TurnMetrics | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics or TurnMetrics()
        self._server = server
        self._store = store
        self._programs = programs
        self._turns: dict[str, Turn] = {}

    @property
    def in_flight(self) -> int:
        return len(self._turns)

    async def chat(self, peer: bytes, request_id: str, request: ChatRequest) -> None:
        """Serve one ChatRequest to the end; every outcome is a final reply to the peer."""
        received = time.monotonic()
        try:
            session_id = request.session_id or self._store.create_session()
            self._store.require(session_id)
            context = self._store.context(session_id)
            turn_id = self._store.start_turn(session_id, request.text)
        except StoreError as err:
            await self._reply(peer, request_id, ErrorReply(err.code, err.message))
            return
        turn = Turn(turn_id, session_id, peer, request_id)
        self._turns[turn_id] = turn
        with log_context(session_id=session_id, turn_id=turn_id):
            await self._serve(turn, request, context, received)

    async def _serve(self, turn: Turn, request: ChatRequest, context: list[Line], received: float) -> None:
        peer, request_id, session_id, turn_id = turn.peer, turn.request_id, turn.session_id, turn.turn_id
        try:
            await self._reply(peer, request_id, ChatStarted(session_id, turn_id))
            if not await wait_until_ready(self._programs, LLM, self._config.supervision.worker_wait_s):
                self._fail(turn, "llm-not-ready", "the language model is not ready; see /health")
            else:
                history = tuple(ChatLine(line.role, line.text) for line in context)
                max_tokens = self._config.llm.reply.max_tokens
                generate = GenerateRequest(turn_id, session_id, history, request.text, max_tokens)
                try:
                    await self._server.send(LLM.encode(), generate, turn_id)
                except PeerUnreachable as err:
                    self._fail(turn, "llm-unreachable", f"the llm worker cannot be reached: {err}")
            await self._relay(turn, received)
        finally:
            self._turns.pop(turn_id, None)

    async def _relay(self, turn: Turn, received: float) -> None:
        deadline = self._config.gateway.chat_timeout_s
        first_token_at: float | None = None
        while True:
            try:
                message = await asyncio.wait_for(turn.replies.get(), deadline)
            except TimeoutError:
                await self._cancel_worker(turn.turn_id)
                message = ErrorReply("chat-timeout", f"no reply within {deadline:g} s")
            if isinstance(message, TokenChunk):
                first_token_at = first_token_at or time.monotonic()
                if not await self._reply(turn.peer, turn.request_id, ChatToken(message.text)):
                    await self._cancel_worker(turn.turn_id)
                    self._keep_failed(turn.turn_id, "client-gone")
                    self._metrics.chat_turn("client-gone")
                    log.info("the client went away mid-reply")
                    return
            elif isinstance(message, GenerateDone):
                stats = message.stats
                timings = TurnTimings(
                    queue_s=max(0.0, (time.monotonic() - received) - stats.total_s),
                    first_token_s=(first_token_at - received) if first_token_at else stats.total_s,
                    total_s=time.monotonic() - received,
                    prompt_tokens=stats.prompt_tokens,
                    prefilled_tokens=stats.prefilled_tokens,
                    generated_tokens=stats.generated_tokens,
                )
                try:
                    self._store.finish_turn(turn.turn_id, message.text, _timings_dict(timings))
                except StoreError as err:  # e.g. disk-full: the answer cannot be kept, so it is not given either
                    log.warning("turn %s: cannot store its answer: %s (%s)", turn.turn_id, err.message, err.code)
                    self._keep_failed(turn.turn_id, err.code)
                    self._metrics.chat_turn("failed")
                    await self._reply(turn.peer, turn.request_id, ErrorReply(err.code, err.message))
                    return
                self._metrics.chat_turn("ok", timings)
                log.info("turn answered: first token %.3f s, total %.3f s", timings.first_token_s, timings.total_s)
                await self._reply(
                    turn.peer, turn.request_id, ChatReply(turn.session_id, turn.turn_id, message.text, timings)
                )
                return
            elif isinstance(message, ErrorReply):
                self._keep_failed(turn.turn_id, message.code)
                self._metrics.chat_turn("cancelled" if message.code == "cancelled" else "failed")
                log.info("turn failed: %s (%s)", message.message, message.code)
                await self._reply(turn.peer, turn.request_id, message)
                return

    def _keep_failed(self, turn_id: str, code: str) -> None:
        """Mark the turn failed in the store; when even that cannot be written (a full disk), the next start does
        (`fail_running_turns`), and the reply to the client must not wait on it."""
        try:
            self._store.fail_turn(turn_id, code)
        except StoreError as err:
            log.warning("turn %s: cannot mark it failed: %s (%s)", turn_id, err.message, err.code)

    def worker_reply(self, request_id: str, message: Message) -> None:
        """Route a message from the llm worker to the turn it belongs to (late ones are dropped)."""
        turn = self._turns.get(request_id)
        if turn is not None:
            turn.replies.put_nowait(message)

    def program_down(self, program: str, code: str, why: str) -> None:
        """The worker died or hung: fail every turn it held, now."""
        if program != LLM:
            return
        for turn in list(self._turns.values()):
            self._fail(turn, code, why)

    async def cancel(self, turn_id: str) -> None:
        """The client asked to stop (or went away): stop the worker and end the turn."""
        turn = self._turns.get(turn_id)
        if turn is not None:
            await self._cancel_worker(turn_id)
            self._fail(turn, "cancelled", "the turn was cancelled by the client")

    def _fail(self, turn: Turn, code: str, why: str) -> None:
        turn.replies.put_nowait(ErrorReply(code, why))

    async def _cancel_worker(self, turn_id: str) -> None:
        with contextlib.suppress(PeerUnreachable):
            await self._server.send(LLM.encode(), CancelTurn(turn_id))

    async def _reply(self, peer: bytes, request_id: str, message: Message) -> bool:
        try:
            await self._server.send(peer, message, request_id)
        except PeerUnreachable:
            log.info("client %r went away before %s", peer, type(message).__name__)
            return False
        return True


def _timings_dict(timings: TurnTimings) -> dict[str, float | int]:
    return {name: getattr(timings, name) for name in timings.__struct_fields__}
