"""procs/stt/audio.py: every upload format decodes to 16 kHz mono float32, and bad uploads fail with a code.

All media is made here with PyAV; nothing is downloaded.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import soxr
from av.audio.stream import AudioStream

from appliance.config import SttLimits
from procs.stt.audio import DecodedAudio, decode_audio, float_to_pcm16, pcm16_to_float, resample
from procs.stt.backends.base import SAMPLE_RATE, SttError

Signal = npt.NDArray[np.float32]  # (channels, samples)

LIMITS = SttLimits()


def stereo_signal(rate: int, seconds: float = 1.5, seed: int = 0) -> Signal:
    """A rising sweep in both channels, a different steady tone in each, and a little noise."""
    t = np.arange(int(rate * seconds)) / rate
    sweep_hz = 200.0 + 1800.0 * t / seconds
    sweep = 0.3 * np.sin(2 * np.pi * np.cumsum(sweep_hz) / rate)
    noise = 0.01 * np.random.default_rng(seed).standard_normal((2, t.size))
    left = sweep + 0.1 * np.sin(2 * np.pi * 440.0 * t)
    right = sweep + 0.1 * np.sin(2 * np.pi * 660.0 * t)
    return (np.stack([left, right]) + noise).astype(np.float32)


class NonSeekableSink(io.RawIOBase):
    """Where a muxer cannot go back to write a duration or an index: a browser's MediaRecorder."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:  # type: ignore[override]  # PyAV passes bytes
        self.data += data
        return len(data)


def encode(signal: Signal, rate: int, container_format: str, codec: str, *, seekable: bool = True) -> bytes:
    sink: io.BytesIO | NonSeekableSink = io.BytesIO() if seekable else NonSeekableSink()
    layout = "stereo" if signal.shape[0] == 2 else "mono"
    with av.open(sink, mode="w", format=container_format) as output:
        stream = output.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, AudioStream)
        formats = [f.name for f in stream.codec_context.codec.audio_formats or ()]
        sample_format = "fltp" if "fltp" in formats or not formats else formats[0]
        stream.format = sample_format
        to_codec = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
        pts = 0
        for start in range(0, signal.shape[1], 960):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(signal[:, start : start + 960]), format="fltp", layout=layout
            )
            frame.sample_rate, frame.pts = rate, pts
            pts += frame.samples
            for converted in to_codec.resample(frame):
                output.mux(stream.encode(converted))
        output.mux(stream.encode(None))
    return bytes(sink.getvalue() if isinstance(sink, io.BytesIO) else sink.data)


