"""Encode test audio into the containers and codecs that browsers and phones produce (PyAV's FFmpeg)."""

from __future__ import annotations

import io

import av
import numpy as np
import numpy.typing as npt

# format name -> (container, codec, sample rate the codec wants)
FORMATS: dict[str, tuple[str, str, int]] = {
    "wav": ("wav", "pcm_s16le", 0),
    "flac": ("flac", "flac", 0),
    "ogg": ("ogg", "libopus", 48_000),
    "webm": ("webm", "libopus", 48_000),
    "mp3": ("mp3", "libmp3lame", 44_100),
    "m4a": ("mp4", "aac", 44_100),
}


def encode(samples: npt.NDArray[np.float32], rate: int, fmt: str) -> bytes:
    """Mono float32 samples at `rate` -> the bytes of a file in `fmt` (see FORMATS)."""
    container, codec, codec_rate = FORMATS[fmt]
    out_rate = codec_rate or rate
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=out_rate)
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()
