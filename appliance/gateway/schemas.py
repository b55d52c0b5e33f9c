"""HTTP schemas: what the API accepts and returns. Separate from the IPC messages and the store's rows."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiErrorOut(_Schema):
    code: str = Field(description="A stable error code; see docs/errors.md")
    message: str


class ChatIn(_Schema):
    text: str = Field(description="What the user says. Plain text; the length limit is in the configuration.")
    session_id: str | None = Field(None, description="Continue this session; omit to start a new one")
    stream: bool = Field(False, description="Answer as server-sent events: started, token..., done or error")


class TimingsOut(_Schema):
    queue_s: float = Field(description="Time the turn waited before generation started")
    first_token_s: float = Field(description="From the request's arrival at the coordinator to the first token")
    total_s: float
    prompt_tokens: int
    prefilled_tokens: int = Field(description="Prompt tokens evaluated this turn; the rest came from kept KV state")
    generated_tokens: int


class ChatOut(_Schema):
    session_id: str
    turn_id: str
    reply: str
    timings: TimingsOut


class ProgramOut(_Schema):
    name: str
    state: str = Field(description="supervisord's state: RUNNING, STARTING, BACKOFF, EXITED, FATAL, ...")
    ready: bool = Field(description="The program said it is ready (its model is loaded)")
    pid: int
    uptime_s: float
    restarts: int
    backend: str
    model: str
    drops: dict[str, int] = Field(description="Messages dropped by bounded queues, by queue")
    detail: str = Field(description="Why the program is not ready, when known")


class HealthOut(_Schema):
    status: Literal["ok", "degraded", "down"]
    programs: list[ProgramOut]


class SessionOut(_Schema):
    session_id: str
    title: str
    created_at: float
    updated_at: float
    turns: int


class SessionsOut(_Schema):
    sessions: list[SessionOut]


class LineOut(_Schema):
    role: Literal["user", "assistant"]
    text: str
    turn_id: str
    created_at: float


class HistoryOut(_Schema):
    session_id: str
    lines: list[LineOut]


class SegmentOut(_Schema):
    start: float = Field(description="Seconds from the start of the audio")
    end: float
    text: str


class TranscriptOut(_Schema):
    text: str
    language: str
    duration_s: float
    segments: list[SegmentOut]
    timings: dict[str, float] = Field(description="decode_s, total_s and queued_s (waiting behind other batch work)")
