"""Slicing a voice sample at its pauses, on synthetic recordings: noise bursts ("speech") between known silences."""

from __future__ import annotations

import itertools
import time

import numpy as np
import numpy.typing as npt
import pytest

from procs.trainer.slicing import ClipSpan, PauseSettings, slice_at_pauses, trim_silence

RATE = 32_000
Timeline = list[tuple[str, float]]  # ("speech" | "pause", seconds) in order


def _speech(seconds: float, rng: np.random.Generator, level: float = 0.3) -> npt.NDArray[np.float32]:
    """Noise with a syllable-rate swell (never down to silence), like the envelope of talk."""
    t = np.arange(round(seconds * RATE)) / RATE
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    return (level * envelope * rng.standard_normal(len(t))).astype(np.float32)


def _render(timeline: Timeline, seed: int = 1) -> tuple[npt.NDArray[np.float32], list[tuple[int, int]]]:
    """The recording, and where each burst of speech is (samples, end exclusive). Pauses hold faint noise."""
    rng = np.random.default_rng(seed)
    parts, bursts, at = [], [], 0
    for kind, seconds in timeline:
        if kind == "speech":
            part = _speech(seconds, rng)
            bursts.append((at, at + len(part)))
        else:
            part = (1e-4 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)  # -80 dB room noise
        parts.append(part)
        at += len(part)
    return np.concatenate(parts), bursts


def _check_window(clips: list[ClipSpan], low: float = 3.0, high: float = 10.0) -> None:
    assert clips, "no clips"
    for clip in clips:
        assert low <= clip.duration_s <= high, clip
    for before, after in itertools.pairwise(clips):
        assert before.end <= after.start, (before, after)


def _burst_clips(clip: ClipSpan, bursts: list[tuple[int, int]]) -> list[int]:
    """The bursts inside a clip; fails if the clip's edge falls inside any burst."""
    inside = []
    for index, (start, end) in enumerate(bursts):
        if clip.start <= start and end <= clip.end:
            inside.append(index)
        else:
            assert end <= clip.start or clip.end <= start, f"clip {clip} cuts burst {index} {(start, end)}"
    return inside


def test_clips_are_cut_inside_pauses_and_fit_gpt_sovits_window() -> None:
    timeline: Timeline = [
        ("pause", 0.7), ("speech", 4.0), ("pause", 0.6), ("speech", 2.0), ("pause", 0.8), ("speech", 5.0),
        ("pause", 1.0), ("speech", 3.5), ("pause", 0.5), ("speech", 2.5), ("pause", 0.4), ("speech", 2.2),
        ("pause", 1.2), ("speech", 6.0), ("pause", 0.9), ("speech", 1.8), ("pause", 0.6), ("speech", 4.4),
        ("pause", 0.5),
    ]  # fmt: skip
    audio, bursts = _render(timeline)
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    covered = [index for clip in clips for index in _burst_clips(clip, bursts)]
    assert covered == list(range(len(bursts)))  # every burst in exactly one clip, in order
    for clip in clips:  # edges keep at most 150 ms of silence (plus the 10 ms frame and 15 ms RMS window)
        inside = _burst_clips(clip, bursts)
        assert bursts[inside[0]][0] - clip.start <= 0.18 * RATE
        assert clip.end - bursts[inside[-1]][1] <= 0.18 * RATE
        assert 0.5 < clip.speech_fraction <= 1.0


def test_the_longest_pause_in_reach_is_chosen() -> None:
    audio, bursts = _render([("speech", 3.5), ("pause", 0.4), ("speech", 1.0), ("pause", 1.5), ("speech", 1.5),
                             ("pause", 0.4), ("speech", 4.0), ("pause", 0.3)])  # fmt: skip
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    assert [_burst_clips(clip, bursts) for clip in clips] == [[0, 1], [2, 3]]  # cut at the 1.5 s pause


