"""One live stream's logic with the real Silero VAD on synthesized speech; decode results are given."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from appliance.config import SttStreamingConfig
from ipc.messages import FinalTranscript, Message, PartialTranscript, VadEvent
from procs.stt.backends.base import SAMPLE_RATE, Transcript
from procs.stt.live import JobKind, LiveStream
from procs.stt.vad import SileroVad
from tests.speech import pad, synthesize


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feed_all(stream: LiveStream, clock: Clock, samples: np.ndarray, start: int = 0) -> list[Message]:
    events: list[Message] = []
    for offset in range(0, len(samples), 1600):
        clock.now += 0.1
        events += stream.feed(samples[offset : offset + 1600], start + offset)
    return events


def said(text: str) -> Transcript:
    return Transcript(text=text, language="en", segments=(), duration_s=1.0)


@pytest.fixture
def clip() -> np.ndarray:
    return pad(synthesize("Please close the window before you leave.", "espeak"), 0.5, 1.0).samples


def test_the_speculative_decode_becomes_the_final_when_the_pause_is_the_end(clip: np.ndarray) -> None:
    clock = Clock()
    stream = LiveStream("s", SttStreamingConfig(), SileroVad(), clock)
    events = feed_all(stream, clock, clip)
    assert [(e.kind) for e in events if isinstance(e, VadEvent)] == ["start", "end"]
    job = stream.next_job()
    assert job is not None and job.kind is JobKind.SPECULATIVE, "a final waits for the speculative decode"
    stream.take(job)
    assert stream.next_job() is None
    finals = [
        e
        for e in stream.done(job, said("Please close the window before you leave."), 0.5)
        if isinstance(e, FinalTranscript)
    ]
    assert len(finals) == 1 and finals[0].speculative
    assert finals[0].end_sample <= job.end_sample
    assert stream.idle


def test_partials_while_speaking_and_their_committed_text_only_grows() -> None:
    long = pad(synthesize("We have three cats and two dogs at home, and a garden full of flowers.", "espeak"), 0.3, 0.0)
    clock = Clock()
    stream = LiveStream("s", SttStreamingConfig(partial_interval_s=0.5), SileroVad(), clock)
    hypotheses = iter(
        ["We have", "We have three cats", "We have three cats and two dogs", "We have three cats and two dogs at home"]
    )
    partials: list[PartialTranscript] = []
    for offset in range(0, len(long.samples), 1600):
        clock.now += 0.1
        stream.feed(long.samples[offset : offset + 1600], offset)
        job = stream.next_job()
        if job is not None and job.kind is JobKind.PARTIAL:
            stream.take(job)
            partials += [
                e
                for e in stream.done(job, said(next(hypotheses, "We have three cats and two dogs at home")), 0.1)
                if isinstance(e, PartialTranscript)
            ]
    assert len(partials) >= 3
    committed = [p.committed for p in partials]
    assert all(b.startswith(a) for a, b in itertools.pairwise(committed))
    assert committed[-1].startswith("We have three cats")


def test_speech_that_resumes_after_a_pause_discards_the_speculative_text() -> None:
    first = synthesize("Turn the music down.", "espeak").samples
    second = synthesize("A little more, please.", "espeak").samples
    # espeak ends a clip with about 0.35 s of silence: a pause above 200 ms and below the 480 ms end of speech.
    short_gap = np.zeros(0, dtype=np.float32)
    samples = np.concatenate([np.zeros(8000, np.float32), first, short_gap, second, np.zeros(SAMPLE_RATE, np.float32)])
    clock = Clock()
    stream = LiveStream("s", SttStreamingConfig(partial_interval_s=60), SileroVad(), clock)
    stale = None
    starts = 0
    for offset in range(0, len(samples), 1600):
        clock.now += 0.1
        events = stream.feed(samples[offset : offset + 1600], offset)
        starts += sum(isinstance(e, VadEvent) and e.kind == "start" for e in events)
        job = stream.next_job()
        if job is not None and job.kind is JobKind.SPECULATIVE and stale is None:
            stale = job
            stream.take(job)
    assert stale is not None
    assert starts == 1, "one utterance with a pause inside, not two"
    assert stream.done(stale, said("Turn the music down."), 0.1) == [], "speech resumed: the text is stale"
    final_job = stream.next_job()
    assert final_job is not None and final_job.end_sample > stale.end_sample


def test_ending_the_stream_mid_utterance_asks_for_a_final(clip: np.ndarray) -> None:
    clock = Clock()
    stream = LiveStream("s", SttStreamingConfig(), SileroVad(), clock)
    feed_all(stream, clock, clip[: int(SAMPLE_RATE * 1.5)])
    events = stream.finish()
    assert any(isinstance(e, VadEvent) and e.kind == "end" for e in events)
    job = stream.next_job()
    assert job is not None and job.kind is JobKind.FINAL
    stream.take(job)
    finals = stream.done(job, said("Please close the"), 0.2)
    assert isinstance(finals[0], FinalTranscript) and not finals[0].speculative
    assert stream.idle and stream.closing


def test_a_stream_reopened_mid_way_keeps_the_streams_sample_clock(clip: np.ndarray) -> None:
    clock = Clock()
    stream = LiveStream("s", SttStreamingConfig(), SileroVad(), clock)
    start = 10 * SAMPLE_RATE
    events = feed_all(stream, clock, clip, start=start)
    vad = [e for e in events if isinstance(e, VadEvent)]
    assert vad and all(e.sample >= start for e in vad)
    job = stream.next_job()
    assert job is not None and start <= job.start_sample < job.end_sample <= start + len(clip)


def test_an_utterance_still_decoding_when_the_next_begins_still_gets_its_final() -> None:
    first = synthesize("Turn the music down.", "espeak").samples
    second = synthesize("Please close the window.", "espeak").samples
    gap = np.zeros(int(SAMPLE_RATE * 0.8), dtype=np.float32)
    samples = np.concatenate([np.zeros(8000, np.float32), first, gap, second])
    clock = Clock()
    stream = LiveStream("s", SttStreamingConfig(partial_interval_s=60), SileroVad(), clock)
    events = feed_all(stream, clock, samples)  # nothing is decoded meanwhile: the decoder is busy elsewhere
    starts = [e.utterance for e in events if isinstance(e, VadEvent) and e.kind == "start"]
    assert starts == [1, 2]
    job = stream.next_job()
    assert job is not None and job.utterance == 1
    stream.take(job)
    finals = [e for e in stream.done(job, said("Turn the music down."), 0.9) if isinstance(e, FinalTranscript)]
    assert [f.utterance for f in finals] == [1]
    assert finals[0].text == "Turn the music down."


def test_an_utterance_that_was_noise_still_ends_with_a_final_with_no_words(clip: np.ndarray) -> None:
    """A listener holding an earlier utterance's words waits for this one's transcript (question.py)."""
    clock = Clock()
    stream = LiveStream("s", SttStreamingConfig(partial_interval_s=60), SileroVad(), clock, speculative=False)
    feed_all(stream, clock, np.concatenate([clip, np.zeros(SAMPLE_RATE, np.float32)]))
    job = stream.next_job()
    assert job is not None
    stream.take(job)
    finals = [e for e in stream.done(job, said(""), 0.2) if isinstance(e, FinalTranscript)]
    assert [(f.utterance, f.text) for f in finals] == [(1, "")]
    assert stream.idle
