"""The interface every speech-to-text backend implements, and the error type of the STT stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from ipc.errors import CodedError

Audio = npt.NDArray[np.float32]  # mono, 16 kHz, float32 in [-1, 1]
SAMPLE_RATE = 16_000


class SttError(CodedError):
    """A speech-to-text failure with a stable code (docs/errors.md), raised `from` its cause."""


@dataclass(frozen=True, slots=True)
class Segment:
    start: float  # seconds from the start of the audio given to transcribe()
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Word:
    start: float  # seconds from the start of the audio given to transcribe()
    end: float
    word: str  # as the model wrote it: may carry a leading space and punctuation
    probability: float


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str
    segments: tuple[Segment, ...]
    duration_s: float
    words: tuple[Word, ...] = ()  # only when transcribe() was asked for word_timestamps


class SttBackend(Protocol):
    name: ClassVar[str]

    @property
    def model(self) -> str: ...

    def load(self) -> None:
        """Load the model (blocking; the worker calls it in a thread). Raises SttError."""
        ...

    def transcribe(self, audio: Audio, *, prompt: str | None = None, word_timestamps: bool = False,
                   language: str | None = None) -> Transcript:  # fmt: skip
        """Transcribe one piece of audio (blocking). `prompt` is earlier text that conditions the decoder;
        `word_timestamps` also times each word (Transcript.words); `language` (a Whisper code, or "auto") overrides
        the configured one for this call. Raises SttError `stt-bad-language` for a language the model cannot
        transcribe."""
        ...
