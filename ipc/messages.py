"""The wire contract: every message that crosses a process boundary, in one module.

Each message is a frozen, typed msgspec Struct, tagged with its class name. The codec (ipc/codec.py) puts
one of these in a small msgpack header frame; raw bytes (PCM, pixels, uploads) travel as separate payload
frames beside it, never inside the header. Bump PROTOCOL_VERSION on any incompatible change: a peer that
speaks another version is refused with a typed error, never half-understood.
"""

from __future__ import annotations

import enum
from typing import ClassVar

import msgspec

PROTOCOL_VERSION = 1


class Priority(enum.IntEnum):
    """Control messages overtake queued data (cancel must never wait behind a queue of work)."""

    CONTROL = 0
    DATA = 1


class Message(msgspec.Struct, frozen=True, tag=True, forbid_unknown_fields=True):
    """Base of every message. `final` marks the last message of a streamed reply."""

    priority: ClassVar[Priority] = Priority.DATA
    final: ClassVar[bool] = True


# --- worker lifecycle -----------------------------------------------------------------------------------


class WorkerHello(Message, frozen=True):
    """First message of a worker's life: it is alive and loading (not ready)."""

    program: str
    pid: int


class WorkerReady(Message, frozen=True):
    """Sent after the worker's model is loaded: the only meaning of 'ready'."""

    program: str
    pid: int
    backend: str
    model: str
    degraded: str = ""  # why it is not on its preferred backend (procs/common/fallback.py); "" when it is


class WorkerFailed(Message, frozen=True):
    """Sent just before a worker exits non-zero, so /health can say why (e.g. its model is missing)."""

    program: str
    pid: int
    code: str
    message: str


class Heartbeat(Message, frozen=True):
    """Sent every heartbeat interval while loading and working. It repeats the readiness facts so that a
    restarted coordinator learns them without asking."""

    program: str
    pid: int
    ready: bool = False
    backend: str = ""
    model: str = ""
    busy: bool = False
    drops: dict[str, int] = {}
    degraded: str = ""


class ProcessStateChanged(Message, frozen=True):
    """A supervisord PROCESS_STATE event, forwarded by the event listener."""

    program: str
    from_state: str
    to_state: str
    pid: int = 0
    expected: bool = True


class ShutdownWorker(Message, frozen=True):
    priority: ClassVar[Priority] = Priority.CONTROL
    reason: str = ""


# --- chat generation (coordinator <-> llm worker) -----------------------------------------------------------


class ChatLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One line of a conversation: role is 'user' or 'assistant'."""

    role: str
    text: str


class GenerateRequest(Message, frozen=True):
    """Continue a session's conversation. `history` holds earlier complete exchanges, oldest first."""

    turn_id: str
    session_id: str
    history: tuple[ChatLine, ...]
    user_text: str
    max_tokens: int


class TokenChunk(Message, frozen=True):
    final: ClassVar[bool] = False
    turn_id: str
    text: str


