"""A turn's speech becomes a plan for every frame: its mouth shape, head pose and blink. Pure: no clock, no I/O.

Audio is the master clock: frame k covers the 1600 samples from k * 1600 of the turn's 48 kHz timeline. Speech
arrives in chunks (the tts worker sends 200 ms slots), with phoneme spans when the voice gives them; a frame is
planned once the audio it shows has arrived, so the first frame can go out as soon as the first chunk is in.

The mouth shape comes from the phonemes (procs/lipsync/visemes.py), its opening scaled by how loud the frame is
(a loud vowel opens the jaw further than a murmured one; a bilabial stays shut at any loudness), and limited to
OPENING_STEP per frame against the frame before, starting from the avatar's own mouth, so the first frame never
pops. The head follows the idle loop's motion (the same frame number gives the same pose) plus a small nod with
the voice's emphasis, and blinks go on as in the idle loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from procs.lipsync.motion import Pose, blink, speaking_pose
from procs.lipsync.visemes import (
    FRAME_SAMPLES,
    OPENING_STEP,
    MouthShape,
    Span,
    frame_count,
    mouth_track,
)

LOUDNESS_FLOOR = 0.3  # the opening kept by the quietest voiced frame, as a fraction of the viseme's
LOUD_RANGE_DB = 24.0  # from this far under the turn's loudest frame up to it, openings scale up to full
PEAK_START_DB = -20.0  # the loudest frame assumed before any speech is heard (typical TTS level)
EMPHASIS_SMOOTHING = 0.3
LOUDNESS_SMOOTHING = 0.5  # per frame: the loudness scaling follows the voice without flicker
LOOKAHEAD_FRAMES = 4  # the track is worked out this far past the frames planned, so a closure ramps in time
TAIL_FRAMES = 3  # after the speech: frames that ease the mouth back to the avatar's own


@dataclass(frozen=True, slots=True)
class FramePlan:
    index: int  # frame number on the turn's timeline: its tag is index * FRAME_SAMPLES
    shape: MouthShape | None  # None: the avatar's own mouth (after the speech)
    pose: Pose
    blink: float

    @property
    def sample_index(self) -> int:
        return self.index * FRAME_SAMPLES


def frame_loudness_db(pcm: npt.NDArray[np.int16]) -> list[float]:
    """RMS level (dBFS) of each whole or partial frame of `pcm`, which starts at a frame boundary."""
    levels = []
    for start in range(0, len(pcm), FRAME_SAMPLES):
        frame = pcm[start : start + FRAME_SAMPLES].astype(np.float64) / 32768.0
        rms = math.sqrt(float(np.mean(frame * frame))) if len(frame) else 0.0
        levels.append(20.0 * math.log10(max(rms, 1e-6)))
    return levels


class SpeechPlan:
    """The frames of one turn, planned as its speech arrives."""

    def __init__(self, *, face_height: float, loop_start: int, rest_opening: float | None) -> None:
        """`rest_opening`: the avatar's own mouth as an opening, where a live stream starts from (the idle loop
        shows it); None for a video that starts with the speech (no frame before the first to pop from)."""
        self._face_height = face_height
        self._loop_start = loop_start  # the idle loop's frame number when the turn began
        self._rest_opening = rest_opening  # the avatar's own mouth, as a MouthShape opening
        self._spans: list[Span] = []
        self._audio = np.zeros(0, np.int16)
        self._next = 0
        self._previous: float | None = rest_opening
        self._peak_db = PEAK_START_DB
        self._emphasis = 0.0
        self._loud = 1.0
        self._tail_done = False

    @property
    def samples(self) -> int:
        return len(self._audio)

    @property
    def next_frame(self) -> int:
        return self._next

    def add_spans(self, spans: Sequence[Span]) -> None:
        self._spans.extend(spans)

    def add_audio(self, first_sample: int, pcm: npt.NDArray[np.int16]) -> None:
        """Speech at `first_sample` of the timeline; a gap before it is silence, an overlap is overwritten."""
        end = first_sample + len(pcm)
        if end > len(self._audio):
            grown = np.zeros(end, np.int16)
            grown[: len(self._audio)] = self._audio
            self._audio = grown
        self._audio[first_sample:end] = pcm

    def skip_to(self, frame: int) -> int:
        """Give up on frames before `frame` (they are late); returns how many were skipped."""
        skipped = max(0, frame - self._next)
        self._next = max(self._next, frame)
        return skipped

    def ready(self, *, final: bool = False) -> list[FramePlan]:
        """The frames whose audio has all arrived (all of them when `final`, then the tail)."""
        whole = frame_count(len(self._audio)) if final else len(self._audio) // FRAME_SAMPLES
        if whole <= self._next:
            return self._tail() if final else []
        first = self._next
        shapes = mouth_track(self._spans, first, whole - first + (0 if final else LOOKAHEAD_FRAMES))[: whole - first]
        pcm = self._audio[first * FRAME_SAMPLES : whole * FRAME_SAMPLES]
        plans = [self._plan(first + k, shape, level) for k, (shape, level) in
                 enumerate(zip(shapes, frame_loudness_db(pcm), strict=False))]  # fmt: skip
        self._next = whole
        return plans + (self._tail() if final else [])

    def _plan(self, index: int, shape: MouthShape, level_db: float) -> FramePlan:
        self._peak_db = max(self._peak_db, level_db)
        loud = min(1.0, max(0.0, (level_db - (self._peak_db - LOUD_RANGE_DB)) / LOUD_RANGE_DB))
        self._loud += LOUDNESS_SMOOTHING * (loud - self._loud)
        opening = shape.opening * (LOUDNESS_FLOOR + (1.0 - LOUDNESS_FLOOR) * self._loud)
        if self._previous is not None:  # as the track holds to it, across chunks and the loudness scaling too
            opening = min(self._previous + OPENING_STEP, max(self._previous - OPENING_STEP, opening))
        self._previous = opening
        self._emphasis += EMPHASIS_SMOOTHING * (loud * min(1.0, opening * 2) - self._emphasis)
        loop_frame = self._loop_start + index
        pose = speaking_pose(loop_frame, self._face_height, self._emphasis)
        return FramePlan(index, MouthShape(opening, shape.width, shape.teeth, shape.tongue), pose, blink(loop_frame))

    def _tail(self) -> list[FramePlan]:
        """Ease back to the avatar's own mouth, then hand over to it (shape None)."""
        if self._tail_done:
            return []
        self._tail_done = True
        plans = []
        start = self._previous if self._previous is not None else 0.0
        rest = self._rest_opening if self._rest_opening is not None else start
        for k in range(TAIL_FRAMES):
            index = self._next + k
            opening = start + (rest - start) * (k + 1) / TAIL_FRAMES
            self._emphasis *= 1 - EMPHASIS_SMOOTHING
            loop_frame = self._loop_start + index
            shape = MouthShape(opening) if k < TAIL_FRAMES - 1 else None
            plans.append(FramePlan(index, shape, speaking_pose(loop_frame, self._face_height, self._emphasis),
                                   blink(loop_frame)))  # fmt: skip
        self._next += TAIL_FRAMES
        return plans
