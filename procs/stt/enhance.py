"""Clean-up before recognition: level normalisation and RNNoise denoising, each switched in the config."""

from __future__ import annotations

import ctypes

import numpy as np

from appliance.config import SttEnhanceConfig
from procs.stt.audio import resample
from procs.stt.backends.base import SAMPLE_RATE, Audio

_FRAME_S = 0.02  # level is measured over 20 ms frames
_SILENCE_DBFS = -60.0  # frames below this are silence or a noise floor, never a reason to add gain
_RELATIVE_GATE_DB = 20.0  # frames this far below the loud part's mean are pauses, not speech
_LIMIT_KNEE = 0.5  # samples above -6 dBFS after gain are soft-limited so nothing reaches full scale

_RNNOISE_RATE = 48_000  # RNNoise's model works on 48 kHz, 480-sample (10 ms) frames
_RNNOISE_DELAY = 960  # samples at 48 kHz between a frame in and its cleaned copy out (measured: 20 ms)
_INT16_SCALE = 32768.0  # RNNoise expects float samples on the int16 scale


def enhance(audio: Audio, config: SttEnhanceConfig) -> Audio:
    """Apply what the config switches on: denoise first (it changes the level), then normalise."""
    if config.denoise:
        audio = denoise(audio)
    if config.normalize:
        audio = normalize_level(audio)
    return audio


def normalize_level(audio: Audio, target_dbfs: float = -20.0, max_gain_db: float = 30.0) -> Audio:
    """Scale so the voiced part's RMS is `target_dbfs`, adding at most `max_gain_db`.

    The RMS is gated like EBU R128 loudness: frames under an absolute floor (silence, padding, a quiet
    noise floor) and frames far below the loud part's mean (pauses) do not count, so padding a clip with
    silence does not raise its gain. Audio with no frame above the floor is returned unchanged. Peaks
    that the gain pushes past -6 dBFS are soft-limited (tanh knee) instead of clipped.
    """
    samples = np.asarray(audio, dtype=np.float32)
    if samples.size == 0:
        return samples.copy()
    frame = min(int(_FRAME_S * SAMPLE_RATE), samples.size)
    count = samples.size // frame
    powers = np.mean(np.square(samples[: count * frame].reshape(count, frame), dtype=np.float64), axis=1)
    loud = powers[powers > 10.0 ** (_SILENCE_DBFS / 10.0)]
    if loud.size == 0:
        return samples.copy()
    voiced = loud[loud > np.mean(loud) * 10.0 ** (-_RELATIVE_GATE_DB / 10.0)]
    voiced_dbfs = 10.0 * np.log10(np.mean(voiced))
    gain = np.float32(10.0 ** (min(target_dbfs - voiced_dbfs, max_gain_db) / 20.0))
    return _soft_limit(samples * gain)


def _soft_limit(audio: Audio) -> Audio:
    """Identity below the knee; above it, tanh bends the excess so |sample| never passes full scale."""
    magnitude = np.abs(audio)
    over = magnitude > _LIMIT_KNEE
    if not np.any(over):
        return audio
    headroom = 1.0 - _LIMIT_KNEE
    bent = _LIMIT_KNEE + headroom * np.tanh((magnitude[over] - _LIMIT_KNEE) / headroom)
    limited = audio.copy()
    limited[over] = np.sign(audio[over]) * bent.astype(np.float32)
    return limited


def denoise(audio: Audio) -> Audio:
    """RNNoise at 48 kHz; the result has exactly the input's length and alignment."""
    # Imported here: pyrnnoise's package import pulls in audiolab and tqdm, and denoising is off by default.
    from pyrnnoise import rnnoise

    samples = np.asarray(audio, dtype=np.float32)
    if samples.size == 0:
        return samples.copy()
    upsampled = resample(samples, SAMPLE_RATE, _RNNOISE_RATE)
    frame = int(rnnoise.FRAME_SIZE)
    # Zero tail: the last real samples come out _RNNOISE_DELAY later, so feed that much more.
    frames = -(-(upsampled.size + _RNNOISE_DELAY) // frame)
    buffer = np.zeros(frames * frame, dtype=np.float32)
    buffer[: upsampled.size] = upsampled * _INT16_SCALE
    # The C function directly, in place, frame by frame: pyrnnoise's process_mono_frame round-trips
    # through int16 (its astype wraps out-of-range values around) and asserts on its input range.
    base = buffer.ctypes.data
    step = frame * buffer.itemsize
    state = rnnoise.create()
    try:
        for index in range(frames):
            pointer = ctypes.cast(base + index * step, ctypes.POINTER(ctypes.c_float))
            rnnoise.lib.rnnoise_process_frame(state, pointer, pointer)
    finally:
        rnnoise.destroy(state)
    cleaned = buffer[_RNNOISE_DELAY : _RNNOISE_DELAY + upsampled.size] / np.float32(_INT16_SCALE)
    downsampled = resample(cleaned, _RNNOISE_RATE, SAMPLE_RATE)
    result = np.zeros(samples.size, dtype=np.float32)
    kept = min(samples.size, downsampled.size)
    result[:kept] = downsampled[:kept]
    return np.clip(result, -1.0, 1.0)
