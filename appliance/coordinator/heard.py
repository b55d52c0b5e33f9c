"""What the listener actually heard of a spoken answer, for barge-in: when the user interrupts, the conversation
keeps only the words that were played (DESIGN.md section 3). Pure: pieces of speech on the turn's 48 kHz
timeline (as the tts worker's SpeechPiece gives them) and the playback position the client reported.

A word counts as heard once its sound has played, less WORD_GRACE_S (a word cut in its last few milliseconds
was heard). Where a piece's phonemes carry word gaps (Piper: " " spans), each word ends where its phonemes do,
when the counts agree; otherwise (numbers read as several words, an engine without timing) the piece's sound is
shared among its words by their length in characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipc.messages import PhonemeSpan

OUTPUT_RATE = 48_000
WORD_GRACE_S = 0.06
GAP = " "
SILENT = ("", ",", ".", ":", ";", "!", "?", "…")  # spans that make no mouth-sound of a word


@dataclass(frozen=True, slots=True)
class Spoken:
    text: str
    first_sample: int
    samples: int
    phonemes: tuple[PhonemeSpan, ...] = ()


def word_ends(piece: Spoken) -> list[tuple[str, int]]:
    """Each word of the piece with the sample (on the turn's timeline) where its sound ends."""
    words = piece.text.split()
    if not words:
        return []
    groups = _word_groups(piece.phonemes)
    if len(groups) == len(words):
        return [(word, end) for word, end in zip(words, groups, strict=True)]
    voiced = [p for p in piece.phonemes if p.phoneme not in SILENT and p.phoneme != GAP]
    start = voiced[0].start_sample if voiced else piece.first_sample
    stop = voiced[-1].end_sample if voiced else piece.first_sample + piece.samples
    total = sum(len(word) for word in words)
    ends: list[tuple[str, int]] = []
    reached = 0
    for word in words:
        reached += len(word)
        ends.append((word, start + round((stop - start) * reached / total)))
    return ends


def heard_text(pieces: Sequence[Spoken], played_samples: int) -> str:
    """The words played by `played_samples` (the turn's timeline), in order; "" when none was."""
    grace = round(WORD_GRACE_S * OUTPUT_RATE)
    heard: list[str] = []
    for piece in sorted(pieces, key=lambda p: p.first_sample):
        for word, end in word_ends(piece):
            if end - grace > played_samples:
                return " ".join(heard)
            heard.append(word)
    return " ".join(heard)


def _word_groups(phonemes: Sequence[PhonemeSpan]) -> list[int]:
    """Where each run of phonemes between word gaps ends (its last sounding phoneme's end)."""
    ends: list[int] = []
    last_end: int | None = None
    for span in phonemes:
        if span.phoneme == GAP:
            if last_end is not None:
                ends.append(last_end)
                last_end = None
        elif span.phoneme not in SILENT:
            last_end = span.end_sample
    if last_end is not None:
        ends.append(last_end)
    return ends
