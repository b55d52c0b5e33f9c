"""Open the appliance database and bring its schema up to date.

Migrations are numbered SQL scripts applied in order inside one transaction each; the schema version is
SQLite's `user_version`. A database written by a newer Mynah is refused rather than guessed at.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from ipc.errors import CodedError

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    # 1: sessions, their lines and their turns.
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE turns (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        error_code TEXT,
        timings TEXT,
        started_at REAL NOT NULL,
        ended_at REAL
    );
    CREATE TABLE lines (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        text TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX lines_by_session ON lines(session_id, id);
    CREATE INDEX turns_by_session ON turns(session_id, started_at);
    """,
)


class StoreError(CodedError):
    """A failure of this stage with a stable code."""


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; survives a crash mid-write
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; return the schema version now in force."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            "store-too-new",
            f"the database is at schema {version}, this Mynah knows up to {len(MIGRATIONS)}: upgrade Mynah",
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        log.info("migrating the database to schema %s", number)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
