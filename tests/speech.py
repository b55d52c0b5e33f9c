"""A synthetic speech corpus that tests and benchmarks make for themselves: nothing is downloaded.

Three local synthesizers speak a fixed set of everyday sentences: espeak-ng (formant), Festival's kal diphone
voice, and Piper's joe voice (neural, from the model store). Each clip knows where its speech truly starts
and ends (found in the synthesized waveform, before any padding), so endpointing delay can be measured from
the real end of speech. `wer` and `corpus_wer` score transcripts after the same normalization on both sides.

    clip = pad(synthesize(SENTENCES[0], "piper"), 0.5, 1.0)
    noisy = add_noise(clip.samples, snr_db=15, seed=1, speech=(clip.speech_start_s, clip.speech_end_s))
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soundfile as sf  # type: ignore[import-untyped, unused-ignore]  # ships no type information
import soxr

Samples = npt.NDArray[np.float32]
SAMPLE_RATE = 16_000
VOICES = ("espeak", "festival", "piper")  # the voices the STT tests score ("espeak-high" is for voice training)
PIPER_MODEL = "piper-joe-medium"
ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = Path(os.environ.get("MYNAH_TEST_MODELS_DIR", ROOT / "var" / "models"))

# Fixed, so WER is comparable run to run. Everyday words, 5-14 each, a few numbers spelled out; nothing that
# has two common spellings (okay/OK, every day/everyday) or a number Whisper could write two ways ("a hundred").
SENTENCES: tuple[str, ...] = (
    "Please turn on the lights in the kitchen.",
    "What time does the bakery open tomorrow morning?",
    "I need to buy milk, eggs and bread.",
    "The train to the city leaves in ten minutes.",
    "Can you set a timer for fifteen minutes?",
    "My sister is coming to visit next weekend.",
    "It is going to rain later this afternoon.",
    "We have three cats and two dogs at home.",
    "Remind me to call the doctor on Monday.",
    "The children are playing in the garden.",
    "How far is it to the nearest train station?",
    "Please close the window before you leave.",
    "She bought a new red bicycle last summer.",
    "Turn the music down a little, please.",
    "The meeting starts at nine in the morning.",
    "Our flight was delayed by almost four hours.",
    "I left my keys on the kitchen table.",
    "Could you read me the news from this morning?",
    "The soup needs a little more salt.",
    "He walks the dog after dinner every evening.",
    "There are twelve eggs in the box on the shelf.",
    "We should plant some flowers near the front door.",
    "The library closes early on Sundays.",
    "Thank you very much for your help today.",
)

# Speech bounds: the first/last sample whose magnitude reaches this fraction of the clip's peak (-40 dB).
# Above the synthesizers' own noise floors (Piper's vocoder idles near -46 dB), below any real phoneme onset.
SPEECH_THRESHOLD = 0.01
PEAK_LEVEL = 0.5  # every clip is scaled to this peak (-6 dBFS), so voices arrive at one level
_CACHE_VERSION = "1"  # bump when synthesis settings change, so cached clips are remade


class SpeechUnavailable(RuntimeError):
    """A voice cannot be synthesized here (its program or model is missing)."""


@dataclass(frozen=True, eq=False)
class Clip:
    samples: Samples  # float32, 16 kHz, mono
    text: str
    voice: str
    speech_start_s: float  # where speech truly starts/ends in `samples`, padding included
    speech_end_s: float
    pad_before_s: float = 0.0  # silence the caller added (the synthesizer's own lead-in is not counted)
    pad_after_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def synthesize(text: str, voice: str) -> Clip:
    """`text` spoken by `voice` (one of VOICES), at 16 kHz with a -6 dBFS peak; cached per (voice, text)."""
    if voice not in _SYNTHESIZERS:
        raise ValueError(f"unknown voice {voice!r}; voices: {', '.join(VOICES)}")
    samples = _cached(voice, text)
    start, end = speech_bounds(samples)
    return Clip(samples, text, voice, start, end)


def minute_of_speech(voice: str, pause_s: float = 0.5) -> Samples:
    """About a minute of `voice` reading the first 16 test sentences, with a pause after each (a voice sample)."""
    silence = np.zeros(int(pause_s * SAMPLE_RATE), np.float32)
    return np.concatenate([part for text in SENTENCES[:16] for part in (synthesize(text, voice).samples, silence)])


def speech_bounds(samples: Samples) -> tuple[float, float]:
    """(start, end) in seconds of the span from the first to the last sample above SPEECH_THRESHOLD x peak."""
    magnitude = np.abs(samples)
    peak = float(magnitude.max()) if len(samples) else 0.0
    if peak == 0.0:
        raise ValueError("no speech: the clip is silent")
    loud = np.flatnonzero(magnitude >= SPEECH_THRESHOLD * peak)
    return float(loud[0]) / SAMPLE_RATE, float(loud[-1] + 1) / SAMPLE_RATE


def pad(clip: Clip, before_s: float, after_s: float) -> Clip:
    """The clip with silence added before and after; the true speech times move with it."""
    before, after = round(before_s * SAMPLE_RATE), round(after_s * SAMPLE_RATE)
    samples = np.concatenate([np.zeros(before, np.float32), clip.samples, np.zeros(after, np.float32)])
    shift = before / SAMPLE_RATE
    return replace(clip, samples=samples, speech_start_s=clip.speech_start_s + shift,
                   speech_end_s=clip.speech_end_s + shift, pad_before_s=clip.pad_before_s + shift,
                   pad_after_s=clip.pad_after_s + after / SAMPLE_RATE)  # fmt: skip


def add_noise(samples: Samples, snr_db: float, seed: int, *, color: Literal["white", "pink"] = "white",
              speech: tuple[float, float] | None = None) -> Samples:  # fmt: skip
    """`samples` plus noise over their whole length, scaled so that over the speech span (`speech`, seconds;
    default: the whole clip) the ratio of signal power to noise power is exactly `snr_db`."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(samples))
    if color == "pink":  # 1/f power: shape white noise's spectrum by 1/sqrt(f), leaving out DC
        spectrum = np.fft.rfft(noise)
        freqs = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)
        spectrum[1:] /= np.sqrt(freqs[1:])
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=len(noise))
    lo, hi = (0, len(samples)) if speech is None else (round(speech[0] * SAMPLE_RATE), round(speech[1] * SAMPLE_RATE))
    signal_power = float(np.mean(np.square(samples[lo:hi], dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise[lo:hi])))
    if signal_power == 0.0 or noise_power == 0.0:
        raise ValueError("cannot set an SNR over a silent or empty span")
    gain = float(np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10))))
    noisy_samples: Samples = (samples + gain * noise).astype(np.float32)
    return noisy_samples


