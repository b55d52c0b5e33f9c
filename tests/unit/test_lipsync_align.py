"""Phoneme spans from audio without timing: espeak-ng phonemes per word, placed by word times and the envelope."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from procs.lipsync.align import BILABIALS, REST, phonemes_of, spans_from_audio, spans_from_words
from procs.lipsync.visemes import OUTPUT_RATE, PHONEME_VISEMES, Span, frame_count, mouth_track

RATE = OUTPUT_RATE


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str


@pytest.mark.parametrize(
    ("word", "phonemes"),
    [("mom", ["m", "ɑ", "m"]), ("bob", ["b", "ɑ", "b"]), ("pop", ["p", "ɑ", "p"]), ("food", ["f", "u", "d"]),
     ("vivid", ["v", "ɪ", "v", "ɪ", "d"]), ("think", ["θ", "ɪ", "ŋ", "k"]), ("see", ["s", "i"]),
     ("away", ["ɐ", "w", "e", "ɪ"]), ("eye", ["aɪ"]), ("church", ["tʃ", "ɜ", "tʃ"]), (" Mom.", ["m", "ɑ", "m"]),
     ("", []), ("...", [])],
)  # fmt: skip
def test_words_become_espeak_phonemes_whole_and_unmarked(word: str, phonemes: list[str]) -> None:
    assert phonemes_of(word) == phonemes


def test_every_phoneme_of_everyday_words_has_a_viseme() -> None:
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "judging", "thirty-three",
             "measures", "of", "yellow", "rouge"]  # fmt: skip
    unknown = {p for word in words for p in phonemes_of(word) if p not in PHONEME_VISEMES}
    assert not unknown


def harmonics(seconds: float, formants: tuple[float, ...], f0: float = 120.0) -> npt.NDArray[np.float64]:
    """A steady voiced sound: f0's harmonics shaped by resonances at `formants` (a crude vowel), peak 1."""
    t = np.arange(round(seconds * RATE)) / RATE
    signal = np.zeros_like(t)
    for k in range(1, int(5000 / f0)):
        gain = sum(1.0 / (1.0 + ((k * f0 - f) / 90.0) ** 2) for f in formants)
        signal += gain * np.sin(2 * np.pi * k * f0 * t)
    peak: float = float(np.abs(signal).max())
    return signal / peak


def gain_db(levels: list[tuple[float, float]], total_s: float) -> npt.NDArray[np.float64]:
    """A per-sample gain from (until_seconds, dB) steps, ramped over 5 ms so edges do not click."""
    gain = np.zeros(round(total_s * RATE))
    at = 0
    for until, db in levels:
        gain[at : round(until * RATE)] = 10 ** (db / 20)
        at = round(until * RATE)
    ramp = round(0.005 * RATE)
    smoothed: npt.NDArray[np.float64] = np.convolve(gain, np.ones(ramp) / ramp, mode="same")
    return smoothed


def speech(levels: list[tuple[float, float]], total_s: float) -> npt.NDArray[np.float32]:
    return (0.5 * harmonics(total_s, (700, 1200)) * gain_db(levels, total_s)).astype(np.float32)


def frame_at(seconds: float) -> int:
    return round(seconds * 30)


def assert_tiled_in_order(spans: list[Span]) -> None:
    assert all(s.end_sample > s.start_sample for s in spans)
    assert all(a.end_sample <= b.start_sample for a, b in itertools.pairwise(spans))


def test_spans_are_ordered_inside_their_words_and_gaps_rest() -> None:
    # Two words of sound separated by a pause, timed exactly where the sound is.
    pcm = speech([(0.1, -120), (0.5, 0), (0.7, -120), (1.2, 0), (1.5, -120)], 1.5)
    words = [Word(0.1, 0.5, "ahead"), Word(0.7, 1.2, "of")]
    spans = spans_from_words(words, pcm)
    assert_tiled_in_order(spans)
    speaking = [s for s in spans if s.phoneme != REST]
    assert [s.phoneme for s in speaking] == phonemes_of("ahead") + phonemes_of("of")
    first = speaking[: len(phonemes_of("ahead"))]
    assert first[0].start_sample >= 0.1 * RATE - 480 and first[-1].end_sample <= 0.5 * RATE + 480
    assert speaking[-1].end_sample <= 1.2 * RATE + 480
    rests = [s for s in spans if s.phoneme == REST]  # before, between and after: the spans tile the audio
    assert spans[0].start_sample == 0 and spans[-1].end_sample == len(pcm) and len(rests) == 3
    assert rests[1].start_sample <= 0.55 * RATE and rests[1].end_sample >= 0.65 * RATE


