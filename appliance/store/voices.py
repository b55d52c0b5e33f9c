"""The voice store: a row per voice in SQLite, its files in `<data_dir>/voices/<id>/`, and the active voice.

A voice is registered in one step from a finished job's folder: the folder is renamed into place and the row
inserted; if the insert fails the folder is moved back, so there is never a row without files or files without
a row. File paths are stored relative to the voice's folder, so the data directory can move.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.store.conversations import Clock, new_id
from appliance.store.db import StoreError, transaction

ACTIVE_VOICE = "active_voice"
MAX_NAME_CHARS = 64
KINDS = ("cloned", "approximated")
APPROXIMATION_NOTE = (
    "An approximation: the built-in voice with its pitch and timbre moved toward the sample. Full voice cloning "
    "needs GPT-SoVITS (see docs/tts.md)."
)
_NAME_ALLOWED = re.compile(r"[\w .,'()&+-]+")


def check_voice_name(name: str) -> str:
    """The name, trimmed, or StoreError voice-name-invalid: names are shown and listed, never used as paths."""
    trimmed = unicodedata.normalize("NFC", name).strip()
    if not trimmed:
        raise StoreError("voice-name-invalid", "a voice needs a name")
    if len(trimmed) > MAX_NAME_CHARS:
        raise StoreError("voice-name-invalid", f"voice names are at most {MAX_NAME_CHARS} characters")
    if "/" in trimmed or "\\" in trimmed or trimmed.startswith(".") or "\x00" in trimmed:
        raise StoreError("voice-name-invalid", f"{trimmed!r}: a voice name cannot hold / or \\ or start with a dot")
    if not _NAME_ALLOWED.fullmatch(trimmed):
        raise StoreError("voice-name-invalid", f"{trimmed!r}: use letters, digits, spaces and . , ' ( ) & + - _")
    return trimmed


@dataclass(frozen=True, slots=True)
class VoiceFiles:
    """What a finished job made, with paths relative to its folder."""

    kind: str
    reference_path: str
    reference_text: str
    dataset_list: str
    clips: int
    adaptation_path: str = ""
    gpt_weights: str = ""
    sovits_weights: str = ""
    measures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VoiceRecord:
    voice_id: str
    name: str
    language: str
    kind: str
    status: str
    consent: str
    consent_at: float
    folder: Path
    reference_text: str
    clips: int
    files: dict[str, str]  # reference_path, dataset_list, adaptation_path, gpt_weights, sovits_weights: absolute
    measures: dict[str, float]
    created_at: float
    updated_at: float


class VoiceStore:
    def __init__(self, conn: sqlite3.Connection, voices_dir: Path, clock: Clock = time.time) -> None:
        self._conn = conn
        self._dir = voices_dir
        self._clock = clock

    def list(self) -> list[VoiceRecord]:
        rows = self._conn.execute("SELECT * FROM voices ORDER BY created_at, id").fetchall()
        return [self._record(row) for row in rows]

    def get(self, voice_id: str) -> VoiceRecord:
        row = self._conn.execute("SELECT * FROM voices WHERE id = ?", (voice_id,)).fetchone()
        if row is None:
            raise StoreError("voice-not-found", f"no voice {voice_id!r}")
        return self._record(row)

    def name_taken(self, name: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM voices WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
        return row is not None

    def register(
        self, *, name: str, language: str, consent: str, consent_at: float, files: VoiceFiles, source: Path, job_id: str
    ) -> VoiceRecord:
        """Move `source` (a finished job's folder) into place as a new voice and record it, all or nothing."""
        if files.kind not in KINDS:
            raise StoreError("voice-invalid", f"unknown voice kind {files.kind!r}")
        name = check_voice_name(name)
        voice_id = new_id()
        folder = self._dir / voice_id
        self._dir.mkdir(parents=True, exist_ok=True)
        os.replace(source, folder)
        now = self._clock()
        try:
            with transaction(self._conn):
                if self.name_taken(name):
                    raise StoreError("voice-name-taken", f"there is already a voice named {name!r}")
                self._conn.execute(
                    "INSERT INTO voices (id, name, language, kind, status, consent, consent_at, reference_path,"
                    " reference_text, dataset_list, clips, adaptation_path, gpt_weights, sovits_weights, measures,"
                    " job_id, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, 'ready', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (voice_id, name, language, files.kind, consent, consent_at, files.reference_path,
                     files.reference_text, files.dataset_list, files.clips, files.adaptation_path, files.gpt_weights,
                     files.sovits_weights, json.dumps(files.measures), job_id, now, now),
                )  # fmt: skip
        except BaseException:
            os.replace(folder, source)
            raise
        return self.get(voice_id)

    def delete(self, voice_id: str) -> None:
        """Remove the row (and the active setting naming it), then the folder."""
        with transaction(self._conn):
            self.get(voice_id)
            self._conn.execute("DELETE FROM voices WHERE id = ?", (voice_id,))
            self._conn.execute("DELETE FROM settings WHERE key = ? AND value = ?", (ACTIVE_VOICE, voice_id))
        folder = self._dir / voice_id
        trash = self._dir / f".deleted-{voice_id}"
        with contextlib.suppress(FileNotFoundError):
            os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def active(self) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (ACTIVE_VOICE,)).fetchone()
        return str(row["value"]) if row is not None else None

    def activate(self, voice_id: str | None) -> None:
        with transaction(self._conn):
            if voice_id is None:
                self._conn.execute("DELETE FROM settings WHERE key = ?", (ACTIVE_VOICE,))
                return
            self.get(voice_id)
            self._conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (ACTIVE_VOICE, voice_id),
            )

    def _record(self, row: sqlite3.Row) -> VoiceRecord:
        folder = self._dir / row["id"]
        names = ("reference_path", "dataset_list", "adaptation_path", "gpt_weights", "sovits_weights")
        files = {name: str(folder / row[name]) if row[name] else "" for name in names}
        measures: Any = json.loads(row["measures"])
        return VoiceRecord(voice_id=row["id"], name=row["name"], language=row["language"], kind=row["kind"],
                           status=row["status"], consent=row["consent"], consent_at=row["consent_at"], folder=folder,
                           reference_text=row["reference_text"], clips=row["clips"], files=files,
                           measures={str(k): float(v) for k, v in measures.items()}, created_at=row["created_at"],
                           updated_at=row["updated_at"])  # fmt: skip