def noisy(clip: Clip, snr_db: float, seed: int, *, color: Literal["white", "pink"] = "white") -> Clip:
    """The clip with noise at `snr_db` measured over its true speech span."""
    speech = (clip.speech_start_s, clip.speech_end_s)
    return replace(clip, samples=add_noise(clip.samples, snr_db, seed, color=color, speech=speech))


# --- scoring -----------------------------------------------------------------------------------------------

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}  # fmt: skip


def number_words(n: int) -> str:
    """0 <= n < 10**9 in words, without "and" or hyphens: 1504 -> "one thousand five hundred four"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, word in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {word}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    last = _ORDINALS.get(last, last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return f"{head} {last}".strip()


def _spell(match: re.Match[str]) -> str:
    digits, fraction, suffix = match.group(1).replace(",", ""), match.group(2), (match.group(3) or "").lower()
    words = number_words(int(digits)) if int(digits) < 10**9 else " ".join(_ONES[int(d)] for d in digits)
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    if suffix in ("st", "nd", "rd", "th"):
        words = _ordinal(words)
    return f" {words} "


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation; digits spelled out ("4" and "four" match, as do "9:30" and
    "nine thirty", "2nd" and "second", "10%" and "ten percent"); hyphens and slashes split words."""
    text = text.lower().replace("%", " percent ").replace("&", " and ")
    text = re.sub(r"(\d+):(\d\d)\b", lambda m: f"{m.group(1)} {'' if m.group(2) == '00' else m.group(2)}", text)
    text = re.sub(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?", _spell, text)
    text = re.sub(r"[-/]", " ", text)
    text = re.sub(r"[^\w\s]", "", text)  # apostrophes too: "let's" -> "lets" on both sides
    return text.split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference word count), after normalize()."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    previous = list(range(len(hyp) + 1))  # Levenshtein over words, one row at a time
    for i, word in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / words if words else float(errors > 0)


