"""Endpointing: turns per-frame speech probabilities into utterance events. Pure: no I/O, and no clock but
sample counts, so a test drives it with a list of numbers.

States and transitions (one `feed` per 32 ms frame; "voiced" is the frame's hysteresis verdict: it turns on
at `vad_threshold` and off only below `vad_threshold - 0.15`, so a word's weak consonant doesn't end speech):

    IDLE     --voiced-->                          PENDING   (note the onset)
    PENDING  --voiced, run >= min_speech-->       SPEAKING  emit SpeechStarted(onset - pre-roll)
    PENDING  --unvoiced-->                        IDLE      (a cough or click: forgotten, nothing emitted)
    SPEAKING --unvoiced-->                        TRAILING  (speech stopped at the end of the last voiced frame)
    TRAILING --voiced-->                          SPEAKING  (a gap too short to matter: nothing emitted)
    TRAILING --silence >= speculative_pause-->    PAUSED    emit PauseDetected (start a speculative decode)
    PAUSED   --voiced-->                          SPEAKING  emit SpeechResumed (discard that decode)
    TRAILING/PAUSED --silence >= end_of_speech--> IDLE      emit SpeechEnded(where speech stopped)
    any but IDLE/PENDING --length >= max_utterance--> IDLE  emit SpeechEnded(forced=True)

After a forced end a talker who keeps talking starts a new utterance at once: the voiced verdict carries over,
and the new utterance's pre-roll never reaches back before the previous one's end, so no audio is lost or
transcribed twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from appliance.config import SttStreamingConfig
from procs.stt.backends.base import SAMPLE_RATE

HYSTERESIS = 0.15  # how far below the start threshold a frame must fall to count as silence
# Silero usually reacts a frame or two after a word's onset, but a soft one can pass unnoticed: espeak's "What
# time is it now?" framed one way is voiced only from "time", 0.34 s late (and a CI run transcribed "time is it
# now"). 400 ms keeps such a word; faster-whisper's own VAD pads speech by the same (VadOptions.speech_pad_ms).
PRE_ROLL_MS = 400


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    start_sample: int  # where the utterance's audio begins: the speech onset minus the pre-roll


@dataclass(frozen=True, slots=True)
class PauseDetected:
    at_sample: int  # the frame end at which the silence reached speculative_pause_ms
    speech_end_sample: int  # where the speech stopped: a speculative decode covers audio up to here


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    at_sample: int  # the start of the frame in which speech returned


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    end_sample: int  # where the speech stopped (the start of the trailing silence), or the cut when forced
    forced: bool = False  # True when the utterance reached max_utterance_s


EndpointEvent = SpeechStarted | PauseDetected | SpeechResumed | SpeechEnded


class _State(enum.Enum):
    IDLE = "idle"
    PENDING = "pending"
    SPEAKING = "speaking"
    TRAILING = "trailing"
    PAUSED = "paused"


def _samples(ms: float, sample_rate: int) -> int:
    return round(ms * sample_rate / 1000)


class Endpointer:
    """One stream's endpointing state machine. Feed it every frame in order; `reset()` between streams."""

    def __init__(
        self,
        config: SttStreamingConfig,
        *,
        frame_samples: int = 512,
        sample_rate: int = SAMPLE_RATE,
        pre_roll_ms: int = PRE_ROLL_MS,
    ) -> None:
        self.frame_samples = frame_samples
        self._enter = config.vad_threshold
        # Never 0: a probability is never below 0, and speech would then end only at the length cap.
        self._leave = max(config.vad_threshold - HYSTERESIS, config.vad_threshold / 2)
        self._min_speech = _samples(config.min_speech_ms, sample_rate)
        self._pause = _samples(config.speculative_pause_ms, sample_rate)
        self._end_of_speech = _samples(config.end_of_speech_ms, sample_rate)
        self._max_utterance = _samples(config.max_utterance_s * 1000, sample_rate)
        self._pre_roll = _samples(pre_roll_ms, sample_rate)
        self.reset()

    def reset(self) -> None:
        self._state = _State.IDLE
        self._voiced = False
        self._floor: int | None = None  # the pre-roll never reaches before this (stream start or last end)
        self._onset = 0  # first voiced sample of the current (candidate) utterance
        self._start = 0  # the utterance's start_sample as emitted
        self._speech_end = 0  # end of the last voiced frame

    @property
    def voiced(self) -> bool:
        """The last frame's verdict: speech is sounding right now."""
        return self._voiced

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and SpeechEnded."""
        return self._state in (_State.SPEAKING, _State.TRAILING, _State.PAUSED)

    def feed(self, probability: float, frame_end_sample: int) -> list[EndpointEvent]:
        """Advance by one frame ending at `frame_end_sample`; returns the events it caused, in order."""
        frame_start = frame_end_sample - self.frame_samples
        if self._floor is None:
            self._floor = max(frame_start, 0)
        self._voiced = probability >= (self._leave if self._voiced else self._enter)
        events: list[EndpointEvent] = []
        state = self._state

        if state is _State.IDLE:
            if self._voiced:
                self._onset = frame_start
                self._state = _State.PENDING
                self._confirm(frame_end_sample, events)  # a one-frame min_speech starts at once
        elif state is _State.PENDING:
            if self._voiced:
                self._confirm(frame_end_sample, events)
            else:
                self._state = _State.IDLE  # too short to be speech: forget it
        elif self._voiced:
            if state is _State.PAUSED:
                events.append(SpeechResumed(frame_start))
            self._speech_end = frame_end_sample
            self._state = _State.SPEAKING
        else:
            silence = frame_end_sample - self._speech_end
            if silence >= self._end_of_speech:
                self._end(SpeechEnded(self._speech_end), events)
            elif silence >= self._pause and state is not _State.PAUSED:
                events.append(PauseDetected(frame_end_sample, self._speech_end))
                self._state = _State.PAUSED
            elif state is _State.SPEAKING:
                self._state = _State.TRAILING

        # The cap bounds the audio handed to the decoder (Whisper sees at most a 30 s window). The start is
        # not frame-aligned, so a cut during speech falls inside this frame, exactly at the cap.
        cap = self._start + self._max_utterance
        if self.in_speech and frame_end_sample >= cap:
            self._end(SpeechEnded(min(self._speech_end, cap), forced=True), events)
        return events

    def _confirm(self, frame_end_sample: int, events: list[EndpointEvent]) -> None:
        """PENDING -> SPEAKING once the voiced run is long enough to be speech."""
        if frame_end_sample - self._onset < self._min_speech:
            return
        floor = self._floor if self._floor is not None else 0
        self._start = max(self._onset - self._pre_roll, floor)
        self._speech_end = frame_end_sample
        self._state = _State.SPEAKING
        events.append(SpeechStarted(self._start))

    def _end(self, event: SpeechEnded, events: list[EndpointEvent]) -> None:
        events.append(event)
        self._floor = event.end_sample
        self._state = _State.IDLE
