"""procs/stt/enhance.py: level normalisation and RNNoise denoising on synthetic speech-like signals.

RNNoise treats a steady tone as noise (measured: a 440 Hz tone in white noise went from 7.5 dB SNR to 0.0 dB,
the tone removed with the noise), so the denoising tests use a crude vowel synthesiser instead: a harmonic
series with a moving pitch, shaped by three formant resonances, in syllables separated by short pauses.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from appliance.config import SttEnhanceConfig
from procs.stt.backends.base import SAMPLE_RATE
from procs.stt.enhance import denoise, enhance, normalize_level

Audio = npt.NDArray[np.float32]

# First three formants (Hz) of a few English vowels.
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410), (300, 870, 2240))
BANDWIDTHS = (80.0, 100.0, 140.0)


def speech_like(seconds: float, seed: int = 0, peak: float = 0.3) -> Audio:
    rng = np.random.default_rng(seed)
    n = int(SAMPLE_RATE * seconds)
    t = np.arange(n) / SAMPLE_RATE
    envelope, pitch = np.zeros(n), np.full(n, 120.0)
    formants = np.tile(np.array(VOWELS[0], dtype=np.float64)[:, None], (1, n))
    start = 0.0
    while start < seconds:
        length = rng.uniform(0.12, 0.28)
        inside = (t >= start) & (t < start + length)
        u = (t[inside] - start) / length
        envelope[inside] = np.minimum(1, np.minimum(u * length / 0.015, (1 - u) * length / 0.04)) * rng.uniform(0.5, 1)
        pitch[inside] = rng.uniform(100, 170) * (1 + rng.uniform(-0.15, 0.15) * u)
        first, second = (np.array(VOWELS[rng.integers(len(VOWELS))], dtype=np.float64) for _ in range(2))
        formants[:, inside] = first[:, None] * (1 - u) + second[:, None] * u
        start += length + rng.uniform(0.03, 0.12)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    out = np.zeros(n)
    for k in range(1, 60):
        harmonic = k * pitch
        gain = np.ones(n) / k
        for formant, bandwidth in zip(formants, BANDWIDTHS, strict=True):
            gain *= formant**2 / np.sqrt((formant**2 - harmonic**2) ** 2 + (bandwidth * harmonic) ** 2)
        out += gain * np.sin(k * phase) * (harmonic < 0.45 * SAMPLE_RATE)
    out *= envelope
    speech: Audio = (peak * out / np.max(np.abs(out))).astype(np.float32)
    return speech


def dbfs(audio: Audio) -> float:
    return float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64))))


def voiced_dbfs(audio: Audio, reference: Audio) -> float:
    """RMS level of `audio` where `reference` is not silent."""
    return dbfs(audio[np.abs(reference) > 1e-4])


def snr_db(clean: Audio, noisy: Audio) -> float:
    error = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.sum(np.square(clean, dtype=np.float64)) / np.sum(np.square(error))))


def at_dbfs(audio: Audio, level: float) -> Audio:
    return (audio * 10 ** ((level - dbfs(audio)) / 20)).astype(np.float32)


def test_normalize_brings_quiet_speech_to_target_without_clipping() -> None:
    quiet = at_dbfs(speech_like(2.0), -40.0)
    louder = normalize_level(quiet)
    assert louder.dtype == np.float32
    assert louder.shape == quiet.shape
    # Measured: -21.1 dBFS over the whole clip, pauses included (-19.8 dBFS over the voiced part).
    assert dbfs(louder) == pytest.approx(-20.0, abs=1.5)
    assert float(np.max(np.abs(louder))) < 1.0


def test_normalize_ignores_silence_padding() -> None:
    speech = at_dbfs(speech_like(2.0), -40.0)
    silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    padded = np.concatenate([silence, speech, silence])
    alone, in_padding = normalize_level(speech), normalize_level(padded)
    # Without the gate, 6 s of padding would lift the gain by 10*log10(8/2) = 6 dB.
    assert voiced_dbfs(in_padding, padded) == pytest.approx(voiced_dbfs(alone, speech), abs=0.5)
    assert not np.any(in_padding[: silence.size])


def test_normalize_turns_loud_audio_down() -> None:
    loud = at_dbfs(speech_like(2.0), -8.0)
    assert dbfs(normalize_level(loud)) == pytest.approx(-20.0, abs=1.5)


def test_normalize_gain_is_capped() -> None:
    faint = at_dbfs(speech_like(2.0), -55.0)
    assert dbfs(normalize_level(faint, max_gain_db=30.0)) == pytest.approx(-25.0, abs=0.5)


def test_normalize_soft_limits_a_click_instead_of_clipping() -> None:
    speech = at_dbfs(speech_like(2.0), -40.0)
    speech[SAMPLE_RATE] = 0.5  # a mic bump: 20 dB of gain would take it to 5.0
    louder = normalize_level(speech)
    assert 0.9 < float(np.max(np.abs(louder))) <= 1.0  # measured: 0.9999996
    assert dbfs(louder) == pytest.approx(-20.0, abs=1.5)


@pytest.mark.parametrize("samples", [0, 1, 100, SAMPLE_RATE])
def test_silence_stays_silence(samples: int) -> None:
    silence = np.zeros(samples, dtype=np.float32)
    out = normalize_level(silence)
    assert out.shape == silence.shape
    assert not np.any(out)
    assert np.all(np.isfinite(out))
    assert not np.any(denoise(silence))


def test_a_noise_floor_below_the_gate_is_left_alone() -> None:
    hiss = (10 ** (-75 / 20) * np.random.default_rng(1).standard_normal(SAMPLE_RATE)).astype(np.float32)
    assert np.array_equal(normalize_level(hiss), hiss)


@pytest.mark.parametrize("samples", [1, 479, 16_001, 3 * SAMPLE_RATE])
def test_denoise_keeps_the_length(samples: int) -> None:
    audio = speech_like(3.0)[:samples]
    out = denoise(audio)
    assert out.shape == audio.shape
    assert out.dtype == np.float32


def test_denoise_improves_snr_of_noisy_speech() -> None:
    clean = speech_like(3.0)
    noisy = clean + (0.02 * np.random.default_rng(5).standard_normal(clean.size)).astype(np.float32)
    before, after = snr_db(clean, noisy), snr_db(clean, denoise(noisy))
    # Measured: 8.3 dB -> 14.5 dB. The comparison is sample by sample, so it also proves the output is
    # aligned with the input (RNNoise's 20 ms delay is taken out).
    assert after > before + 5.0, (before, after)


def test_denoise_removes_noise_alone() -> None:
    noise = (0.03 * np.random.default_rng(6).standard_normal(2 * SAMPLE_RATE)).astype(np.float32)
    assert dbfs(denoise(noise)) < dbfs(noise) - 20.0  # measured: 37 dB quieter


def test_enhance_applies_what_is_switched_on() -> None:
    clean = at_dbfs(speech_like(2.0), -40.0)
    noisy = clean + (0.002 * np.random.default_rng(7).standard_normal(clean.size)).astype(np.float32)
    off = SttEnhanceConfig(normalize=False, denoise=False)
    assert np.array_equal(enhance(noisy, off), noisy)
    assert np.array_equal(enhance(noisy, SttEnhanceConfig(normalize=True, denoise=False)), normalize_level(noisy))
    both = enhance(noisy, SttEnhanceConfig(normalize=True, denoise=True))
    assert np.array_equal(both, normalize_level(denoise(noisy)))
    assert dbfs(both) == pytest.approx(-20.0, abs=1.5)
