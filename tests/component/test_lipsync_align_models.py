"""Visemes from audio alone, scored against Piper's own phoneme timing, with the real Piper and faster-whisper.

Piper (the embedded voice) speaks sentences and says where each phoneme is: that is the truth. The audio alone
goes to faster-whisper (base, word_timestamps=True) and spans_from_words; the found spans are compared with the
truth per 30 fps frame (the viseme each frame shows), by bilabial recall (a true m, b or p overlapped by a found
one within +-60 ms) and by the correlation of the two mouth tracks' opening. The figures print (`pytest -rP`).
espeak-ng, which gives no timing, shows that closures come where the text has m, b or p.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pytest
import soxr

from appliance.config import SttConfig
from procs.lipsync.align import BILABIALS, REST, phonemes_of, spans_from_audio, spans_from_words
from procs.lipsync.visemes import FRAME_SAMPLES, OUTPUT_RATE, PHONEME_VISEMES, Span, frame_count, mouth_track, viseme_of
from tests.conftest import require_model
from tests.speech import PIPER_MODEL, SENTENCES, SpeechUnavailable, synthesize

pytest.importorskip("faster_whisper", reason="faster-whisper is not installed (pip install -e .)")
from procs.stt.backends.faster_whisper import FasterWhisperBackend
from procs.tts.backends.base import VoiceSettings
from procs.tts.backends.piper import PiperBackend

TEXTS = (*SENTENCES[::3], "My mom bought maple syrup and a bag of plums.", "Bob paid the bill at the pub by himself.")
TOLERANCE = round(0.06 * OUTPUT_RATE)
REPEATABLE = VoiceSettings(variation=0.0, timing_variation=0.0)  # the same waveform on every run


@pytest.fixture(scope="module")
def whisper() -> FasterWhisperBackend:
    config = SttConfig()
    profile = config.profiles["base"]
    backend = FasterWhisperBackend(profile, require_model(profile.model), language="en", beam_size=config.beam_size)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def piper() -> PiperBackend:
    backend = PiperBackend(require_model(PIPER_MODEL))
    backend.load()
    return backend


def heard(whisper: FasterWhisperBackend, pcm48: np.ndarray) -> list[Span]:
    audio = soxr.resample(pcm48, OUTPUT_RATE, 16_000).astype(np.float32)
    return spans_from_words(whisper.transcribe(audio, word_timestamps=True).words, pcm48)


def label(spans: Sequence[Span], sample: int) -> str:
    """What a frame shows: "bilabial", a viseme's name, or "rest" (by phoneme: visemes alias LIPS_TOGETHER to
    REST, whose shapes are equal)."""
    phoneme = next((s.phoneme for s in spans if s.start_sample <= sample < s.end_sample), REST)
    if phoneme in BILABIALS:
        return "bilabial"
    return viseme_of(phoneme).name.lower() if phoneme in PHONEME_VISEMES else "rest"


def bilabial_hits(truth: Sequence[Span], found: Sequence[Span]) -> tuple[int, int]:
    true = [s for s in truth if s.phoneme in BILABIALS]
    ours = [s for s in found if s.phoneme in BILABIALS]
    hits = sum(any(f.start_sample < t.end_sample + TOLERANCE and f.end_sample > t.start_sample - TOLERANCE
                   for f in ours) for t in true)  # fmt: skip
    return hits, len(true)


def test_found_spans_follow_pipers_own_timing(piper: PiperBackend, whisper: FasterWhisperBackend) -> None:
    agree = frames = hits = bilabials = 0
    truth_open: list[float] = []
    found_open: list[float] = []
    acoustic_open: list[float] = []
    for text in TEXTS:
        chunks = list(piper.synthesize(text, voice=REPEATABLE))
        pcm = np.concatenate([c.samples for c in chunks])
        truth, at = [], 0
        for chunk in chunks:
            truth += [Span(p.phoneme, p.start_sample + at, p.end_sample + at) for p in chunk.phonemes]
            at += len(chunk.samples)
        found = heard(whisper, pcm)
        count = frame_count(len(pcm))
        middles = [k * FRAME_SAMPLES + FRAME_SAMPLES // 2 for k in range(count)]
        pairs = [(label(truth, m), label(found, m)) for m in middles]
        speaking = [(a, b) for a, b in pairs if "rest" not in (a, b) or a != b]
        agree += sum(a == b for a, b in speaking)
        frames += len(speaking)
        hit, total = bilabial_hits(truth, found)
        hits, bilabials = hits + hit, bilabials + total
        truth_open += [m.opening for m in mouth_track(truth, 0, count)]
        found_open += [m.opening for m in mouth_track(found, 0, count)]
        acoustic_open += [m.opening for m in mouth_track(spans_from_audio(pcm), 0, count)]
    agreement, recall = agree / frames, hits / bilabials
    correlation = float(np.corrcoef(truth_open, found_open)[0, 1])
    acoustic = float(np.corrcoef(truth_open, acoustic_open)[0, 1])
    print(f"{len(TEXTS)} Piper sentences: per-frame viseme agreement {agreement:.1%} over {frames} speaking frames, "
          f"bilabial recall {recall:.1%} ({hits}/{bilabials}), opening correlation {correlation:.2f}; "
          f"from the audio alone (spans_from_audio): opening correlation {acoustic:.2f}")  # fmt: skip
    assert recall >= 0.8
    assert correlation >= 0.45
    assert agreement >= 0.3
    assert acoustic >= 0.2


def test_a_voice_without_timing_closes_the_lips_where_the_text_has_bilabials(whisper: FasterWhisperBackend) -> None:
    text = "My mom bought maple syrup and a bag of plums."
    try:
        clip = synthesize(text, "espeak")
    except SpeechUnavailable as err:
        if os.environ.get("CI"):
            pytest.fail(f"espeak-ng: {err}")
        pytest.skip(f"espeak-ng: {err}")
    pcm = soxr.resample(clip.samples, 16_000, OUTPUT_RATE).astype(np.float32)
    words = whisper.transcribe(clip.samples, word_timestamps=True).words
    spans = spans_from_words(words, pcm)
    track = mouth_track(spans, 0, frame_count(len(pcm)))
    closures = [s for s in spans if s.phoneme in BILABIALS]
    expected = sum(p in BILABIALS for word in text.split() for p in phonemes_of(word))
    assert len(closures) == expected, [w.word for w in words]
    for word in words:
        ours = [s for s in closures if word.start - 0.2 <= s.start_sample / OUTPUT_RATE <= word.end + 0.2]
        if any(p in BILABIALS for p in phonemes_of(word.word)):
            assert ours, word
            first, last = ours[0].start_sample // FRAME_SAMPLES, ours[-1].end_sample // FRAME_SAMPLES
            assert min(m.opening for m in track[max(0, first - 2) : last + 1]) == 0.0, word
    print(f"espeak-ng: {len(closures)} closures for the {expected} m/b/p in {text!r}")
