"""Visemes and the mouth track: shapes per phoneme, lips shut on m/b/p, no popping, rest in silence."""

from __future__ import annotations

import itertools

import pytest

from procs.lipsync.visemes import (
    FRAME_SAMPLES,
    MAX_STEP,
    OPENING_STEP,
    OUTPUT_RATE,
    MouthShape,
    Span,
    Viseme,
    frame_count,
    mouth_track,
    viseme_of,
)


def spans(*parts: tuple[str, float]) -> list[Span]:
    """Consecutive phonemes from (phoneme, seconds) pairs, starting at sample 0."""
    out, at = [], 0
    for phoneme, seconds in parts:
        length = round(seconds * OUTPUT_RATE)
        out.append(Span(phoneme, at, at + length))
        at += length
    return out


def frames_of(span: Span) -> range:
    return range(span.start_sample // FRAME_SAMPLES, -(-span.end_sample // FRAME_SAMPLES))


@pytest.mark.parametrize(
    ("phoneme", "viseme"),
    [("m", Viseme.LIPS_TOGETHER), ("b", Viseme.LIPS_TOGETHER), ("p", Viseme.LIPS_TOGETHER), ("f", Viseme.LIP_TEETH),
     ("v", Viseme.LIP_TEETH), ("u", Viseme.ROUNDED_SMALL), ("w", Viseme.ROUNDED_SMALL), ("ɔ", Viseme.ROUNDED_OPEN),
     ("i", Viseme.WIDE), ("ɑ", Viseme.OPEN), ("æ", Viseme.OPEN), ("ð", Viseme.TONGUE_TEETH), ("ə", Viseme.MID),
     (" ", Viseme.REST), ("", Viseme.REST), (".", Viseme.REST), ("☃", Viseme.REST)],
)  # fmt: skip
def test_each_phoneme_has_its_mouth_shape(phoneme: str, viseme: Viseme) -> None:
    assert viseme_of(phoneme) is viseme


def test_shapes_differ_as_mouths_do() -> None:
    assert Viseme.OPEN.value.opening > Viseme.MID.value.opening > Viseme.WIDE.value.opening
    assert Viseme.WIDE.value.width > Viseme.REST.value.width > Viseme.ROUNDED_SMALL.value.width
    assert Viseme.LIPS_TOGETHER.value.opening == 0.0 and Viseme.LIP_TEETH.value.teeth == 1.0


def test_lips_shut_inside_a_bilabial_between_open_vowels_and_the_vowels_open() -> None:
    track_spans = spans(("", 0.2), ("ɑ", 0.25), ("m", 0.07), ("ɑ", 0.25), ("", 0.3))
    track = mouth_track(track_spans, 0, frame_count(track_spans[-1].end_sample))
    m_frames = [k for k in frames_of(track_spans[2]) if 0 <= k < len(track)]  # shut while the m sounds
    assert all(track[k].opening == 0.0 for k in m_frames), [track[k].opening for k in m_frames]
    assert max(track[k].opening for k in frames_of(track_spans[1])) > 0.5
    assert max(track[k].opening for k in frames_of(track_spans[3])) > 0.5
    assert track[0].opening < 0.1 and track[-1].opening < 0.1  # silence rests (the first vowel is anticipated)


def test_a_bilabial_shorter_than_a_frame_still_shuts_the_lips_once() -> None:
    track_spans = spans(("", 0.1), ("a", 0.3), ("b", 0.02), ("a", 0.3), ("", 0.1))
    track = mouth_track(track_spans, 0, frame_count(track_spans[-1].end_sample))
    assert min(shape.opening for shape in track[3:-3]) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_no_value_ever_moves_more_than_a_step_between_frames(seed: int) -> None:
    import random

    rng = random.Random(seed)
    phonemes = ["m", "ɑ", "i", "u", "p", "f", " ", "s", "æ", "b", "o", "ð"]
    track_spans = spans(*[(rng.choice(phonemes), rng.uniform(0.02, 0.2)) for _ in range(40)])
    track = mouth_track(track_spans, 0, frame_count(track_spans[-1].end_sample))
    for a, b in itertools.pairwise(track):
        assert all(abs(x - y) <= MAX_STEP + 1e-9 for x, y in zip(a.as_tuple(), b.as_tuple(), strict=True))
        assert abs(a.opening - b.opening) <= OPENING_STEP + 1e-9
    bilabials = [s for s in track_spans if viseme_of(s.phoneme) is Viseme.LIPS_TOGETHER]
    assert all(any(track[k].opening == 0.0 for k in range(max(0, frames_of(s)[0] - 2), frames_of(s)[-1] + 1))
               for s in bilabials)  # fmt: skip


def test_silence_rests_and_an_empty_request_is_empty() -> None:
    assert mouth_track([], 0, 3) == [MouthShape()] * 3
    assert mouth_track(spans(("a", 0.2)), 0, 0) == []
    assert frame_count(1) == 1 and frame_count(FRAME_SAMPLES) == 1 and frame_count(FRAME_SAMPLES + 1) == 2


def test_every_viseme_is_its_own_member_so_a_pause_is_never_taken_for_a_bilabial() -> None:
    assert len(Viseme) == len(Viseme.__members__), "two visemes with equal shapes alias one another"
    assert viseme_of(" ") is Viseme.REST and viseme_of(" ") is not Viseme.LIPS_TOGETHER
