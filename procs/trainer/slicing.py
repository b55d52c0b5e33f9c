"""Cut a voice sample into 3-10 s training clips at its pauses. Pure numpy and deterministic.

How (the same idea as GPT-SoVITS's tools/slicer2.py, which the WebUI runs as `slice_audio.py ... -34 4000 300
10 500`, re-done here so that every clip lands inside GPT-SoVITS's 3-10 s window):
1. Frame RMS every 10 ms over a 30 ms window, in dB relative to the recording's peak sample. So the threshold
   (-34 dB, the WebUI's) means what GPT-SoVITS's absolute one means on a peak-normalised recording, whatever
   the microphone's gain. Frames below `floor_db` dBFS are silent whatever the peak, so room noise alone
   never becomes "speech".
2. Silent runs of at least `min_silence_s` (300 ms, the WebUI's) are pauses; shorter ones are part of speech.
3. A speech region longer than a clip may be (less the kept edges) is cut at its quietest frame first.
4. Greedily from the start: a clip runs from one piece of speech to the pause with the most silence among
   those that give a min..max clip, avoiding a cut that would strand a tail too short to be a clip. A piece
   that can reach no such pause joins the previous clip if that stays within max, and is dropped otherwise.
   A pause longer than `max_inner_pause_s` is never inside a clip (no clip carries seconds of dead air).
5. Each clip keeps up to `keep_silence_s` of its pauses at either edge, never more than half of a pause, so
   neighbouring clips never overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_S = 0.01  # the hop between RMS frames
WINDOW_FRAMES = 3  # each frame's RMS is taken over this many hops, centred on it


@dataclass(frozen=True, slots=True)
class ClipSpan:
    """One clip of the recording: samples [start, end) at `rate`."""

    start: int
    end: int
    rate: int
    speech_fraction: float = 1.0  # the share of its 10 ms frames above the silence threshold

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / self.rate

    def take(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return samples[self.start : self.end]


@dataclass(frozen=True, slots=True)
class PauseSettings:
    """What counts as a pause, and how much of one a clip keeps."""

    threshold_db: float = -34.0  # a frame this far below the recording's peak is silent (GPT-SoVITS WebUI: -34)
    floor_db: float = -60.0  # and so is any frame below this many dB full scale
    min_silence_s: float = 0.3  # a shorter silence is a gap inside speech (GPT-SoVITS WebUI: 300 ms)
    keep_silence_s: float = 0.15  # silence kept at each clip edge (at most half the pause)
    max_inner_pause_s: float = 2.0  # a longer pause always separates clips


@dataclass(frozen=True, slots=True)
class _Frames:
    """The recording seen as 10 ms frames."""

    n_samples: int
    hop: int
    rms_db: npt.NDArray[np.float64]
    silent: npt.NDArray[np.bool_]

    @property
    def count(self) -> int:
        return len(self.silent)

    def sample(self, frame: int) -> int:
        return min(self.n_samples, frame * self.hop)


def _frames(samples: npt.NDArray[np.float32], rate: int, pauses: PauseSettings) -> _Frames | None:
    """Frame RMS and the silent verdicts; None when the whole recording is silent."""
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {samples.shape}")
    x = samples.astype(np.float64)
    n = len(x)
    peak = float(np.max(np.abs(x))) if n else 0.0
    if peak <= 0.0:
        return None
    hop = max(1, round(rate * FRAME_S))
    count = math.ceil(n / hop)
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    centres = np.arange(count) * hop + hop // 2
    half = WINDOW_FRAMES * hop // 2
    lo = np.clip(centres - half, 0, n)
    hi = np.clip(centres + half + 1, 0, n)
    power = (energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)
    rms_db = 10.0 * np.log10(np.maximum(power, 1e-20))
    threshold = max(20.0 * math.log10(peak) + pauses.threshold_db, pauses.floor_db)
    silent = rms_db < threshold
    if bool(silent.all()):
        return None
    return _Frames(n, hop, rms_db, silent)


def _speech_regions(frames: _Frames, min_silence: int) -> list[tuple[int, int]]:
    """Speech as [start, end) frame spans; silences shorter than `min_silence` frames stay inside speech."""
    voiced = (~frames.silent).astype(np.int8)
    edges = np.diff(np.concatenate(([0], voiced, [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    regions: list[tuple[int, int]] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if regions and start - regions[-1][1] < min_silence:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    return regions


def _split_long(frames: _Frames, region: tuple[int, int], min_len: int, max_len: int) -> list[tuple[int, int]]:
    """Cut speech with no pause into pieces of at most `max_len` frames, each at the quietest frame in reach."""
    start, end = region
    pieces: list[tuple[int, int]] = []
    while end - start > max_len:
        lo = start + min_len
        hi = min(start + max_len, end - min_len)
        if hi < lo:  # max_len < 2 * min_len: keep the piece within max and let the remainder fall short
            hi = start + max_len
        cut = lo + int(np.argmin(frames.rms_db[lo : hi + 1]))
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


@dataclass(frozen=True, slots=True)
class _Pieces:
    """Speech pieces in order, with the silence (in frames) after each; 0 after a cut inside speech."""

    starts: list[int]
    ends: list[int]
    gap_after: list[int]  # the last piece's is the trailing silence
    lead: int  # silence before the first piece
    keep: int  # frames of silence a clip keeps at an edge

    def pad_left(self, i: int) -> int:
        before = self.lead if i == 0 else self.gap_after[i - 1] // 2
        return min(self.keep, before)

    def pad_right(self, j: int) -> int:
        after = self.gap_after[j] if j == len(self.ends) - 1 else self.gap_after[j] // 2
        return min(self.keep, after)


def _pieces(frames: _Frames, rate: int, pauses: PauseSettings, min_clip_s: float, max_clip_s: float) -> _Pieces:
    per_s = rate / frames.hop
    keep = round(pauses.keep_silence_s * per_s)
    regions = _speech_regions(frames, max(1, round(pauses.min_silence_s * per_s)))
    max_len = max(1, math.floor(max_clip_s * per_s) - 2 * keep)
    min_len = min(max_len, math.ceil(min_clip_s * per_s))
    starts: list[int] = []
    ends: list[int] = []
    gaps: list[int] = []
    for region in regions:
        for start, end in _split_long(frames, region, min_len, max_len):
            if ends:
                gaps.append(start - ends[-1])
            starts.append(start)
            ends.append(end)
    gaps.append(frames.count - ends[-1])
    return _Pieces(starts, ends, gaps, regions[0][0], keep)


def slice_at_pauses(
    samples: npt.NDArray[np.float32],
    rate: int,
    *,
    min_clip_s: float = 3.0,
    max_clip_s: float = 10.0,
    pauses: PauseSettings = PauseSettings(),  # frozen, so one shared default is safe
) -> list[ClipSpan]:
    """The recording's clips in order, each `min_clip_s`..`max_clip_s` long; [] when it holds no speech."""
    if not 0 < min_clip_s <= max_clip_s:
        raise ValueError(f"need 0 < min_clip_s <= max_clip_s, got {min_clip_s}, {max_clip_s}")
    frames = _frames(samples, rate, pauses)
    if frames is None:
        return []
    pieces = _pieces(frames, rate, pauses, min_clip_s, max_clip_s)
    min_n = math.ceil(min_clip_s * rate)
    max_n = math.floor(max_clip_s * rate)
    max_inner = round(pauses.max_inner_pause_s * rate / frames.hop)
    last = len(pieces.starts) - 1

    def bounds(i: int, j: int) -> tuple[int, int]:
        return (
            frames.sample(pieces.starts[i] - pieces.pad_left(i)),
            frames.sample(pieces.ends[j] + pieces.pad_right(j)),
        )

    def length(i: int, j: int) -> int:
        start, end = bounds(i, j)
        return end - start

    def reachable(i: int) -> list[int]:
        """The pieces a clip starting at piece i may end with, in order."""
        ends = []
        for j in range(i, last + 1):
            if length(i, j) > max_n:
                break
            ends.append(j)
            if pieces.gap_after[j] > max_inner:
                break
        return ends

    def strands_tail(j: int) -> bool:
        return j < last and length(j + 1, last) < min_n and not _pause_splits(pieces, j + 1, last, max_inner)

    clips: list[tuple[int, int]] = []  # (first piece, last piece)
    target = (min_n + max_n) / 2
    i = 0
    while i <= last:
        choices = [j for j in reachable(i) if length(i, j) >= min_n]
        if choices:
            best = min(
                choices,
                key=lambda j: (
                    strands_tail(j),
                    -(math.inf if j == last else pieces.gap_after[j]),  # the end of the recording cuts nothing
                    abs(length(i, j) - target),
                    j,
                ),
            )
            clips.append((i, best))
            i = best + 1
            continue
        # Piece i cannot make a clip of its own or with what follows: join it to the previous clip or drop it.
        if clips and clips[-1][1] == i - 1 and pieces.gap_after[i - 1] <= max_inner:
            first = clips[-1][0]
            if length(first, i) <= max_n:
                clips[-1] = (first, i)
        i += 1
    spans = []
    for first, final in clips:
        start, end = bounds(first, final)
        lo, hi = start // frames.hop, math.ceil(end / frames.hop)
        speech = float(np.mean(~frames.silent[lo:hi]))
        spans.append(ClipSpan(start, end, rate, speech))
    return spans


def _pause_splits(pieces: _Pieces, i: int, j: int, max_inner: int) -> bool:
    """Whether pieces i..j hold a pause that no clip may span (the tail is then not one stranded clip)."""
    return any(pieces.gap_after[k] > max_inner for k in range(i, j))


def trim_silence(
    samples: npt.NDArray[np.float32],
    rate: int,
    *,
    pauses: PauseSettings = PauseSettings(),  # frozen, so one shared default is safe
) -> ClipSpan | None:
    """The recording less its leading and trailing silence (keeping `keep_silence_s`); None if all silent."""
    frames = _frames(samples, rate, pauses)
    if frames is None:
        return None
    voiced = np.flatnonzero(~frames.silent)
    keep = round(pauses.keep_silence_s * rate / frames.hop)
    lo = max(0, int(voiced[0]) - keep)
    hi = min(frames.count, int(voiced[-1]) + 1 + keep)
    speech = float(np.mean(~frames.silent[lo:hi]))
    return ClipSpan(frames.sample(lo), frames.sample(hi), rate, speech)