def wav(seconds: float, rate: int = 48_000, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    tone = (amplitude * np.sin(2 * np.pi * 300.0 * t)).astype(np.float32)[None, :]
    return encode(tone, rate, "wav", "pcm_s16le")


def aligned_correlation(decoded: Signal, reference: Signal, max_lag: int = 1600) -> tuple[float, int]:
    """Pearson correlation at the lag (encoder delay) where it is highest, and that lag in samples.

    A positive lag means `decoded` runs late. The first and last 25 ms are left out: codecs fade there.
    """
    edge = 400
    core = reference[edge + max_lag : reference.size - edge - max_lag]
    padded = decoded[edge : edge + core.size + 2 * max_lag]
    padded = np.pad(padded, (0, core.size + 2 * max_lag - padded.size))
    size = 1 << int(np.ceil(np.log2(padded.size + core.size)))
    cross = np.fft.irfft(np.fft.rfft(padded, size) * np.conj(np.fft.rfft(core, size)), size)[: 2 * max_lag + 1]
    lag = int(np.argmax(cross)) - max_lag
    window = decoded[edge + max_lag + lag : edge + max_lag + lag + core.size]
    return float(np.corrcoef(window, core)[0, 1]), lag


def code_of(source: bytes | Path | io.IOBase, limits: SttLimits = LIMITS) -> str:
    with pytest.raises(SttError) as caught:
        decode_audio(source, limits)  # type: ignore[arg-type]  # io.IOBase subclasses stand in for BinaryIO
    return caught.value.code


FORMATS = [
    # (container, encoder, source rate, codec decoded, demuxer)
    ("wav", "pcm_s16le", 44_100, "pcm_s16le", "wav"),
    ("flac", "flac", 44_100, "flac", "flac"),
    ("ogg", "libopus", 48_000, "opus", "ogg"),
    ("webm", "libopus", 48_000, "opus", "matroska,webm"),
    ("mp3", "libmp3lame", 44_100, "mp3", "mp3"),
    ("mp4", "aac", 44_100, "aac", "mov,mp4,m4a,3gp,3g2,mj2"),
]


@pytest.mark.parametrize(("container_format", "encoder", "rate", "codec", "demuxer"), FORMATS)
def test_each_upload_format_decodes_to_16k_mono(
    container_format: str, encoder: str, rate: int, codec: str, demuxer: str
) -> None:
    signal = stereo_signal(rate)
    decoded = decode_audio(encode(signal, rate, container_format, encoder), LIMITS)

    assert decoded.samples.dtype == np.float32
    assert decoded.samples.ndim == 1
    assert (decoded.source_rate, decoded.source_channels) == (rate, 2)
    assert (decoded.codec, decoded.container) == (codec, demuxer)
    assert abs(decoded.duration_s - 1.5) <= 0.05
    assert decoded.duration_s == decoded.samples.size / SAMPLE_RATE
    assert float(np.max(np.abs(decoded.samples))) <= 1.0
    reference = soxr.resample(signal.mean(axis=0), rate, SAMPLE_RATE).astype(np.float32)
    correlation, lag = aligned_correlation(decoded.samples, reference)
    # Measured: 0.9997-1.0000 at lag 0 for all six (the decoders trim the encoders' priming samples).
    assert correlation > 0.99, (container_format, correlation, lag)
    assert abs(lag) <= 160, lag  # at most 10 ms of encoder delay left after the decoder's trimming
    rms_ratio = float(np.std(decoded.samples) / np.std(reference))
    assert 0.9 < rms_ratio < 1.1


@pytest.mark.parametrize(("encoder", "tolerance"), [("pcm_s16le", 1 / 32768), ("pcm_f32le", 0.0)])
def test_16k_mono_wav_comes_through_unchanged(encoder: str, tolerance: float) -> None:
    """What the web recorder sends; for float WAV FFmpeg's resampler is a pass-through."""
    tone = (0.5 * np.sin(2 * np.pi * 300.0 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    decoded = decode_audio(encode(tone[None, :], SAMPLE_RATE, "wav", encoder), LIMITS)
    assert decoded.samples.size == SAMPLE_RATE
    assert float(np.max(np.abs(decoded.samples - tone))) <= tolerance
    assert (decoded.source_rate, decoded.source_channels, decoded.codec) == (SAMPLE_RATE, 1, encoder)


def test_file_path_and_open_file_decode_alike(tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    path.write_bytes(encode(stereo_signal(48_000), 48_000, "flac", "flac"))
    from_path = decode_audio(path, LIMITS)
    with path.open("rb") as handle:
        from_handle = decode_audio(handle, LIMITS)
    assert np.array_equal(from_path.samples, from_handle.samples)
    assert from_path.samples.size == 24_000


def test_silence_decodes_to_silence() -> None:
    decoded = decode_audio(wav(1.5, amplitude=0.0), LIMITS)
    assert isinstance(decoded, DecodedAudio)
    assert decoded.samples.size == 24_000
    assert not np.any(decoded.samples)


def test_garbage_is_undecodable() -> None:
    assert code_of(np.random.default_rng(7).bytes(20_000)) == "audio-undecodable"


def test_empty_upload() -> None:
    assert code_of(b"") == "audio-empty"


def test_a_tenth_of_a_second_is_too_short() -> None:
    with pytest.raises(SttError) as caught:
        decode_audio(wav(0.1), LIMITS)
    assert caught.value.code == "audio-too-short"
    assert "0.10 s" in caught.value.message
    assert "0.30 s" in caught.value.message


def test_text_file_named_wav_is_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("Shopping list:\n- eggs\n- milk\n" * 30)
    assert code_of(path) == "audio-undecodable"


@pytest.mark.parametrize("keep", [30, 44])  # inside the RIFF header; a header with no data
def test_truncated_header_is_undecodable(keep: int) -> None:
    assert code_of(wav(1.0)[:keep]) == "audio-undecodable"


def test_upload_cut_off_halfway_is_undecodable() -> None:
    ogg = encode(stereo_signal(48_000), 48_000, "ogg", "libopus")
    assert code_of(ogg[: len(ogg) // 2]) == "audio-undecodable"


def test_png_image_has_no_audio_stream() -> None:
    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 32, 32, "rgb24"
    image = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, dtype=np.uint8), format="rgb24")
    png = b"".join(bytes(packet) for packet in [*encoder.encode(image), *encoder.encode(None)])
    assert png.startswith(b"\x89PNG")
    with pytest.raises(SttError) as caught:
        decode_audio(png, LIMITS)
    assert caught.value.code == "audio-no-audio-stream"
    assert "video" in caught.value.message


def test_video_without_audio_track_has_no_audio_stream() -> None:
    sink = io.BytesIO()
    with av.open(sink, mode="w", format="mp4") as output:
        stream = output.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), dtype=np.uint8), format="rgb24")
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    assert code_of(sink.getvalue()) == "audio-no-audio-stream"


@pytest.mark.parametrize("as_path", [False, True])
def test_an_upload_cannot_make_ffmpeg_open_other_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_path: bool
) -> None:
    """An ffconcat list naming a file beside it (FFmpeg's "safe" mode allows relative names) is refused."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "someone-elses-voice.wav").write_bytes(wav(1.5))
    listing = b"ffconcat version 1.0\nfile someone-elses-voice.wav\n"
    upload = tmp_path / "upload.ffconcat"
    upload.write_bytes(listing)
    assert code_of(upload if as_path else listing) == "audio-undecodable"


class UnreadableUpload(io.BytesIO):
    """Proves the size check parses nothing: any read fails the test."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the size limit must be checked without reading")

    def readinto(self, buffer: object) -> int:
        raise AssertionError("the size limit must be checked without reading")


