"""The approximated voice: Piper's speech moved toward a user's sample, for when no cloning engine is installed.

Without GPT-SoVITS, a registered voice is the embedded Piper voice adapted to two things measured from the
user's sample: pitch (the level and range of log-F0) and the long-term spectral envelope (formant positions by a
frequency warp, then spectral colour by a smooth gain). Timbre, accent and rhythm stay Piper's: it is an
approximation, and the docs and API call it one. The WORLD vocoder does the work: Harvest for F0 (Dio halves or
doubles F0 on ~40% of Piper's voiced frames, which would make pitch jumps), CheapTrick for the envelope, D4C for
aperiodicity, then resynthesis, all at WORLD's default 5 ms frame period.

    adapter = VoiceAdapter(measure_voice(piper_speech, 22_050), VoiceProfile.from_json(stored_profile))
    adapted = adapter.apply(sentence, 22_050)  # same length: Piper's phoneme timing stays valid
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from procs.tts.backends.base import TtsError

with warnings.catch_warnings():
    # pyworld 0.3.5 imports pkg_resources at import time only to read its own version; setuptools warns about it.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=DeprecationWarning)
    import pyworld  # type: ignore[import-untyped]  # ships no type information (no py.typed)

Samples = npt.NDArray[np.float32]  # mono, float32 in [-1, 1], at any rate
Floats = npt.NDArray[np.float64]

PROFILE_VERSION = 1
# The envelope grid: 0-7 kHz in 50 Hz steps, fixed in Hz so that profiles measured at 16, 22.05 and 48 kHz compare
# point by point. 7 kHz is what every sample carries at full level: 16 kHz is the lowest rate accepted (uploads
# and STT audio), and its anti-alias filter eats the last several hundred Hz below 8 kHz (measured: -12 dB at 8 kHz
# in a resampled voice), which would read as a voice trait. F1-F4, where speakers differ, lie below 5 kHz. 50 Hz is
# finer than anything a long-term average keeps (formant bandwidths are 50-200 Hz before averaging blurs them).
ENVELOPE_STEP_HZ = 50
ENVELOPE_TOP_HZ = 7_000
ENVELOPE_GRID_HZ: Floats = np.arange(0, ENVELOPE_TOP_HZ + ENVELOPE_STEP_HZ, ENVELOPE_STEP_HZ, dtype=np.float64)
MIN_SAMPLE_RATE = 16_000
F0_FLOOR_HZ, F0_CEIL_HZ = 60.0, 500.0  # low male speech to high female and child speech
FRAME_PERIOD_MS = 5.0  # WORLD's default
HARVEST_BLOCK_S = 5.0  # a whole number of frames
MIN_VOICED_S = 2.0
MAX_GAIN_DB = 12.0  # the envelope gain's clamp: colour, never a notch or a resonance
GAIN_SMOOTHING_HZ = 500  # width of the moving average over the gain: broad strokes only, so words stay clear
WARP_FACTORS: Floats = np.round(np.arange(0.85, 1.18 + 1e-9, 0.01), 2)  # formant scalings tried (VTLN range)
WARP_KNEE_HZ = 5_000.0  # the warp scales frequencies below this, then runs straight to ENVELOPE_TOP_HZ
WARP_FIT_BAND_HZ = (200.0, 5_000.0)  # where formant positions are compared: F1 to F4
# How far the log-F0 spread may be squeezed or stretched. Never stretched: Harvest reads a few frames of any voice
# an octave off, and a wider spread maps those further still (measured: stretching moved medians the wrong way).
F0_RANGE_RATIO_LIMITS = (1 / 3, 1.0)
PEAK_LIMIT = 0.99
CENTROID_TOP_HZ = 8_000  # the Nyquist frequency of 16 kHz audio, the lowest rate compared
CENTROID_FRAME_S = 0.032  # 31.25 Hz bins at every rate
ACTIVE_FRAME_DB = 30.0  # frames within this of the loudest frame count as active speech


@dataclass(frozen=True, slots=True)
class VoiceProfile:
    """What is measured from a voice: its pitch over voiced frames, and its long-term average spectral envelope.

    The envelope is 10·log10 of the mean of CheapTrick's power envelopes over the voiced frames, read off at
    ENVELOPE_GRID_HZ and shifted to a mean of 0 dB (recording level is not a property of the voice). A mean of
    power, not of dB: loud voiced frames (vowels) dominate it, where a voice's formants and tilt are heard, while a
    mean of dB gives weak transitions and nearly empty bands the same say. Measured on Piper's joe adapted toward
    espeak-ng (centroid 1519 -> 1629 Hz wanted): the dB mean's gain gave 1298 Hz, the power mean's 1686 Hz.
    """

    median_f0_hz: float
    log_f0_mean: float  # natural log of Hz
    log_f0_std: float
    envelope_db: tuple[float, ...]  # one value per ENVELOPE_GRID_HZ point
    voiced_s: float  # how much voiced speech it was measured from

    def __post_init__(self) -> None:
        if len(self.envelope_db) != len(ENVELOPE_GRID_HZ):
            raise ValueError(f"envelope_db needs {len(ENVELOPE_GRID_HZ)} points, got {len(self.envelope_db)}")

    def to_json(self) -> str:
        fields = asdict(self)
        fields["envelope_db"] = list(self.envelope_db)
        grid = {"envelope_step_hz": ENVELOPE_STEP_HZ, "envelope_top_hz": ENVELOPE_TOP_HZ}
        return json.dumps({"version": PROFILE_VERSION, **grid, **fields}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> VoiceProfile:
        """Raises ValueError for another version, another grid or missing fields."""
        data: dict[str, Any] = json.loads(text)
        if data.get("version") != PROFILE_VERSION:
            raise ValueError(f"voice profile version {data.get('version')!r}; this build reads {PROFILE_VERSION}")
        if (data.get("envelope_step_hz"), data.get("envelope_top_hz")) != (ENVELOPE_STEP_HZ, ENVELOPE_TOP_HZ):
            raise ValueError("the voice profile's envelope grid differs from this build's")
        try:
            return cls(median_f0_hz=float(data["median_f0_hz"]), log_f0_mean=float(data["log_f0_mean"]),
                       log_f0_std=float(data["log_f0_std"]), voiced_s=float(data["voiced_s"]),
                       envelope_db=tuple(float(value) for value in data["envelope_db"]))  # fmt: skip
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a voice profile: {err!r}") from err


def measure_voice(samples: Samples, rate: int) -> VoiceProfile:
    """The profile of the voice speaking in `samples` (float32 mono, `rate` >= 16 kHz; a minute is plenty).

    Voiced frames are those Harvest gives an F0 and D4C confirms periodic (Harvest alone finds F0 in some noise).
    Raises TtsError voice-sample-unvoiced when they add up to under MIN_VOICED_S.
    """
    _require_sample_rate(rate)
    signal = samples.astype(np.float64)
    f0, times = _harvest(signal, rate)
    voiced = f0 > 0
    voiced[voiced] = _periodic(signal, f0[voiced], times[voiced], rate)
    voiced_s = float(np.count_nonzero(voiced)) * FRAME_PERIOD_MS / 1000
    if voiced_s < MIN_VOICED_S:
        raise TtsError("voice-sample-unvoiced", f"the sample holds {voiced_s:.1f} s of voiced speech; at least "
                       f"{MIN_VOICED_S:.0f} s is needed: record a minute of ordinary talking")  # fmt: skip
    envelope = pyworld.cheaptrick(signal, f0[voiced], times[voiced], rate, f0_floor=F0_FLOOR_HZ)
    average_db = _on_grid(_decibels(np.mean(envelope, axis=0)), rate)
    log_f0 = np.log(f0[voiced])
    return VoiceProfile(median_f0_hz=float(np.median(f0[voiced])), log_f0_mean=float(np.mean(log_f0)),
                        log_f0_std=float(np.std(log_f0)), voiced_s=voiced_s,
                        envelope_db=tuple(float(v) for v in average_db - np.mean(average_db)))  # fmt: skip


class VoiceAdapter:
    """Moves speech in the `source` voice toward the `target` voice, chunk by chunk, keeping every sample's timing.

    Pitch: log-F0 mapped from the source's median and spread to the target's (the ratio of spreads held within
    F0_RANGE_RATIO_LIMITS, so a near-monotone profile cannot flatten or exaggerate speech wildly). Envelope: first
    a frequency warp, the formant scaling (VTLN-style, piecewise linear) that best lines the source's average
    envelope up with the target's; then a gain, the difference left after the warp, smoothed over
    GAIN_SMOOTHING_HZ and clamped to ±MAX_GAIN_DB. Both are fixed here, from the profiles, so every chunk is
    treated alike.
    """

    def __init__(self, source: VoiceProfile, target: VoiceProfile) -> None:
        spread = target.log_f0_std / max(source.log_f0_std, 1e-3)
        self._f0_scale = float(np.clip(spread, *F0_RANGE_RATIO_LIMITS))
        # Centred on the medians, not the means: octave errors drag a mean (measured with Festival's voice: the mean
        # mapping moved the median away from the sample's, the median mapping 82% of the way to it).
        self._f0_shift = np.log(target.median_f0_hz) - self._f0_scale * np.log(source.median_f0_hz)
        source_db, target_db = np.array(source.envelope_db), np.array(target.envelope_db)
        self.warp_factor = _fit_warp(source_db, target_db)
        warped_source_db = _warp_envelope(source_db[None, :], ENVELOPE_GRID_HZ, self.warp_factor)[0]
        self.gain_db = _envelope_gain(warped_source_db, target_db)

    def apply(self, samples: Samples, rate: int) -> Samples:
        """`samples` in the target voice: float32, the same length, the same RMS unless that would put a peak
        above PEAK_LIMIT (then scaled down to it)."""
        if len(samples) == 0 or not np.any(samples):
            return np.zeros(len(samples), np.float32)
        signal = samples.astype(np.float64)
        f0, times = _harvest(signal, rate)
        envelope = pyworld.cheaptrick(signal, f0, times, rate, f0_floor=F0_FLOOR_HZ)
        aperiodicity = pyworld.d4c(signal, f0, times, rate, fft_size=2 * (envelope.shape[1] - 1))
        envelope = _warp_envelope(envelope, _bin_frequencies(envelope, rate), self.warp_factor)
        envelope *= 10 ** (np.interp(_bin_frequencies(envelope, rate), ENVELOPE_GRID_HZ, self.gain_db) / 10)
        speech = pyworld.synthesize(self._map_f0(f0), envelope, aperiodicity, rate, FRAME_PERIOD_MS)
        return _level_like(_fit_length(speech, len(samples)), signal)

    def _map_f0(self, f0: Floats) -> Floats:
        voiced = f0 > 0
        mapped = np.zeros_like(f0)
        mapped[voiced] = np.clip(np.exp(self._f0_shift + self._f0_scale * np.log(f0[voiced])), F0_FLOOR_HZ, F0_CEIL_HZ)
        return mapped


# --- metrics, for tests and benchmarks -------------------------------------------------------------------------


def median_f0(samples: Samples, rate: int) -> float:
    """The median F0 in Hz over the frames Harvest (F0_FLOOR_HZ-F0_CEIL_HZ, 5 ms frames) finds voiced.

    Raises ValueError when no frame is voiced.
    """
    f0, _ = _harvest(samples.astype(np.float64), rate)
    if not np.any(f0 > 0):
        raise ValueError("no voiced frame: median F0 is undefined")
    return float(np.median(f0[f0 > 0]))


def spectral_centroid(samples: Samples, rate: int) -> float:
    """The magnitude-weighted mean frequency in Hz, 0 to CENTROID_TOP_HZ, of the active frames' summed spectrum.

    Frames are CENTROID_FRAME_S long (Hann window, half overlapping); a frame is active when its energy below
    CENTROID_TOP_HZ is within ACTIVE_FRAME_DB of the loudest frame's. The magnitude spectra of the active frames
    are summed, then the centroid sum(f·|X|) / sum(|X|) is taken over bins up to CENTROID_TOP_HZ, so clips at
    16, 22.05 and 48 kHz compare. Raises ValueError for audio shorter than a frame or silent.
    """
    size = round(CENTROID_FRAME_S * rate)
    if len(samples) < size:
        raise ValueError(f"too short for a spectral centroid: {len(samples)} samples, a frame is {size}")
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), size)[:: size // 2]
    frequencies = np.fft.rfftfreq(size, 1 / rate)
    in_band = frequencies <= CENTROID_TOP_HZ
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1))[:, in_band]
    energy = np.sum(np.square(magnitude), axis=1)
    if not np.any(energy > 0):
        raise ValueError("silent audio has no spectral centroid")
    spectrum = np.sum(magnitude[energy >= np.max(energy) * 10 ** (-ACTIVE_FRAME_DB / 10)], axis=0)
    return float(np.sum(frequencies[in_band] * spectrum) / np.sum(spectrum))


# --- the pieces ------------------------------------------------------------------------------------------------


def _require_sample_rate(rate: int) -> None:
    if rate < MIN_SAMPLE_RATE:
        raise ValueError(f"a voice is measured at {MIN_SAMPLE_RATE} Hz or more, got {rate} Hz")


def _harvest(signal: Floats, rate: int) -> tuple[Floats, Floats]:
    """F0 (0 where unvoiced) and frame times, every FRAME_PERIOD_MS from 0 to the end, as one Harvest run gives.

    Audio of two blocks or more is analysed block by block: Harvest filters the whole signal once per F0 channel,
    and its cost per second grows with the length (measured at 16 kHz: 0.26 s per second of audio in 5 s blocks,
    0.34 s in one 74 s run). Blocks span whole frames, so their frames line up; the last takes the remainder
    (5-10 s), so a sentence under 10 s is analysed whole.
    """
    block, block_frames = round(HARVEST_BLOCK_S * rate), round(HARVEST_BLOCK_S * 1000 / FRAME_PERIOD_MS)
    count = max(1, len(signal) // block)
    pieces = [_harvest_block(signal[index * block : (index + 1) * block], rate)[:block_frames]
              for index in range(count - 1)]  # fmt: skip
    f0 = np.concatenate([*pieces, _harvest_block(signal[(count - 1) * block :], rate)])
    times: Floats = np.arange(len(f0), dtype=np.float64) * (FRAME_PERIOD_MS / 1000)
    return f0, times


def _harvest_block(signal: Floats, rate: int) -> Floats:
    f0, _ = pyworld.harvest(signal, rate, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ, frame_period=FRAME_PERIOD_MS)
    return np.asarray(f0, dtype=np.float64)


def _periodic(signal: Floats, f0: Floats, times: Floats, rate: int) -> npt.NDArray[np.bool_]:
    """Which frames D4C finds periodic: it sets every band of an aperiodic frame to (almost) 1."""
    if len(f0) == 0:
        return np.zeros(0, bool)
    aperiodicity = pyworld.d4c(signal, f0, times, rate)
    periodic: npt.NDArray[np.bool_] = np.min(aperiodicity, axis=1) < 0.999
    return periodic


def _decibels(power: Floats) -> Floats:
    decibels: Floats = 10 * np.log10(np.maximum(power, 1e-20))
    return decibels


def _bin_frequencies(envelope: Floats, rate: int) -> Floats:
    return np.linspace(0, rate / 2, envelope.shape[1])


def _on_grid(envelope_db: Floats, rate: int) -> Floats:
    """An envelope over WORLD's FFT bins at `rate`, read off at ENVELOPE_GRID_HZ."""
    bins = np.linspace(0, rate / 2, len(envelope_db))
    on_grid: Floats = np.interp(ENVELOPE_GRID_HZ, bins, envelope_db)
    return on_grid


