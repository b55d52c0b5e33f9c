"""Decode whatever a browser or phone uploads into the STT stage's 16 kHz mono float32, within the limits."""

from __future__ import annotations

import io
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import av
import av.error
import numpy as np
import numpy.typing as npt
import soxr
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer

from appliance.config import SttLimits
from procs.stt.backends.base import SAMPLE_RATE, Audio, SttError

# What PyAV raises for input it cannot make sense of: FFmpegError covers InvalidDataError, its EOFError and
# PermissionError and the rest of av.error; ValueError and IndexError cover PyAV's own checks on what it
# was given (metadata that is not text, for one), EOFError a demuxer running off a truncated file.
_BAD_INPUT = (av.error.FFmpegError, ValueError, IndexError, EOFError)
# Some demuxers open further files named inside the upload: an ffconcat list naming "voice.wav" reads that
# file from the working directory, a playlist fetches URLs. Uploads are read through Python file objects,
# which need no FFmpeg protocol, so allowing none refuses every such nested open.
_NO_NESTED_OPENS = {"protocol_whitelist": ""}
_AV_TIME_BASE = 1_000_000  # container.duration is in FFmpeg's AV_TIME_BASE units (microseconds)

# libswresample's default stereo-to-mono matrix is (L + R) / sqrt(2), +3 dB over either channel for speech
# (which is the same in both) and past full scale for a loud recording; 5.1 sums to 3.4x. Normalising the
# matrix so each output's coefficients sum to at most 1 makes stereo (L + R) / 2 and never clips.
_DOWNMIX = {"rematrix_maxval": "1.0"}
# Source rates that audio is actually made at: 8 kHz (telephones) is the lowest in use, 768 kHz (DACs) the
# highest; 4 kHz still leaves a 2 kHz band. Outside this a header is damaged or made up: at 1 Hz, one frame of
# 4096 samples resampled to 48 kHz is 786 MB of floats before the duration limit can look at it, and FFmpeg
# answers 2^31 - 1 Hz by allocating until it fails.
MIN_SOURCE_RATE = 4_000
MAX_SOURCE_RATE = 768_000

_Sample = TypeVar("_Sample", np.float32, np.float64, np.int16, np.int32)


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: ndarray equality is elementwise, not a bool
class DecodedAudio:
    samples: Audio  # mono, float32 in [-1, 1], at the rate asked for (16 kHz by default)
    source_rate: int
    source_channels: int
    codec: str  # FFmpeg's codec name: "opus", "mp3", "aac", "pcm_s16le", ...
    container: str  # FFmpeg's demuxer name: "ogg", "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", ...
    duration_s: float  # of `samples`


def decode_audio(source: bytes | Path | BinaryIO, limits: SttLimits, rate: int = SAMPLE_RATE) -> DecodedAudio:
    """Decode the first audio stream of `source`, checking the limits as early as each can be known.

    Order: byte size (before anything is parsed), then the declared duration (before any frame is
    decoded), then each frame's sample rate (before it is resampled), then the decoded duration as frames
    arrive (metadata can be absent or wrong, so decoding stops as soon as the limit is passed), then the
    minimum duration. NaN and infinite samples are made silence and full scale. Raises SttError.
    """
    with ExitStack() as cleanup:
        media = _sized_source(source, limits.max_upload_bytes, cleanup)
        try:
            container = cleanup.enter_context(av.open(media, mode="r", container_options=_NO_NESTED_OPENS))
        except _BAD_INPUT as err:
            raise SttError(
                "audio-undecodable", f"the upload is not a readable audio or video file: {_reason(err)}"
            ) from err
        return _decode_container(container, limits, rate)


def _decode_container(container: InputContainer, limits: SttLimits, rate: int) -> DecodedAudio:
    """The first audio stream, its declared duration, then its frames, then the minimum duration."""
    stream = _first_audio_stream(container)
    declared_s = _declared_duration_s(container, stream)
    if declared_s is not None and declared_s > limits.max_duration_s:
        raise SttError(
            "audio-too-long",
            f"the audio is {declared_s:.1f} s long; the limit is {limits.max_duration_s:.1f} s",
        )
    try:
        samples = _decode_mono(container, stream, limits.max_duration_s, rate)
    except _BAD_INPUT as err:
        raise SttError("audio-undecodable", f"the audio stream could not be decoded: {_reason(err)}") from err
    duration_s = samples.size / rate
    if duration_s < limits.min_duration_s:
        raise SttError(
            "audio-too-short",
            f"the audio is {duration_s:.2f} s long; at least {limits.min_duration_s:.2f} s is needed",
        )
    codec_context = stream.codec_context
    return DecodedAudio(
        samples=samples,
        source_rate=codec_context.sample_rate,
        source_channels=codec_context.channels,
        codec=codec_context.codec.canonical_name,
        container=container.format.name,
        duration_s=duration_s,
    )


