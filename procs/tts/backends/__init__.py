"""TTS backends: one module per engine.

A new backend is one module plus one line in BACKENDS; modules import lazily, so a missing optional
dependency only matters when that backend is chosen, and then says what to install.
"""

from __future__ import annotations

from pathlib import Path

from appliance.config import TtsConfig
from appliance.models.store import ModelError, ModelStore
from procs.common.registry import BackendEntry, backend_class
from procs.tts.backends.base import TtsBackend, TtsError

# name -> (module, class, the pip extra that provides its dependencies; "" for a core dependency)
BACKENDS: dict[str, BackendEntry] = {
    "piper": BackendEntry("procs.tts.backends.piper", "PiperBackend", "embedded"),
    "gpt-sovits": BackendEntry("procs.tts.backends.gpt_sovits", "GptSovitsBackend", ""),
}


def backend_type(name: str) -> type:
    return backend_class("tts", BACKENDS, name, TtsError)


def backend_chain(config: TtsConfig) -> list[str]:
    """The backends to try, in order of preference: GPT-SoVITS falls back to the embedded Piper voice."""
    return ["gpt-sovits", "piper"] if config.backend == "gpt-sovits" else [config.backend]


def create_backend(config: TtsConfig, models: ModelStore, name: str | None = None) -> TtsBackend:
    """Backend `name` (default: the configured one) speaking its own default voice; not loaded."""
    name = name or config.backend
    cls = backend_type(name)
    if name == "piper":
        try:
            model_dir = models.resolve(config.piper.model)
        except ModelError as err:
            raise TtsError(err.code, err.message) from err
        piper: TtsBackend = cls(model_dir, threads=config.piper.threads)
        return piper
    settings = config.gpt_sovits
    if settings.reference_path is None:
        raise TtsError("tts-reference-missing", "the gpt-sovits backend needs tts.gpt_sovits.reference_path (a 3-10 s "
                       "clip the server can read) and reference_text, or a trained voice made active")  # fmt: skip
    return gpt_sovits_backend(config, settings.reference_path, settings.reference_text, settings.reference_language,
                              settings.gpt_weights, settings.sovits_weights)  # fmt: skip


def gpt_sovits_backend(
    config: TtsConfig, reference: Path, text: str, lang: str, gpt: Path | None = None, sovits: Path | None = None
) -> TtsBackend:
    from procs.tts.backends.gpt_sovits import GptSovitsBackend, ReferenceClip

    settings = config.gpt_sovits
    return GptSovitsBackend(settings.url, reference=ReferenceClip(reference, text, lang), gpt_weights=gpt,
                            sovits_weights=sovits, streaming_mode=settings.streaming_mode,
                            sample_rate=settings.sample_rate, timeout_s=settings.timeout_s)  # fmt: skip
