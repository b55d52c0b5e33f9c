"""One typed configuration tree, validated once at start-up and passed down as typed sub-configs.

The file is TOML (`mynah.toml`); every key is optional and unknown keys are errors, so a typo is caught at
start-up rather than silently ignored. Paths that are relative resolve against the file's own folder.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from appliance.settings import SettingsError, overlay, read_settings, settings_path

CONFIG_ENV = "MYNAH_CONFIG"


class ConfigError(Exception):
    def __init__(self, message: str, code: str = "config-invalid") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Section):
    """Relative paths are relative to the configuration file's folder."""

    data_dir: Path = Path("data")
    models_dir: Path = Path("models")
    # Sockets and shared-memory names derive from this; keep it short (unix socket paths max out at 107).
    runtime_dir: Path = Path("run")
    log_dir: Path = Path("log")


class GatewayConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    # The largest request body the gateway reads; larger ones are refused before parsing.
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    max_text_chars: int = Field(4000, ge=1)
    # How long a chat request may wait for its whole reply before it fails with `chat-timeout`.
    chat_timeout_s: float = Field(120.0, gt=0)
    # The streamed face's JPEG quality over the WebSocket (low 60, standard 80, high 92); a web UI setting.
    video_quality: Literal["low", "standard", "high"] = "standard"


class ReplyConfig(_Section):
    """Replies are spoken: short, plain sentences. These caps apply to every backend."""

    max_tokens: int = Field(80, ge=1, le=4096)
    max_sentences: int = Field(3, ge=1, le=50)
    assistant_name: str = "Mynah"


class EmbeddedLlmConfig(_Section):
    model: str = "smollm2-135m-instruct"
    # Measured by bench/llm_prompt_formats.py (docs/llm-prompt-format.md): the few-shot frame beats the chat template.
    prompt_format: Literal["fewshot", "chatml"] = "fewshot"
    n_ctx: int = Field(2048, ge=256)
    # One thread (bench/latency.py, ws, side by side on this 2-core VM): with three voice sessions first audio p50
    # 2.02 s against 2.77 s for two threads (p95 3.1 against 4.8 s), and the LLM's CPU 0.16 core against 0.40:
    # its two threads spin at every barrier while speech, face and STT hold the cores. Alone, two gain 33 ms.
    n_threads: int = Field(1, ge=1)
    # Tokens evaluated per llama.cpp batch. With flash attention (always on) its compute buffer grows with the batch,
    # not the context: filling a 2048-token context here took RSS +6 MiB at 128 against +18 MiB at 512, as fast.
    n_batch: int = Field(128, ge=16)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    # Sessions whose KV state is kept in memory between turns (least recently used are dropped).
    kv_sessions: int = Field(4, ge=0)
    seed: int = 1


class OllamaConfig(_Section):
    host: str = "http://127.0.0.1:11434"
    model: str = "llama3.1:8b"
    num_ctx: int = Field(4096, ge=256)
    keep_alive: str = "30m"
    temperature: float = Field(0.6, ge=0.0, le=2.0)
    connect_timeout_s: float = Field(2.0, gt=0)


class LlmConfig(_Section):
    backend: Literal["auto", "embedded", "ollama"] = "auto"
    embedded: EmbeddedLlmConfig = EmbeddedLlmConfig()
    ollama: OllamaConfig = OllamaConfig()
    reply: ReplyConfig = ReplyConfig()


class SttProfile(_Section):
    """One way to run faster-whisper: which model, where and how."""

    model: str
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = Field(2, ge=1)


DEFAULT_STT_PROFILES = {
    "base": SttProfile(model="whisper-base"),
    "tiny.en": SttProfile(model="whisper-tiny.en"),
    # The seed stack on an NVIDIA GPU. Its weights are not on the package registries: see `mynah models list`.
    "gpu": SttProfile(model="whisper-medium", device="cuda", compute_type="float16", cpu_threads=1),
}


class SttEnhanceConfig(_Section):
    """Clean-up before recognition; measured in bench/stt.py (docs/stt.md) and kept only where it helps."""

    normalize: bool = True
    denoise: bool = False


class SttStreamingConfig(_Section):
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    # Silence after speech that starts a speculative final decode, and that confirms the end of speech.
    speculative_pause_ms: int = Field(200, ge=32)
    end_of_speech_ms: int = Field(480, ge=64)
    min_speech_ms: int = Field(160, ge=32)
    # Partial transcripts re-decode the growing utterance at most this often.
    partial_interval_s: float = Field(1.5, ge=0.2)
    max_utterance_s: float = Field(30.0, ge=2.0)


