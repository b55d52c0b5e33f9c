"""Phoneme spans found from audio that came without them (GPT-SoVITS, uploads, other voices). Pure but for
phonemizing: no clock, no files.

With words timed by STT (`spans_from_words`): each word's phonemes (espeak-ng, the one Piper bundles) share the
word's interval by weight (vowels long, stops short), then the audio refines them. Whisper's word times lean
early or late for a whole utterance, so all words first shift together to where their expected loudness best
matches the envelope (_lag); an edge that sits next to silence then moves to where the envelope rises or falls;
and an m, b or p, the one viseme that viewers check (lips that never close look dubbed), moves to a dip in the
envelope near its expected time when there is one: a stop's closure is near silence and a nasal is quieter
than the vowels around it. The phonemes between such anchors share what is left. Gaps between words rest.

Without words (`spans_from_audio`: STT heard nothing, e.g. humming or singing), see its docstring.

Everything is on the 48 kHz output timeline of procs.lipsync.visemes; words are in seconds on the same audio.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from procs.lipsync.visemes import OUTPUT_RATE, PHONEME_VISEMES, Span, Viseme

Pcm = npt.NDArray[np.float32] | npt.NDArray[np.int16]
Envelope = npt.NDArray[np.float64]

HOP = OUTPUT_RATE // 100  # the envelope's step: 10 ms
WINDOW = 2 * HOP  # each step's energy is over 20 ms around it
SPEECH_RANGE_DB = 30.0  # quieter than the loud part of the speech by this much is a pause
EDGE_SEARCH_S = 0.12  # how far a word edge may move to meet the energy's rise or fall
BILABIAL_SEARCH_S = 0.06  # how far an m, b or p may move to meet a dip
DIP_DB = 4.0  # a dip is this far below the envelope's highest point on each side within BILABIAL_SEARCH_S
MIN_PHONEME_S = 0.015
LAG_S = 0.15  # the most that all of an utterance's word times may be shifted by
CORE_DB = 4.0  # a syllable's vowel: where the envelope is within this of the syllable's peak
BILABIAL_S = (0.04, 0.12)  # the duration a placed closure keeps, clamped to this
REST = " "  # the phoneme of a gap between words: viseme_of rests the mouth
# By phoneme, not by `viseme_of(p) is Viseme.LIPS_TOGETHER`: an enum member whose shape equals another's is its
# alias (LIPS_TOGETHER once equalled REST), and then pauses and unknown symbols would count as closures.
BILABIALS = frozenset(p for p, viseme in PHONEME_VISEMES.items() if viseme is Viseme.LIPS_TOGETHER)

_STOPS = frozenset("pbtdkɡgʔɾ")
_SUSTAINED = frozenset(("s", "z", "ʃ", "ʒ", "tʃ", "dʒ"))
_REDUCED = frozenset(("ə", "ɐ", "ᵻ", "ɪ", "ʊ"))
_VOWELS = frozenset(v for v, viseme in PHONEME_VISEMES.items() if viseme in (
    Viseme.OPEN, Viseme.MID, Viseme.ROUNDED_OPEN) or v in "iɪuʊᵻ")  # fmt: skip
_CLUSTERS = sorted((p for p in PHONEME_VISEMES if len(p) > 1), key=len, reverse=True)  # aɪ aʊ tʃ dʒ
# How loud each kind of sound is, 0-1, for lining words up with the envelope (by a phoneme's first letter).
_SONORITY = {**dict.fromkeys("aæɑɐeɛəʌɜɚɝoɔɒiɪuʊᵻ", 1.0), **dict.fromkeys("mnŋlɫwjɹr", 0.6),
             **dict.fromkeys("szʃʒvðh", 0.3), **dict.fromkeys("pbtdkɡgʔɾfθ", 0.0)}  # fmt: skip
_MARKS = frozenset("ˈˌːˑ-'_|")  # stress, length and espeak-ng's separators: no sound of their own

# espeak-ng keeps one voice at a time for the whole process, Piper included: calls take turns.
_ESPEAK_LOCK = threading.Lock()
_espeak_ready = False


class TimedWord(Protocol):
    """A word and where it was heard, in seconds (ipc.messages.TranscriptWord and the STT backend's Word)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def word(self) -> str: ...


def phonemes_of(word: str, language: str = "en") -> list[str]:
    """`word`'s espeak-ng IPA phonemes, one PHONEME_VISEMES segment each ("aɪ", "tʃ" whole), without stress
    or length marks; a trailing "ː" survives only as the weight _weights gives the vowel before it."""
    return [p.rstrip("ː") for p in _marked_phonemes(_clean(word), _espeak_voice(language))]


def spans_from_words(words: Sequence[TimedWord], pcm48: Pcm, language: str = "en") -> list[Span]:
    """Phoneme spans for timed words on `pcm48` (mono, 48 kHz): ordered, non-overlapping, each inside its word's
    interval (moved to the energy's edges); they tile the audio, with REST spans before, between and after words."""
    energy = _envelope(pcm48)
    floor = _speech_floor(energy)
    timed = [(w, marked) for w in sorted(words, key=lambda w: w.start)
             if w.end > w.start and (marked := _marked_phonemes(_clean(w.word), _espeak_voice(language)))]  # fmt: skip
    shift = _lag(energy, floor, [(round(w.start * OUTPUT_RATE), round(w.end * OUTPUT_RATE), m) for w, m in timed])
    spans: list[Span] = []
    previous_end = 0
    for index, (word, marked) in enumerate(timed):
        following = round(timed[index + 1][0].start * OUTPUT_RATE) + shift if index + 1 < len(timed) else len(pcm48)
        start = max(previous_end, round(word.start * OUTPUT_RATE) + shift)
        end = min(max(start, round(word.end * OUTPUT_RATE) + shift), len(pcm48))
        start, end = _snapped(energy, floor, start, end, previous_end, max(end, min(following, len(pcm48))))
        if end <= start:
            continue
        if start > previous_end:
            spans.append(Span(REST, previous_end, start))
        spans += _placed([p.rstrip("ː") for p in marked], _weights(marked), energy, start, end)
        previous_end = end
    return _rest_until(spans, len(pcm48)) if spans else []


def _lag(energy: Envelope, floor: float, words: Sequence[tuple[int, int, tuple[str, ...]]]) -> int:
    """The shift (samples, within LAG_S) that best lines the words' expected loudness up with the envelope.

    Whisper's word times come from cross-attention and lean one way for a whole utterance (measured on Piper's
    voice: about 60 ms early); one shift for all words takes that lean out before the local refinements.
    """
    if not words or not len(energy):
        return 0
    expected = np.zeros(len(energy))
    for start, end, marked in words:
        bounds = _shared(_weights(marked), start, end)
        for phoneme, lo, hi in zip(marked, bounds, bounds[1:], strict=False):
            expected[lo // HOP : max(lo // HOP + 1, hi // HOP)] = _SONORITY.get(phoneme.rstrip("ː")[:1], 0.1)
    heard = np.clip((energy - floor) / max(float(energy.max()) - floor, 1e-6), 0.0, 1.0)
    reach = round(LAG_S * OUTPUT_RATE) // HOP
    expected = np.pad(expected - expected.mean(), reach)
    heard = np.pad(heard - heard.mean(), reach)
    scores = [float(np.dot(np.roll(expected, k), heard)) for k in range(-reach, reach + 1)]
    return (int(np.argmax(scores)) - reach) * HOP


def spans_from_audio(pcm48: Pcm) -> list[Span]:
    """Spans from the sound alone, for audio with no words: humming, singing, a language STT missed.

    Speech is where the envelope is within SPEECH_RANGE_DB of its loud part. In it, each syllable nucleus (an
    envelope peak at least DIP_DB above the valleys beside it) is a vowel whose shape comes from the spectrum
    around the peak: a strong 1.8-3.5 kHz band over a low first formant is "i" (spread), nearly all energy
    under 1 kHz is "u" (rounded; "m", lips shut, when also quiet: a hum), much of it is "o", a high spectral
    centroid is "a" (open), the rest "ə" (mid). Between nuclei: a stretch mostly above 3.5 kHz is "s"
    (a hiss through the teeth); a valley DIP_DB x 3 below both nuclei is "m" (a closure: a stop or a nasal);
    any other valley is "ə". Pauses are REST spans. A guess at the shape, not the phoneme:
    it opens on loud vowels, rounds and spreads with the formants and shuts in deep dips.
    """
    energy = _envelope(pcm48)
    floor = _speech_floor(energy)
    samples = _as_float(pcm48)
    spans: list[Span] = []
    for first, last in _runs(energy >= floor):
        peaks = _nuclei(energy, first, last)
        if not peaks:
            spans.append(Span(_vowel_of(samples, first, last + 1, quiet=True), _at(first), _at(last + 1)))
            continue
        loud = float(max(energy[p] for p in peaks))
        valleys = [int(a + np.argmin(energy[a:b])) for a, b in itertools.pairwise(peaks)]
        syllables = list(zip([first, *valleys], [*valleys, last + 1], strict=True))
        cores = [_core(energy, peak, lo, hi) for peak, (lo, hi) in zip(peaks, syllables, strict=True)]
        vowel_start = first
        for k, (peak, (core_lo, core_hi)) in enumerate(zip(peaks, cores, strict=True)):
            if k > 0 and core_lo - cores[k - 1][1] >= 2:  # a valley of 20 ms or more between vowels: a consonant
                consonant = _consonant_of(samples, energy, cores[k - 1][1], core_lo, peaks[k - 1], peak)
                spans.append(Span(consonant, _at(cores[k - 1][1]), _at(core_lo)))
                vowel_start = core_lo
            vowel_end = last + 1 if k == len(peaks) - 1 else core_hi
            vowel = _vowel_of(samples, core_lo, core_hi, quiet=energy[peak] < loud - 10.0)
            spans.append(Span(vowel, _at(vowel_start), _at(vowel_end)))
            vowel_start = vowel_end
    return _rest_until(spans, len(pcm48)) if spans else []


def _rest_until(spans: list[Span], length: int) -> list[Span]:
    """`spans` cut to [0, length) with REST spans in every gap, so that the mouth closes in pauses: mouth_track
    blends toward any span within reach of a frame, so an untiled pause would hold the neighbouring vowel."""
    out: list[Span] = []
    at = 0
    for span in spans:
        start, end = max(span.start_sample, at), min(span.end_sample, length)
        if end <= start:
            continue
        if start > at:
            out.append(Span(REST, at, start))
        out.append(Span(span.phoneme, start, end))
        at = end
    if at < length:
        out.append(Span(REST, at, length))
    return out


def _core(energy: Envelope, peak: int, lo: int, hi: int) -> tuple[int, int]:
    """The hops around `peak`, within [lo, hi), that stay within CORE_DB of it: the vowel itself."""
    core_lo, core_hi = peak, peak + 1
    while core_lo > lo and energy[core_lo - 1] >= energy[peak] - CORE_DB:
        core_lo -= 1
    while core_hi < hi and energy[core_hi] >= energy[peak] - CORE_DB:
        core_hi += 1
    return core_lo, core_hi


# --- phonemes ----------------------------------------------------------------------------------------------


def _clean(word: str) -> str:
    """A word as STT writes it (" Kitchen.", "don't") without its spaces and punctuation."""
    return re.sub(r"[^\w'’]+", " ", word).strip()


def _espeak_voice(language: str) -> str:
    return "en-us" if language == "en" else language  # Piper's English voices speak espeak-ng's American


@functools.lru_cache(maxsize=4096)
def _marked_phonemes(word: str, voice: str) -> tuple[str, ...]:
    """Segments with their length mark kept ("ɑː"): the mark says how long the vowel is."""
    if not word:
        return ()
    from piper import espeakbridge  # the compiled espeak-ng inside piper-tts, with its own data: no system espeak
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    global _espeak_ready
    with _ESPEAK_LOCK:
        if not _espeak_ready:
            espeakbridge.initialize(str(ESPEAK_DATA_DIR))
            _espeak_ready = True
        espeakbridge.set_voice(voice)
        clauses = espeakbridge.get_phonemes(word)
    ipa = re.sub(r"\([^)]*\)", "", "".join(phonemes for phonemes, _, _ in clauses))  # "(en)": language flags
    chars = [c for c in unicodedata.normalize("NFD", ipa) if not unicodedata.combining(c) and not c.isspace()]
    out: list[str] = []
    at = 0
    while at < len(chars):
        if chars[at] in "ː":
            if out:
                out[-1] += "ː"
            at += 1
            continue
        if chars[at] in _MARKS:
            at += 1
            continue
        cluster = next((c for c in _CLUSTERS if "".join(chars[at : at + len(c)]) == c), chars[at])
        out.append(cluster)
        at += len(cluster)
    return tuple(out)


def _weights(marked: Sequence[str]) -> list[float]:
    """Relative durations: long vowels longest, then vowels, fricatives, sonorants, stops shortest."""
    out = []
    for phoneme in marked:
        bare = phoneme.rstrip("ː")
        if bare in _VOWELS:
            weight = 0.6 if bare in _REDUCED else 1.0
            weight *= 1.4 if phoneme.endswith("ː") or len(bare) > 1 else 1.0
        elif bare in _STOPS:
            weight = 0.45
        elif bare in _SUSTAINED:
            weight = 0.8
        else:
            weight = 0.6
        out.append(weight)
    return out


# --- placing them --------------------------------------------------------------------------------------------


def _placed(phonemes: list[str], weights: list[float], energy: Envelope, start: int, end: int) -> list[Span]:
    """The phonemes over [start, end): by weight between anchors, each m, b or p anchored on a dip if any."""
    least = round(MIN_PHONEME_S * OUTPUT_RATE)
    if (end - start) < least * len(phonemes):
        least = (end - start) // len(phonemes)
    anchors: list[tuple[int, int, int]] = [(-1, start, start)]  # (index, start, end) fixed spans
    bounds = _shared(weights, start, end)
    for i, phoneme in enumerate(phonemes):
        if phoneme not in BILABIALS:
            continue
        low_s, high_s = BILABIAL_S
        length = int(np.clip(bounds[i + 1] - bounds[i], low_s * OUTPUT_RATE, high_s * OUTPUT_RATE))
        length = min(length, (end - start) - least * (len(phonemes) - 1))
        prior_index, _, prior_end = anchors[-1]
        earliest = prior_end + least * (i - prior_index - 1) + length // 2
        latest = end - least * (len(phonemes) - 1 - i) - (length - length // 2)
        expected = (bounds[i] + bounds[i + 1]) // 2
        search = round(BILABIAL_SEARCH_S * OUTPUT_RATE)
        dip = _dip(energy, max(earliest, expected - search), min(latest, expected + search))
        if dip is not None:
            anchors.append((i, dip - length // 2, dip - length // 2 + length))
    anchors.append((len(phonemes), end, end))
    spans: list[Span] = []
    for (a, _, a_end), (b, b_start, b_end) in itertools.pairwise(anchors):
        inner = _shared(weights[a + 1 : b], a_end, b_start)
        spans += [Span(phonemes[a + 1 + k], inner[k], inner[k + 1]) for k in range(b - a - 1)]
        if b < len(phonemes):
            spans.append(Span(phonemes[b], b_start, b_end))
    return spans


def _shared(weights: Sequence[float], start: int, end: int) -> list[int]:
    """Boundaries that cut [start, end) in proportion to `weights` (len(weights) + 1 of them)."""
    total = sum(weights) or 1.0
    cumulative = np.cumsum([0.0, *weights]) / total
    return [start + round(float(c) * (end - start)) for c in cumulative]


def _dip(energy: Envelope, lo: int, hi: int) -> int | None:
    """The sample at the deepest envelope dip with its minimum in [lo, hi], or None when there is none."""
    first, last = max(0, -(-lo // HOP)), min(len(energy) - 1, hi // HOP)
    reach = round(BILABIAL_SEARCH_S * OUTPUT_RATE) // HOP
    best: tuple[float, int] | None = None
    for k in range(first, last + 1):
        left, right = energy[max(0, k - reach) : k + 1], energy[k : k + reach + 1]
        depth = min(float(left.max()), float(right.max())) - float(energy[k])
        if energy[k] <= min(left.min(), right.min()) and depth >= DIP_DB and (best is None or depth > best[0]):
            best = (depth, k)
    return None if best is None else _at(best[1]) + HOP // 2


def _snapped(energy: Envelope, floor: float, start: int, end: int, lowest: int, highest: int) -> tuple[int, int]:
    """A word's edges moved (by up to EDGE_SEARCH_S, within [lowest, highest]) to where the envelope crosses the
    speech floor, when they are beside a pause; edges inside running speech stay."""
    reach = round(EDGE_SEARCH_S * OUTPUT_RATE) // HOP
    loud = energy >= floor
    first, last = min(start // HOP, len(energy) - 1), min(max(end - 1, 0) // HOP, len(energy) - 1)
    low_hop, high_hop = -(-lowest // HOP), max(highest // HOP - 1, 0)
    if not loud[first]:  # it starts in a pause: forward to the rise
        rise = next((k for k in range(first, min(first + reach, last) + 1) if loud[k]), None)
        start = max(start, _at(rise)) if rise is not None else start
    else:  # in sound: back to the rise, if the sound began within reach
        k = first
        while k - 1 >= max(low_hop, first - reach) and loud[k - 1]:
            k -= 1
        if k > max(low_hop, first - reach) or (k > 0 and not loud[k - 1]):
            start = max(lowest, min(start, _at(k)))
    if not loud[last]:  # it ends in a pause: back to the fall
        fall = next((k for k in range(last, max(last - reach, first) - 1, -1) if loud[k]), None)
        end = min(end, _at(fall + 1)) if fall is not None else end
    else:
        k = last
        while k + 1 <= min(high_hop, last + reach, len(loud) - 1) and loud[k + 1]:
            k += 1
        if k < min(high_hop, last + reach) or (k + 1 < len(loud) and not loud[k + 1]):
            end = min(highest, max(end, _at(k + 1)))
    return start, max(start, end)


# --- the signal ----------------------------------------------------------------------------------------------


def _as_float(pcm48: Pcm) -> npt.NDArray[np.float64]:
    samples = np.asarray(pcm48)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {samples.shape}")
    scale = 32768.0 if samples.dtype == np.int16 else 1.0
    return samples.astype(np.float64) / scale


def _envelope(pcm48: Pcm) -> Envelope:
    """Level in dBFS per HOP: the mean power over WINDOW centred on each step's middle, lightly smoothed."""
    samples = _as_float(pcm48)
    steps = -(-len(samples) // HOP)
    if steps == 0:
        return np.zeros(0)
    power = np.concatenate([[0.0], np.cumsum(np.square(samples))])
    middle = np.arange(steps) * HOP + HOP // 2
    lo, hi = np.clip(middle - WINDOW // 2, 0, len(samples)), np.clip(middle + WINDOW // 2, 0, len(samples))
    level = 10 * np.log10((power[hi] - power[lo]) / np.maximum(hi - lo, 1) + 1e-10)
    smoothed: Envelope = np.convolve(np.pad(level, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return smoothed


def _speech_floor(energy: Envelope) -> float:
    """Below this level is a pause: SPEECH_RANGE_DB under the speech's loud part (its 95th percentile)."""
    if not len(energy):
        return 0.0
    return max(float(np.percentile(energy, 95)) - SPEECH_RANGE_DB, -70.0)


def _at(hop: int) -> int:
    return hop * HOP


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) hop of each run of True, runs shorter than 50 ms dropped."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 5]


def _nuclei(energy: Envelope, first: int, last: int) -> list[int]:
    """Envelope peaks in [first, last] standing DIP_DB above the valleys toward louder peaks, >= 80 ms apart."""
    peaks: list[int] = []
    for k in sorted(range(first, last + 1), key=lambda k: -energy[k]):
        if any(abs(k - p) < 8 for p in peaks):
            continue
        left = [p for p in peaks if p < k]
        right = [p for p in peaks if p > k]
        # A side with no louder peak ends in a pause (the run's edge): only valleys toward louder peaks count.
        valley_left = float(energy[max(left) : k + 1].min()) if left else -np.inf
        valley_right = float(energy[k : min(right) + 1].min()) if right else -np.inf
        standing = energy[k] - max(valley_left, valley_right)
        if standing >= DIP_DB:
            peaks.append(k)
    return sorted(peaks)


def _bands(samples: npt.NDArray[np.float64], first: int, last: int) -> tuple[float, float, float, float, float]:
    """Power shares of a stretch of hops: (< 600 Hz, 600-1000, 1000-1800, 1800-3500, > 3500), of 200 Hz up."""
    segment = samples[_at(first) : _at(last)]
    if len(segment) < 256:
        return (0.2, 0.2, 0.2, 0.2, 0.2)
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)))) ** 2
    freqs = np.fft.rfftfreq(len(segment), 1 / OUTPUT_RATE)
    edges = (200, 600, 1000, 1800, 3500, 12000)
    power = [float(spectrum[(freqs >= a) & (freqs < b)].sum()) for a, b in itertools.pairwise(edges)]
    total = sum(power) or 1.0
    low, f1, mid, high, hiss = (p / total for p in power)
    return low, f1, mid, high, hiss


def _vowel_of(samples: npt.NDArray[np.float64], first: int, last: int, *, quiet: bool) -> str:
    low, f1, mid, high, hiss = _bands(samples, first, last)
    if hiss > 0.5:
        return "s"
    if high > 0.25 and low > f1:
        return "i"
    if low + f1 > 0.9:
        return "m" if quiet else "u"
    if low + f1 > 0.75 and low > f1:
        return "o"
    if f1 + mid > 0.45:
        return "a"
    return "ə"


def _consonant_of(samples: npt.NDArray[np.float64], energy: Envelope, first: int, last: int, before: int,
                  after: int) -> str:  # fmt: skip
    if _bands(samples, first, last)[4] > 0.5:
        return "s"
    valley = float(energy[first:last].min())
    return "m" if valley <= min(energy[before], energy[after]) - 3 * DIP_DB else "ə"
