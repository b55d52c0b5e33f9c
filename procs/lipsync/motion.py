"""The life in a still face: blinks, a slow drift of the head, breathing. Pure functions of the frame number.

Everything repeats every LOOP_FRAMES frames, so the idle loop rendered once per avatar (procs/lipsync/rig.py)
joins up seamlessly, and a speaking frame with the same number has the same head pose as the idle frame it
replaces: going from listening to speaking and back never makes the head jump. While speaking the head also
nods a little with the voice's emphasis (`speaking_pose`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FPS = 30
LOOP_FRAMES = 6 * FPS  # the idle loop: 6 s
# Blinks inside one loop (frame numbers) and the eyelid's closure over a blink's frames: about 170 ms.
BLINK_STARTS = (38, 131)
BLINK_PROFILE = (0.35, 0.85, 1.0, 0.8, 0.45, 0.15)
# Head drift: (loop harmonic, amplitude) for rotation (degrees) and translation (fractions of the face height).
ROLL_WAVES = ((1, 0.55), (2, 0.25), (3, 0.12))
SWAY_WAVES = ((1, 0.004), (3, 0.002))
NOD_WAVES = ((2, 0.003), (5, 0.0015))
BREATH_HARMONIC = 2  # a breath every 3 s
BREATH_LIFT = 0.0035  # of the face height
BREATH_SCALE = 0.002
SPEECH_NOD = 0.006  # extra nod (fraction of face height) at full emphasis


@dataclass(frozen=True, slots=True)
class Pose:
    """A small rigid motion of the head about the neck: radians, pixels, and a scale around 1."""

    roll: float = 0.0
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0


def _wave(frame: int, waves: tuple[tuple[int, float], ...], phase: float) -> float:
    return sum(amp * math.sin(2 * math.pi * k * frame / LOOP_FRAMES + phase * k) for k, amp in waves)


def idle_pose(frame: int, face_height: float) -> Pose:
    """The head's pose at a frame of the loop (any frame number; it wraps)."""
    frame %= LOOP_FRAMES
    breath = 0.5 - 0.5 * math.cos(2 * math.pi * BREATH_HARMONIC * frame / LOOP_FRAMES)
    return Pose(
        roll=math.radians(_wave(frame, ROLL_WAVES, 0.3)),
        dx=face_height * _wave(frame, SWAY_WAVES, 1.1),
        dy=face_height * (_wave(frame, NOD_WAVES, 2.0) - BREATH_LIFT * breath),
        scale=1.0 + BREATH_SCALE * breath,
    )


def speaking_pose(frame: int, face_height: float, emphasis: float) -> Pose:
    """The idle pose plus a nod that follows the voice (`emphasis` 0..1, already smoothed by the caller)."""
    pose = idle_pose(frame, face_height)
    return Pose(pose.roll, pose.dx, pose.dy + SPEECH_NOD * face_height * emphasis, pose.scale)


def blink(frame: int) -> float:
    """How closed the eyelids are at a frame: 0 open, 1 shut."""
    frame %= LOOP_FRAMES
    for start in BLINK_STARTS:
        if 0 <= frame - start < len(BLINK_PROFILE):
            return BLINK_PROFILE[frame - start]
    return 0.0
