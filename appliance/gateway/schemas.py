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


class HealthSummary(_Schema):
    ready: int = Field(description="Programs ready")
    total: int = Field(description="Programs known")
    restarts_last_hour: int = Field(description="Restarts of any program in the last hour")
    problem: str = Field(description="The worst problem in one line; empty when there is none")


class HealthOut(_Schema):
    status: Literal["ok", "degraded", "down"]
    programs: list[ProgramOut]
    summary: HealthSummary
    problems: list[str] = Field(
        default_factory=list,
        description="Every problem in one line each: a program on a fallback backend and why, the disk quota",
    )


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


class SpeakIn(_Schema):
    text: str = Field(description="What to say. Markdown, emoji and code are not spoken.")
    voice: str | None = Field(None, description="A voice id from /api/voices; omit for the active voice")
    format: Literal["wav", "pcm"] = Field(
        "wav", description="wav: one WAV file; pcm: raw 16-bit little-endian mono at 48 kHz, streamed as it is made"
    )
    speed: float = Field(1.0, gt=0.25, le=4.0, description="1.25 speaks 25% faster")


class VoiceOut(_Schema):
    voice_id: str
    name: str
    language: str
    kind: Literal["cloned", "approximated"] = Field(
        description="cloned: GPT-SoVITS weights trained on the sample; approximated: the built-in voice adapted "
        "toward the sample (pitch and timbre), not a clone"
    )
    status: str
    consent: str = Field(description="The statement the speaker agreed to when the voice was trained")
    consent_at: float
    reference_text: str = Field(description="What the reference clip says")
    clips: int = Field(description="Clips of the sample the voice was made from")
    created_at: float
    updated_at: float
    active: bool
    note: str
    measures: dict[str, float] = Field(description="What training measured, e.g. median F0 of sample and voice")


class VoicesOut(_Schema):
    voices: list[VoiceOut]
    active_voice_id: str | None = Field(description="None: the configured engine's own voice")


class JobEventOut(_Schema):
    seq: int
    at: float
    kind: Literal["queued", "progress", "done", "failed", "cancelled"]
    step: str
    progress: float
    detail: str


class JobOut(_Schema):
    job_id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    step: str
    progress: float = Field(description="Of the whole job, 0 to 1")
    error_code: str
    error_message: str
    voice_id: str | None = Field(description="The voice the job registered, once done")
    created_at: float
    updated_at: float
    events: list[JobEventOut]


class JobStartedOut(_Schema):
    job_id: str
    status: Literal["queued", "running"]
    events_url: str


class WebRtcOfferIn(_Schema):
    sdp: str = Field(description="The client's SDP offer, sent after ICE gathering completed (no trickle)")
    type: str = Field("offer", description='"offer"')
    session_id: str | None = Field(None, description="Continue this session; omit to start a new one")
    voice: str | None = Field(None, description="A voice id; omit for the active voice")
    avatar: str | None = Field(None, description="An avatar id; omit for the default avatar")
    language: str | None = Field(None, description="The language spoken, e.g. en; omit for the configured one")


class WebRtcAnswerOut(_Schema):
    sdp: str
    type: Literal["answer"] = "answer"
    session_id: str


class SettingOut(_Schema):
    key: str = Field(description="Its dotted path in mynah.toml, e.g. llm.backend")
    label: str
    kind: Literal["choice", "int", "float", "text"]
    value: str | int | float | None = Field(description="What the appliance uses now (after the overlay)")
    overridden: bool = Field(description="Set from the UI (settings.json) rather than by mynah.toml")
    choices: list[str]
    unavailable: dict[str, str] = Field(description="Choices this box cannot run now, with why")
    minimum: float | None
    maximum: float | None
    help: str
    programs: list[str] = Field(description="The programs restarted to apply a change")


class SettingsOut(_Schema):
    settings: list[SettingOut]
    restarting: list[str] = Field(description="Programs being restarted to apply the last change")


class SettingsIn(_Schema):
    values: dict[str, str | int | float | None] = Field(
        description="{key: value} to change; null puts a key back to mynah.toml's value"
    )


class ProgramStatusOut(ProgramOut):
    rss_bytes: int
    cpu_s: float = Field(description="CPU seconds used since the program started")
    vram_bytes: int


class ResourcesOut(_Schema):
    ram_total_bytes: int
    ram_used_bytes: int
    ram_budget_bytes: int = Field(description="What the residency plan may fill (configured, or total less reserve)")
    cpu_cores: float = Field(description="Cores the plan counts on")
    cpu_percent: float = Field(description="Whole-machine CPU use since the last status, 0-100")
    gpu_total_bytes: int = Field(description="0: no GPU")
    gpu_used_bytes: int
    data_bytes: int = Field(description="The data directory's size at the janitor's last run; -1: not measured")
    data_quota_bytes: int = Field(description="0: no quota")
    max_sessions: int


class TurnStatusOut(_Schema):
    turn_id: str
    session_id: str
    started_at: float
    status: Literal["running", "done", "failed"]
    error_code: str
    stages: dict[str, float] = Field(description="Seconds: a voice turn's trace (from the end of speech) or a text "
                                     "turn's timings")  # fmt: skip


class ErrorSeenOut(_Schema):
    at: float
    code: str
    status: int


class StatusOut(_Schema):
    status: Literal["ok", "degraded", "down"]
    summary: HealthSummary
    programs: list[ProgramStatusOut]
    resources: ResourcesOut
    turns: list[TurnStatusOut] = Field(description="Recent turns, newest first")
    errors: list[ErrorSeenOut] = Field(description="Recent errors the API answered, newest first")


class AvatarListItemOut(_Schema):
    avatar_id: str
    width: int
    height: int
    active: bool
    image_url: str


class AvatarsOut(_Schema):
    avatars: list[AvatarListItemOut]
    active_avatar_id: str | None = Field(description="None: the configured default portrait")
