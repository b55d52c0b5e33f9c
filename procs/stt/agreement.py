"""LocalAgreement-2 for partial transcripts: a word is committed once two consecutive hypotheses agree on it.

Each hypothesis is a fresh decode of the whole utterance so far. Whisper revises its last words as audio
arrives, but a prefix that two decodes in a row agree on rarely changes again; committing it gives the UI
stable text early, and the committed text conditions the next decode (`prompt()`).
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Partial:
    committed: str  # never changes or shrinks within an utterance
    unstable: str  # the latest hypothesis's words after the committed ones; may change on the next update

    @property
    def text(self) -> str:
        return f"{self.committed} {self.unstable}".strip()


def _comparable(word: str) -> str:
    """A word as compared: case and punctuation don't count ("Hello," agrees with "hello")."""
    return "".join(ch for ch in word.casefold() if ch.isalnum())


def _agreed_prefix(a: list[str], b: list[str]) -> int:
    """How many leading words two hypotheses share."""
    n = 0
    for left, right in zip(a, b, strict=False):
        if _comparable(left) != _comparable(right):
            break
        n += 1
    return n


class LocalAgreement:
    """One utterance's partial transcript. `reset()` before the next utterance."""

    def __init__(self) -> None:
        self._committed: list[str] = []
        self._previous: list[str] = []

    def reset(self) -> None:
        self._committed = []
        self._previous = []

    @property
    def committed(self) -> str:
        return " ".join(self._committed)

    def update(self, hypothesis_words: list[str]) -> Partial:
        """Take the newest decode of the whole utterance so far; returns the text to show."""
        words = [w.strip() for w in hypothesis_words if w.strip()]
        # The longest prefix the last two decodes share is agreed; only the part beyond what is already
        # committed is new. If the decoder revised a committed word, both decodes carry the revision, the
        # committed spelling stands, and positions still line up word for word.
        agreed = _agreed_prefix(self._previous, words)
        if agreed > len(self._committed):
            self._committed.extend(words[len(self._committed) : agreed])
        self._previous = words
        return Partial(self.committed, " ".join(words[len(self._committed) :]))

    def prompt(self, max_chars: int = PROMPT_CHARS) -> str:
        """The end of the committed text, at most `max_chars` long and starting on a whole word."""
        text = self.committed
        if len(text) <= max_chars:
            return text
        tail = text[-max_chars:]
        # Drop the word the cut went through, unless the cut fell exactly on a word boundary.
        if text[-max_chars - 1] != " ":
            _, _, tail = tail.partition(" ")
        return tail.lstrip()
