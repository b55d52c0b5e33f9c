"""The SadTalker backend end to end against a FAKE SadTalker install (tests/fakes/fake_sadtalker_install.py).

SadTalker needs a GPU and GBs of weights, so these tests run the real backend and the real host script (a real
subprocess, its JSON-line protocol, signals, timeouts) against fake SadTalker modules at the real module paths,
with upstream's signatures. The fake records each model it builds and each call it gets, and writes a 25 fps
MP4 whose grey level follows the audio's loudness, so the frames can be traced back to it.
"""

from __future__ import annotations

import gc
import hashlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile
from PIL import Image

from ipc.errors import CodedError
from procs.lipsync import sadtalker_host
from procs.lipsync.backends.sadtalker import SadTalkerBackend
from tests.fakes.fake_sadtalker_install import FakeSadTalker, make_fake_install

Frame = npt.NDArray[np.uint8]
DARK, BRIGHT = 40, 100  # the fake's grey level: 16 in silence, about 130 for the test tone


@pytest.fixture
def fake(tmp_path: Path) -> FakeSadTalker:
    return make_fake_install(tmp_path / "sadtalker")


@pytest.fixture
def avatar(tmp_path: Path) -> Path:
    """A 120x90 image with detail in it (the fake finds a face in anything not a single colour)."""
    pixels = np.zeros((90, 120, 3), np.uint8)
    pixels[:, :, 0] = np.arange(120, dtype=np.uint8)[None, :]
    pixels[:, :, 1] = np.arange(90, dtype=np.uint8)[:, None]
    Image.fromarray(pixels).save(tmp_path / "avatar.png")
    return tmp_path / "avatar.png"


@pytest.fixture
def backend(fake: FakeSadTalker) -> Iterator[SadTalkerBackend]:
    with SadTalkerBackend(fake.config()) as started:
        yield started


