"""Bad media at the lowest level: the audio decoder (procs/stt/audio.py) and the avatar image decoder
(procs/lipsync/avatar.py) given what a careless or hostile upload holds. Each bad file is refused with a code or
made usable, quickly and without a large allocation; legitimate oddities (8 kHz, 96 kHz, CMYK, 16-bit) decode.

The files are made here by hand (WAV headers, JPEG markers), so the tests say exactly what is wrong in each.
"""

from __future__ import annotations

import io
import resource
import struct
import time
import zlib

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from appliance.config import SttEnhanceConfig, SttLimits
from ipc.errors import CodedError
from procs.lipsync.avatar import DEFAULT_AVATAR, MAX_PIXELS, decode
from procs.stt.audio import MAX_SOURCE_RATE, MIN_SOURCE_RATE, decode_audio
from procs.stt.backends.base import SAMPLE_RATE, SttError
from procs.stt.enhance import enhance

LIMITS = SttLimits()
Samples = npt.NDArray[np.float32]

# --- audio ---------------------------------------------------------------------------------------------------


def tone(seconds: float, rate: int, hz: float = 300.0, amplitude: float = 0.3) -> Samples:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def riff_wav(fmt_tag: int, rate: int, bits: int, data: bytes, channels: int = 1) -> bytes:
    """A WAV file whose header says what it is told to, whatever the data is."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm16_wav(samples: Samples, rate: int) -> bytes:
    return riff_wav(1, rate, 16, (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def float_wav(samples: Samples, rate: int) -> bytes:
    return riff_wav(3, rate, 32, np.asarray(samples, "<f4").tobytes())


def refusal(data: bytes, limits: SttLimits = LIMITS) -> SttError:
    with pytest.raises(SttError) as caught:
        decode_audio(data, limits)
    return caught.value


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000, 96_000, 192_000])
def test_every_real_sample_rate_is_resampled_to_16k(rate: int) -> None:
    decoded = decode_audio(pcm16_wav(tone(1.0, rate), rate), LIMITS)
    assert decoded.source_rate == rate
    assert decoded.samples.size == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(decoded.samples))
    assert np.argmax(spectrum) == 300  # 1 Hz bins: the pitch is kept


@pytest.mark.parametrize("rate", [1, 100, MIN_SOURCE_RATE - 1, MAX_SOURCE_RATE + 1, 100_000_000, 2**31 - 1])
def test_a_made_up_header_rate_is_refused_before_resampling(rate: int) -> None:
    """Before: 1 Hz with 800 samples decoded as 800 s of audio (12.8 M samples made from 800), 2^31 - 1 Hz had
    FFmpeg allocate until it failed. Now the rate is checked before anything is resampled."""
    samples = np.random.default_rng(0).uniform(-0.3, 0.3, 800).astype(np.float32)
    started = time.perf_counter()
    error = refusal(pcm16_wav(samples, rate))
    assert error.code == "audio-undecodable", error.message
    assert f"{rate} Hz" in error.message and "damaged" in error.message
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("rate", [0, 4_000_000_000])
def test_a_rate_ffmpeg_cannot_even_read_is_undecodable(rate: int) -> None:
    assert refusal(pcm16_wav(tone(1.0, 16_000), rate)).code == "audio-undecodable"


def test_a_low_rate_file_that_is_too_long_says_so_before_decoding() -> None:
    """2000 samples at 1 Hz declare 2000 s: the declared duration is checked first, and nothing is resampled."""
    error = refusal(pcm16_wav(np.zeros(2000, np.float32), 1))
    assert error.code == "audio-too-long"


def test_nan_and_infinite_samples_become_silence_and_full_scale() -> None:
    """Before: a float WAV's NaN went through the decoder and on to the level normaliser and Whisper."""
    samples = tone(2.0, SAMPLE_RATE)
    samples[[1000, 5000, 9000]] = [np.nan, np.inf, -np.inf]
    decoded = decode_audio(float_wav(samples, SAMPLE_RATE), LIMITS)
    assert np.isfinite(decoded.samples).all()
    assert decoded.samples[1000] == 0.0 and decoded.samples[5000] == 1.0 and decoded.samples[9000] == -1.0
    untouched = np.ones(samples.size, bool)
    untouched[[1000, 5000, 9000]] = False
    assert np.array_equal(decoded.samples[untouched], samples[untouched])


