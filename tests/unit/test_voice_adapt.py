"""procs/tts/adapt.py on synthetic voices: a low voice and a high one with a shorter vocal tract.

Each voice is a glottal pulse train (pitch falling 16% across each phrase, as statements do) through four formant
resonances, in three 1 s phrases with pauses between them. The high voice is the low one at 210 Hz instead of
110 Hz, with every formant frequency and bandwidth scaled up 15%: the adapter should find that scaling itself.
"""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest

from procs.tts.backends.base import TtsError

pytest.importorskip("procs.tts.adapt", reason="pyworld is not installed (pip install -e .[embedded])")
from procs.tts.adapt import (
    ENVELOPE_GRID_HZ,
    MIN_VOICED_S,
    PEAK_LIMIT,
    PROFILE_VERSION,
    VoiceAdapter,
    VoiceProfile,
    measure_voice,
    median_f0,
    spectral_centroid,
)

Audio = npt.NDArray[np.float32]
RATE = 16_000
FORMANTS = ((500.0, 80.0, 1.0), (1500.0, 100.0, 0.5), (2500.0, 120.0, 0.3), (3500.0, 150.0, 0.15))  # Hz, Hz, gain
LOW, HIGH = (110.0, 1.0), (210.0, 1.15)  # (F0 in Hz, formant scale)


