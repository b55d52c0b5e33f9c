"""The conversation store: sessions, the lines said in them, and the turns that produced those lines.

A turn is recorded when it starts ('running'); its user line is stored at once, the assistant line only when
the reply is complete. A failed turn keeps its user line and its error code, so nothing the user said is
lost, while `context()` gives the model only completed exchanges.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.store.db import StoreError, transaction

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Line:
    role: str
    text: str
    turn_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    title: str
    created_at: float
    updated_at: float
    turns: int


def new_id() -> str:
    return uuid.uuid4().hex


class ConversationStore:
    def __init__(self, conn: sqlite3.Connection, clock: Clock = time.time) -> None:
        self._conn = conn
        self._clock = clock

    def create_session(self) -> str:
        session_id = new_id()
        now = self._clock()
        with transaction(self._conn):  # every write in one: a full disk is a coded error (`disk-full`)
            self._conn.execute("INSERT INTO sessions (id, created_at, updated_at) VALUES (?, ?, ?)",
                               (session_id, now, now))  # fmt: skip
        return session_id

    def exists(self, session_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row is not None

    def require(self, session_id: str) -> None:
        if not self.exists(session_id):
            raise StoreError("session-not-found", f"no session {session_id!r}")

    def start_turn(self, session_id: str, user_text: str) -> str:
        """Record a new turn and its user line in one transaction."""
        turn_id = new_id()
        now = self._clock()
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO turns (id, session_id, status, started_at) VALUES (?, ?, 'running', ?)",
                (turn_id, session_id, now),
            )
            self._add_line(session_id, turn_id, "user", user_text, now)
            title = user_text[:80]
            self._conn.execute(
                "UPDATE sessions SET updated_at = ?, title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                (now, title, session_id),
            )
        return turn_id

    def finish_turn(self, turn_id: str, reply: str, timings: dict[str, Any]) -> None:
        """A running turn's reply; a turn that already ended (interrupted meanwhile) keeps what it has."""
        now = self._clock()
        with transaction(self._conn):
            row = self._conn.execute("SELECT session_id, status FROM turns WHERE id = ?", (turn_id,)).fetchone()
            if row is None:
                raise StoreError("turn-not-found", f"no turn {turn_id!r}")
            if row["status"] != "running":
                return
            self._add_line(row["session_id"], turn_id, "assistant", reply, now)
            self._conn.execute(
                "UPDATE turns SET status = 'done', timings = ?, ended_at = ? WHERE id = ?",
                (json.dumps(timings), now, turn_id),
            )
            self._conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, row["session_id"]))

    def add_trace(self, turn_id: str, trace: dict[str, float]) -> None:
        """A voice turn's stage times (seconds from the end of the user's speech), kept beside its LLM timings."""
        with transaction(self._conn):
            row = self._conn.execute("SELECT timings FROM turns WHERE id = ?", (turn_id,)).fetchone()
            if row is None:
                raise StoreError("turn-not-found", f"no turn {turn_id!r}")
            timings = json.loads(row["timings"] or "{}")
            self._conn.execute("UPDATE turns SET timings = ? WHERE id = ?",
                               (json.dumps({**timings, "trace": trace}), turn_id))  # fmt: skip

    def interrupt_turn(self, turn_id: str, heard: str, timings: dict[str, Any]) -> None:
        """Barge-in: the reply becomes what the listener heard of it. A turn with nothing heard is failed
        (`interrupted`), so the model's context leaves it out; the user's words stay in the history."""
        now = self._clock()
        with transaction(self._conn):
            row = self._conn.execute("SELECT session_id FROM turns WHERE id = ?", (turn_id,)).fetchone()
            if row is None:
                raise StoreError("turn-not-found", f"no turn {turn_id!r}")
            self._conn.execute("DELETE FROM lines WHERE turn_id = ? AND role = 'assistant'", (turn_id,))
            if heard:
                self._add_line(row["session_id"], turn_id, "assistant", heard, now)
            self._conn.execute(
                "UPDATE turns SET status = ?, error_code = 'interrupted', timings = ?, ended_at = ? WHERE id = ?",
                ("done" if heard else "failed", json.dumps(timings), now, turn_id),
            )
            self._conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, row["session_id"]))

    def fail_turn(self, turn_id: str, code: str) -> None:
        with transaction(self._conn):
            self._conn.execute(
                "UPDATE turns SET status = 'failed', error_code = ?, ended_at = ? WHERE id = ? AND status = 'running'",
                (code, self._clock(), turn_id),
            )

    def fail_running_turns(self, code: str) -> int:
        """At start-up: turns left 'running' by a previous life of the coordinator did not finish."""
        with transaction(self._conn):
            cur = self._conn.execute(
                "UPDATE turns SET status = 'failed', error_code = ?, ended_at = ? WHERE status = 'running'",
                (code, self._clock()),
            )
        return cur.rowcount

    def idle_sessions(self, before: float) -> list[str]:
        """Sessions untouched since `before` (wall clock) with no turn still running: the janitor's to delete."""
        rows = self._conn.execute(
            "SELECT id FROM sessions s WHERE updated_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id AND t.status = 'running')"
            " ORDER BY updated_at",
            (before,),
        ).fetchall()
        return [str(r["id"]) for r in rows]

    def history(self, session_id: str) -> list[Line]:
        self.require(session_id)
        rows = self._conn.execute(
            "SELECT role, text, turn_id, created_at FROM lines WHERE session_id = ? ORDER BY id", (session_id,)
        ).fetchall()
        return [Line(r["role"], r["text"], r["turn_id"], r["created_at"]) for r in rows]

    def context(self, session_id: str) -> list[Line]:
        """The lines of completed turns only, oldest first: what the model may be shown."""
        rows = self._conn.execute(
            "SELECT l.role, l.text, l.turn_id, l.created_at FROM lines l JOIN turns t ON t.id = l.turn_id "
            "WHERE l.session_id = ? AND t.status = 'done' ORDER BY l.id",
            (session_id,),
        ).fetchall()
        return [Line(r["role"], r["text"], r["turn_id"], r["created_at"]) for r in rows]

    def list_sessions(self, limit: int = 100) -> list[SessionInfo]:
        rows = self._conn.execute(
            "SELECT s.id, s.title, s.created_at, s.updated_at, "
            "(SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id) AS turns "
            "FROM sessions s ORDER BY s.updated_at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [SessionInfo(r["id"], r["title"], r["created_at"], r["updated_at"], r["turns"]) for r in rows]

    def delete_session(self, session_id: str) -> None:
        with transaction(self._conn):
            self.require(session_id)
            self._conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def _add_line(self, session_id: str, turn_id: str, role: str, text: str, now: float) -> None:
        self._conn.execute(
            "INSERT INTO lines (session_id, turn_id, role, text, created_at) VALUES (?, ?, ?, ?, ?)",
            (session_id, turn_id, role, text, now),
        )
