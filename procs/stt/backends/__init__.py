"""STT backends: one module per engine.

A new backend is one module plus one line in BACKENDS; modules import lazily, so a missing optional
dependency only matters when that backend is chosen, and then says what to install.
"""

from __future__ import annotations

from appliance.config import SttConfig
from appliance.models.store import ModelError, ModelStore
from procs.common.registry import BackendEntry, backend_class
from procs.stt.backends.base import SttBackend, SttError

# name -> (module, class, the pip extra that provides its dependencies; "" for a core dependency)
BACKENDS: dict[str, BackendEntry] = {
    "faster-whisper": BackendEntry("procs.stt.backends.faster_whisper", "FasterWhisperBackend", ""),
}
DEFAULT_BACKEND = "faster-whisper"  # every profile in SttConfig is a faster-whisper profile today


def _backend_class(name: str) -> type:
    return backend_class("stt", BACKENDS, name, SttError)


def profile_chain(config: SttConfig, *, live: bool = False) -> list[str]:
    """The profiles to try, in order: the active one, then, when it is not a CPU one (the GPU profile, whose
    weights and CUDA may be missing), the embedded CPU profile that would be chosen without it."""
    active = config.live_profile_name() if live else config.profile
    if config.profiles[active].device == "cpu":
        return [active]
    cpu = "tiny.en" if live and config.language == "en" else "base"
    return [active, cpu] if cpu in config.profiles and cpu != active else [active]


def create_backend(config: SttConfig, models: ModelStore, *, live: bool = False, profile_name: str = "") -> SttBackend:
    """The backend for profile `profile_name` (default: the active profile, the live one for the live program),
    its model resolved (and verified) by the store; not loaded."""
    profile = config.profiles[profile_name] if profile_name else config.active_profile(live=live)
    try:
        model_dir = models.resolve(profile.model)
    except ModelError as err:
        raise SttError(err.code, err.message) from err
    cls = _backend_class(DEFAULT_BACKEND)
    backend: SttBackend = cls(profile, model_dir, language=config.language, beam_size=config.beam_size)
    return backend
