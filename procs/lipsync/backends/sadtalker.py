"""SadTalker (OpenTalker/SadTalker): a talking-head video from one avatar image and a speech WAV.

SadTalker is installed outside Mynah, with its own python. This backend starts procs/lipsync/sadtalker_host.py
under that python, in SadTalker's checkout, once: the host loads SadTalker's models and keeps them warm, and each
render is one JSON line to it and progress lines and a video path back (the protocol is in the host's docstring).
SadTalker writes a 25 fps MP4 with one frame per whole 40 ms of audio; render() reads it back and yields frames
on Mynah's 30 fps timeline, exactly ceil(duration * 30) of them, padded with the last frame where SadTalker's
video is short.

Failures, by code: `sadtalker-unavailable` (not configured, a file missing, or the models would not load),
`avatar-no-face`, `sadtalker-failed` (SadTalker raised), `sadtalker-timeout` (the render outlived timeout_s:
the host is killed), `sadtalker-crashed` (the host died mid-render). A killed or dead host is started again by
the next render.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import struct
import subprocess
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
import numpy.typing as npt

from appliance.config import SadTalkerConfig
from ipc.errors import CodedError

log = logging.getLogger(__name__)

HOST_SCRIPT = Path(__file__).resolve().parents[1] / "sadtalker_host.py"
OUTPUT_FPS, SADTALKER_FPS = 30, 25
# The modules the host drives and the configs init_path points them at, relative to SadTalker's root.
_SOURCES = (
    "src/utils/init_path.py", "src/utils/preprocess.py", "src/test_audio2coeff.py", "src/facerender/animate.py",
    "src/generate_batch.py", "src/generate_facerender_batch.py", "src/config/auido2pose.yaml",
    "src/config/auido2exp.yaml", "src/config/similarity_Lm3D_all.mat",
)  # fmt: skip
# facexlib's face detector and landmark model: SadTalker reads them from gfpgan/weights under its working
# directory and would try to download them when absent.
_FACE_WEIGHTS = ("gfpgan/weights/alignment_WFLW_4HG.pth", "gfpgan/weights/detection_Resnet50_Final.pth")
_ENHANCER_WEIGHTS = {"gfpgan": "GFPGANv1.4.pth", "RestoreFormer": "RestoreFormer.pth"}
_HOW = (
    "set lipsync.sadtalker.root (an OpenTalker/SadTalker checkout), lipsync.sadtalker.python (the python of its "
    "environment) and lipsync.sadtalker.checkpoint_dir, and fetch its weights with its scripts/download_models.sh"
)
_TAIL_LINES = 20
_GRACE_S = 5.0
Frame = npt.NDArray[np.uint8]
Progress = Callable[[float, str], None]


class SadTalkerError(CodedError):
    """A SadTalker render or start-up failed; the codes are listed in the module docstring."""


def frames_25_to_30_indices(n25: int, n30: int) -> list[int]:
    """For each 30 fps frame k, the 25 fps frame nearest its time k/30 (a tie, every sixth frame, takes the
    earlier one), clamped to the last of the n25 frames: padding where the 25 fps video is short."""
    if n25 < 1:
        raise ValueError("there is no 25 fps frame to take")
    # round(a / b) with halves rounded down is (2a + b - 1) // 2b; here a = 25k, b = 30.
    step, span = 2 * SADTALKER_FPS, 2 * OUTPUT_FPS
    return [min((step * k + OUTPUT_FPS - 1) // span, n25 - 1) for k in range(n30)]


def wav_length(audio_wav: Path) -> tuple[int, int]:
    """(sample frames, sample rate) from a RIFF/WAVE file's fmt and data chunks, any sample format. A data size of
    0 or 0xFFFFFFFF (a header written before the length was known) means: the rest of the file."""
    try:
        with audio_wav.open("rb") as wav:
            riff = wav.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:] != b"WAVE":
                raise ValueError("not a RIFF/WAVE file")
            rate = block = 0
            while header := wav.read(8):
                if len(header) < 8:
                    break
                name, size = header[:4], struct.unpack("<I", header[4:])[0]
                if name == b"fmt ":
                    fmt = wav.read(size + size % 2)
                    rate, block = struct.unpack("<I", fmt[4:8])[0], struct.unpack("<H", fmt[12:14])[0]
                elif name == b"data":
                    if not rate or not block:
                        raise ValueError("the data chunk comes before a usable fmt chunk")
                    if size in (0, 0xFFFFFFFF):
                        size = os.fstat(wav.fileno()).st_size - wav.tell()
                    return size // block, rate
                else:
                    wav.seek(size + size % 2, os.SEEK_CUR)  # chunks are padded to an even length
            raise ValueError("no data chunk")
    except (OSError, ValueError, struct.error) as err:
        raise SadTalkerError("sadtalker-failed", f"cannot read the WAV {audio_wav}: {err}") from err


def frame_count_30(audio_wav: Path) -> int:
    """ceil(duration * 30) from the WAV header: the 30 fps frames that cover it (1600 samples each at 48 kHz)."""
    frames, rate = wav_length(audio_wav)
    return -(-frames * OUTPUT_FPS // rate)


def missing(config: SadTalkerConfig) -> list[str]:
    """What stops SadTalker from starting, as phrases for people; empty when it can start."""
    if config.root is None or config.python is None:
        return [f"lipsync.sadtalker.{name} is not set" for name in ("root", "python") if getattr(config, name) is None]
    root = config.root
    if not root.is_dir():
        return [f"lipsync.sadtalker.root {root} is not a folder"]
    absent = [] if shutil.which(str(config.python)) else [f"lipsync.sadtalker.python {config.python} cannot be run"]
    checkpoints = config.checkpoint_dir or root / "checkpoints"
    full = "full" in config.preprocess
    files = [root / name for name in (*_SOURCES, *_FACE_WEIGHTS)]
    files.append(root / "src/config" / ("facerender_still.yaml" if full else "facerender.yaml"))
    files.append(checkpoints / f"SadTalker_V0.0.2_{config.size}.safetensors")
    files.append(checkpoints / ("mapping_00109-model.pth.tar" if full else "mapping_00229-model.pth.tar"))
    absent += [f"{path} is missing" for path in files if not path.is_file()]
    if config.enhancer:  # face_enhancer.py looks in gfpgan/weights, then checkpoints, both under the root
        weights = _ENHANCER_WEIGHTS[config.enhancer]
        if not any((root / folder / weights).is_file() for folder in ("gfpgan/weights", "checkpoints")):
            absent.append(f"{root / 'gfpgan/weights' / weights} is missing (the {config.enhancer} enhancer)")
        if not (root / "gfpgan/weights/parsing_parsenet.pth").is_file():
            absent.append(f"{root / 'gfpgan/weights/parsing_parsenet.pth'} is missing (the enhancer's face parser)")
    return absent


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the host's whole process group (SadTalker runs ffmpeg children) and reap it: no zombie."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # end of stream: the host is gone


def _read_stderr(stream: IO[str], tail: deque[str]) -> None:
    for line in stream:
        tail.append(line.rstrip())
        log.debug("sadtalker: %s", line.rstrip())


class _Host:
    """One running sadtalker_host.py and the threads that read its output."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # SadTalker's prints reach the log as they happen
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                                     start_new_session=True)  # fmt: skip
        # Popen with PIPE always sets these.
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._threads = [
            threading.Thread(target=_read_lines, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=_read_stderr, args=(self.proc.stderr, self.tail), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        # Killed with its group if the backend is dropped without close(), or at interpreter exit.
        self._finalizer = weakref.finalize(self, _kill_group, self.proc)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def next_message(self, deadline: float) -> dict[str, Any] | None:
        """The next JSON line; None when the host has exited. TimeoutError once the deadline passes."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        try:
            line = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError from None
        if line is None:
            return None
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            message = {"protocol-error": line.strip()[:200]}
        return message

    def send(self, message: dict[str, Any]) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def exit_reason(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=_GRACE_S)
        status = self.proc.returncode
        how = (
            f"was killed by {signal.Signals(-status).name}" if status is not None and status < 0 else f"exited {status}"
        )
        for thread in self._threads:
            thread.join(timeout=1.0)
        return f"{how}: {self.describe_tail()}"

    def describe_tail(self) -> str:
        return "\n".join(self.tail)[-2000:] or "(no output)"

    def kill(self) -> None:
        self._finalizer()  # kills once; later calls do nothing
        for thread in self._threads:
            thread.join(timeout=1.0)

    def close(self) -> None:
        """Ask it to stop (end of its input); SIGKILL its group if it has not after a grace period."""
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=_GRACE_S)
        self.kill()


class SadTalkerBackend:
    """SadTalker with its models loaded once. One render runs at a time; others wait for it."""

    name = "sadtalker"

    def __init__(self, config: SadTalkerConfig, *, start_timeout_s: float = 600.0) -> None:
        self._config = config
        self._start_timeout_s = start_timeout_s
        self._lock = threading.Lock()
        self._host: _Host | None = None

    def __enter__(self) -> SadTalkerBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The host's process id while it runs."""
        host = self._host
        return host.proc.pid if host is not None and host.alive() else None

    def start(self) -> None:
        """Start the host and wait until its models are loaded (already running: nothing to do)."""
        with self._lock:
            self._ensure_host()

    def close(self) -> None:
        with self._lock:
            host, self._host = self._host, None
            if host is not None:
                host.close()

    def _ensure_host(self) -> _Host:
        if self._host is not None and self._host.alive():
            return self._host
        if self._host is not None:
            self._host.kill()
            self._host = None
        config = self._config
        problems = missing(config)
        if problems:
            raise SadTalkerError("sadtalker-unavailable", f"SadTalker cannot start: {'; '.join(problems)}. To use "
                                 f"it, {_HOW}")  # fmt: skip
        assert config.root is not None  # missing() said so
        assert config.python is not None
        argv = [str(config.python), str(HOST_SCRIPT), "--root", str(config.root),
                "--checkpoint-dir", str(config.checkpoint_dir or config.root / "checkpoints"),
                "--size", str(config.size), "--preprocess", config.preprocess, "--device", config.device]  # fmt: skip
        started = time.monotonic()
        try:
            host = _Host(argv, config.root)
        except OSError as err:
            raise SadTalkerError("sadtalker-unavailable", f"cannot run {config.python}: {err}. {_HOW}") from err
        try:
            message = host.next_message(started + self._start_timeout_s)
        except TimeoutError:
            host.kill()
            raise SadTalkerError("sadtalker-unavailable", f"SadTalker did not load its models within "
                                 f"{self._start_timeout_s:.0f} s: {host.describe_tail()}") from None  # fmt: skip
        if message is None or "ready" not in message:
            reason = host.exit_reason()  # the tail of its stderr says why, when it died without a word
            host.kill()
            detail = (message or {}).get("error", {}).get("message") or f"its host {reason}"
            hint = "check lipsync.sadtalker.device and that SadTalker's own inference.py runs in that python"
            raise SadTalkerError("sadtalker-unavailable", f"SadTalker did not start: {detail}. {hint}")
        log.info("SadTalker ready in %.1f s: %s", time.monotonic() - started, message["ready"])
        self._host = host
        return host

    def render(self, image: Path, audio_wav: Path, work_dir: Path, progress: Progress) -> Iterator[Frame]:
        """The avatar speaking the audio: ceil(duration * 30) RGB frames (HxWx3 uint8, read-only) at 30 fps.

        SadTalker runs now (progress(fraction, stage) is called from this thread as it goes); the frames are
        decoded from its video as they are taken, and its working files in work_dir are removed after the last.
        """
        n30 = frame_count_30(audio_wav)
        if n30 == 0:
            return iter(())
        if not image.is_file():
            raise SadTalkerError("sadtalker-failed", f"the avatar image {image} does not exist")
        work_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            host = self._ensure_host()
            request_id = uuid.uuid4().hex[:12]  # names its folder in work_dir, shared by any backend
            video = self._request(host, request_id, image, audio_wav, work_dir, progress)
        scratch = work_dir / f"sadtalker-{request_id}"
        try:
            n25 = _count_frames(video)
        except SadTalkerError:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return _frames_30(video, frames_25_to_30_indices(n25, n30), scratch)

    def _request(
        self, host: _Host, request_id: str, image: Path, audio: Path, work_dir: Path, progress: Progress
    ) -> Path:
        config = self._config
        request = {"id": request_id, "image": str(image.resolve()), "audio": str(audio.resolve()),
                   "result_dir": str(work_dir.resolve()), "size": config.size, "preprocess": config.preprocess,
                   "still": config.still, "enhancer": config.enhancer, "batch_size": config.batch_size,
                   "pose_style": config.pose_style, "expression_scale": config.expression_scale}  # fmt: skip
        deadline = time.monotonic() + config.timeout_s
        settled = False  # the host is between requests again (a result or an error line came back)
        try:
            if not host.send(request):
                raise SadTalkerError("sadtalker-crashed", f"SadTalker's host {host.exit_reason()}")
            while True:
                try:
                    message = host.next_message(deadline)
                except TimeoutError:
                    raise SadTalkerError("sadtalker-timeout", f"SadTalker did not finish within {config.timeout_s:g} "
                                         "s; it was stopped and starts again on the next render") from None  # fmt: skip
                if message is None:
                    raise SadTalkerError("sadtalker-crashed", f"SadTalker's host {host.exit_reason()}")
                if message.get("id") != request_id:
                    raise SadTalkerError("sadtalker-crashed", f"SadTalker's host broke its protocol: {message}")
                if "progress" in message:
                    progress(float(message["progress"]), str(message.get("stage", "")))
                    continue
                settled = True
                if "video" in message:
                    return Path(message["video"])
                error = message.get("error") or {}
                raise SadTalkerError(str(error.get("code", "sadtalker-failed")), str(error.get("message", message)))
        finally:
            if not settled:  # timed out, died, or a progress callback raised: its state is unknown
                host.kill()
                self._host = None


def _count_frames(video: Path) -> int:
    """The video's frames, counted from its packets (nothing is decoded)."""
    try:
        with av.open(str(video)) as container:
            count = sum(1 for packet in container.demux(video=0) if packet.size)
    except (av.error.FFmpegError, OSError) as err:
        raise SadTalkerError("sadtalker-failed", f"cannot read SadTalker's video {video}: {err}") from err
    if count == 0:
        raise SadTalkerError("sadtalker-failed", f"SadTalker's video {video} has no frames")
    return count


def _frames_30(video: Path, indices: list[int], scratch: Path) -> Iterator[Frame]:
    """The 25 fps frames at `indices` (non-decreasing), decoding each once; a repeated frame is the same array."""
    try:
        with av.open(str(video)) as container:
            decoded = container.decode(video=0)
            position, current = -1, None
            for index in indices:
                while position < index:
                    frame = next(decoded, None)
                    if frame is None:  # fewer frames than packets: hold the last
                        break
                    current = frame.to_ndarray(format="rgb24").astype(np.uint8, copy=False)
                    current.flags.writeable = False
                    position += 1
                if current is None:
                    raise SadTalkerError("sadtalker-failed", f"SadTalker's video {video} decoded to no frames")
                yield current
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
