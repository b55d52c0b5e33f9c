"""Endpointer: the endpointing state machine driven by synthetic per-frame speech probabilities."""

from __future__ import annotations

from appliance.config import SttStreamingConfig
from procs.stt.segmenter import (
    Endpointer,
    EndpointEvent,
    PauseDetected,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)

F = 512  # samples per 32 ms frame
PRE_ROLL = 6400  # 400 ms
SPEECH, SILENCE = 0.9, 0.02

# Defaults: threshold 0.5 (leave below 0.35), pause 200 ms (7 frames), end 480 ms (15 frames),
# min speech 160 ms (5 frames).
DEFAULTS = SttStreamingConfig()


def run(endpointer: Endpointer, probabilities: list[float], first_frame: int = 0) -> list[tuple[int, EndpointEvent]]:
    """Feed frames first_frame, first_frame + 1, ...; returns (index of the frame that emitted it, event)."""
    out: list[tuple[int, EndpointEvent]] = []
    for index, probability in enumerate(probabilities, start=first_frame):
        out.extend((index, event) for event in endpointer.feed(probability, (index + 1) * F))
    return out


def test_clean_utterance() -> None:
    endpointer = Endpointer(DEFAULTS)
    events = run(endpointer, [SILENCE] * 20 + [SPEECH] * 40 + [SILENCE] * 30)
    speech_end = 60 * F
    assert events == [
        (24, SpeechStarted(20 * F - PRE_ROLL)),  # the fifth voiced frame makes 160 ms
        (66, PauseDetected(67 * F, speech_end)),  # 7 silent frames = 224 ms >= 200 ms
        (74, SpeechEnded(speech_end)),  # 15 silent frames = 480 ms
    ]
    assert not endpointer.in_speech


def test_hysteresis_keeps_weak_consonants_and_ignores_sub_threshold_noise() -> None:
    endpointer = Endpointer(DEFAULTS)
    # 0.45 never starts speech (below 0.5) ...
    assert run(endpointer, [0.45] * 20) == []
    # ... but once in speech, dips to 0.4 (above 0.35) are still speech: no pause, speech ends after them.
    events = run(endpointer, [SPEECH] * 10 + [0.4, 0.38] * 10 + [SPEECH] * 5 + [SILENCE] * 20, first_frame=20)
    assert [type(event) for _, event in events] == [SpeechStarted, PauseDetected, SpeechEnded]
    assert events[-1][1] == SpeechEnded((20 + 35) * F)


def test_short_gap_is_nothing_and_a_pause_that_resumes_is_announced() -> None:
    endpointer = Endpointer(DEFAULTS)
    probabilities = [SPEECH] * 20 + [SILENCE] * 4 + [SPEECH] * 10 + [SILENCE] * 8 + [SPEECH] * 10 + [SILENCE] * 20
    events = run(endpointer, probabilities)
    assert events == [
        (4, SpeechStarted(0)),  # speech from the first frame: the pre-roll stops at the stream's start
        (40, PauseDetected(41 * F, 34 * F)),  # the 4-frame gap said nothing; the 8-frame one did
        (42, SpeechResumed(42 * F)),  # the speculative decode started at frame 40 must be discarded
        (58, PauseDetected(59 * F, 52 * F)),
        (66, SpeechEnded(52 * F)),
    ]


def test_pause_is_announced_once() -> None:
    endpointer = Endpointer(DEFAULTS)
    events = run(endpointer, [SPEECH] * 10 + [0.1, 0.2, 0.3, 0.2] * 5)
    assert [type(event) for _, event in events] == [SpeechStarted, PauseDetected, SpeechEnded]


def test_cough_shorter_than_min_speech_is_ignored() -> None:
    endpointer = Endpointer(DEFAULTS)
    assert run(endpointer, [SILENCE] * 5 + [0.95] * 4 + [SILENCE] * 30 + [0.95, 0.1] * 10) == []
    assert not endpointer.in_speech


def test_utterance_longer_than_the_cap_is_cut_and_the_talker_carries_on() -> None:
    config = SttStreamingConfig(max_utterance_s=2.0)  # 32000 samples = 62.5 frames
    endpointer = Endpointer(config)
    events = run(endpointer, [SILENCE] * 20 + [SPEECH] * 200 + [SILENCE] * 20)
    kinds = [type(event) for _, event in events]
    assert kinds == [SpeechStarted, SpeechEnded] * 3 + [SpeechStarted, PauseDetected, SpeechEnded]
    starts = [event.start_sample for _, event in events if isinstance(event, SpeechStarted)]
    ends = [event for _, event in events if isinstance(event, SpeechEnded)]
    assert [end.forced for end in ends] == [True, True, True, False]
    assert starts[0] == 20 * F - PRE_ROLL
    for start, end in zip(starts[:-1], ends[:-1], strict=True):
        assert end.end_sample - start == 32000  # cut exactly at the cap, even inside a frame
    # Each new utterance begins exactly where the cut was: nothing lost, nothing transcribed twice.
    assert starts[1:] == [end.end_sample for end in ends[:-1]]
    assert ends[-1].end_sample == 220 * F


def test_back_to_back_utterances() -> None:
    endpointer = Endpointer(DEFAULTS)
    first = [SPEECH] * 30 + [SILENCE] * 16
    second = [SPEECH] * 25 + [SILENCE] * 16
    events = run(endpointer, [SILENCE] * 20 + first + second)
    assert [event for _, event in events] == [
        SpeechStarted(20 * F - PRE_ROLL),
        PauseDetected(57 * F, 50 * F),
        SpeechEnded(50 * F),
        SpeechStarted(66 * F - PRE_ROLL),
        PauseDetected(98 * F, 91 * F),
        SpeechEnded(91 * F),
    ]


def test_pre_roll_never_reaches_before_the_previous_utterance_or_the_stream_start() -> None:
    config = SttStreamingConfig(end_of_speech_ms=64, speculative_pause_ms=32)  # shorter than the pre-roll
    endpointer = Endpointer(config)
    events = run(endpointer, [SPEECH] * 10 + [SILENCE] * 2 + [SPEECH] * 10 + [SILENCE] * 2, first_frame=100)
    starts = [event.start_sample for _, event in events if isinstance(event, SpeechStarted)]
    ends = [event.end_sample for _, event in events if isinstance(event, SpeechEnded)]
    assert starts == [100 * F, ends[0]]


def test_pause_as_long_as_end_of_speech_ends_without_a_speculative_pause() -> None:
    config = SttStreamingConfig(speculative_pause_ms=480, end_of_speech_ms=480)
    events = run(Endpointer(config), [SPEECH] * 10 + [SILENCE] * 20)
    assert [event for _, event in events] == [SpeechStarted(0), SpeechEnded(10 * F)]


def test_reset_forgets_the_utterance() -> None:
    endpointer = Endpointer(DEFAULTS)
    run(endpointer, [SPEECH] * 10)
    assert endpointer.in_speech
    endpointer.reset()
    assert not endpointer.in_speech
    assert run(endpointer, [SILENCE] * 30) == []


def test_cap_reached_in_trailing_silence_ends_where_the_speech_stopped() -> None:
    config = SttStreamingConfig(max_utterance_s=2.0)
    events = run(Endpointer(config), [SPEECH] * 59 + [SILENCE] * 10)
    assert events == [(4, SpeechStarted(0)), (62, SpeechEnded(59 * F, forced=True))]