def test_nan_spread_by_the_resampler_is_removed_too() -> None:
    """At 44.1 kHz each NaN reaches ~35 output samples through the resampling filter; each becomes silence."""
    samples = tone(2.0, 44_100)
    samples[::1000] = np.nan
    decoded = decode_audio(float_wav(samples, 44_100), LIMITS)
    assert decoded.samples.size == 2 * SAMPLE_RATE
    assert np.isfinite(decoded.samples).all()
    reference = tone(2.0, SAMPLE_RATE)
    assert float(np.corrcoef(decoded.samples, reference)[0, 1]) > 0.9  # the tone is still there


def test_a_file_of_nothing_but_nan_is_silence() -> None:
    decoded = decode_audio(float_wav(np.full(SAMPLE_RATE, np.nan, np.float32), SAMPLE_RATE), LIMITS)
    assert not np.any(decoded.samples)


def test_absurdly_loud_float_samples_come_out_at_full_scale() -> None:
    """3e38 is finite, and near float32's limit: whatever the resampler makes of it stays a number, clipped."""
    decoded = decode_audio(float_wav(tone(1.0, 44_100, amplitude=3e38), 44_100), LIMITS)
    assert np.isfinite(decoded.samples).all() and float(np.max(np.abs(decoded.samples))) == 1.0


def test_what_the_recogniser_gets_from_a_nan_file_is_finite() -> None:
    samples = tone(2.0, 48_000)
    samples[::500] = np.nan
    decoded = decode_audio(float_wav(samples, 48_000), LIMITS)
    prepared = enhance(decoded.samples, SttEnhanceConfig(normalize=True, denoise=False))
    assert np.isfinite(prepared).all() and float(np.max(np.abs(prepared))) <= 1.0


def test_clipped_speech_decodes_clipped_not_wrapped() -> None:
    loud = np.clip(tone(1.0, SAMPLE_RATE) * 20, -1, 1)
    decoded = decode_audio(pcm16_wav(loud, SAMPLE_RATE), LIMITS)
    assert float(np.max(decoded.samples)) > 0.99 and float(np.min(decoded.samples)) < -0.99
    assert np.all(np.sign(decoded.samples[np.abs(loud) > 0.5]) == np.sign(loud[np.abs(loud) > 0.5]))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "audio-empty"),
        (pcm16_wav(np.zeros(0, np.float32), SAMPLE_RATE), "audio-too-short"),  # a header and no samples
        (b"RIFF\x00\x00\x00\x00WAVE" + np.random.default_rng(1).bytes(20_000), "audio-undecodable"),
        (b"RIFF\x20\x4e\x00\x00WAVEfmt " + np.random.default_rng(2).bytes(20_000), "audio-undecodable"),
    ],
    ids=["zero-bytes", "header-only", "random-after-riff", "random-after-fmt"],
)  # fmt: skip
def test_empty_and_fake_wav_files_are_refused(data: bytes, code: str) -> None:
    assert refusal(data).code == code


