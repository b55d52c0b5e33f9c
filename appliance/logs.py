"""Logging for every program: stdlib logging to stdout (supervisord's files; journald under systemd).

`json` writes one object per line: time, level, program, pid, logger, message, and the session, turn or job a
line belongs to when the code that logged it set them (`log_context`); an exception's traceback rides in `exc`.
`turn_id` names live work: a chat turn, a speech or face stream (its turn id), a live audio stream (its stream
id). `job_id` names batch work: a file transcription (`file:<request id>`), a video render (the job's id, or a
direct render's id).
`text` writes the same facts as a plain line for a person. `pretty()` turns a JSON line back into that line,
so `mynah logs` reads as well either way.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

# The session, turn and job a task is working for; asyncio copies the context into every task it creates.
SESSION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("session_id", default=None)
TURN_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("turn_id", default=None)
JOB_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
CONTEXT_FIELDS = ("session_id", "turn_id", "job_id")


@contextlib.contextmanager
def log_context(
    *, session_id: str | None = None, turn_id: str | None = None, job_id: str | None = None
) -> Iterator[None]:
    """Tag every line logged inside the block (in this task) with the session, turn and job; None keeps what is
    set."""
    tokens = []
    if session_id is not None:
        tokens.append((SESSION_ID, SESSION_ID.set(session_id)))
    if turn_id is not None:
        tokens.append((TURN_ID, TURN_ID.set(turn_id)))
    if job_id is not None:
        tokens.append((JOB_ID, JOB_ID.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Copies the program name and the context's session, turn and job onto every record."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self._program = program

    def filter(self, record: logging.LogRecord) -> bool:
        record.program = self._program
        record.session_id = SESSION_ID.get()
        record.turn_id = TURN_ID.get()
        record.job_id = JOB_ID.get()
        return True


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "program": getattr(record, "program", ""),
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exc"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{n}={v}" for n in CONTEXT_FIELDS if (v := getattr(record, n, None)))
        head = f"{_iso(record.created)} {record.levelname} {getattr(record, 'program', '')}[{record.process}]"
        text = f"{head} {record.name}: {record.getMessage()}" + (f" [{context}]" if context else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(program: str, fmt: str = "json", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's records to `stream` (stdout) in `fmt`; $MYNAH_LOG_LEVEL overrides `level`."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter(program))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(os.environ.get("MYNAH_LOG_LEVEL", level).upper())


def pretty(line: str) -> str:
    """A JSON log line as a person reads it; any other line as it is."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line.rstrip("\n")
    try:
        record = json.loads(stripped)
    except ValueError:
        return line.rstrip("\n")
    if not isinstance(record, dict) or "message" not in record:
        return line.rstrip("\n")
    context = " ".join(f"{n}={record[n]}" for n in CONTEXT_FIELDS if record.get(n))
    head = f"{record.get('time', '')} {record.get('level', '')} {record.get('program', '')}[{record.get('pid', '')}]"
    text = f"{head} {record.get('logger', '')}: {record['message']}" + (f" [{context}]" if context else "")
    if record.get("exc"):
        text += "\n" + str(record["exc"])
    return text