def _warp(frequencies: Floats, factor: float) -> Floats:
    """Where the warp by `factor` moves each frequency: ×factor below WARP_KNEE_HZ, then a straight line to
    ENVELOPE_TOP_HZ, unmoved above (monotonic for every factor in WARP_FACTORS)."""
    knee = (WARP_KNEE_HZ, WARP_KNEE_HZ * factor)
    top = float(max(ENVELOPE_TOP_HZ, frequencies[-1]))
    warped: Floats = np.interp(frequencies, [0.0, knee[0], ENVELOPE_TOP_HZ, top],
                               [0.0, knee[1], ENVELOPE_TOP_HZ, top])  # fmt: skip
    return warped


def _warp_envelope(envelope: Floats, frequencies: Floats, factor: float) -> Floats:
    """Each row of `envelope` (over `frequencies`, evenly spaced from 0) with its features moved by the warp: the
    value at f comes from the warp's inverse of f, read by linear interpolation between neighbouring bins."""
    if factor == 1.0:
        return envelope
    origins = np.interp(frequencies, _warp(frequencies, factor), frequencies)
    position = origins / frequencies[1]
    below = np.minimum(position.astype(np.intp), len(frequencies) - 2)
    fraction = position - below
    warped: Floats = envelope[:, below] * (1 - fraction) + envelope[:, below + 1] * fraction
    return np.ascontiguousarray(warped)  # WORLD's synthesis wants C order