def test_speech_with_no_pause_is_cut_at_its_quietest_moment() -> None:
    rng = np.random.default_rng(3)
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), _speech(16.0, rng)])
    dip = slice(RATE // 2 + round(6.5 * RATE), RATE // 2 + round(6.6 * RATE))
    audio[dip] *= 0.25  # -12 dB: quieter, still far above the -34 dB threshold
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    assert len(clips) == 2
    assert clips[0].end == clips[1].start  # a cut inside speech keeps no silence, loses nothing
    assert dip.start <= clips[0].end <= dip.stop


def test_long_steady_tone_is_cut_into_clips_within_the_window() -> None:
    t = np.arange(35 * RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    assert clips[0].start == 0 and clips[-1].end == len(audio)
    assert all(a.end == b.start for a, b in itertools.pairwise(clips))


def test_a_tail_too_short_for_a_clip_is_not_stranded() -> None:
    audio, bursts = _render([("speech", 4.0), ("pause", 0.5), ("speech", 4.0), ("pause", 0.5), ("speech", 1.0),
                             ("pause", 0.3)])  # fmt: skip
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    assert [_burst_clips(clip, bursts) for clip in clips] == [[0], [1, 2]]


def test_a_short_piece_joins_the_clip_before_it_when_that_stays_within_max() -> None:
    # The first clip ends at the 1 s pause (the longest); the 1 s piece then cannot reach a clip of its own
    # (with the 9.5 s burst it would pass 10 s), so it joins the clip before it.
    audio, bursts = _render([("pause", 0.3), ("speech", 5.0), ("pause", 1.0), ("speech", 1.0), ("pause", 0.5),
                             ("speech", 9.5), ("pause", 0.3)])  # fmt: skip
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    assert [_burst_clips(clip, bursts) for clip in clips] == [[0, 1], [2]]


def test_a_short_tail_that_cannot_join_is_dropped() -> None:
    audio, bursts = _render([("speech", 9.0), ("pause", 0.6), ("speech", 1.0), ("pause", 0.3)])
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    assert [_burst_clips(clip, bursts) for clip in clips] == [[0]]


def test_a_long_pause_always_separates_clips() -> None:
    audio, bursts = _render([("speech", 2.0), ("pause", 2.5), ("speech", 2.0), ("pause", 0.5), ("speech", 2.0)])
    clips = slice_at_pauses(audio, RATE)
    _check_window(clips)
    assert [_burst_clips(clip, bursts) for clip in clips] == [[1, 2]]  # the 2 s before the long pause is dropped
    merged = slice_at_pauses(audio, RATE, pauses=PauseSettings(max_inner_pause_s=3.0))
    assert [_burst_clips(clip, bursts) for clip in merged] == [[0, 1, 2]]


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros(5 * RATE, np.float32),
        (1e-4 * np.random.default_rng(0).standard_normal(5 * RATE)).astype(np.float32),  # -80 dBFS noise only
        np.zeros(0, np.float32),
    ],
    ids=["digital-silence", "room-noise", "empty"],
)
def test_silence_gives_no_clips(audio: npt.NDArray[np.float32]) -> None:
    assert slice_at_pauses(audio, RATE) == []
    assert trim_silence(audio, RATE) is None


def test_too_little_speech_gives_no_clips() -> None:
    audio, _ = _render([("pause", 1.0), ("speech", 1.5), ("pause", 1.0)])
    assert slice_at_pauses(audio, RATE) == []


def test_the_threshold_is_relative_to_the_peak_and_the_result_deterministic() -> None:
    audio, _ = _render([("speech", 4.0), ("pause", 0.6), ("speech", 3.0), ("pause", 0.7), ("speech", 5.0)])
    clips = slice_at_pauses(audio, RATE)
    assert slice_at_pauses(audio.copy(), RATE) == clips
    assert [(c.start, c.end) for c in slice_at_pauses(audio * 0.1, RATE)] == [(c.start, c.end) for c in clips]


def test_a_minute_of_32khz_audio_slices_in_well_under_100_ms() -> None:
    timeline: Timeline = []
    for index in range(12):
        timeline += [("speech", 3.0 + (index % 4)), ("pause", 0.4 + 0.1 * (index % 3))]
    audio, _ = _render(timeline)
    assert len(audio) >= 60 * RATE
    best = min(_timed(audio) for _ in range(5))
    assert best < 0.1, f"{best * 1000:.0f} ms"


def _timed(audio: npt.NDArray[np.float32]) -> float:
    start = time.perf_counter()
    slice_at_pauses(audio, RATE)
    return time.perf_counter() - start


def test_trim_silence_keeps_a_little_of_each_edge() -> None:
    audio, bursts = _render([("pause", 1.0), ("speech", 2.0), ("pause", 0.8)])
    span = trim_silence(audio, RATE)
    assert span is not None
    (start, end) = bursts[0]
    assert start - 0.18 * RATE <= span.start <= start - 0.1 * RATE
    assert end + 0.1 * RATE <= span.end <= end + 0.18 * RATE
    assert len(span.take(audio)) == span.end - span.start


def test_stereo_is_refused() -> None:
    with pytest.raises(ValueError, match="mono"):
        slice_at_pauses(np.zeros((2, RATE), np.float32), RATE)