class Pipe(io.RawIOBase):
    """A non-seekable upload stream that hands out short reads and counts what was taken."""

    def __init__(self, data: bytes) -> None:
        self._data, self.taken = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data[self.taken : self.taken + min(len(buffer), 4096)]
        buffer[: len(chunk)] = chunk
        self.taken += len(chunk)
        return len(chunk)


def test_oversized_upload_is_refused_before_reading() -> None:
    small = SttLimits(max_upload_bytes=10 * 1024)
    upload = wav(1.5)
    assert len(upload) > 10 * 1024
    with pytest.raises(SttError) as caught:
        decode_audio(upload, small)
    assert caught.value.code == "audio-too-large"
    assert str(len(upload)) in caught.value.message
    assert "10240" in caught.value.message
    assert code_of(UnreadableUpload(upload), small) == "audio-too-large"
    pipe = Pipe(upload)
    assert code_of(pipe, small) == "audio-too-large"
    assert pipe.taken == 10 * 1024 + 1


def test_declared_duration_over_the_limit_is_refused() -> None:
    with pytest.raises(SttError) as caught:
        decode_audio(wav(3.0), SttLimits(max_duration_s=1.0))
    assert caught.value.code == "audio-too-long"
    assert "3.0 s" in caught.value.message
    assert "1.0 s" in caught.value.message


class CountingUpload(io.BytesIO):
    """Counts how many bytes the demuxer took, to prove decoding stopped early."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def test_decoding_stops_at_the_limit_when_no_duration_is_declared() -> None:
    rate = 48_000
    minute = np.tile(stereo_signal(rate, seconds=2.0)[:1], (1, 30))
    webm = encode(minute, rate, "webm", "libopus", seekable=False)  # as MediaRecorder writes it
    with av.open(io.BytesIO(webm), mode="r") as probe:
        assert probe.duration is None
        assert probe.streams.audio[0].duration is None
    upload = CountingUpload(webm)
    with pytest.raises(SttError) as caught:
        decode_audio(upload, SttLimits(max_duration_s=2.0))
    assert caught.value.code == "audio-too-long"
    assert "decoding stopped after 2.0 s" in caught.value.message
    # Measured: one 32 KiB read buffer of the ~830 KB file.
    assert upload.taken < len(webm) * 0.1, (upload.taken, len(webm))


def test_pcm16_round_trip() -> None:
    audio = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 0.25], dtype=np.float32)
    pcm = float_to_pcm16(audio)
    assert pcm[:4] == b"\x00\x00\x00\x40"  # little-endian: 0, then 16384 = 0x4000
    assert len(pcm) == 2 * audio.size
    back = pcm16_to_float(pcm)
    assert back.dtype == np.float32
    assert np.allclose(back, audio, atol=1 / 16_000)


def test_float_to_pcm16_clips_instead_of_wrapping() -> None:
    assert pcm16_to_float(float_to_pcm16(np.array([1.7, -3.0], dtype=np.float32))).tolist() == pytest.approx(
        [32767 / 32768, -32767 / 32768]
    )


def test_pcm16_to_float_refuses_half_a_sample() -> None:
    with pytest.raises(ValueError, match="even number"):
        pcm16_to_float(b"\x00\x00\x00")


@pytest.mark.parametrize(("from_rate", "to_rate"), [(48_000, 16_000), (16_000, 48_000), (22_050, 48_000)])
def test_resample_keeps_pitch_length_and_dtype(from_rate: int, to_rate: int) -> None:
    t = np.arange(from_rate) / from_rate
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    out = resample(tone, from_rate, to_rate)
    assert out.dtype == np.float32
    assert out.size == to_rate
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) * to_rate / out.size == pytest.approx(1000.0, abs=2.0)


def test_resample_to_the_same_rate_is_a_copy() -> None:
    audio = np.ones(10, dtype=np.float32)
    out = resample(audio, 16_000, 16_000)
    assert out is not audio
    assert np.array_equal(out, audio)