def test_ten_minutes_of_silence_decode_in_bounded_time_and_memory() -> None:
    """What POST /api/transcribe does with 10 minutes of silence before Whisper's own fast path for it."""
    data = pcm16_wav(np.zeros(600 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    started = time.perf_counter()
    decoded = decode_audio(data, LIMITS)
    assert decoded.duration_s == 600.0 and not np.any(decoded.samples)
    assert time.perf_counter() - started < 10.0


def test_a_one_hertz_file_does_not_balloon_in_memory() -> None:
    """Before the rate check, 900 samples at 1 Hz (under the 900 s limit) became 14.4 M samples at 16 kHz."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refusal(pcm16_wav(np.zeros(899, np.float32), 1))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 20_000, f"{grown_kib} KiB"


# --- images --------------------------------------------------------------------------------------------------


def avatar_rgb() -> npt.NDArray[np.uint8]:
    bgr = cv2.imread(str(DEFAULT_AVATAR), cv2.IMREAD_COLOR)
    assert bgr is not None
    return np.ascontiguousarray(bgr[..., ::-1])


def jpeg(rgb: npt.NDArray[np.uint8]) -> bytes:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return data.tobytes()


def with_frame_size(data: bytes, width: int, height: int, junk: bytes = b"") -> bytes:
    """The JPEG with its frame header (SOF0) saying `width`x`height`, and `junk` just before that header."""
    at = data.index(b"\xff\xc0")
    patched = data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]
    return patched[:at] + junk + patched[at:]


def image_refusal(data: bytes) -> CodedError:
    with pytest.raises(CodedError) as caught:
        decode(data)
    return caught.value


@pytest.mark.parametrize(
    "junk", [b"\x00\x11", b"\xff\x00", b"\xff\xd0", b"\xff\xff\xff"], ids=["bytes", "stuffed", "restart", "fill"]
)
def test_a_jpeg_cannot_hide_its_size_from_the_pixel_limit(junk: bytes) -> None:
    """Before: bytes between two markers stopped the size check, and libjpeg (which skips them with a warning)
    decoded the 10000x10000 that a 700-byte file declared: 300 MB, and up to 3 GB for a gigapixel."""
    bomb = with_frame_size(jpeg(np.zeros((8, 8, 3), np.uint8)), 10_000, 10_000, junk)
    assert len(bomb) < 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = image_refusal(bomb)
    assert error.code == "avatar-too-large" and "10000x10000" in error.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: nothing was decoded


def test_a_jpeg_with_junk_before_its_frame_header_still_decodes_when_small() -> None:
    """libjpeg reads past such junk, so a file that is otherwise fine is still a picture."""
    small = jpeg(avatar_rgb())
    patched = with_frame_size(small, 512, 512, b"\x00\x00")
    assert decode(patched).shape == (512, 512, 3)


def test_a_jpeg_without_a_frame_header_is_unreadable() -> None:
    """Scan data before any frame header: there is no size to check, and no picture to decode."""
    data = jpeg(np.zeros((8, 8, 3), np.uint8))
    sos = data.index(b"\xff\xda")
    frame_at = data.index(b"\xff\xc0")
    frame_end = frame_at + 2 + int.from_bytes(data[frame_at + 2 : frame_at + 4], "big")
    reordered = data[:frame_at] + data[frame_end:sos] + data[sos:]
    assert image_refusal(reordered).code == "avatar-unreadable"


@pytest.mark.parametrize(
    "data",
    [b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"RIFF\x00\x00\x00\x00WEBPALPH" + bytes(64),
     b"\x89PNG\r\n\x1a\n" + bytes(8)],
    ids=["jpeg-magic-only", "jpeg-cut-in-app0", "webp-no-image-chunk", "png-no-ihdr"],
)  # fmt: skip
def test_a_file_whose_size_cannot_be_read_is_unreadable(data: bytes) -> None:
    assert image_refusal(data).code == "avatar-unreadable"


def test_a_png_declaring_a_gigapixel_is_refused_from_its_header() -> None:
    """A real PNG (valid IHDR and CRC) of 30000x30000 whose data is cut after the header: 60 bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    error = image_refusal(b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x00IDAT")
    assert error.code == "avatar-too-large" and f"over {MAX_PIXELS // 1_000_000} megapixels" in error.message


def test_a_16_bit_png_with_alpha_decodes_to_8_bit_rgb_on_white() -> None:
    rgb = avatar_rgb()
    rgba16 = np.dstack([rgb[..., ::-1].astype(np.uint16) * 257, np.full(rgb.shape[:2], 65535, np.uint16)])
    rgba16[:32, :32, 3] = 0  # a transparent corner
    ok, data = cv2.imencode(".png", rgba16)
    assert ok
    decoded = decode(data.tobytes())
    assert decoded.dtype == np.uint8 and decoded.shape == rgb.shape
    assert np.all(decoded[:32, :32] == 255)
    assert float(np.mean(np.abs(decoded[64:, 64:].astype(int) - rgb[64:, 64:]))) < 1.0


def test_a_cmyk_jpeg_decodes_to_its_colours() -> None:
    pil = pytest.importorskip("PIL.Image", reason="Pillow (a matplotlib dependency) writes CMYK JPEGs")
    rgb = avatar_rgb()
    out = io.BytesIO()
    pil.fromarray(rgb).convert("CMYK").save(out, "JPEG", quality=95)
    decoded = decode(out.getvalue())
    assert decoded.shape == rgb.shape
    assert float(np.mean(np.abs(decoded.astype(int) - rgb))) < 8.0  # JPEG's loss, not inverted or swapped ink