def _wav(path: Path, seconds: float, rate: int = 16_000, *, silent_until: float = 0.0) -> Path:
    """A 220 Hz tone of `seconds` (whole samples: round(seconds * rate)), silent before `silent_until`."""
    t = np.arange(round(seconds * rate)) / rate
    tone = (0.25 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    tone[t < silent_until] = 0.0
    soundfile.write(path, tone, rate, subtype="PCM_16")
    return path


def _render(backend: SadTalkerBackend, image: Path, audio: Path, work: Path, **kw: Any) -> list[Frame]:
    return list(backend.render(image, audio, work, kw.get("progress", lambda fraction, stage: None)))


def _reaped(pid: int) -> bool:
    """Gone and waited for: signal 0 still reaches a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_models_are_built_once_and_frames_come_from_sadtalkers_video(
    backend: SadTalkerBackend, fake: FakeSadTalker, avatar: Path, tmp_path: Path
) -> None:
    audio = _wav(tmp_path / "speech.wav", 2.0, silent_until=1.0)
    for turn in range(3):
        progress: list[tuple[float, str]] = []
        frames = _render(
            backend, avatar, audio, tmp_path / f"work{turn}", progress=lambda f, s, seen=progress: seen.append((f, s))
        )
        fractions = [fraction for fraction, _ in progress]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert [stage for _, stage in progress] == ["crop", "audio2coeff", "render", "done"]
        assert len(frames) == 60
        levels = [float(frame.mean()) for frame in frames]
        assert max(levels[:27]) < DARK  # the silent first second (its last 40 ms frame may blend)
        assert min(levels[32:]) > BRIGHT
        assert all(frame.shape == (192, 256, 3) and frame.dtype == np.uint8 for frame in frames)
    builds = fake.builds()
    assert sorted(build["model"] for build in builds) == ["AnimateFromCoeff", "Audio2Coeff", "CropAndExtract"]
    assert {build["pid"] for build in builds} == {backend.pid}
    assert len(fake.calls("AnimateFromCoeff.generate")) == 3
    assert not list((tmp_path / "work0").iterdir())  # SadTalker's working files go once the frames are read


@pytest.mark.parametrize("rate", [16_000, 48_000, 44_100])
def test_frame_count_is_exact_at_30_fps(
    backend: SadTalkerBackend, fake: FakeSadTalker, avatar: Path, tmp_path: Path, rate: int
) -> None:
    for seconds in (1.0, 2.37, 0.2, 0.9999):
        audio = _wav(tmp_path / f"speech-{seconds}.wav", seconds, rate)
        samples = soundfile.info(str(audio)).frames
        frames = _render(backend, avatar, audio, tmp_path / "work")
        assert len(frames) == math.ceil(samples * 48_000 / rate / 1600), seconds
        made = fake.calls("get_data")[-1]["num_frames"]  # SadTalker's 25 fps frames: whole 40 ms only
        assert made == int(math.ceil(samples * 16_000 / rate) / 640)
        # Each of SadTalker's frames is shown (30 fps is the denser timeline) and past its end the last repeats.
        assert len({id(frame) for frame in frames}) == made


def test_settings_reach_sadtalker(fake: FakeSadTalker, avatar: Path, tmp_path: Path) -> None:
    config = fake.config(size=512, preprocess="full", still=False, enhancer="gfpgan", batch_size=3, pose_style=7,
                         expression_scale=1.5)  # fmt: skip
    with SadTalkerBackend(config) as backend:
        frames = _render(backend, avatar, _wav(tmp_path / "a.wav", 0.5), tmp_path / "work")
    assert frames[0].shape == (90, 120, 3)  # a full mode pastes the face back into the whole image
    (crop,) = fake.calls("CropAndExtract.generate")
    assert (crop["crop_or_resize"], crop["pic_size"], crop["source_image_flag"]) == ("full", 512, True)
    assert fake.calls("get_data")[0]["still"] is False
    assert fake.calls("Audio2Coeff.generate")[0]["pose_style"] == 7
    (render,) = fake.calls("get_facerender_data")
    assert {key: render[key] for key in ("batch_size", "expression_scale", "still_mode", "preprocess", "size")} == {
        "batch_size": 3, "expression_scale": 1.5, "still_mode": False, "preprocess": "full", "size": 512}  # fmt: skip
    (animate,) = fake.calls("AnimateFromCoeff.generate")
    assert (animate["enhancer"], animate["img_size"], animate["preprocess"]) == ("gfpgan", 512, "full")
    init = [call for call in fake.builds() if call["model"] == "AnimateFromCoeff"]
    assert len(init) == 1

    with SadTalkerBackend(fake.config(size=512, still=True)) as backend:
        frames = _render(backend, avatar, _wav(tmp_path / "a.wav", 0.5), tmp_path / "work")
    assert frames[0].shape == (384, 512, 3)  # crop: size wide, the face box's aspect
    assert fake.calls("get_data")[-1]["still"] is True
    assert fake.calls("get_facerender_data")[-1]["still_mode"] is True


def test_sadtalker_gets_a_copy_of_the_image(backend: SadTalkerBackend, fake: FakeSadTalker, tmp_path: Path) -> None:
    original = tmp_path / "uploads" / "Avatar.PNG"  # upstream reads anything not .png/.jpg/.jpeg as a video
    original.parent.mkdir()
    pixels = np.random.default_rng(7).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(original, format="PNG")
    before, stat = original.read_bytes(), original.stat()
    _render(backend, original, _wav(tmp_path / "a.wav", 0.4), tmp_path / "work")
    (crop,) = fake.calls("CropAndExtract.generate")
    received = Path(crop["input_path"])
    assert received != original and received.suffix == ".png"
    assert (tmp_path / "work") in received.parents
    assert crop["input_sha256"] == hashlib.sha256(before).hexdigest()
    assert original.read_bytes() == before and original.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(path.name for path in original.parent.iterdir()) == ["Avatar.PNG"]


def test_no_face_is_avatar_no_face_and_the_host_carries_on(
    backend: SadTalkerBackend, fake: FakeSadTalker, avatar: Path, tmp_path: Path
) -> None:
    blank = tmp_path / "wall.png"
    Image.new("RGB", (80, 80), (200, 180, 160)).save(blank)
    audio = _wav(tmp_path / "a.wav", 0.5)
    with pytest.raises(CodedError) as caught:
        _render(backend, blank, audio, tmp_path / "work")
    assert caught.value.code == "avatar-no-face"
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not a picture")
    with pytest.raises(CodedError) as caught:
        _render(backend, not_an_image, audio, tmp_path / "work")
    assert caught.value.code == "sadtalker-failed"
    assert "UnidentifiedImageError" in caught.value.message
    pid = backend.pid
    assert len(_render(backend, avatar, audio, tmp_path / "work")) == 15
    assert backend.pid == pid and len(fake.builds()) == 3  # the same host, models not rebuilt


def test_no_face_wordings_map_to_avatar_no_face() -> None:
    assert sadtalker_host.classify(AttributeError("No face is detected"), "render").code == "avatar-no-face"
    raised_str = TypeError("exceptions must derive from BaseException")
    assert sadtalker_host.classify(raised_str, "crop").code == "avatar-no-face"
    assert sadtalker_host.classify(raised_str, "render").code == "sadtalker-failed"
    assert sadtalker_host.classify(RuntimeError("CUDA out of memory"), "render").code == "sadtalker-failed"


def test_missing_install_is_sadtalker_unavailable(fake: FakeSadTalker, tmp_path: Path) -> None:
    def refusal(**changes: Any) -> str:
        with pytest.raises(CodedError) as caught:
            SadTalkerBackend(fake.config(**changes)).start()
        assert caught.value.code == "sadtalker-unavailable"
        assert "lipsync.sadtalker" in caught.value.message  # it says how to configure it
        return caught.value.message

    assert "lipsync.sadtalker.root is not set" in refusal(root=None)
    assert "lipsync.sadtalker.python is not set" in refusal(python=None)
    assert "cannot be run" in refusal(python=tmp_path / "no-such-python")
    (tmp_path / "empty").mkdir()
    assert "src/utils/preprocess.py is missing" in refusal(root=tmp_path / "empty")
    assert "SadTalker_V0.0.2_512.safetensors" in refusal(checkpoint_dir=tmp_path / "empty", size=512)
    (fake.root / "gfpgan" / "weights" / "GFPGANv1.4.pth").unlink()
    assert "GFPGANv1.4.pth" in refusal(enhancer="gfpgan")
    assert "CUDA" in refusal(device="cuda")  # the host starts, and its models fail to load
    assert fake.builds() == []


def test_host_killed_mid_render_is_crashed_and_the_next_render_recovers(
    backend: SadTalkerBackend, fake: FakeSadTalker, avatar: Path, tmp_path: Path
) -> None:
    audio = _wav(tmp_path / "a.wav", 0.5)
    backend.start()
    first = backend.pid
    assert first is not None
    fake.slow(30)
    killer = threading.Thread(target=lambda: os.kill(fake.sleeping_pid(), signal.SIGKILL))
    killer.start()
    with pytest.raises(CodedError) as caught:
        _render(backend, avatar, audio, tmp_path / "work")
    killer.join()
    assert caught.value.code == "sadtalker-crashed"
    assert "SIGKILL" in caught.value.message
    assert _reaped(first)
    fake.slow(None)
    assert len(_render(backend, avatar, audio, tmp_path / "work")) == 15
    assert backend.pid not in (None, first)
    assert len(fake.builds()) == 6  # started again, models and all


def test_a_render_past_timeout_is_sadtalker_timeout(fake: FakeSadTalker, avatar: Path, tmp_path: Path) -> None:
    audio = _wav(tmp_path / "a.wav", 0.5)
    with SadTalkerBackend(fake.config(timeout_s=1.0)) as backend:
        backend.start()
        first = backend.pid
        assert first is not None
        fake.slow(30)
        started = time.monotonic()
        with pytest.raises(CodedError) as caught:
            _render(backend, avatar, audio, tmp_path / "work")
        assert caught.value.code == "sadtalker-timeout"
        assert time.monotonic() - started < 5
        assert _reaped(first)
        fake.slow(None)
        assert len(_render(backend, avatar, audio, tmp_path / "work")) == 15
        assert backend.pid != first


def test_close_and_garbage_collection_leave_no_process(fake: FakeSadTalker) -> None:
    backend = SadTalkerBackend(fake.config())
    backend.start()
    pid = backend.pid
    assert pid is not None
    backend.close()
    assert _reaped(pid) and backend.pid is None
    dropped = SadTalkerBackend(fake.config())
    dropped.start()
    pid = dropped.pid
    assert pid is not None
    del dropped
    gc.collect()
    assert _reaped(pid)


def test_concurrent_renders_run_one_at_a_time(
    backend: SadTalkerBackend, fake: FakeSadTalker, avatar: Path, tmp_path: Path
) -> None:
    counts: dict[int, int] = {}

    def render(n: int) -> None:
        audio = _wav(tmp_path / f"a{n}.wav", 0.2 * (n + 1))
        counts[n] = len(_render(backend, avatar, audio, tmp_path / f"work{n}"))

    threads = [threading.Thread(target=render, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == {0: 6, 1: 12, 2: 18}
    assert len(fake.builds()) == 3
