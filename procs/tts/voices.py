"""Which backend speaks a stored voice: the configured engine's own voice, an approximated voice (the embedded
Piper voice adapted toward a sample), or a cloned voice (GPT-SoVITS weights and a reference clip).

Backends for stored voices are made on first use and kept (a few at most), so switching voices between turns
costs one load, not one per turn. GPT-SoVITS's api_v2 server holds one voice at a time: when another voice
speaks through it than the last one, that voice's weights and reference are loaded into the server again.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from appliance.config import TtsConfig
from ipc.messages import VoiceSpec
from procs.tts.backends import gpt_sovits_backend
from procs.tts.backends.base import TtsBackend, TtsError

CACHED_VOICES = 3
BASE = ("", "")


class VoiceBook:
    def __init__(self, config: TtsConfig, base: TtsBackend) -> None:
        self._config = config
        self._base = base
        self._voices: OrderedDict[tuple[str, str], TtsBackend] = OrderedDict()
        self._on_server: tuple[str, str] = BASE  # whose weights the GPT-SoVITS server holds

    @property
    def base(self) -> TtsBackend:
        return self._base

    def backend_for(self, voice: VoiceSpec | None) -> TtsBackend:
        """The loaded backend that speaks `voice` (blocking: it may load one). Raises TtsError."""
        if voice is None or self._standing_in_for(voice):
            return self._on_the_server(BASE, self._base)
        key = (voice.voice_id, voice.adaptation_path or voice.sovits_weights)
        if key in self._voices:
            self._voices.move_to_end(key)
            return self._on_the_server(key, self._voices[key])
        backend = self._make(voice)
        backend.load()
        self._voices[key] = backend
        if backend.name == "gpt-sovits":
            self._on_server = key
        while len(self._voices) > CACHED_VOICES:
            self._voices.popitem(last=False)
        return backend

    def _standing_in_for(self, voice: VoiceSpec) -> bool:
        """GPT-SoVITS is configured but the worker fell back to Piper: its voices speak with Piper's own, until it
        is back (the worker is degraded and says so), rather than not at all."""
        return voice.kind == "cloned" and self._config.backend == "gpt-sovits" and self._base.name != "gpt-sovits"

    def _on_the_server(self, key: tuple[str, str], backend: TtsBackend) -> TtsBackend:
        if backend.name == "gpt-sovits" and self._on_server != key:
            backend.load()
            self._on_server = key
        return backend

    def _make(self, voice: VoiceSpec) -> TtsBackend:
        if voice.kind == "approximated":
            with_transform = getattr(self._base, "with_transform", None)
            if with_transform is None:
                raise TtsError("voice-unsupported", f"{voice.name!r} is an approximation of the embedded Piper voice;"
                               f" the configured TTS backend is {self._config.backend}")  # fmt: skip
            backend: TtsBackend = with_transform(adaptation(Path(voice.adaptation_path)))
            return backend
        if voice.kind == "cloned":
            if self._config.backend != "gpt-sovits":
                raise TtsError("voice-needs-gpt-sovits", f"{voice.name!r} is a GPT-SoVITS voice: set tts.backend = "
                               "\"gpt-sovits\" and start GPT-SoVITS's api_v2 server")  # fmt: skip
            return gpt_sovits_backend(self._config, Path(voice.reference_path), voice.reference_text, voice.language,
                                      Path(voice.gpt_weights), Path(voice.sovits_weights))  # fmt: skip
        raise TtsError("voice-unsupported", f"unknown voice kind {voice.kind!r}")


def adaptation(path: Path) -> Any:
    """The transform stored in a voice's adaptation file."""
    from procs.tts.adapt import VoiceAdapter, VoiceProfile

    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        source, target = (VoiceProfile.from_json(json.dumps(stored[key])) for key in ("source", "target"))
        adapter = VoiceAdapter(source, target)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TtsError("voice-files-missing", f"cannot read the voice adaptation {path}: {err}") from err
    return adapter.apply