def corpus_wer(pairs: Iterable[tuple[str, str]]) -> float:
    """Total word errors over total reference words, for (reference, hypothesis) pairs."""
    errors = words = 0
    for reference, hypothesis in pairs:
        e, w = word_errors(reference, hypothesis)
        errors, words = errors + e, words + w
    return errors / words if words else 0.0


# --- synthesizers --------------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    folder = Path(os.environ.get("MYNAH_SPEECH_CACHE", Path(tempfile.gettempdir()) / f"mynah-speech-{os.getuid()}"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@functools.lru_cache(maxsize=512)  # in-process as well: a session reads each file at most once
def _cached(voice: str, text: str) -> Samples:
    key = hashlib.sha256(f"{_CACHE_VERSION}\0{voice}\0{text}".encode()).hexdigest()[:24]
    path = _cache_dir() / f"{voice}-{key}.npy"
    if path.is_file():
        loaded: Samples = np.load(path).astype(np.float32, copy=False)
        loaded.flags.writeable = False
        return loaded
    raw, rate = _SYNTHESIZERS[voice](text)
    samples = soxr.resample(raw.astype(np.float32), rate, SAMPLE_RATE, quality="HQ") if rate != SAMPLE_RATE else raw
    samples = (samples * (PEAK_LEVEL / float(np.max(np.abs(samples))))).astype(np.float32)
    fd, temp = tempfile.mkstemp(suffix=".npy", dir=path.parent)  # written aside, renamed: safe under xdist
    with os.fdopen(fd, "wb") as handle:
        np.save(handle, samples)
    os.replace(temp, path)
    samples.flags.writeable = False  # shared by every caller of the cache
    return samples


def _run_to_wav(argv: list[str], text: str, package: str) -> tuple[Samples, int]:
    if shutil.which(argv[0]) is None:
        raise SpeechUnavailable(f"{argv[0]} is not installed (apt-get install {package})")
    with tempfile.TemporaryDirectory(prefix="mynah-tts-") as scratch:
        out = Path(scratch) / "out.wav"
        subprocess.run([*argv, str(out)], input=text, text=True, capture_output=True, check=True, timeout=60)
        data, rate = sf.read(out, dtype="float32", always_2d=True)
    return data.mean(axis=1).astype(np.float32), int(rate)


def _espeak(text: str) -> tuple[Samples, int]:
    return _run_to_wav(["espeak-ng", "-v", "en-us", "-s", "150", "--stdin", "-w"], text, "espeak-ng")


def _espeak_high(text: str) -> tuple[Samples, int]:
    """espeak-ng's en-us with its "f3" variant: a higher voice (median F0 about 190 Hz), a speaker far from Piper's."""
    return _run_to_wav(["espeak-ng", "-v", "en-us+f3", "-s", "150", "--stdin", "-w"], text, "espeak-ng")


def _festival(text: str) -> tuple[Samples, int]:
    return _run_to_wav(["text2wave", "-eval", "(voice_kal_diphone)", "-o"], text, "festival festvox-kallpc16k")


@functools.lru_cache(maxsize=1)
def _piper_voice() -> Any:
    from appliance.models.store import ModelError, ModelStore

    try:
        folder = ModelStore(MODELS_DIR).resolve(PIPER_MODEL)
    except ModelError as err:
        raise SpeechUnavailable(err.message) from err
    from piper import PiperVoice

    return PiperVoice.load(folder / "en_US-joe-medium.onnx")


def _piper(text: str) -> tuple[Samples, int]:
    from piper import SynthesisConfig

    voice = _piper_voice()
    # No generator noise: the same text gives the same waveform on every run (and every cache miss).
    settings = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(text, settings)])
    return audio.astype(np.float32), int(voice.config.sample_rate)


_SYNTHESIZERS = {"espeak": _espeak, "espeak-high": _espeak_high, "festival": _festival, "piper": _piper}
