"""The job store: long batch jobs (voice training, generated videos) and every progress event they reported, in order.

Events are numbered per job, so a client that lost its event stream asks for those after the last it saw and
misses nothing. A job ends once: done, failed or cancelled; later reports for it are ignored.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from appliance.store.conversations import Clock, new_id
from appliance.store.db import StoreError, transaction

ENDED = ("done", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    kind: str
    status: str
    step: str
    progress: float
    params: dict[str, Any]
    error_code: str
    error_message: str
    voice_id: str | None
    created_at: float
    updated_at: float
    result_path: str = ""  # the file a finished job made, if it makes one
    result_type: str = ""  # its media type

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass(frozen=True, slots=True)
class EventRecord:
    seq: int
    at: float
    kind: str
    step: str
    progress: float
    detail: str


class JobStore:
    def __init__(self, conn: sqlite3.Connection, clock: Clock = time.time) -> None:
        self._conn = conn
        self._clock = clock

    def create(self, kind: str, params: dict[str, Any], detail: str = "waiting for the trainer") -> JobRecord:
        job_id = new_id()
        now = self._clock()
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO jobs (id, kind, status, params, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?, ?)",
                (job_id, kind, json.dumps(params), now, now),
            )
            self._append(job_id, "queued", "", 0.0, detail, now)
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord:
        row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise StoreError("job-not-found", f"no job {job_id!r}")
        return JobRecord(job_id=row["id"], kind=row["kind"], status=row["status"], step=row["step"],
                         progress=row["progress"], params=json.loads(row["params"]), error_code=row["error_code"],
                         error_message=row["error_message"], voice_id=row["voice_id"], created_at=row["created_at"],
                         updated_at=row["updated_at"], result_path=row["result_path"],
                         result_type=row["result_type"])  # fmt: skip

    def events(self, job_id: str, after: int = -1) -> list[EventRecord]:
        rows = self._conn.execute(
            "SELECT seq, at, kind, step, progress, detail FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq",
            (job_id, after),
        ).fetchall()
        return [EventRecord(r["seq"], r["at"], r["kind"], r["step"], r["progress"], r["detail"]) for r in rows]

    def progress(self, job_id: str, step: str, progress: float, detail: str) -> bool:
        """Record a step's progress; False (nothing stored) when the job has already ended."""
        return self._update(job_id, "running", "progress", step, progress, detail)

    def finish(self, job_id: str, voice_id: str | None, detail: str, *, result: tuple[str, str] | None = None) -> bool:
        """The job is done; `result` is the (path, media type) of the file it made, when it makes one."""
        return self._update(job_id, "done", "done", None, 1.0, detail, voice_id=voice_id, result=result)

    def fail(self, job_id: str, code: str, message: str) -> bool:
        status = "cancelled" if code == "cancelled" else "failed"
        return self._update(job_id, status, status, None, None, message, error_code=code, error_message=message)

    def unfinished(self) -> list[JobRecord]:
        rows = self._conn.execute("SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at")
        return [self.get(row["id"]) for row in rows.fetchall()]

    def _update(
        self,
        job_id: str,
        status: str,
        kind: str,
        step: str | None,
        progress: float | None,
        detail: str,
        *,
        voice_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        result: tuple[str, str] | None = None,
    ) -> bool:
        now = self._clock()
        with transaction(self._conn):
            job = self.get(job_id)
            if job.ended:
                return False
            step = job.step if step is None else step
            progress = job.progress if progress is None else max(job.progress, progress)
            self._conn.execute(
                "UPDATE jobs SET status = ?, step = ?, progress = ?, updated_at = ?, voice_id = COALESCE(?, voice_id),"
                " error_code = COALESCE(?, error_code), error_message = COALESCE(?, error_message) WHERE id = ?",
                (status, step, progress, now, voice_id, error_code, error_message, job_id),
            )
            if result is not None:
                self._conn.execute("UPDATE jobs SET result_path = ?, result_type = ? WHERE id = ?", (*result, job_id))
            self._append(job_id, kind, step, progress, detail, now)
        return True

    def _append(self, job_id: str, kind: str, step: str, progress: float, detail: str, at: float) -> None:
        row = self._conn.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM job_events WHERE job_id = ?", (job_id,))
        seq = int(row.fetchone()[0])
        self._conn.execute(
            "INSERT INTO job_events (job_id, seq, at, kind, step, progress, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job_id, seq, at, kind, step, progress, detail[:2000]),
        )