class SttLimits(_Section):
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_duration_s: float = Field(15 * 60.0, gt=0)
    min_duration_s: float = Field(0.3, ge=0.0)
    # How long the gateway waits for a file's transcript (a 15-minute file takes minutes on 2 cores).
    transcribe_timeout_s: float = Field(900.0, gt=0)


class SttConfig(_Section):
    profile: str = "base"
    # The live program's profile (voice chat, live transcription). "auto": tiny.en where the language is English
    # and the profile runs on the CPU (its final decode takes half of base's there, 0.62 s against 1.29 s, and end
    # of speech -> final p50 drops from 1.87 s to 0.98 s: docs/stt.md), else `profile`. Files keep `profile`.
    live_profile: str = "auto"
    profiles: dict[str, SttProfile] = DEFAULT_STT_PROFILES
    language: str = "en"  # a Whisper language code, or "auto"
    # Measured (bench/stt_offline.py): beam 5 halves base's WER on clean speech (5.0% -> 2.4%) for no
    # measurable decode time, since the 30 s encoder pass dominates.
    beam_size: int = Field(5, ge=1, le=10)
    enhance: SttEnhanceConfig = SttEnhanceConfig()
    streaming: SttStreamingConfig = SttStreamingConfig()
    limits: SttLimits = SttLimits()

    @model_validator(mode="after")
    def _known_profile(self) -> SttConfig:
        if self.profile not in self.profiles:
            raise ValueError(f"stt.profile {self.profile!r} is not one of {sorted(self.profiles)}")
        if self.live_profile != "auto" and self.live_profile not in self.profiles:
            raise ValueError(f"stt.live_profile {self.live_profile!r} is not auto or one of {sorted(self.profiles)}")
        return self

    def active_profile(self, *, live: bool = False) -> SttProfile:
        return self.profiles[self.live_profile_name() if live else self.profile]

    def live_profile_name(self) -> str:
        if self.live_profile != "auto":
            return self.live_profile
        chosen = self.profiles[self.profile]
        if self.language == "en" and chosen.device == "cpu" and "tiny.en" in self.profiles:
            return "tiny.en"
        return self.profile


class PiperTtsConfig(_Section):
    model: str = "piper-joe-medium"
    # onnxruntime intra-op threads: one, so synthesis leaves a core to speech recognition and rendering.
    threads: int = Field(1, ge=1)


class GptSovitsTtsConfig(_Section):
    """GPT-SoVITS's api_v2.py server (started outside Mynah, on the GPU box) and the voice it speaks by default."""

    url: str = "http://127.0.0.1:9880"
    # api_v2 streams headerless PCM: its rate is the model version's (32 kHz v1/v2/v2Pro, 24 kHz v3, 48 kHz v4).
    sample_rate: int = Field(32_000, gt=0)
    streaming_mode: int = Field(1, ge=0, le=3)
    reference_path: Path | None = None  # as the server sees it; a 3-10 s clip
    reference_text: str = ""
    reference_language: str = "en"
    # The default voice's weights; unset: whatever the server loaded at start (it cannot go back to those
    # after a trained voice has spoken).
    gpt_weights: Path | None = None
    sovits_weights: Path | None = None
    timeout_s: float = Field(120.0, gt=0)


class TtsConfig(_Section):
    backend: Literal["piper", "gpt-sovits"] = "piper"
    piper: PiperTtsConfig = PiperTtsConfig()
    gpt_sovits: GptSovitsTtsConfig = GptSovitsTtsConfig()
    speed: float = Field(1.0, gt=0.25, le=4.0)
    # The first piece of a reply goes out after at most this many words (the first clause, early).
    first_piece_max_words: int = Field(8, ge=1, le=40)
    max_piece_chars: int = Field(220, ge=20)


class TrainerConfig(_Section):
    """Voice training from a sample of the user's speech."""

    min_sample_s: float = Field(20.0, ge=3.0)
    max_sample_s: float = Field(300.0, gt=0)
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    # Where GPT-SoVITS is installed (its repository root) and the python that runs it; unset: the embedded path.
    gpt_sovits_root: Path | None = None
    gpt_sovits_python: Path | None = None
    gpu_index: int = Field(0, ge=0)
    sovits_epochs: int = Field(8, ge=1)
    gpt_epochs: int = Field(15, ge=1)
    batch_size: int = Field(4, ge=1)


