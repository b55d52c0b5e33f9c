"""When a voice session's user has finished asking: the words of their utterances, joined while they keep talking.

The stt worker numbers a stream's utterances and sends each one's `vad start`, then, once it has been decoded,
its final transcript (empty when the speech was noise). A pause long enough to end an utterance is not always
the end of the question: the user may go on ("What is the capital ... of France?"). When they go on before a
word of the answer was heard, the two parts are one question (DESIGN.md section 3). That happens two ways:

- the answer had started and was interrupted before a word of it played (voice_chat.py holds its question);
- the next utterance began before the first one's transcript came back, so no answer had started yet.

This holds the words until the last utterance begun has its transcript; that transcript releases them all.
Numbers are compared for equality, not order: a stream reopened on a restarted stt worker counts from 1 again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Question:
    held: str = ""  # words said and not yet asked
    latest_start: int | None = None  # the last utterance the user was heard to begin

    def began(self, utterance: int) -> None:
        self.latest_start = utterance

    def hold(self, text: str) -> None:
        """Keep words to be asked with whatever the user says next."""
        self.held = f"{self.held} {text.strip()}".strip()

    def transcribed(self, utterance: int, text: str) -> str | None:
        """An utterance's transcript came back: the question to answer now, or None while the user is still
        speaking (a later utterance has begun) or when nothing has been said."""
        self.hold(text)
        if self.latest_start not in (None, utterance) or not self.held:
            return None
        question, self.held = self.held, ""
        return question
