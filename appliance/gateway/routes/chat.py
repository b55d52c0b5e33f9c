"""POST /chat: one text turn, answered whole or streamed as server-sent events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from appliance.gateway.deps import Config, Link
from appliance.gateway.errors import ApiError
from appliance.gateway.metrics import count_stream_error
from appliance.gateway.routes.sessions import checked_session_id
from appliance.gateway.schemas import ApiErrorOut, ChatIn, ChatOut, TimingsOut
from ipc.messages import CancelTurn, ChatReply, ChatRequest, ChatStarted, ChatToken, ErrorReply, Message

router = APIRouter(tags=["chat"])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorOut, "description": "session-not-found"},
    413: {"model": ApiErrorOut, "description": "request-too-large"},
    422: {"model": ApiErrorOut, "description": "invalid-request, empty-text, text-too-long"},
    503: {"model": ApiErrorOut, "description": "llm-not-ready, llm-worker-crashed, llm-worker-hung, busy, ..."},
    504: {"model": ApiErrorOut, "description": "chat-timeout"},
}


def _timings(reply: ChatReply) -> TimingsOut:
    t = reply.timings
    return TimingsOut(
        queue_s=round(t.queue_s, 4), first_token_s=round(t.first_token_s, 4), total_s=round(t.total_s, 4),
        prompt_tokens=t.prompt_tokens, prefilled_tokens=t.prefilled_tokens, generated_tokens=t.generated_tokens,
    )  # fmt: skip


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _event(message: Message) -> str:
    match message:
        case ChatStarted():
            return _sse("started", {"session_id": message.session_id, "turn_id": message.turn_id})
        case ChatToken():
            return _sse("token", {"text": message.text})
        case ChatReply():
            done = ChatOut(session_id=message.session_id, turn_id=message.turn_id, reply=message.reply,
                           timings=_timings(message))  # fmt: skip
            return _sse("done", done.model_dump())
        case ErrorReply():
            return _sse("error", {"code": message.code, "message": message.message})
    return _sse("error", {"code": "unexpected-reply", "message": type(message).__name__})


def _error_code(message: Message) -> str | None:
    """The code of the `error` event `_event` makes of `message`; None for any other event."""
    if isinstance(message, ErrorReply):
        return message.code
    return None if isinstance(message, ChatStarted | ChatToken | ChatReply) else "unexpected-reply"


@router.post(
    "/chat",
    response_model=ChatOut,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "ChatOut, or SSE if stream"}},
    summary="Say something in text; get the reply (streamed with stream=true)",
)
async def chat(body: ChatIn, request: Request, link: Link, config: Config) -> ChatOut | StreamingResponse:
    text = body.text.strip()
    if not text:
        raise ApiError("empty-text", "text is empty")
    if len(text) > config.gateway.max_text_chars:
        raise ApiError("text-too-long", f"text is limited to {config.gateway.max_text_chars} characters")
    session_id = checked_session_id(body.session_id) if body.session_id is not None else None
    replies = link.converse(ChatRequest(text=text, session_id=session_id))
    if body.stream:
        return StreamingResponse(_stream(replies, link, request), media_type="text/event-stream")
    async for message in replies:
        if isinstance(message, ChatReply):
            return ChatOut(session_id=message.session_id, turn_id=message.turn_id, reply=message.reply,
                           timings=_timings(message))  # fmt: skip
        if isinstance(message, ErrorReply):
            raise ApiError(message.code, message.message)
    raise ApiError("coordinator-unavailable", "the reply stream ended early")


async def _stream(replies: AsyncIterator[Message], link: Link, request: Request) -> AsyncIterator[str]:
    turn_id = ""
    finished = False
    try:
        async for message in replies:
            if isinstance(message, ChatStarted):
                turn_id = message.turn_id
            finished = isinstance(message, ChatReply | ErrorReply)
            if (code := _error_code(message)) is not None:
                count_stream_error(request, code)
            yield _event(message)
    finally:
        if turn_id and not finished:
            await link.tell(CancelTurn(turn_id))  # the client went away: stop generating for nobody