class GenerationStats(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prompt_tokens: int
    prefilled_tokens: int
    generated_tokens: int
    first_token_s: float
    total_s: float
    stop_reason: str


class GenerateDone(Message, frozen=True):
    turn_id: str
    text: str
    stats: GenerationStats


class CancelTurn(Message, frozen=True):
    priority: ClassVar[Priority] = Priority.CONTROL
    turn_id: str


# --- front door (gateway / CLI <-> coordinator) -------------------------------------------------------------


class ErrorReply(Message, frozen=True):
    """A request failed. `code` is one of the documented error codes (docs/errors.md)."""

    code: str
    message: str


class ChatRequest(Message, frozen=True):
    text: str
    session_id: str | None = None


class ChatStarted(Message, frozen=True):
    """First message of a chat reply: the turn is stored and generation has been asked for."""

    final: ClassVar[bool] = False
    session_id: str
    turn_id: str


class ChatToken(Message, frozen=True):
    final: ClassVar[bool] = False
    text: str


class TurnTimings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    queue_s: float
    first_token_s: float
    total_s: float
    prompt_tokens: int
    prefilled_tokens: int
    generated_tokens: int


class ChatReply(Message, frozen=True):
    session_id: str
    turn_id: str
    reply: str
    timings: TurnTimings


class ProgramStatus(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    state: str
    ready: bool
    pid: int
    uptime_s: float
    restarts: int
    backend: str = ""
    model: str = ""
    drops: dict[str, int] = {}
    detail: str = ""
    restarts_last_hour: int = 0


class HealthQuery(Message, frozen=True):
    pass


class HealthReport(Message, frozen=True):
    status: str
    programs: tuple[ProgramStatus, ...]
    problems: tuple[str, ...] = ()  # what is wrong beyond the programs (e.g. the data directory is over quota)


class SessionSummary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    session_id: str
    created_at: float
    updated_at: float
    turns: int
    title: str


class ListSessions(Message, frozen=True):
    limit: int = 100


class SessionList(Message, frozen=True):
    sessions: tuple[SessionSummary, ...]


class StoredLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: str
    text: str
    turn_id: str
    created_at: float


class GetHistory(Message, frozen=True):
    session_id: str


class History(Message, frozen=True):
    session_id: str
    lines: tuple[StoredLine, ...]


class DeleteSession(Message, frozen=True):
    session_id: str


class SessionDeleted(Message, frozen=True):
    session_id: str


# --- speech to text -----------------------------------------------------------------------------------------


class TranscriptSegment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    start: float
    end: float
    text: str


class TranscriptWord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One recognised word and where it was heard, in seconds from the file's start (lip-sync aligns to it)."""

    start: float
    end: float
    word: str
    probability: float


class SttTimings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decode_s: float
    total_s: float
    queued_s: float = 0.0


class TranscribeFile(Message, frozen=True):
    """Transcribe an uploaded file; its bytes travel as the single payload frame. Batch work."""

    filename: str
    language: str | None = None
    word_timestamps: bool = False  # also time each word (TranscriptResult.words); costs an alignment pass


class TranscriptResult(Message, frozen=True):
    text: str
    language: str
    duration_s: float
    segments: tuple[TranscriptSegment, ...]
    timings: SttTimings
    words: tuple[TranscriptWord, ...] = ()  # only when the request asked for word_timestamps


class AudioStreamOpen(Message, frozen=True):
    """Open a live audio stream (16 kHz mono PCM16 through the sender's ring). The reply is a stream of
    events that ends with AudioStreamClosed."""

    stream_id: str
    language: str | None = None
    # False: no speculative final at the first pause; the final is decoded once the end of speech is confirmed
    # (the sequential pipeline of bench/latency.py, to measure what streaming gains).
    speculative: bool = True


class AudioChunk(Message, frozen=True):
    """`ref` points at PCM16 samples in the sender's ring; `first_sample` is the stream's sample index."""

    stream_id: str
    ref: RingSlotRef
    first_sample: int


class AudioStreamClose(Message, frozen=True):
    """The end of a live stream. Data, not control: it must not overtake the stream's last audio."""

    stream_id: str


class AudioStreamClosed(Message, frozen=True):
    stream_id: str
    dropped_chunks: int = 0


class VadEvent(Message, frozen=True):
    """kind: "start" or "end". `sample` is the stream sample index where speech started or stopped;
    `at` is the monotonic time (CLOCK_MONOTONIC, shared by every process on the box) it was detected."""

    final: ClassVar[bool] = False
    stream_id: str
    utterance: int
    kind: str
    sample: int
    at: float


class PartialTranscript(Message, frozen=True):
    """`committed` never changes within an utterance; `unstable` may still be revised."""

    final: ClassVar[bool] = False
    stream_id: str
    utterance: int
    committed: str
    unstable: str
    audio_end_sample: int
    at: float


class FinalTranscript(Message, frozen=True):
    final: ClassVar[bool] = False
    stream_id: str
    utterance: int
    text: str
    start_sample: int
    end_sample: int
    end_detected_at: float  # when the endpointer confirmed the end of speech
    at: float  # when the final text was ready
    speculative: bool  # the text came from the decode started at the first pause
    decode_s: float


class StreamFault(Message, frozen=True):
    """A live stream lost its worker (or audio); the stream stays open and resumes when the worker is back."""

    final: ClassVar[bool] = False
    stream_id: str
    code: str
    message: str


# --- text to speech -----------------------------------------------------------------------------------------


class VoiceSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A stored voice as the tts worker needs it: where its files are and how to speak with them.

    kind: "approximated" (the embedded voice adapted toward the sample: `adaptation` names its profile file) or
    "cloned" (GPT-SoVITS weights and a reference clip with its transcript)."""

    voice_id: str
    name: str
    kind: str
    language: str
    reference_path: str = ""
    reference_text: str = ""
    adaptation_path: str = ""
    gpt_weights: str = ""
    sovits_weights: str = ""


class SpeakOpen(Message, frozen=True):
    """Open a speech stream (a client asks the coordinator). Text follows in SpeakText messages and ends with
    SpeakEnd; the replies are SpeechPiece and SpeechAudio events, and SpeakDone last. `voice_id` None: the
    active voice."""

    turn_id: str
    voice_id: str | None = None
    speed: float = 1.0


class SynthesisOpen(Message, frozen=True):
    """SpeakOpen as the coordinator forwards it to the tts worker, the voice resolved (None: the backend's own)."""

    turn_id: str
    voice: VoiceSpec | None
    speed: float = 1.0


class SpeakText(Message, frozen=True):
    """More text for an open speech stream, e.g. one LLM token. Data: it keeps its order with the stream."""

    turn_id: str
    text: str


class SpeakEnd(Message, frozen=True):
    """No more text for this stream: speak what is left, then send SpeakDone."""

    turn_id: str


class PhonemeSpan(msgspec.Struct, frozen=True, array_like=True):
    """A phoneme's span on the turn's 48 kHz output timeline (end exclusive); "" is the mouth at rest."""

    phoneme: str
    start_sample: int
    end_sample: int


class SpeechPiece(Message, frozen=True):
    """One piece of text has been synthesized: its words, where its audio lies on the turn's 48 kHz timeline,
    and its phonemes' timing. Its audio follows in SpeechAudio messages."""

    final: ClassVar[bool] = False
    turn_id: str
    index: int
    text: str
    first_sample: int
    samples: int
    phonemes: tuple[PhonemeSpan, ...]
    synth_s: float  # how long synthesis took
    at: float  # monotonic time the audio was ready


class SpeechAudio(Message, frozen=True):
    """PCM16 mono 48 kHz samples in the tts worker's ring; `first_sample` is their place on the turn timeline."""

    final: ClassVar[bool] = False
    turn_id: str
    ref: RingSlotRef
    first_sample: int


class SpeakDone(Message, frozen=True):
    turn_id: str
    pieces: int
    samples: int
    cancelled: bool
    first_audio_s: float  # from SpeakOpen to the first audio, 0.0 when there was none
    backend: str
    voice_id: str | None


# --- voices -------------------------------------------------------------------------------------------------


class VoiceInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    voice_id: str
    name: str
    language: str
    kind: str  # "cloned" | "approximated"
    status: str
    consent: str  # the statement the speaker agreed to
    consent_at: float
    reference_text: str
    clips: int
    created_at: float
    updated_at: float
    active: bool
    note: str  # what a user should know, e.g. that an approximated voice is not a clone
    measures: dict[str, float] = {}


class ListVoices(Message, frozen=True):
    pass


class VoiceList(Message, frozen=True):
    voices: tuple[VoiceInfo, ...]
    active_voice_id: str | None


class GetVoice(Message, frozen=True):
    voice_id: str


class VoiceDetail(Message, frozen=True):
    voice: VoiceInfo


class DeleteVoice(Message, frozen=True):
    voice_id: str


class VoiceDeleted(Message, frozen=True):
    voice_id: str


class ActivateVoice(Message, frozen=True):
    """Make a stored voice the one replies are spoken in; None goes back to the backend's own voice."""

    voice_id: str | None


class VoiceActivated(Message, frozen=True):
    voice_id: str | None


# --- jobs (batch work in the trainer program) ---------------------------------------------------------------


class TrainVoiceRequest(Message, frozen=True):
    """Train a voice from a sample; its bytes travel as the single payload frame. `consent` is the statement
    the speaker agreed to (required). The reply is JobAccepted once the sample passed its checks."""

    name: str
    language: str
    consent: str
    filename: str


class JobAccepted(Message, frozen=True):
    job_id: str
    status: str


class TrainVoice(Message, frozen=True):
    """The coordinator asks the trainer to run a voice job. `work_dir` is the job's own folder (the sample is
    in it); everything the job makes goes there, and the coordinator moves it into place on success."""

    job_id: str
    name: str
    language: str
    sample_path: str
    work_dir: str


class SampleAccepted(Message, frozen=True):
    """The sample decoded and holds enough speech: the job goes on."""

    final: ClassVar[bool] = False
    job_id: str
    duration_s: float
    speech_s: float


class JobProgress(Message, frozen=True):
    final: ClassVar[bool] = False
    job_id: str
    step: str
    progress: float  # of the whole job, 0..1
    detail: str


class TrainedVoice(Message, frozen=True):
    """A voice job's result; its files are in the job's work dir (paths relative to it)."""

    job_id: str
    kind: str
    reference_path: str
    reference_text: str
    dataset_list: str
    clips: int
    adaptation_path: str = ""
    gpt_weights: str = ""
    sovits_weights: str = ""
    measures: dict[str, float] = {}


class CancelJob(Message, frozen=True):
    priority: ClassVar[Priority] = Priority.CONTROL
    job_id: str


class JobCancelRequested(Message, frozen=True):
    job_id: str
    status: str


class JobEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seq: int
    at: float  # wall clock
    kind: str  # "queued" | "progress" | "done" | "failed" | "cancelled"
    step: str
    progress: float
    detail: str


class JobInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    job_id: str
    kind: str
    status: str  # "queued" | "running" | "done" | "failed" | "cancelled"
    step: str
    progress: float
    error_code: str
    error_message: str
    voice_id: str | None
    created_at: float
    updated_at: float


class GetJob(Message, frozen=True):
    job_id: str
    events_after: int = -1  # return the events with a larger seq: -1 for all of them


class JobDetail(Message, frozen=True):
    job: JobInfo
    events: tuple[JobEvent, ...] = ()


class GpuLease(Message, frozen=True):
    """The trainer asks for room to train (the GPU on the GPT-SoVITS path, RAM and a core on the embedded one); the
    coordinator evicts what its residency plan says and answers GpuLeaseGranted. GpuRelease gives it back."""

    job_id: str


class GpuLeaseGranted(Message, frozen=True):
    job_id: str
    freed: tuple[str, ...]  # what was stopped or unloaded to make room


class GpuRelease(Message, frozen=True):
    job_id: str


class AdmitSession(Message, frozen=True):
    """Ask for a live-session slot (the voice pipeline, before a live turn's models are needed). The coordinator
    plans residency for one more session: SessionAdmitted, or ErrorReply `session-refused-budget`."""

    session_id: str


class SessionAdmitted(Message, frozen=True):
    session_id: str
    sessions: int  # live sessions admitted now, this one included
    max_sessions: int
    loading: tuple[str, ...] = ()  # models being loaded for it (their programs report ready when done)


class ReleaseSession(Message, frozen=True):
    session_id: str


class SessionReleased(Message, frozen=True):
    session_id: str
    sessions: int


# --- the face (lipsync) -------------------------------------------------------------------------------------


class AvatarInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A prepared avatar: the square image the renderer draws (its sha256 prefix names it) and its face."""

    avatar_id: str
    width: int
    height: int
    face_box: tuple[int, int, int, int]  # x, y, width, height in the prepared image
    mouth_width_px: float
    lips: tuple[tuple[float, float], ...]  # the outer lip contour in the prepared image, for drawing over it
    adjusted: str  # "" when the image was used as it is, else what was done to it (scaled, cropped)


class PrepareAvatar(Message, frozen=True):
    """Prepare an avatar from an image (its bytes travel as the single payload frame); cached by its hash.
    No payload: the avatar `avatar_id` prepared earlier, or the configured default one when that is None.
    The reply is AvatarPrepared."""

    filename: str
    avatar_id: str | None = None


class AvatarPrepared(Message, frozen=True):
    avatar: AvatarInfo
    cached: bool


class AnimateOpen(Message, frozen=True):
    """Open a live animation stream: frames for the turn's speech go into the lipsync worker's frame ring.
    `avatar_id` None: the default avatar. AnimateSpeech messages follow and AnimateEnd closes it."""

    turn_id: str
    avatar_id: str | None = None


class AnimateSpeech(Message, frozen=True):
    """More speech for a stream: PCM16 mono 48 kHz as the single payload frame, at `first_sample` on the
    turn's timeline, with the phonemes' timing when the voice gives it (empty: found from the audio)."""

    turn_id: str
    first_sample: int
    phonemes: tuple[PhonemeSpan, ...] = ()


class AnimateEnd(Message, frozen=True):
    turn_id: str


class FrameReady(Message, frozen=True):
    """An RGB24 frame in the lipsync worker's frame ring, for the 1600 samples from `sample_index` (30 fps)."""

    final: ClassVar[bool] = False
    turn_id: str
    ref: RingSlotRef
    sample_index: int
    width: int
    height: int


class AnimateDone(Message, frozen=True):
    turn_id: str
    frames: int
    dropped: int  # frames not rendered because they were already late
    cancelled: bool
    first_frame_s: float  # from the first speech to the first frame


class RenderVideo(Message, frozen=True):
    """Batch: render a talking-avatar MP4 (H.264 30 fps + AAC) of a WAV file. `phonemes` as for AnimateSpeech;
    `text` (may be "") helps align audio without them. Progress comes as JobProgress, VideoRendered last."""

    job_id: str
    audio_path: str
    out_path: str
    avatar_id: str | None = None
    text: str = ""
    phonemes: tuple[PhonemeSpan, ...] = ()
    resolution: int | None = None


class VideoRendered(Message, frozen=True):
    job_id: str
    out_path: str
    frames: int
    width: int
    height: int
    duration_s: float
    backend: str
    render_s: float


class GenerateAvatar(Message, frozen=True):
    """POST /generate-avatar, gateway -> coordinator: speech (`text`, or an audio file) said by an avatar (an image,
    `avatar_id` from an earlier PrepareAvatar, or neither: the default). The payload frames are, in order, the
    audio file's bytes when `audio_filename` is not "" and the image's when `avatar_filename` is not "".
    Replies: JobProgress while rendering, then AvatarVideo (short speech, rendered at once) or JobAccepted."""

    text: str = ""
    audio_filename: str = ""
    avatar_filename: str = ""
    avatar_id: str | None = None
    resolution: int | None = None
    voice_id: str | None = None


class AvatarVideo(Message, frozen=True):
    """A video rendered at once; its MP4 is fetched (once) with GetJobResult(render_id)."""

    render_id: str
    frames: int
    width: int
    height: int
    duration_s: float
    backend: str
    render_s: float
    adjusted: str  # AvatarInfo.adjusted of the uploaded image ("" when it was used as it is, or none came)


class GetJobResult(Message, frozen=True):
    """The file a job made (or a render answered at once, whose files then go). Reply: JobResult."""

    job_id: str


class JobResult(Message, frozen=True):
    """The result file's bytes travel as the single payload frame."""

    job_id: str
    media_type: str
    size: int


# --- voice chat (a live session: WS /voice-chat or WebRTC) ------------------------------------------------------


class VoiceOpen(Message, frozen=True):
    """Gateway -> coordinator, for one client connection: open a live voice session. `session_id` None starts a
    conversation, else it resumes that one (a connection still holding it is closed). The client's audio follows as
    AudioChunk on `stream_id` (16 kHz PCM16 in the gateway's mic ring). Replies, all on this request: VoiceStarted,
    then the session's events (VadEvent, PartialTranscript, FinalTranscript, VoiceTurnStarted, ReplyText,
    VoiceAudio, FrameReady, VoiceTurnEnded, StreamFault), VoiceClosed (or an ErrorReply) last."""

    stream_id: str
    session_id: str | None = None
    voice_id: str | None = None
    avatar_id: str | None = None
    language: str | None = None
    # For measurement (bench/latency.py --sequential): each stage waits for the whole of the previous one's
    # output (the end of speech confirmed, the LLM's reply, then all of its speech) instead of streaming into the next.
    sequential: bool = False


class VoiceStarted(Message, frozen=True):
    """The session is live. `idle_dir` holds the avatar's idle loop (idle.jpgs, idle.idx.npy), replayed between
    turns; `turns`: the conversation's turns so far (a resumed one has some)."""

    final: ClassVar[bool] = False
    session_id: str
    stream_id: str
    resumed: bool
    turns: int
    avatar_id: str
    width: int
    height: int
    idle_dir: str
    sessions: int  # live sessions now, this one included
    max_sessions: int


class VoiceTurnStarted(Message, frozen=True):
    """A final transcript became a turn; `turn_no` (the conversation's 1, 2, ...) tags its media."""

    final: ClassVar[bool] = False
    turn_id: str
    turn_no: int
    user_text: str


class ReplyText(Message, frozen=True):
    final: ClassVar[bool] = False
    turn_id: str
    text: str


class VoiceAudio(Message, frozen=True):
    """Reply speech: PCM16 mono 48 kHz as the single payload frame, at `first_sample` on the turn's timeline."""

    final: ClassVar[bool] = False
    turn_id: str
    turn_no: int
    first_sample: int


class VoiceTurnEnded(Message, frozen=True):
    """A turn ended. status: "done" (everything was said), "interrupted" (barge-in: stop playing it now; `heard`
    is what the history keeps), "failed" (`code` says why). `trace`: seconds from the detected end of the user's
    speech to each stage (final, first_token, first_audio, first_frame, end)."""

    final: ClassVar[bool] = False
    turn_id: str
    turn_no: int
    status: str
    reply: str
    heard: str
    code: str = ""
    trace: dict[str, float] = {}
    samples: int = 0  # reply speech sent, on the turn's 48 kHz timeline
    frames: int = 0
    dropped_frames: int = 0
    stopped: tuple[str, ...] = ()  # interrupted: the stages whose work for the turn was cancelled (llm, tts, lipsync)


class PlaybackPosition(Message, frozen=True):
    """Gateway -> coordinator: the client has played `played` samples (48 kHz) of turn `turn_no`'s speech."""

    stream_id: str
    turn_no: int
    played: int


class VoiceClose(Message, frozen=True):
    priority: ClassVar[Priority] = Priority.CONTROL
    stream_id: str
    reason: str = ""


class VoiceClosed(Message, frozen=True):
    stream_id: str
    session_id: str
    reason: str


# --- test and diagnostics -----------------------------------------------------------------------------------


class Ping(Message, frozen=True):
    seq: int
    payload_frames: int = 0


class Pong(Message, frozen=True):
    seq: int


class RingSlotRef(Message, frozen=True):
    """A reference to a slot in a shared-memory ring: the pixels or samples never cross the socket."""

    ring: str
    slot: int
    seq: int
    pts: int
    length: int


class StageLatency(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One stage's latency histogram since the coordinator started: `counts[i]` is how many took at most
    `bounds[i]` seconds (cumulative, Prometheus style); `count` is all of them (the +Inf bucket)."""

    stage: str
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    sum_s: float


class ProgramUsage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A program's residency and what its process (with its children) uses; 0 where it is not running."""

    name: str
    state: str
    ready: bool
    pid: int
    backend: str
    model: str
    restarts: int
    drops: dict[str, int] = {}
    rss_bytes: int = 0
    cpu_s: float = 0.0
    vram_bytes: int = 0


class MetricsQuery(Message, frozen=True):
    """GET /metrics asks the coordinator for what it counts; the gateway renders the Prometheus text."""


class MetricsReport(Message, frozen=True):
    programs: tuple[ProgramUsage, ...]
    stages: tuple[StageLatency, ...]
    turns: dict[str, int]  # turns ended since the coordinator started, by outcome
    gpu_total_bytes: int = 0  # 0: no GPU (or no NVML)
    gpu_used_bytes: int = 0
    gpu_unattributed_bytes: int = 0
    data_bytes: int = -1  # the data directory's size at the janitor's last run; -1: not measured yet
    data_quota_bytes: int = 0  # 0: no quota
    janitor_removed: dict[str, int] = {}  # what the janitor removed since the coordinator started, by kind


AnyMessage = (
    WorkerHello
    | WorkerReady
    | WorkerFailed
    | Heartbeat
    | ProcessStateChanged
    | ShutdownWorker
    | GenerateRequest
    | TokenChunk
    | GenerateDone
    | CancelTurn
    | ErrorReply
    | ChatRequest
    | ChatStarted
    | ChatToken
    | ChatReply
    | HealthQuery
    | HealthReport
    | ListSessions
    | SessionList
    | GetHistory
    | History
    | DeleteSession
    | SessionDeleted
    | TranscribeFile
    | TranscriptResult
    | AudioStreamOpen
    | AudioChunk
    | AudioStreamClose
    | AudioStreamClosed
    | VadEvent
    | PartialTranscript
    | FinalTranscript
    | StreamFault
    | SpeakOpen
    | SynthesisOpen
    | SpeakText
    | SpeakEnd
    | SpeechPiece
    | SpeechAudio
    | SpeakDone
    | ListVoices
    | VoiceList
    | GetVoice
    | VoiceDetail
    | DeleteVoice
    | VoiceDeleted
    | ActivateVoice
    | VoiceActivated
    | TrainVoiceRequest
    | JobAccepted
    | TrainVoice
    | SampleAccepted
    | JobProgress
    | TrainedVoice
    | CancelJob
    | JobCancelRequested
    | GetJob
    | JobDetail
    | GpuLease
    | GpuLeaseGranted
    | GpuRelease
    | AdmitSession
    | SessionAdmitted
    | ReleaseSession
    | SessionReleased
    | PrepareAvatar
    | AvatarPrepared
    | AnimateOpen
    | AnimateSpeech
    | AnimateEnd
    | FrameReady
    | AnimateDone
    | RenderVideo
    | VideoRendered
    | GenerateAvatar
    | AvatarVideo
    | GetJobResult
    | JobResult
    | VoiceOpen
    | VoiceStarted
    | VoiceTurnStarted
    | ReplyText
    | VoiceAudio
    | VoiceTurnEnded
    | PlaybackPosition
    | VoiceClose
    | VoiceClosed
    | Ping
    | Pong
    | RingSlotRef
    | MetricsQuery
    | MetricsReport
)
