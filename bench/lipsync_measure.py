"""Judging rendered lips the way the issue asks: re-run the face-mesh model on every output frame and compare the
mouth it sees with the sound. Shared by the tests (tests/component/test_lipsync_render.py) and bench/lipsync.py.

- opening: the gap between the inner lips' midpoints (mesh points 13 and 14) in each frame, above the model's
  own reading of this avatar with its lips shut (rendered at opening 0 and measured the same way: the model
  never reads a shut smiling mouth as exactly 0 px; on the default avatar it reads about 7 px of a 91 px mouth);
- loudness: each frame's 1600 samples' RMS, to the power 0.6 (Stevens' law for loudness);
- sync: Pearson r between the two, at lags of -2..2 frames, and the lag where it is best;
- closure: for each m, b or p, the frames that show any of its sound; shut when the least opening among them
  is under 20% of the utterance's 90th-percentile opening;
- stability: the largest frame-to-frame jump of opening, as a share of its range (the model's reading of the
  mouth drawn wide open, less its reading of it shut).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from procs.lipsync.face import FaceFinder, FaceMesh
from procs.lipsync.visemes import FRAME_SAMPLES, Span, Viseme, viseme_of

BILABIAL_SHUT = 0.2
MAX_LAG = 2


@dataclass(frozen=True)
class SyncReport:
    r: float  # correlation at the best lag
    r_at_zero: float
    best_lag: int  # frames; positive: the mouth trails the sound
    bilabials: int
    shut: int
    max_jump: float  # of the opening's range, shut to wide open
    openings: list[float]

    @property
    def shut_share(self) -> float:
        return self.shut / self.bilabials if self.bilabials else 1.0


def measure_openings(frames: Sequence[npt.NDArray[np.uint8]], finder: FaceFinder, start: FaceMesh) -> list[float]:
    """The mesh model's inner-lip gap on each frame, tracking the face from `start` (the avatar's mesh)."""
    openings, mesh = [], start
    for frame in frames:
        mesh = finder.refine(frame, mesh)
        openings.append(mesh.opening)
    return openings


def loudness(pcm: npt.NDArray[np.int16], frames: int) -> npt.NDArray[np.float64]:
    """Each frame's loudness: its RMS to the power 0.6 (Stevens' power law: perceived loudness grows as the
    sound's intensity to the 0.3, i.e. its pressure to the 0.6), so a murmur is not lost next to a vowel."""
    levels = []
    for k in range(frames):
        chunk = pcm[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES].astype(np.float64) / 32768.0
        levels.append(math.sqrt(float(np.mean(chunk * chunk))) if len(chunk) else 0.0)
    return np.asarray(levels) ** 0.6


def _pearson(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def sync_report(
    openings: Sequence[float], floor: float, full: float, pcm: npt.NDArray[np.int16], spans: Sequence[Span]
) -> SyncReport:
    """`floor` and `full`: the model's readings of this avatar's mouth drawn shut and wide open."""
    opening = np.maximum(np.asarray(openings, np.float64) - floor, 0.0)
    loud = loudness(pcm, len(opening))
    by_lag = {}
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        if lag >= 0:
            by_lag[lag] = _pearson(opening[lag:], loud[: len(loud) - lag])
        else:
            by_lag[lag] = _pearson(opening[:lag], loud[-lag:])
    best = max(by_lag, key=lambda lag: by_lag[lag])
    p90 = float(np.percentile(opening, 90)) if len(opening) else 0.0
    bilabials = [s for s in spans if viseme_of(s.phoneme) is Viseme.LIPS_TOGETHER and s.end_sample > s.start_sample]
    shut = 0
    for span in bilabials:  # the frames that show any of its sound; the lips must shut in one of them
        first = min(len(opening) - 1, span.start_sample // FRAME_SAMPLES)
        last = min(len(opening) - 1, (span.end_sample - 1) // FRAME_SAMPLES)
        shut += bool(opening[first : last + 1].min() < BILABIAL_SHUT * p90)
    jump = float(np.abs(np.diff(opening)).max() / (full - floor)) if len(opening) > 1 else 0.0
    return SyncReport(by_lag[best], by_lag[0], best, len(bilabials), shut, jump, list(map(float, opening)))