class SadTalkerConfig(_Section):
    """SadTalker (OpenTalker/SadTalker), installed outside Mynah on the GPU box: its repository root, the python
    that runs it, and its checkpoints (as the model store lays them out, or any folder with the same files)."""

    root: Path | None = None
    python: Path | None = None
    checkpoint_dir: Path | None = None  # unset: <models_dir>/sadtalker
    size: Literal[256, 512] = 256
    preprocess: Literal["crop", "extcrop", "resize", "full", "extfull"] = "crop"
    still: bool = True
    enhancer: Literal["", "gfpgan", "RestoreFormer"] = ""
    batch_size: int = Field(2, ge=1)
    pose_style: int = Field(0, ge=0, le=45)
    expression_scale: float = Field(1.0, gt=0)
    device: Literal["cuda", "cpu"] = "cuda"
    # How long one render may take before it fails with `sadtalker-timeout` (it is far slower than real time).
    timeout_s: float = Field(900.0, gt=0)


class LipsyncConfig(_Section):
    """The face: which renderer draws it and the avatar it draws."""

    # "realtime": the embedded CPU renderer; "sadtalker": SadTalker for generated videos (live turns keep the
    # real-time renderer unless SadTalker is measured faster than real time on the box).
    backend: Literal["realtime", "sadtalker"] = "realtime"
    sadtalker: SadTalkerConfig = SadTalkerConfig()
    # The default avatar; unset: the project's assets/avatar.png.
    avatar: Path | None = None
    face_model: str = "mediapipe-face"
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    # Images larger than this on a side are scaled down (square, around the face).
    max_resolution: Literal[512, 768, 1024] = 1024
    # Inputs whose audio is longer than this become a batch job (`/api/jobs/{id}/result`) instead of an answer.
    direct_max_s: float = Field(12.0, gt=0)
    max_audio_s: float = Field(600.0, gt=0)
    # Render threads: one, so the renderer leaves the other core to speech.
    threads: int = Field(1, ge=1)


class SupervisionConfig(_Section):
    heartbeat_interval_s: float = Field(0.5, gt=0)
    # A worker silent for this long is hung: the coordinator has supervisord kill it, and it restarts.
    hang_timeout_s: float = Field(3.0, gt=0)
    # How long `mynah up` waits for every worker to report ready.
    ready_timeout_s: float = Field(120.0, gt=0)
    # How long a request waits for a (re)starting worker before it fails with `<worker>-not-ready`.
    worker_wait_s: float = Field(30.0, gt=0)
    # A worker on a fallback backend (GPT-SoVITS -> Piper, SadTalker -> the real-time renderer, Ollama -> the
    # embedded model) tries its preferred one again this often, and switches back when it loads; a worker down
    # because it could not load at all (its model fails its hash) is started again this often.
    fallback_retry_s: float = Field(30.0, ge=0.5)

    @field_validator("hang_timeout_s")
    @classmethod
    def _longer_than_heartbeat(cls, value: float) -> float:
        if value < 1.0:
            raise ValueError("hang_timeout_s below 1 s would restart healthy workers under load")
        return value


