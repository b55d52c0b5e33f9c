"""From phonemes on the 48 kHz timeline to a mouth shape for every 30 fps video frame. Pure: no clock, no I/O.

Each phoneme (espeak-ng's IPA, as Piper's alignments give them) maps to a viseme: a target mouth shape. The
frames blend the targets of the phonemes around them (co-articulation): each phoneme pulls the mouth toward its
target with a weight that is 1 over its own span and decays smoothly outside it. The mouth leads the sound
slightly (ANTICIPATION_S: lips move before the sound is heard).

Two promises are kept exactly rather than approximately. The lips are shut on every frame inside an m, b or p.
And no value moves by more than MAX_STEP of its range between two frames, so the mouth never pops. The opening
gets both at once from a min-plus filter: each frame's opening is the least of every frame's blended opening
plus MAX_STEP per frame of distance, so a closure pulls its neighbours down into a ramp (the lips start
closing a frame or two ahead, as people's do) and is never itself raised.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

OUTPUT_RATE = 48_000
FPS = 30
FRAME_SAMPLES = OUTPUT_RATE // FPS  # 1600: a frame's tag is the sample index of its first sample
ANTICIPATION_S = 0.04
REACH_S = 0.06  # how far (time constant) a phoneme's pull reaches beyond its span
MAX_STEP = 0.3  # of a parameter's range, per frame
# The opening moves less: no frame jumps by more than a fifth of the way from shut to wide open.
OPENING_STEP = 0.2
BILABIAL_DOMINANCE = 4.0


@dataclass(frozen=True, slots=True)
class MouthShape:
    """What the renderer draws. Every value is in [0, 1]."""

    opening: float = 0.0  # the gap between the lips (the jaw follows it): 0 shut, 1 wide open
    width: float = 0.5  # 0 rounded and narrow (oo), 0.5 relaxed, 1 spread wide (ee)
    teeth: float = 0.0  # upper teeth on the lower lip (f, v)
    tongue: float = 0.0  # tongue tip visible behind the teeth (th, l)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.opening, self.width, self.teeth, self.tongue)


class Viseme(enum.Enum):
    REST = MouthShape()
    LIPS_TOGETHER = MouthShape(opening=0.0, width=0.55)  # m b p: pressed (a value of its own: equal values alias)
    LIP_TEETH = MouthShape(opening=0.12, width=0.55, teeth=1.0)  # f v
    TONGUE_TEETH = MouthShape(opening=0.2, width=0.55, tongue=1.0)  # th
    TONGUE_UP = MouthShape(opening=0.3, width=0.55, tongue=0.6)  # l
    ROUNDED_SMALL = MouthShape(opening=0.15, width=0.0)  # w, oo
    ROUNDED_OPEN = MouthShape(opening=0.5, width=0.2)  # o, aw
    WIDE = MouthShape(opening=0.2, width=1.0)  # ee, i
    OPEN = MouthShape(opening=0.85, width=0.6)  # a, ah
    MID = MouthShape(opening=0.45, width=0.65)  # e, uh, schwa
    TEETH_CLOSE = MouthShape(opening=0.12, width=0.7)  # s z t d n k g ng, flap, h
    SH = MouthShape(opening=0.18, width=0.25)  # sh zh ch j, r


# espeak-ng's English phonemes (the ones Piper's en_US voices produce), one IPA segment each.
PHONEME_VISEMES: dict[str, Viseme] = {
    **dict.fromkeys(("m", "b", "p"), Viseme.LIPS_TOGETHER),
    **dict.fromkeys(("f", "v"), Viseme.LIP_TEETH),
    **dict.fromkeys(("θ", "ð"), Viseme.TONGUE_TEETH),
    **dict.fromkeys(("l", "ɫ"), Viseme.TONGUE_UP),
    **dict.fromkeys(("w", "u", "ʊ"), Viseme.ROUNDED_SMALL),
    **dict.fromkeys(("o", "ɔ", "ɒ"), Viseme.ROUNDED_OPEN),
    **dict.fromkeys(("i", "ɪ", "j", "ᵻ", "ʲ"), Viseme.WIDE),
    **dict.fromkeys(("a", "æ", "ɑ", "ɐ", "aɪ", "aʊ"), Viseme.OPEN),
    **dict.fromkeys(("e", "ɛ", "ə", "ʌ", "ɜ", "ɚ", "ɝ"), Viseme.MID),
    **dict.fromkeys(("s", "z", "t", "d", "n", "k", "ɡ", "g", "ŋ", "ɾ", "h", "ʔ", "x"), Viseme.TEETH_CLOSE),
    **dict.fromkeys(("ʃ", "ʒ", "tʃ", "dʒ", "ɹ", "r"), Viseme.SH),
}


def viseme_of(phoneme: str) -> Viseme:
    """The viseme of one phoneme; word gaps, pauses, punctuation and anything unknown rest the mouth."""
    return PHONEME_VISEMES.get(phoneme, Viseme.REST)


@dataclass(frozen=True, slots=True)
class Span:
    """A phoneme's span on the 48 kHz timeline (end exclusive), as the tts worker's SpeechPiece gives them."""

    phoneme: str
    start_sample: int
    end_sample: int


def frame_count(samples: int) -> int:
    """Frames needed to cover `samples` of audio."""
    return -(-samples // FRAME_SAMPLES)


def mouth_track(spans: Sequence[Span], first_frame: int, frames: int) -> list[MouthShape]:
    """A mouth shape for each of `frames` frames from `first_frame` (frame k starts at sample k * 1600)."""
    if frames <= 0:
        return []
    timed = [(s, viseme_of(s.phoneme).value) for s in spans if s.end_sample > s.start_sample]
    times = [_frame_time_s(first_frame + k) for k in range(frames)]
    shapes = [_blend(timed, at_s) for at_s in times]
    # Shut while the bilabial sounds: on the frames whose own moment (not anticipated) falls inside it.
    sounding = [at_s - ANTICIPATION_S for at_s in times]
    shut = [any(_inside(span, at_s) for span, _ in timed if _bilabial(span)) for at_s in sounding]
    window = (first_frame * FRAME_SAMPLES, (first_frame + frames) * FRAME_SAMPLES)
    for span, _ in timed:  # a bilabial shorter than a frame still shuts the lips on the frame nearest its middle
        if _bilabial(span) and span.end_sample > window[0] and span.start_sample < window[1]:
            middle_s = (span.start_sample + span.end_sample) / 2 / OUTPUT_RATE
            shut[min(range(frames), key=lambda k: abs(sounding[k] - middle_s))] = True
    openings = _ramped([0.0 if closed else shape.opening for shape, closed in zip(shapes, shut, strict=True)])
    return _limit_steps(
        [MouthShape(opening, *shape.as_tuple()[1:]) for opening, shape in zip(openings, shapes, strict=True)]
    )


def _frame_time_s(frame: int) -> float:
    """The moment a frame shows (its middle), advanced by the anticipation: the mouth leads the sound."""
    return ((frame + 0.5) * FRAME_SAMPLES) / OUTPUT_RATE + ANTICIPATION_S


def _bilabial(span: Span) -> bool:
    return viseme_of(span.phoneme) is Viseme.LIPS_TOGETHER


def _inside(span: Span, at_s: float) -> bool:
    return span.start_sample / OUTPUT_RATE <= at_s < span.end_sample / OUTPUT_RATE


def _weight(span: Span, at_s: float) -> float:
    start, end = span.start_sample / OUTPUT_RATE, span.end_sample / OUTPUT_RATE
    distance = max(0.0, start - at_s, at_s - end)  # 0 inside the span
    if distance == 0.0 and _bilabial(span):
        return BILABIAL_DOMINANCE  # inside an m, b or p the lips win; outside it pulls like any other sound
    return math.exp(-distance / REACH_S)


def _blend(timed: Sequence[tuple[Span, MouthShape]], at_s: float) -> MouthShape:
    near = [(w, shape) for span, shape in timed if (w := _weight(span, at_s)) > 1e-3]
    rest_weight = 1e-3 if near else 1.0  # outside speech the mouth rests
    total = rest_weight + sum(w for w, _ in near)
    values = [rest_weight * v for v in MouthShape().as_tuple()]
    for w, shape in near:
        values = [acc + w * v for acc, v in zip(values, shape.as_tuple(), strict=True)]
    return MouthShape(*(v / total for v in values))


def _ramped(openings: list[float]) -> list[float]:
    """The min-plus filter: out[k] = min over j of openings[j] + OPENING_STEP * |k - j|, in two linear passes."""
    out = list(openings)
    for k in range(1, len(out)):
        out[k] = min(out[k], out[k - 1] + OPENING_STEP)
    for k in range(len(out) - 2, -1, -1):
        out[k] = min(out[k], out[k + 1] + OPENING_STEP)
    return out


def _limit_steps(shapes: list[MouthShape]) -> list[MouthShape]:
    """No value moves more than MAX_STEP between consecutive frames (the opening already holds to it)."""
    out = [shapes[0]]
    for shape in shapes[1:]:
        previous = out[-1].as_tuple()
        stepped = (p + max(-MAX_STEP, min(MAX_STEP, v - p)) for p, v in zip(previous, shape.as_tuple(), strict=True))
        out.append(MouthShape(*stepped))
    return out
