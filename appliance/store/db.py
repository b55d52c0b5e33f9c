"""Open the appliance database and bring its schema up to date.

Migrations are numbered SQL scripts applied in order inside one transaction each; the schema version is
SQLite's `user_version`. A database written by a newer Mynah is refused rather than guessed at.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
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
    # 2: voices (files under <data_dir>/voices/<id>/), settings (the active voice), jobs and their events.
    """
    CREATE TABLE voices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        language TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('cloned', 'approximated')),
        status TEXT NOT NULL CHECK (status IN ('ready', 'failed')),
        consent TEXT NOT NULL CHECK (consent != ''),
        consent_at REAL NOT NULL,
        reference_path TEXT NOT NULL,
        reference_text TEXT NOT NULL,
        dataset_list TEXT NOT NULL,
        clips INTEGER NOT NULL,
        adaptation_path TEXT NOT NULL DEFAULT '',
        gpt_weights TEXT NOT NULL DEFAULT '',
        sovits_weights TEXT NOT NULL DEFAULT '',
        measures TEXT NOT NULL DEFAULT '{}',
        job_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX voices_by_name ON voices(name COLLATE NOCASE);
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        step TEXT NOT NULL DEFAULT '',
        progress REAL NOT NULL DEFAULT 0,
        params TEXT NOT NULL,
        error_code TEXT NOT NULL DEFAULT '',
        error_message TEXT NOT NULL DEFAULT '',
        voice_id TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE job_events (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        step TEXT NOT NULL,
        progress REAL NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
    CREATE INDEX jobs_by_status ON jobs(status, created_at);
    """,
    # 3: the file a finished job made (a generated video: <data_dir>/jobs/<id>/avatar.mp4) and its media type.
    """
    ALTER TABLE jobs ADD COLUMN result_path TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN result_type TEXT NOT NULL DEFAULT '';
    """,
    # 4: paired devices (appliance/store/devices.py): only each token's sha256 is kept.
    """
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        last_seen_at REAL,
        revoked_at REAL
    );
    """,
)


class StoreError(CodedError):
    """A failure of this stage with a stable code."""


def database_error(err: sqlite3.Error) -> StoreError:
    """SQLite's failure as a coded error. A full disk is the operator's to fix, so it says so (`disk-full`)."""
    if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StoreError("disk-full", "the disk holding the data directory is full: nothing more can be stored "
                          "until space is freed there")  # fmt: skip
    return StoreError("store-failed", f"the database failed: {err}")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises. SQLite's own failures (a full disk at
    COMMIT, in WAL mode the first write to need new space) become a StoreError with a code, and no transaction is
    left open on the connection: SQLite may already have rolled it back, or a failed COMMIT may have kept it."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the block's failure is the one to report
                    conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise database_error(err) from err


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
        conn.execute("BEGIN IMMEDIATE")
        try:
            # The coordinator and the gateway (devices) both open the database: the other may have won.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= number:
                conn.execute("COMMIT")
                continue
            log.info("migrating the database to schema %s", number)
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