class LoggingConfig(_Section):
    # json: one object per line (time, level, program, logger, message, session_id/turn_id when known), for
    # supervisord's files and journald; `mynah logs` pretty-prints them. text: plain lines, for a developer.
    format: Literal["json", "text"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class RetentionConfig(_Section):
    """What the coordinator's janitor keeps (appliance/coordinator/janitor.py). 0 days or 0 MiB: no limit."""

    conversations_days: float = Field(0.0, ge=0)  # sessions untouched for longer are deleted
    job_results_days: float = Field(30.0, ge=0)  # finished jobs' folders (generated videos, stored audio)
    disk_quota_mib: int = Field(0, ge=0)  # the data directory's ceiling: oldest job results go first
    temp_max_age_s: float = Field(3600.0, ge=60)  # orphaned .partial/.tmp files, staging and unclaimed folders
    interval_s: float = Field(600.0, ge=10)  # the janitor runs at start-up and then this often


class SecurityConfig(_Section):
    """LAN security (docs/architecture.md, "LAN security"): HTTPS, pairing and device tokens, CORS."""

    # "auto": HTTPS whenever gateway.host is not a loopback address; "on"/"off" force it.
    tls: Literal["auto", "on", "off"] = "auto"
    # How long the one-time pairing code that `mynah up` prints stays valid.
    pairing_code_ttl_s: float = Field(600.0, ge=30.0)
    # Wrong pairing codes allowed per minute, from each client address and from all of them together.
    pairing_attempts_per_minute: int = Field(5, ge=1, le=100)
    # Off only for a trusted bench or a box behind its own auth proxy: every route is then open.
    require_token: bool = True
    # Origins (scheme://host:port) allowed to call the API from a browser; empty: the appliance's own origins.
    cors_origins: tuple[str, ...] = ()


class WebRtcConfig(_Section):
    """The WebRTC transport (appliance/gateway/webrtc.py; docs/voice-chat.md, "WebRTC")."""

    # The only addresses ICE may offer as host candidates and accept in an offer; empty: every address of the
    # box (aioice's own discovery), which is what a LAN needs. Tests confine it to ["127.0.0.1"].
    host_addresses: tuple[str, ...] = ()

    @field_validator("host_addresses")
    @classmethod
    def _ip_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            ipaddress.ip_address(address)  # a ValueError names the bad one
        return value


class ResourcesConfig(_Section):
    """The residency planner's budget and policy (docs/architecture.md, "Resources"). Unset budgets are measured:
    the GPU through NVML (its total less what other processes hold), RAM through psutil (total less `reserve_ram_mib`
    for the system and Mynah's own programs), cores from the OS."""

    gpu_mib: float | None = Field(None, ge=0)
    ram_mib: float | None = Field(None, gt=0)
    cpu_cores: float | None = Field(None, gt=0)
    reserve_ram_mib: float = Field(1024.0, ge=0)
    max_sessions: int = Field(3, ge=1, le=16)
    # What one live session adds while it talks (estimates, docs/architecture.md): stream buffers and rings,
    # the LLM's per-session KV state; VAD, partial decodes, synthesis and 30 fps rendering shared out per turn.
    session_ram_mib: float = Field(100.0, ge=0)
    session_cpu_cores: float = Field(0.6, ge=0)
    session_vram_mib: float = Field(0.0, ge=0)
    # Unload a model unused for this long (its program is stopped); unset: only when something must fit.
    idle_unload_s: float | None = Field(None, gt=0)
    # How often the coordinator looks for idle units without waiting for a plan (0: never); a no-op while
    # idle_unload_s is unset.
    idle_sweep_s: float = Field(60.0, ge=0)


class MynahConfig(_Section):
    paths: PathsConfig = PathsConfig()
    gateway: GatewayConfig = GatewayConfig()
    llm: LlmConfig = LlmConfig()
    stt: SttConfig = SttConfig()
    tts: TtsConfig = TtsConfig()
    trainer: TrainerConfig = TrainerConfig()
    lipsync: LipsyncConfig = LipsyncConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    resources: ResourcesConfig = ResourcesConfig()
    security: SecurityConfig = SecurityConfig()
    logging: LoggingConfig = LoggingConfig()
    retention: RetentionConfig = RetentionConfig()
    webrtc: WebRtcConfig = WebRtcConfig()
    # Where this configuration was read from; set by load_config, never by the file itself.
    source: Path | None = None

    def resolved(self, base: Path) -> MynahConfig:
        """Return a copy whose relative paths are anchored at `base`."""
        paths = {
            name: (value if value.is_absolute() else (base / value)).resolve()
            for name, value in self.paths.model_dump().items()
        }
        return self.model_copy(update={"paths": PathsConfig(**paths)})


def load_config(path: Path | None = None, settings: Mapping[str, Any] | None = None) -> MynahConfig:
    """Read and validate the configuration; `path` defaults to $MYNAH_CONFIG, then ./var/mynah.toml. The web UI's
    settings lie over it: those stored in the data directory, or `settings` instead (to check them first)."""
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        path = Path(env) if env else Path("var/mynah.toml")
    path = path.resolve()
    if not path.exists():
        hint = "run `installer/install.sh --dev` to create one"
        raise ConfigError(f"no configuration at {path}: {hint}", "config-missing")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    config = _validated(raw, path, where=path)
    # The web UI's settings (appliance/settings.py) lie over the file.
    try:
        values = read_settings(config.paths.data_dir) if settings is None else settings
    except SettingsError as err:
        raise ConfigError(err.message) from err
    if values:
        config = _validated(overlay(raw, values), path, where=settings_path(config.paths.data_dir))
    return config


def _validated(raw: dict[str, Any], path: Path, *, where: Path) -> MynahConfig:
    """`raw` as the configuration read from `path`; `where` names the file an error is in."""
    try:
        config = MynahConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(f"{where}: {err}") from err
    return config.resolved(path.parent).model_copy(update={"source": path})
