"""faster-whisper (CTranslate2 Whisper) in-process: the embedded STT default on the CPU, the seed stack on CUDA.

Decoding is set for latency and repeatability: greedy or small-beam search at temperature 0 with no fallback
ladder, no conditioning on the previous window (it lets one bad window poison the next), and no built-in VAD
(the worker's VAD already cut the audio). `transcribe` returns a lazy generator; it is drained here, so a
Transcript is complete when this returns.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

# Neither CTranslate2 nor faster-whisper ships type information (no py.typed). `unused-ignore` keeps these
# lines right whether or not pyproject's mypy overrides list the module.
import ctranslate2  # type: ignore[import-untyped, unused-ignore]
import numpy as np
from faster_whisper import WhisperModel  # type: ignore[import-untyped, unused-ignore]

from appliance.config import SttProfile
from procs.stt.backends.base import SAMPLE_RATE, Audio, Segment, SttError, Transcript, Word

log = logging.getLogger(__name__)

# Below this peak (about -90 dBFS, under one 16-bit step) the input is digital silence: answered at once rather
# than by encoding a whole 30 s window (0.8 s for base on 2 cores) to find nothing.
_SILENCE_PEAK = 3e-5


class FasterWhisperBackend:
    name: ClassVar[str] = "faster-whisper"

    def __init__(self, profile: SttProfile, model_dir: Path, *, language: str, beam_size: int) -> None:
        self._profile = profile
        self._model_dir = model_dir
        self._language = None if language == "auto" else language  # None: Whisper detects it per call
        self._beam_size = beam_size
        self._whisper: Any = None  # faster_whisper.WhisperModel once loaded

    @property
    def model(self) -> str:
        return self._profile.model

    def _check_language(self, language: str) -> str | None:
        """A request's language: None to detect it; refused where this model cannot transcribe it (an English-only
        model would otherwise transcribe any language as English, silently)."""
        supported: list[str] = self._whisper.supported_languages
        if language == "auto":
            return None if len(supported) > 1 else supported[0]
        if language not in supported:
            which = "English only" if supported == ["en"] else "Whisper's language codes (e.g. en, de, fr)"
            raise SttError("stt-bad-language", f"{self.model} cannot transcribe {language!r}: it knows {which}")
        return language

    def load(self) -> None:
        if self._whisper is not None:
            return
        profile = self._profile
        if not (self._model_dir / "model.bin").is_file():
            # Checked here because faster-whisper takes a path it cannot find for a Hugging Face repo id.
            raise SttError("stt-load-failed", f"{profile.model}: no CTranslate2 model.bin in {self._model_dir}; "
                           f"run: mynah models fetch {profile.model}")  # fmt: skip
        if profile.device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
            raise SttError("stt-load-failed", _no_cuda_message(profile, "no CUDA device is visible"))
        try:
            self._whisper = WhisperModel(
                str(self._model_dir), device=profile.device, compute_type=profile.compute_type,
                cpu_threads=profile.cpu_threads, num_workers=1, local_files_only=True,
            )  # fmt: skip
        except (RuntimeError, ValueError, OSError) as err:  # how CTranslate2 reports bad devices, types, files
            if profile.device == "cuda" and "cuda" in str(err).lower():
                raise SttError("stt-load-failed", _no_cuda_message(profile, str(err))) from err
            where = f"device={profile.device}, compute_type={profile.compute_type}"
            raise SttError("stt-load-failed", f"cannot load {profile.model} from {self._model_dir} ({where}): "
                           f"{err}") from err  # fmt: skip
        log.info("loaded %s on %s (%s, cpu_threads=%d)", profile.model, profile.device, profile.compute_type,
                 profile.cpu_threads)  # fmt: skip

    def transcribe(self, audio: Audio, *, prompt: str | None = None, word_timestamps: bool = False,
                   language: str | None = None) -> Transcript:  # fmt: skip
        if self._whisper is None:
            raise SttError("stt-not-loaded", f"{self.model} is not loaded: call load() first")
        language = self._language if language is None else self._check_language(language)
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise SttError("stt-bad-audio", f"expected mono 16 kHz float32 samples, got shape {samples.shape}")
        duration = len(samples) / SAMPLE_RATE
        if not len(samples) or float(np.max(np.abs(samples))) < _SILENCE_PEAK:
            return Transcript(text="", language=language or "", segments=(), duration_s=duration)
        try:
            pieces, info = self._whisper.transcribe(
                samples, language=language, beam_size=self._beam_size, temperature=0.0,
                condition_on_previous_text=False, initial_prompt=prompt or None, without_timestamps=False,
                vad_filter=False, word_timestamps=word_timestamps,
            )  # fmt: skip
            # The generator is lazy: decoding happens here, so failures surface inside this try.
            pieces = list(pieces)
        except (RuntimeError, ValueError) as err:
            raise SttError("stt-failed", f"{self.model} failed on {duration:.2f} s of audio: {err}") from err
        segments = tuple(s for piece in pieces if (s := _segment(piece, duration)) is not None)
        words = tuple(w for piece in pieces for raw in (piece.words or ()) if (w := _word(raw, duration)) is not None)
        text = " ".join(s.text for s in segments)
        return Transcript(text=text, language=str(info.language), segments=segments, duration_s=duration,
                          words=words)  # fmt: skip


def _segment(piece: Any, duration: float) -> Segment | None:
    """A faster-whisper segment as ours, or None for one with no text or one that starts past the audio's end.

    Whisper always decodes a 30 s window, the audio padded with zeros; on noise it can emit timestamps (and
    repeated text) far into that padding, so ends are clamped and segments wholly in the padding dropped.
    """
    text = " ".join(str(piece.text).split())
    start, end = float(piece.start), min(float(piece.end), duration)
    if not text or start >= duration:
        return None
    return Segment(start=min(start, end), end=end, text=text)


def _word(raw: Any, duration: float) -> Word | None:
    """A faster-whisper word as ours, clamped to the audio like segments are; None for one past its end."""
    start, end = float(raw.start), min(float(raw.end), duration)
    if not str(raw.word).strip() or start >= duration:
        return None
    return Word(start=min(start, end), end=end, word=str(raw.word), probability=float(raw.probability))


def _no_cuda_message(profile: SttProfile, detail: str) -> str:
    return (f"the STT profile for {profile.model} asks for device=cuda, but CUDA is not usable here ({detail}). "
            'The "gpu" profile needs an NVIDIA GPU with its driver; on this box set stt.profile = "base" '
            '(or "tiny.en") in the configuration to run on the CPU.')  # fmt: skip