def _fit_warp(source_db: Floats, target_db: Floats) -> float:
    """The WARP_FACTORS entry that best lines the source envelope's features up with the target's over
    WARP_FIT_BAND_HZ, judged after removing the straight-line (tilt) part of the difference: the gain handles
    tilt, and a warp chosen to fix tilt would move formants the wrong way."""
    grid, (low, high) = ENVELOPE_GRID_HZ, WARP_FIT_BAND_HZ
    band = (grid >= low) & (grid <= high)
    warped = np.stack([_warp_envelope(source_db[None, :], grid, float(factor))[0] for factor in WARP_FACTORS])
    differences = (target_db[None, :] - warped)[:, band]
    design = np.stack([np.ones(np.count_nonzero(band)), grid[band]], axis=1)
    line, *_ = np.linalg.lstsq(design, differences.T, rcond=None)
    residual = differences - (design @ line).T
    return float(WARP_FACTORS[np.argmin(np.mean(np.square(residual), axis=1))])


def _envelope_gain(source_db: Floats, target_db: Floats) -> Floats:
    """target - source on the grid, level removed, smoothed over GAIN_SMOOTHING_HZ, clamped to ±MAX_GAIN_DB."""
    difference = target_db - source_db
    width = GAIN_SMOOTHING_HZ // ENVELOPE_STEP_HZ + 1
    padded = np.pad(difference - np.mean(difference), width // 2, mode="edge")
    smoothed = np.convolve(padded, np.ones(width) / width, mode="valid")
    gain: Floats = np.clip(smoothed - np.mean(smoothed), -MAX_GAIN_DB, MAX_GAIN_DB)
    return gain


def _fit_length(speech: Floats, length: int) -> Floats:
    """WORLD's output cut or zero-padded to `length` samples (it differs by up to a frame)."""
    if len(speech) >= length:
        return speech[:length]
    return np.pad(speech, (0, length - len(speech)))


def _level_like(speech: Floats, original: Floats) -> Samples:
    """`speech` at the RMS of `original`, scaled down further if its peak would pass PEAK_LIMIT."""
    rms = float(np.sqrt(np.mean(np.square(speech))))
    gain = float(np.sqrt(np.mean(np.square(original)))) / rms if rms > 0 else 0.0
    peak = float(np.max(np.abs(speech))) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    leveled: Samples = (speech * gain).astype(np.float32)
    return leveled
