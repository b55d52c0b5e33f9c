"""The idle (listening) loop: LOOP_FRAMES frames of the avatar breathing, drifting and blinking with its own
mouth, rendered once when the avatar is prepared and replayed between turns (nothing is rendered while the
appliance just listens). Kept beside the avatar as JPEG frames in one file (`idle.jpgs`, offsets in
`idle.idx.npy`), which is also what a browser's video fallback sends as they are."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from procs.lipsync.motion import LOOP_FRAMES, blink, idle_pose
from procs.lipsync.render import Renderer

FRAMES_FILE = "idle.jpgs"
INDEX_FILE = "idle.idx.npy"
JPEG_QUALITY = 90


class IdleLoop:
    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    def jpeg(self, frame: int) -> bytes:
        """The loop's frame for any frame number (it wraps)."""
        return self.frames[frame % len(self.frames)]

    def rgb(self, frame: int) -> npt.NDArray[np.uint8]:
        bgr = cv2.imdecode(np.frombuffer(self.jpeg(frame), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError("an idle frame does not decode")
        return np.ascontiguousarray(bgr[:, :, ::-1]).astype(np.uint8, copy=False)

    @classmethod
    def render(cls, renderer: Renderer) -> IdleLoop:
        width, height = renderer.size
        out = np.empty((height, width, 3), np.uint8)
        frames = []
        for k in range(LOOP_FRAMES):
            renderer.render(out, None, idle_pose(k, renderer.rig.face_height), blink(k))
            ok, jpeg = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise ValueError("JPEG encoding failed")
            frames.append(jpeg.tobytes())
        return cls(frames)

    def save(self, folder: Path) -> None:
        offsets = np.cumsum([0, *(len(f) for f in self.frames)]).astype(np.int64)
        temp_frames, temp_index = folder / f".{FRAMES_FILE}.{os.getpid()}", folder / f".{os.getpid()}.{INDEX_FILE}"
        temp_frames.write_bytes(b"".join(self.frames))
        np.save(temp_index, offsets)
        os.replace(temp_frames, folder / FRAMES_FILE)
        os.replace(temp_index, folder / INDEX_FILE)

    @classmethod
    def load(cls, folder: Path) -> IdleLoop | None:
        try:
            data = (folder / FRAMES_FILE).read_bytes()
            offsets = np.load(folder / INDEX_FILE, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if len(offsets) != LOOP_FRAMES + 1 or int(offsets[-1]) != len(data):
            return None
        return cls([data[int(a) : int(b)] for a, b in itertools.pairwise(offsets)])