def _reason(err: Exception) -> str:
    """FFmpeg's own words ("Invalid data found when processing input") without errno and '<none>'."""
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _sized_source(source: bytes | Path | BinaryIO, max_bytes: int, cleanup: ExitStack) -> BinaryIO:
    """Check the byte size without parsing anything; return the file object av.open should read.

    A path is opened here rather than handed to FFmpeg as a URL, which FFmpeg would parse for a protocol.
    """
    if isinstance(source, bytes | bytearray):
        size, exact = len(source), True
        media: BinaryIO = io.BytesIO(source)
    elif isinstance(source, Path):
        # A missing path is the caller's bug, not bad input: its OSError propagates.
        media = cleanup.enter_context(source.open("rb"))
        size, exact = os.fstat(media.fileno()).st_size, True
    elif source.seekable():
        start = source.tell()
        size, exact = source.seek(0, os.SEEK_END) - start, True
        source.seek(start)
        media = source
    else:
        # A pipe: read at most one byte past the limit, which is enough to know it is too large. Raw
        # streams may return short reads, so read until that much has come or the stream ends.
        head = bytearray()
        while len(head) <= max_bytes and (chunk := source.read(max_bytes + 1 - len(head))):
            head += chunk
        size, exact = len(head), len(head) <= max_bytes
        media = io.BytesIO(head)
    if size == 0:
        raise SttError("audio-empty", "the upload is empty (0 bytes)")
    if size > max_bytes:
        found = f"{size} bytes" if exact else f"over {max_bytes} bytes"
        raise SttError("audio-too-large", f"the upload is {found}; the limit is {max_bytes} bytes")
    return media


def _first_audio_stream(container: InputContainer) -> AudioStream:
    if container.streams.audio:
        return container.streams.audio[0]
    found = ", ".join(sorted({stream.type for stream in container.streams})) or "no streams"
    raise SttError("audio-no-audio-stream", f"the {container.format.name} file has no audio stream (found: {found})")


def _declared_duration_s(container: InputContainer, stream: AudioStream) -> float | None:
    """The stream's duration if the file states one, else the container's; None when neither is known."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / _AV_TIME_BASE
    return None


def _decode_mono(container: InputContainer, stream: AudioStream, max_duration_s: float, rate: int) -> Audio:
    """Decode, downmix and resample frame by frame, stopping as soon as `max_duration_s` is exceeded.

    FFmpeg's resampler (via PyAV's AudioResampler) rather than soxr: it converts any sample format,
    planar or packed, and downmixes any channel layout by its speaker positions (5.1 included) in the same
    pass, frame by frame, so only mono at `rate` is ever held; its default filter is ample for recognition,
    which uses nothing above 8 kHz, and for voice training. soxr serves `resample()` below, where the input is
    already float mono.
    """
    max_samples = int(max_duration_s * rate)
    chunks: list[Audio] = []
    total = 0
    resampler: AudioResampler | None = None
    input_shape: tuple[str, str, int] | None = None
    for frame in container.decode(stream):
        shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if resampler is None or shape != input_shape:
            _check_rate(frame.sample_rate)
            # A chained Ogg or a phone switching rates mid-file: FFmpeg's filter graph is fixed to the
            # first frame's shape, so flush it and start a new one.
            if resampler is not None:
                total += _collect(resampler.resample(None), chunks)
            resampler = AudioResampler(format="flt", layout="mono", rate=rate, options=_DOWNMIX)
            input_shape = shape
        total += _collect(resampler.resample(frame), chunks)
        if total > max_samples:
            raise SttError(
                "audio-too-long",
                f"decoding stopped after {total / rate:.1f} s of audio; the limit is {max_duration_s:.1f} s",
            )
    if resampler is not None:
        total += _collect(resampler.resample(None), chunks)
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks)
    # A float WAV can hold NaN and infinities (a plugin's bug, a damaged file), and the resampler spreads each
    # over its filter's length. They are not sound: NaN becomes silence and an infinity full scale, so the rest
    # of the recording stays usable and nothing downstream (level, VAD, Whisper, PCM16) sees a non-number.
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    # Decoders of lossy codecs can overshoot full scale slightly; the Audio contract is [-1, 1].
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples


def _check_rate(rate: int) -> None:
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise SttError(
            "audio-undecodable",
            f"the file says its sample rate is {rate} Hz, which no audio is recorded at "
            f"({MIN_SOURCE_RATE}-{MAX_SOURCE_RATE} Hz): the header is damaged",
        )


def _collect(frames: list[AudioFrame], chunks: list[Audio]) -> int:
    added = 0
    for frame in frames:
        chunk = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)  # packed "flt" mono: (1, n)
        chunks.append(chunk)
        added += chunk.size
    return added


def pcm16_to_float(data: bytes) -> Audio:
    """Little-endian signed 16-bit PCM to float32 in [-1, 1)."""
    if len(data) % 2:
        raise ValueError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def float_to_pcm16(audio: npt.NDArray[np.floating[Any]]) -> bytes:
    """Float audio in [-1, 1] to little-endian signed 16-bit PCM; out-of-range samples are clipped."""
    scaled = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * np.float32(32767.0)
    pcm: bytes = np.rint(scaled).astype("<i2").tobytes()
    return pcm


def resample(audio: npt.NDArray[_Sample], from_rate: int, to_rate: int) -> npt.NDArray[_Sample]:
    """Resample with soxr (high quality, no delay), keeping the dtype; shape (n,) or (n, channels)."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate or audio.shape[0] == 0:
        return audio.copy()
    resampled: npt.NDArray[_Sample] = soxr.resample(audio, from_rate, to_rate)
    return resampled
