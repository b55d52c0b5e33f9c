"""The MP4 writer, read back with PyAV: H.264 at exactly 30 fps, AAC at 48 kHz, streams of equal length, the
pixels it was given, and nothing left behind by a failure."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from procs.lipsync.video import FPS, FRAME_SAMPLES, OUTPUT_RATE, Mp4Writer, VideoError

W, H = 128, 96


def tone(samples: int, hz: float = 220.0) -> np.ndarray:
    t = np.arange(samples) / OUTPUT_RATE
    return (np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


def frames_for(samples: int) -> int:
    return math.ceil(samples / FRAME_SAMPLES)


def colour_frame(rgb: tuple[int, int, int]) -> np.ndarray:
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = rgb
    return frame


def write(path: Path, samples: int, colours: list[tuple[int, int, int]] | None = None) -> int:
    count = frames_for(samples)
    colours = colours or [(40, 120, 200)]
    with Mp4Writer(path, W, H) as out:
        out.add_audio(tone(samples))
        for i in range(count):
            out.add_frame(colour_frame(colours[i % len(colours)]))
    return count


def stream_duration_s(path: Path, kind: str) -> float:
    """The decoded length of a stream: the last frame's end minus the first's start."""
    spans: list[tuple[float, float]] = []
    with av.open(str(path)) as container:
        if kind == "video":
            for video_frame in container.decode(video=0):
                assert video_frame.time is not None
                spans.append((video_frame.time, video_frame.time + 1 / FPS))
        else:
            for audio_frame in container.decode(audio=0):
                assert audio_frame.time is not None
                spans.append((audio_frame.time, audio_frame.time + audio_frame.samples / audio_frame.sample_rate))
    return max(end for _, end in spans) - min(start for start, _ in spans)


@pytest.mark.parametrize("samples", [OUTPUT_RATE * 2, OUTPUT_RATE + 777, 1600 * 45 + 1])
def test_streams_codecs_rate_and_lengths(tmp_path: Path, samples: int) -> None:
    path = tmp_path / "avatar.mp4"
    count = write(path, samples)
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert video.average_rate == Fraction(30, 1)
        assert (video.codec_context.width, video.codec_context.height) == (W, H)
        assert video.codec_context.pix_fmt == "yuv420p"
        assert audio.codec_context.sample_rate == OUTPUT_RATE and audio.codec_context.channels == 1
        decoded = sum(1 for _ in container.decode(video))
    assert decoded == count
    video_s, audio_s = stream_duration_s(path, "video"), stream_duration_s(path, "audio")
    assert video_s == pytest.approx(count / FPS, abs=1e-6)
    assert abs(video_s - audio_s) <= 1 / FPS, (video_s, audio_s)


def test_frame_pts_are_their_index(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    count = write(path, OUTPUT_RATE)
    with av.open(str(path)) as container:
        times = [f.time for f in container.decode(video=0)]
    assert times == pytest.approx([i / FPS for i in range(count)], abs=1e-6)


def test_pixels_decode_near_their_colour(tmp_path: Path) -> None:
    path = tmp_path / "c.mp4"
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (240, 240, 240)]
    write(path, FRAME_SAMPLES * 8, colours)
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 8
    for i, frame in enumerate(decoded):
        mean = frame[8:-8, 8:-8].reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - np.array(colours[i % 4])).max() < 12, (i, mean)


def test_the_audio_survives(tmp_path: Path) -> None:
    path = tmp_path / "t.mp4"
    write(path, OUTPUT_RATE)
    with av.open(str(path)) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    spectrum = np.abs(np.fft.rfft(pcm[4800:43200]))
    peak_hz = np.argmax(spectrum) * OUTPUT_RATE / (43200 - 4800)
    assert abs(peak_hz - 220) < 5


def test_short_audio_is_padded_and_long_audio_trimmed(tmp_path: Path) -> None:
    padded, trimmed = tmp_path / "p.mp4", tmp_path / "t.mp4"
    with Mp4Writer(padded, W, H) as out:
        out.add_audio(tone(100))
        for _ in range(30):
            out.add_frame(colour_frame((0, 0, 0)))
    with Mp4Writer(trimmed, W, H) as out:
        out.add_audio(tone(OUTPUT_RATE * 3))
        for _ in range(30):
            out.add_frame(colour_frame((0, 0, 0)))
    for path in (padded, trimmed):
        assert abs(stream_duration_s(path, "audio") - 1.0) <= 1 / FPS


def test_audio_added_in_pieces_between_frames(tmp_path: Path) -> None:
    path = tmp_path / "s.mp4"
    pcm = tone(OUTPUT_RATE)
    with Mp4Writer(path, W, H) as out:
        for i in range(30):
            out.add_audio(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
            out.add_frame(colour_frame((90, 90, 90)))
    assert abs(stream_duration_s(path, "audio") - 1.0) <= 1 / FPS


def fail_after(path: Path, frames: int, last: np.ndarray | None = None) -> None:
    """Write some frames, then fail: with a bad frame when `last` is given, else as a renderer would."""
    with Mp4Writer(path, W, H) as out:
        out.add_audio(tone(OUTPUT_RATE))
        for _ in range(frames):
            out.add_frame(colour_frame((10, 20, 30)))
        if last is not None:
            out.add_frame(last)
        raise RuntimeError("the renderer failed")


def test_a_failure_mid_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        fail_after(tmp_path / "avatar.mp4", 10)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_frame_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(VideoError) as caught:
        fail_after(tmp_path / "avatar.mp4", 3, np.zeros((H, W + 2, 3), np.uint8))
    assert caught.value.code == "video-bad-frame"
    assert list(tmp_path.iterdir()) == []


def test_odd_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VideoError):
        Mp4Writer(tmp_path / "x.mp4", 127, 96)


def test_an_existing_file_is_replaced_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "avatar.mp4"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        fail_after(path, 1)
    assert path.read_bytes() == b"old"
    write(path, OUTPUT_RATE)
    assert path.read_bytes()[4:8] == b"ftyp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["avatar.mp4"]
