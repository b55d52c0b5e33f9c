"""Shape a model's raw text into a speakable reply, one piece at a time. Pure: no clock, no I/O.

The shaper decides what may be emitted now and when generation should stop:
- at a stop string (text that could still become one is held back until it can't);
- after `max_sentences` complete sentences;
- markdown markers (*, #, `, a leading "- " bullet) and line breaks never reach the voice;
- leading whitespace is dropped, runs of whitespace become one space, trailing whitespace is never emitted.
"""

from collections.abc import Sequence

_TERMINALS = ".!?…"
_CLOSERS = "\"')]”’»"
_DROPPED = "*`#"
_BULLETS = "-+•"
# Words whose trailing period does not end a sentence ("Dr. Who", "e.g. this").
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "mt", "prof", "jr", "sr", "vs", "e.g", "i.e", "no"})


class ReplyShaper:
    def __init__(self, stop: Sequence[str], max_sentences: int) -> None:
        self._stop = tuple(s for s in stop if s)
        self._max_sentences = max_sentences
        self._raw = ""  # model text not yet released (it may be the start of a stop string)
        self._started = False  # a non-space character has been released
        self._text: list[str] = []  # everything emitted so far
        self._line_start = True
        self._bullet = ""  # a bullet-like character at a line start, waiting to see if a space follows
        self._space = False  # a space is owed before the next emitted character
        self._after_terminal = False
        self.sentences = 0
        self.stop_reason: str | None = None  # "stop" or "sentences" once done

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def text(self) -> str:
        return "".join(self._text)

    def feed(self, piece: str) -> str:
        """Take the next piece of model text; return what may be spoken now (often "")."""
        if self.done:
            return ""
        raw = self._raw + piece
        if not self._started:
            raw = raw.lstrip()
            self._started = bool(raw)
        cut = min((i for i in (raw.find(s) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            self._raw = ""
            released = self._shape(raw[:cut])
            if not self.done:
                released += self._flush_bullet()
                self.stop_reason = "stop"
            return released
        hold = self._held_length(raw)
        self._raw = raw[len(raw) - hold :]
        return self._shape(raw[: len(raw) - hold])

    def finish(self) -> str:
        """Generation ended: release what was held back (it never became a stop string)."""
        if self.done:
            return ""
        released = self._shape(self._raw) + self._flush_bullet()
        self._raw = ""
        return released

    def _held_length(self, raw: str) -> int:
        """Length of the longest tail of `raw` that is the beginning of some stop string."""
        best = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(raw)), best, -1):
                if raw.endswith(stop[:size]):
                    best = size
                    break
        return best

    def _flush_bullet(self) -> str:
        bullet, self._bullet = self._bullet, ""
        return self._emit(bullet) if bullet else ""

    def _shape(self, raw: str) -> str:
        out: list[str] = []
        for char in raw:
            if self.done:
                break
            if char in "\r\n":
                self._line_start, self._bullet = True, ""
                self._whitespace(out)
            elif self._line_start and self._bullet:
                bullet, self._bullet = self._bullet, ""
                self._line_start = False
                if char.isspace():
                    continue  # "- item": the marker is dropped
                out.append(self._emit(bullet))
                if char not in _DROPPED:
                    out.append(self._emit(char))
            elif char.isspace():
                self._whitespace(out)
            elif char in _DROPPED:
                continue
            elif self._line_start and char in _BULLETS:
                self._bullet = char
            else:
                self._line_start = False
                out.append(self._emit(char))
        return "".join(out)

    def _whitespace(self, out: list[str]) -> None:
        """Whitespace is owed, not emitted; it may end a sentence."""
        if self._after_terminal and not self._abbreviation():
            self.sentences += 1
            if self.sentences >= self._max_sentences:
                self.stop_reason = "sentences"
                return
        self._after_terminal = False
        if self._text:
            self._space = True

    def _emit(self, char: str) -> str:
        text = (" " if self._space else "") + char
        self._space = False
        if char in _TERMINALS:
            self._after_terminal = True
        elif char not in _CLOSERS:
            self._after_terminal = False
        self._text.append(text)
        return text

    def _abbreviation(self) -> bool:
        """Whether the period just emitted closes an abbreviation or an initial, not a sentence."""
        tail = "".join(self._text[-12:]).rstrip(_CLOSERS)
        if not tail.endswith("."):
            return False
        word = tail[:-1].rsplit(" ", 1)[-1]
        return word.lower() in _ABBREVIATIONS or (len(word) == 1 and word.isupper())
