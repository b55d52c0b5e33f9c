"""SadTalker's 25 fps frames picked for Mynah's 30 fps timeline, and the 30 fps frame count of a WAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from procs.lipsync.backends.sadtalker import SadTalkerError, frame_count_30, frames_25_to_30_indices, wav_length


def test_one_second_uses_every_frame_once_and_repeats_every_fifth() -> None:
    indices = frames_25_to_30_indices(25, 30)
    assert indices[:7] == [0, 1, 2, 2, 3, 4, 5]  # 3/30 s lies midway between frames 2 and 3: the earlier wins
    assert sorted(set(indices)) == list(range(25))
    assert len(indices) - len(set(indices)) == 5


@pytest.mark.parametrize("n30", [1, 7, 30, 59, 600, 1801])
def test_each_frame_is_the_nearest_in_time(n30: int) -> None:
    n25 = n30  # plenty: nothing is clamped
    indices = frames_25_to_30_indices(n25, n30)
    assert len(indices) == n30
    for k, index in enumerate(indices):
        t = k / 30
        assert abs(index / 25 - t) <= 1 / 50 + 1e-12
        assert all(abs(index / 25 - t) <= abs(other / 25 - t) + 1e-12 for other in (index - 1, index + 1))
    assert indices == sorted(indices)


def test_a_short_video_is_padded_with_its_last_frame() -> None:
    assert frames_25_to_30_indices(5, 6) == [0, 1, 2, 2, 3, 4]
    assert frames_25_to_30_indices(3, 8) == [0, 1, 2, 2, 2, 2, 2, 2]
    assert frames_25_to_30_indices(1, 4) == [0, 0, 0, 0]
    assert frames_25_to_30_indices(4, 0) == []
    with pytest.raises(ValueError, match="no 25 fps frame"):
        frames_25_to_30_indices(0, 3)


@pytest.mark.parametrize(
    ("rate", "samples", "expected"),
    [(48_000, 48_000, 30), (48_000, 48_001, 31), (48_000, 1600, 1), (48_000, 1599, 1), (16_000, 37_920, 72),
     (16_000, 3200, 6), (44_100, 44_100, 30), (44_100, 1471, 2), (22_050, 0, 0)],
)  # fmt: skip
def test_frame_count_30_is_the_ceiling_of_the_exact_duration(
    tmp_path: Path, rate: int, samples: int, expected: int
) -> None:
    path = tmp_path / "speech.wav"
    soundfile.write(path, np.zeros(samples, np.int16), rate)
    assert frame_count_30(path) == expected


@pytest.mark.parametrize(
    ("format_", "subtype", "channels"),
    [("WAV", "PCM_16", 1), ("WAV", "FLOAT", 1), ("WAV", "PCM_24", 2), ("WAVEX", "PCM_16", 3), ("WAV", "PCM_U8", 1)],
)
def test_wav_length_reads_any_sample_format(tmp_path: Path, format_: str, subtype: str, channels: int) -> None:
    path = tmp_path / "speech.wav"
    soundfile.write(path, np.zeros((37_921, channels), np.float32), 44_100, subtype=subtype, format=format_)
    assert wav_length(path) == (37_921, 44_100)


@pytest.mark.parametrize("placeholder", [0, 0xFFFFFFFF])
def test_a_streamed_header_with_no_length_counts_the_rest_of_the_file(tmp_path: Path, placeholder: int) -> None:
    path = tmp_path / "speech.wav"
    soundfile.write(path, np.zeros(16_001, np.int16), 16_000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = placeholder.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert wav_length(path) == (16_001, 16_000)
    assert frame_count_30(path) == 31


def test_frame_count_30_of_something_not_audio_is_sadtalker_failed(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    path.write_text("not audio")
    with pytest.raises(SadTalkerError) as caught:
        frame_count_30(path)
    assert caught.value.code == "sadtalker-failed"
