"""One live audio stream: VAD endpointing, and the decode work it asks for.

No threads and no model here: the stream turns audio into events and *decode jobs*, and turns decode results
into transcript events. The worker's scheduler runs one job at a time on the decoder, most urgent first:

    final        the utterance ended and nothing covers it yet: the user is waiting for this
    speculative  the first short pause: decode now, keep the text if the end of speech confirms the pause
    partial      the utterance is still going: re-decode the growing audio at most every partial_interval

A job's audio is copied when it is made, so later audio never changes what a running decode sees.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from appliance.config import SttStreamingConfig
from ipc.messages import FinalTranscript, Message, PartialTranscript, VadEvent
from procs.stt.agreement import LocalAgreement
from procs.stt.backends.base import SAMPLE_RATE, Audio, Transcript
from procs.stt.segmenter import Endpointer, PauseDetected, SpeechEnded, SpeechResumed, SpeechStarted
from procs.stt.vad import FrameChunker, SileroVad

Clock = Callable[[], float]
# Trailing audio after the last voiced frame that the decoder gets, so the last word is not clipped.
TAIL_SAMPLES = SAMPLE_RATE * 150 // 1000
MIN_PARTIAL_SAMPLES = SAMPLE_RATE * 8 // 10
_job_ids = itertools.count(1)


class JobKind(IntEnum):
    FINAL = 0
    SPECULATIVE = 1
    PARTIAL = 2


@dataclass(frozen=True, slots=True)
class DecodeJob:
    stream_id: str
    utterance: int
    kind: JobKind
    audio: Audio
    start_sample: int
    end_sample: int
    created: float
    job_id: int = field(default_factory=lambda: next(_job_ids))


@dataclass
class _Utterance:
    number: int
    start_sample: int
    end_sample: int | None = None  # known once the end of speech is confirmed
    end_detected_at: float = 0.0
    speculative_end: int | None = None  # the pause a speculative decode is (or was) made for
    speculative_text: str | None = None
    final_sent: bool = False
    last_partial_at: float = float("-inf")
    last_partial_end: int = 0


class LiveStream:
    def __init__(self, stream_id: str, config: SttStreamingConfig, vad: SileroVad, clock: Clock, *,
                 speculative: bool = True) -> None:  # fmt: skip
        self.stream_id = stream_id
        self._speculative = speculative
        self._config = config
        self._vad = vad
        self._clock = clock
        self._chunker = FrameChunker()
        self._endpointer = Endpointer(config)
        self._agreement = LocalAgreement()
        self._fed = False
        self._samples_seen = 0  # the stream sample index up to which audio went through the VAD
        self._buffer_start = 0  # stream sample index of self._buffer[0]
        self._buffer: Audio = np.zeros(0, dtype=np.float32)
        self._utterances = itertools.count(1)
        self._current: _Utterance | None = None  # the latest utterance (in speech, or just ended)
        # Utterances whose final is not out yet: the next may start while an earlier one is still decoding.
        self._open: dict[int, _Utterance] = {}
        self._waiting: dict[tuple[int, JobKind], DecodeJob] = {}  # per utterance, at most one job of each kind
        self._running: DecodeJob | None = None
        self.closing = False

    # --- audio in ------------------------------------------------------------------------------------------

    def feed(self, samples: Audio, first_sample: int) -> list[Message]:
        """Take the next chunk of audio (stream sample index `first_sample`); return the events it caused."""
        if not self._fed:
            # A stream re-opened on a restarted worker starts mid-stream: its clock starts here.
            self._fed = True
            self._samples_seen = self._buffer_start = first_sample
        if first_sample != self._buffer_start + self._buffer.shape[0]:
            # A gap (dropped chunks): pad with silence so sample indices stay true to the stream's clock.
            gap = max(0, first_sample - (self._buffer_start + self._buffer.shape[0]))
            samples = np.concatenate([np.zeros(gap, dtype=np.float32), samples])
        self._buffer = np.concatenate([self._buffer, samples])
        events: list[Message] = []
        for frame in self._chunker.frames(samples):
            self._samples_seen += frame.shape[0]
            probability = self._vad.process(frame)
            for event in self._endpointer.feed(probability, self._samples_seen):
                events += self._on_endpoint(event)
        self._maybe_partial()
        self._trim()
        return events

    def finish(self) -> list[Message]:
        """The client ended the stream: an utterance in progress ends where the audio ends."""
        self.closing = True
        if self._current is not None and self._current.end_sample is None:
            return self._on_endpoint(SpeechEnded(self._samples_seen, forced=True))
        return []

    @property
    def idle(self) -> bool:
        """Nothing in flight: no utterance awaiting its final, no job queued or running."""
        waiting_final = any(u.end_sample is not None for u in self._open.values())
        return not self._waiting and self._running is None and not waiting_final

    def _on_endpoint(self, event: SpeechStarted | PauseDetected | SpeechResumed | SpeechEnded) -> list[Message]:
        now = self._clock()
        match event:
            case SpeechStarted():
                self._current = _Utterance(next(self._utterances), event.start_sample)
                self._open[self._current.number] = self._current
                self._agreement.reset()
                self._drop_waiting(JobKind.PARTIAL)
                return [VadEvent(self.stream_id, self._current.number, "start", event.start_sample, now)]
            case PauseDetected() if self._current is not None and self._speculative:
                self._current.speculative_end = event.at_sample
                self._current.speculative_text = None
                self._queue(JobKind.SPECULATIVE, event.at_sample)
            case SpeechResumed() if self._current is not None:
                self._current.speculative_end = None
                self._current.speculative_text = None
                self._waiting.pop((self._current.number, JobKind.SPECULATIVE), None)
            case SpeechEnded() if self._current is not None:
                utterance = self._current
                utterance.end_sample, utterance.end_detected_at = event.end_sample, now
                self._drop_waiting(JobKind.PARTIAL)
                events: list[Message] = [VadEvent(self.stream_id, utterance.number, "end", event.end_sample, now)]
                if utterance.speculative_text is not None and not event.forced:
                    events += self._final(utterance, utterance.speculative_text, speculative=True, decode_s=0.0)
                elif not self._speculative_pending(utterance) or event.forced:
                    self._waiting.pop((utterance.number, JobKind.SPECULATIVE), None)
                    self._queue(JobKind.FINAL, min(event.end_sample + TAIL_SAMPLES, self._samples_seen))
                return events
        return []

    def _speculative_pending(self, utterance: _Utterance) -> bool:
        spec = self._waiting.get((utterance.number, JobKind.SPECULATIVE))
        running = self._running
        running_spec = (
            running is not None and running.kind is JobKind.SPECULATIVE and running.utterance == utterance.number
        )
        return utterance.speculative_end is not None and (spec is not None or running_spec)

    def _drop_waiting(self, kind: JobKind) -> None:
        for key in [key for key in self._waiting if key[1] is kind]:
            del self._waiting[key]

    def _maybe_partial(self) -> None:
        utterance = self._current
        # Only while the user is audibly speaking: a partial started in a pause would hold the decoder just
        # when the speculative final wants it.
        if utterance is None or utterance.end_sample is not None or not self._endpointer.voiced:
            return
        now = self._clock()
        long_enough = self._samples_seen - utterance.start_sample >= MIN_PARTIAL_SAMPLES
        due = now - utterance.last_partial_at >= self._config.partial_interval_s
        if long_enough and due and (utterance.number, JobKind.PARTIAL) not in self._waiting:
            self._queue(JobKind.PARTIAL, self._samples_seen)

    def _queue(self, kind: JobKind, end_sample: int) -> None:
        assert self._current is not None
        start = self._current.start_sample
        audio = self._slice(start, end_sample)
        self._waiting[(self._current.number, kind)] = DecodeJob(
            self.stream_id, self._current.number, kind, audio, start, end_sample, self._clock()
        )
        if kind is JobKind.PARTIAL:
            self._current.last_partial_at = self._clock()

    # --- decoding --------------------------------------------------------------------------------------------

    def next_job(self) -> DecodeJob | None:
        """The most urgent queued job (not yet taken)."""
        return min(self._waiting.values(), key=lambda job: (job.kind, job.created), default=None)

    def take(self, job: DecodeJob) -> None:
        self._waiting.pop((job.utterance, job.kind), None)
        self._running = job

    def done(self, job: DecodeJob, transcript: Transcript, decode_s: float) -> list[Message]:
        """A decode finished: turn its text into events (or keep it for a final that may follow)."""
        self._running = None
        utterance = self._open.get(job.utterance)
        if utterance is None or utterance.final_sent:
            return []
        text = transcript.text.strip()
        if job.kind is JobKind.FINAL:
            return self._final(utterance, text, speculative=False, decode_s=decode_s)
        if job.kind is JobKind.SPECULATIVE:
            if utterance.speculative_end != job.end_sample:
                return []  # speech resumed after that pause: the text is stale
            if utterance.end_sample is not None:
                return self._final(utterance, text, speculative=True, decode_s=decode_s)
            utterance.speculative_text = text
            return []
        if utterance.end_sample is not None:
            return []  # the final is on its way; a late partial would only confuse
        partial = self._agreement.update(text.split())
        utterance.last_partial_end = job.end_sample
        return [
            PartialTranscript(
                self.stream_id, utterance.number, partial.committed, partial.unstable, job.end_sample, self._clock()
            )
        ]

    def failed(self, job: DecodeJob) -> None:
        self._running = None
        utterance = self._open.get(job.utterance)
        if utterance is not None and job.kind is not JobKind.PARTIAL:
            self._close(utterance)  # the worker reports the error; do not wait for this final

    def _close(self, utterance: _Utterance) -> None:
        utterance.final_sent = True
        self._open.pop(utterance.number, None)
        for key in [key for key in self._waiting if key[0] == utterance.number]:
            del self._waiting[key]

    def _final(self, utterance: _Utterance, text: str, *, speculative: bool, decode_s: float) -> list[Message]:
        self._close(utterance)
        # Empty for noise the VAD took for speech: sent all the same, as the utterance's end, since a listener
        # holding an earlier utterance's words until this one is transcribed waits for it (question.py).
        assert utterance.end_sample is not None
        return [
            FinalTranscript(
                self.stream_id, utterance.number, text, utterance.start_sample, utterance.end_sample,
                utterance.end_detected_at, self._clock(), speculative, decode_s,
            )
        ]  # fmt: skip

    # --- the audio buffer ------------------------------------------------------------------------------------

    def _slice(self, start: int, end: int) -> Audio:
        lo = max(start - self._buffer_start, 0)
        hi = max(end - self._buffer_start, lo)
        return self._buffer[lo:hi].copy()

    def _trim(self) -> None:
        """Keep only what an utterance may still need: from its start, or a little pre-roll when idle."""
        keep_from = self._samples_seen - SAMPLE_RATE  # one second of context for the next utterance's pre-roll
        if self._current is not None and not self._current.final_sent:
            keep_from = min(keep_from, self._current.start_sample)
        drop = keep_from - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