def test_a_bilabial_lands_on_the_energy_dip_near_where_it_was_expected() -> None:
    # "rabbit": by weight alone the b would sit near 0.51 s; the closure in the sound is at 0.46-0.50 s.
    pcm = speech([(0.1, -120), (0.46, 0), (0.5, -35), (0.8, 0), (1.0, -120)], 1.0)
    spans = spans_from_words([Word(0.1, 0.8, "rabbit")], pcm)
    assert_tiled_in_order(spans)
    (b,) = [s for s in spans if s.phoneme in BILABIALS]
    assert b.start_sample <= 0.48 * RATE < b.end_sample
    speaking = [s for s in spans if s.phoneme != REST]
    assert speaking[0].start_sample >= 0.1 * RATE - 480 and speaking[-1].end_sample <= 0.8 * RATE + 480


def test_two_bilabials_find_their_own_dips() -> None:
    # "mamma mia" (m æ m ə m i ə): by weight the inner m's would sit near 0.40 s and 0.60 s.
    pcm = speech([(0.1, -120), (0.34, 0), (0.38, -30), (0.6, 0), (0.64, -30), (0.9, 0), (1.0, -120)], 1.0)
    spans = spans_from_words([Word(0.1, 0.9, "mamma mia")], pcm)
    assert_tiled_in_order(spans)
    middles = [(s.start_sample + s.end_sample) / 2 / RATE for s in spans if s.phoneme in BILABIALS]
    assert len(middles) == 3 and abs(middles[1] - 0.36) < 0.02 and abs(middles[2] - 0.62) < 0.02, middles


def test_without_a_dip_a_bilabial_keeps_its_share_of_the_word() -> None:
    pcm = speech([(0.1, -120), (0.8, 0), (1.0, -120)], 1.0)
    spans = spans_from_words([Word(0.1, 0.8, "rabbit")], pcm)
    assert_tiled_in_order(spans)
    (b,) = [s for s in spans if s.phoneme in BILABIALS]
    assert 0.3 * RATE < b.start_sample < b.end_sample < 0.65 * RATE


def test_int16_and_float_input_agree_and_no_words_gives_no_spans() -> None:
    pcm = speech([(0.1, -120), (0.46, 0), (0.5, -35), (0.8, 0), (1.0, -120)], 1.0)
    pcm16 = np.round(pcm * 32767).astype(np.int16)
    words = [Word(0.1, 0.8, "rabbit")]
    assert spans_from_words(words, pcm16) == spans_from_words(words, pcm)
    assert spans_from_words([], pcm) == []
    assert spans_from_words([Word(0.2, 0.2, "empty"), Word(0.3, 0.5, "?!")], pcm) == []


def test_from_audio_opens_on_loud_vowels_and_shuts_in_a_deep_voiced_dip() -> None:
    # "ah - mm - ah": open vowels around a quiet hum.
    pcm = speech([(0.1, -120), (0.4, 0), (0.55, -25), (0.85, 0), (1.5, -120)], 1.5)  # room to close after it
    spans = spans_from_audio(pcm)
    assert_tiled_in_order(spans)
    track = mouth_track(spans, 0, frame_count(len(pcm)))
    assert max(m.opening for m in track[frame_at(0.15) : frame_at(0.35)]) > 0.6
    assert max(m.opening for m in track[frame_at(0.6) : frame_at(0.8)]) > 0.6
    assert min(m.opening for m in track[frame_at(0.4) : frame_at(0.55)]) == 0.0
    assert [s.phoneme for s in spans] == [REST, "a", "m", "a", REST]
    assert track[-1].opening < 0.1


def test_from_audio_tells_spread_from_rounded_and_rests_in_silence() -> None:
    ee = (0.5 * harmonics(0.4, (280, 2300, 3000))).astype(np.float32)
    oo = (0.5 * harmonics(0.4, (300, 800))).astype(np.float32)
    assert [s.phoneme for s in spans_from_audio(ee) if s.phoneme != REST] == ["i"]
    assert [s.phoneme for s in spans_from_audio(oo) if s.phoneme != REST] == ["u"]
    assert spans_from_audio(np.zeros(RATE, np.float32)) == []
    assert spans_from_audio(np.zeros(0, np.float32)) == []