def voice(f0_hz: float, formant_scale: float, *, phrases: int = 3, rate: int = RATE, seed: int = 0) -> Audio:
    """`phrases` 1 s phrases, each followed by 0.2 s of silence, peaking at 0.5, with noise 60 dB down."""
    rng = np.random.default_rng(seed)
    t = np.arange(rate) / rate
    pulses = np.diff(np.floor(np.cumsum(f0_hz * (1.08 - 0.16 * t) / rate)), prepend=0.0)  # one per period
    tract_t = np.arange(int(0.03 * rate)) / rate
    tract = np.zeros(len(tract_t))
    for f, width, gain in FORMANTS:  # each resonance a decaying sine, its frequency and bandwidth scaled alike
        tract += (
            gain * np.exp(-np.pi * width * formant_scale * tract_t) * np.sin(2 * np.pi * f * formant_scale * tract_t)
        )
    phrase = np.concatenate([np.convolve(pulses, tract)[:rate], np.zeros(rate // 5)])
    speech = np.tile(phrase, phrases)
    speech = speech + rng.standard_normal(len(speech)) * 1e-3 * np.max(np.abs(speech))
    scaled: Audio = (0.5 * speech / np.max(np.abs(speech))).astype(np.float32)
    return scaled


@pytest.fixture(scope="module")
def low() -> Audio:
    return voice(*LOW)


@pytest.fixture(scope="module")
def high() -> Audio:
    return voice(*HIGH, seed=1)


@pytest.fixture(scope="module")
def profiles(low: Audio, high: Audio) -> tuple[VoiceProfile, VoiceProfile]:
    return measure_voice(low, RATE), measure_voice(high, RATE)


@pytest.fixture(scope="module")
def adapted(low: Audio, profiles: tuple[VoiceProfile, VoiceProfile]) -> Audio:
    return VoiceAdapter(*profiles).apply(low, RATE)


def test_a_profile_holds_the_voices_pitch(profiles: tuple[VoiceProfile, VoiceProfile]) -> None:
    for profile, (f0_hz, _) in zip(profiles, (LOW, HIGH), strict=True):
        assert profile.median_f0_hz == pytest.approx(f0_hz, rel=0.05)
        assert np.exp(profile.log_f0_mean) == pytest.approx(f0_hz, rel=0.05)
        assert 0.02 < profile.log_f0_std < 0.1  # the 16% fall: a std of ~0.046 in log-F0
        assert 2.5 <= profile.voiced_s <= 3.2  # three 1 s phrases
        assert len(profile.envelope_db) == len(ENVELOPE_GRID_HZ)
        assert np.mean(profile.envelope_db) == pytest.approx(0.0, abs=1e-9)


def test_the_adapter_finds_the_formant_scaling(profiles: tuple[VoiceProfile, VoiceProfile]) -> None:
    low_profile, high_profile = profiles
    assert VoiceAdapter(low_profile, high_profile).warp_factor == pytest.approx(1.15, abs=0.03)
    assert VoiceAdapter(high_profile, low_profile).warp_factor == pytest.approx(1 / 1.15, abs=0.03)
    assert VoiceAdapter(low_profile, low_profile).warp_factor == 1.0


def test_adapted_pitch_moves_at_least_half_way(low: Audio, high: Audio, adapted: Audio) -> None:
    before, target, after = median_f0(low, RATE), median_f0(high, RATE), median_f0(adapted, RATE)
    print(f"median F0: source {before:.1f} Hz, target {target:.1f} Hz, adapted {after:.1f} Hz")
    assert abs(after - target) <= abs(before - target) / 2


def test_adapted_spectrum_moves_toward_the_target(low: Audio, high: Audio, adapted: Audio) -> None:
    before, target = spectral_centroid(low, RATE), spectral_centroid(high, RATE)
    after = spectral_centroid(adapted, RATE)
    print(f"spectral centroid: source {before:.0f} Hz, target {target:.0f} Hz, adapted {after:.0f} Hz")
    assert target - before > 200  # the voices differ, or the test proves nothing
    assert abs(after - target) <= abs(before - target) / 2


def test_an_adapter_between_equal_profiles_keeps_pitch_and_spectrum(
    low: Audio, profiles: tuple[VoiceProfile, VoiceProfile]
) -> None:
    same = VoiceAdapter(profiles[0], profiles[0]).apply(low, RATE)
    assert median_f0(same, RATE) == pytest.approx(median_f0(low, RATE), rel=0.03)
    assert spectral_centroid(same, RATE) == pytest.approx(spectral_centroid(low, RATE), rel=0.05)


def rms(samples: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def test_apply_keeps_the_length_and_the_level(profiles: tuple[VoiceProfile, VoiceProfile]) -> None:
    adapter = VoiceAdapter(*profiles)
    speech = voice(*LOW, phrases=1)[:12_345]  # an odd length, no whole number of frames
    out = adapter.apply(speech, RATE)

    assert out.dtype == np.float32 and out.shape == speech.shape
    assert rms(out) == pytest.approx(rms(speech), rel=1e-3)
    silence = np.zeros(999, np.float32)
    assert np.array_equal(adapter.apply(silence, RATE), silence)
    assert adapter.apply(np.zeros(0, np.float32), RATE).shape == (0,)


def test_apply_scales_down_rather_than_clip(profiles: tuple[VoiceProfile, VoiceProfile]) -> None:
    loud = np.clip(voice(*LOW, phrases=1) * 4, -1.0, 1.0)  # dense, full scale: at its RMS, the output would clip
    out = VoiceAdapter(*profiles).apply(loud, RATE)

    assert float(np.max(np.abs(out))) == pytest.approx(PEAK_LIMIT, abs=1e-6)
    assert rms(out) < rms(loud)


def test_a_profile_survives_json(profiles: tuple[VoiceProfile, VoiceProfile]) -> None:
    profile = profiles[1]
    text = profile.to_json()

    assert VoiceProfile.from_json(text) == profile
    stored = json.loads(text)
    assert stored["version"] == PROFILE_VERSION and stored["median_f0_hz"] == profile.median_f0_hz
    with pytest.raises(ValueError, match="version"):
        VoiceProfile.from_json(json.dumps({**stored, "version": PROFILE_VERSION + 1}))
    with pytest.raises(ValueError, match="grid"):
        VoiceProfile.from_json(json.dumps({**stored, "envelope_top_hz": 8000}))
    with pytest.raises(ValueError, match="not a voice profile"):
        VoiceProfile.from_json(json.dumps({key: value for key, value in stored.items() if key != "log_f0_std"}))


def unvoiced_sample(kind: str) -> Audio:
    if kind == "silence":
        return np.zeros(4 * RATE, np.float32)
    if kind == "noise":
        return (0.1 * np.random.default_rng(2).standard_normal(4 * RATE)).astype(np.float32)
    return np.concatenate([voice(*LOW, phrases=1), np.zeros(2 * RATE, np.float32)])  # 1 s of voice


@pytest.mark.parametrize("kind", ["silence", "noise", "one phrase"])
def test_a_sample_without_enough_voiced_speech_is_refused(kind: str) -> None:
    assert MIN_VOICED_S > 1.0
    with pytest.raises(TtsError) as caught:
        measure_voice(unvoiced_sample(kind), RATE)
    assert caught.value.code == "voice-sample-unvoiced"


def test_a_sample_below_16_khz_is_refused() -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        measure_voice(np.zeros(8000, np.float32), 8000)


def test_spectral_centroid_is_in_hz_and_the_same_at_every_rate() -> None:
    for rate in (16_000, 22_050, 48_000):
        t = np.arange(rate) / rate
        tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
        assert spectral_centroid(tone, rate) == pytest.approx(1000, abs=20)
        two_tones = tone + (0.5 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
        assert spectral_centroid(two_tones, rate) == pytest.approx(2000, abs=20)
        above = two_tones + (0.5 * np.sin(2 * np.pi * 9000 * t)).astype(np.float32) if rate > 18_000 else two_tones
        assert spectral_centroid(above, rate) == pytest.approx(2000, abs=20)  # 9 kHz is above the band
    with pytest.raises(ValueError, match="silent"):
        spectral_centroid(np.zeros(RATE, np.float32), RATE)


def test_median_f0_reads_the_pitch_at_any_rate(low: Audio) -> None:
    assert median_f0(low, RATE) == pytest.approx(110.0, rel=0.03)
    assert median_f0(voice(*HIGH, phrases=1, rate=48_000), 48_000) == pytest.approx(210.0, rel=0.03)
    with pytest.raises(ValueError, match="no voiced frame"):
        median_f0(np.zeros(RATE, np.float32), RATE)
