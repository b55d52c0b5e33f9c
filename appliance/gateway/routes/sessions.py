"""Sessions and their stored history."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query

from appliance.gateway.deps import Link
from appliance.gateway.errors import ApiError
from appliance.gateway.schemas import ApiErrorOut, HistoryOut, LineOut, SessionOut, SessionsOut
from ipc.messages import DeleteSession, GetHistory, History, ListSessions, SessionList

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorOut, "description": "No such session (code session-not-found)"}
}


def checked_session_id(session_id: str) -> str:
    """Session ids are 32 lowercase hex digits; anything else cannot name a session."""
    if not SESSION_ID.match(session_id):
        raise ApiError("session-not-found", f"no session {session_id[:64]!r}")
    return session_id


@router.get("", response_model=SessionsOut, summary="Sessions, most recently active first")
async def list_sessions(link: Link, limit: int = Query(100, ge=1, le=1000)) -> SessionsOut:
    reply = await link.ask(ListSessions(limit))
    assert isinstance(reply, SessionList)
    return SessionsOut(
        sessions=[
            SessionOut(session_id=s.session_id, title=s.title, created_at=s.created_at, updated_at=s.updated_at,
                       turns=s.turns)
            for s in reply.sessions
        ]
    )  # fmt: skip


@router.get("/{session_id}/history", response_model=HistoryOut, responses=NOT_FOUND, summary="Everything said")
async def history(session_id: str, link: Link) -> HistoryOut:
    reply = await link.ask(GetHistory(checked_session_id(session_id)))
    assert isinstance(reply, History)
    return HistoryOut(
        session_id=reply.session_id,
        lines=[
            LineOut(role="user" if line.role == "user" else "assistant", text=line.text, turn_id=line.turn_id,
                    created_at=line.created_at)
            for line in reply.lines
        ],
    )  # fmt: skip


@router.delete("/{session_id}", status_code=204, responses=NOT_FOUND, summary="Delete a session and its history")
async def delete_session(session_id: str, link: Link) -> None:
    await link.ask(DeleteSession(checked_session_id(session_id)))
