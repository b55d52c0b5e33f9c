"""The interface every text-to-speech backend implements, and the error type of the TTS stage.

Every engine's audio reaches the rest of the appliance on one timeline: mono float32 at OUTPUT_RATE (48 kHz),
resampled once inside the backend, so a 30 fps video frame spans exactly 1600 samples (docs: DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from ipc.errors import CodedError

Audio = npt.NDArray[np.float32]  # mono, OUTPUT_RATE, float32 in [-1, 1]
OUTPUT_RATE = 48_000
SILENCE = ""  # the phoneme of a span with no speech sound (lead-in, trailing pause): the mouth at rest


class TtsError(CodedError):
    """A text-to-speech failure with a stable code (docs/errors.md), raised `from` its cause."""


@dataclass(frozen=True, slots=True)
class PhonemeTiming:
    """One phoneme's span in its chunk, in OUTPUT_RATE samples from the chunk's first sample (end exclusive).

    `phoneme` is one IPA segment as the engine writes it (espeak-ng's for Piper: "m", "b", "p", "æ", ...), with
    stress and length marks folded into the spans, not the symbols. Word gaps (" ") and punctuation pauses
    ("," ".") are spans too, SILENCE marks the lead-in and the tail, and a span may be empty.
    """

    phoneme: str
    start_sample: int
    end_sample: int


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarrays field-wise is ambiguous
class SpeechChunk:
    """One stretch of speech (a sentence) and its phonemes' timing, which tiles it without gaps or overlaps
    (empty from an engine that gives no timing)."""

    samples: Audio
    phonemes: tuple[PhonemeTiming, ...]
    text: str  # the words this chunk speaks

    @property
    def duration_s(self) -> float:
        return len(self.samples) / OUTPUT_RATE


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """How to speak. None leaves a setting at the voice's own default."""

    speed: float = 1.0  # 1.25 speaks 25% faster; Piper divides its length scale by it
    variation: float | None = None  # randomness of the voice's sound (Piper noise_scale); 0: repeatable output
    timing_variation: float | None = None  # randomness of phoneme durations (Piper noise_w); 0: repeatable
    speaker_id: int | None = None  # for voices with several speakers

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        for name in ("variation", "timing_variation"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")


class TtsBackend(Protocol):
    name: ClassVar[str]

    @property
    def model(self) -> str: ...

    @property
    def native_rate(self) -> int:
        """The engine's own sample rate, before resampling to OUTPUT_RATE (known once loaded)."""
        ...

    def load(self) -> None:
        """Load the voice (blocking; the worker calls it in a thread). Raises TtsError."""
        ...

    def synthesize(self, text: str, *, voice: VoiceSettings | None = None) -> Generator[SpeechChunk, None, None]:
        """Speech for `text`, one chunk per sentence, each synthesized when the previous one has been taken.

        Blocking; closing the generator early stops synthesis (barge-in). Raises TtsError: tts-not-loaded,
        tts-empty-text for text with nothing to speak, tts-failed when the engine fails.
        """
        ...


def to_output_spans(spans: list[tuple[str, int]], length: int) -> tuple[PhonemeTiming, ...]:
    """(phoneme, sample count) spans at any rate as PhonemeTimings that tile [0, length) exactly.

    Each boundary is the cumulative count scaled and rounded on its own, so rounding errors never add up;
    scaling by the total rather than by the rate ratio makes the last span end exactly at `length`.
    """
    total = sum(count for _, count in spans)
    if total <= 0:
        return (PhonemeTiming(SILENCE, 0, length),)
    timings: list[PhonemeTiming] = []
    start = cumulative = 0
    for phoneme, count in spans:
        cumulative += count
        end = (cumulative * length + total // 2) // total
        timings.append(PhonemeTiming(phoneme, start, end))
        start = end
    return tuple(timings)
