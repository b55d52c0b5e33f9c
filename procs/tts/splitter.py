"""Turn the LLM's token stream into speakable pieces for streaming TTS. Pure: no clock, no I/O.

The splitter works word by word. A word is taken only once the whitespace after it and the first character
of the next word (past any opening markup such as `**` or a quote) have arrived, so every decision depends on
the text alone, never on where the token boundaries fell: feeding a text in any chunks gives the same pieces.
Since an LLM's tokens carry their leading space (" world"), a word is complete when the next token arrives.

- The first piece goes out early: at a clause mark (, ; : or a dash) once it has `_FIRST_CLAUSE_MIN_WORDS`
  words, at a sentence end, or cut after `first_piece_max_words` words.
- Later pieces end at sentence ends (. ! ? …) and line breaks; a sentence already half of `max_piece_chars`
  long ends at its next clause mark; no piece is longer than `max_piece_chars` (cut at the last space).
- A full stop does not end a sentence after an abbreviation, an initial ("J. K. Rowling") or inside a word
  (3.14, 2.0.1, 10:30 have no mark at the word's end). Some abbreviations ("etc.", "p.m.") and ellipses end a
  sentence only when the next word is capitalised.
- Markdown never reaches the voice: emphasis, code and link markers, headings, quotes, bullets and list
  numbers at a line start (each list item is its own piece) are dropped; a link keeps its text; a bare URL is
  spoken as "a link"; fenced code blocks and emoji are dropped; "#" is dropped everywhere ("C#" is spoken "C").
- A piece with no letter or digit is never returned.
"""

import re

_FIRST_CLAUSE_MIN_WORDS = 3
_SENTENCE_ENDS = ("?", "!")
_ELLIPSES = ("...", "…")
_CLAUSE_ENDS = (",", ";", ":", "—", "–")
_DASHES = frozenset({"-", "--", "—", "–"})
_CLOSERS = "\"')]}”’»"
_OPENERS = "\"'([{“‘«"
# Punctuation that belongs to the word before it ("word ." or what is left of "https://x.org.").
_TRAILING_PUNCTUATION = frozenset(".,;:!?…)]}\"'”’»%")
# A period after these never ends a sentence: a name or an example follows.
_NEVER_END = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "mt", "prof", "sr", "jr", "vs", "e.g", "i.e", "u.s", "u.k", "cf", "approx", "fig"}
)
# A period after these ends a sentence only when a capitalised word follows ("at 5 p.m. on Monday").
_END_IF_CAPITAL = frozenset({"etc", "a.m", "p.m", "inc", "ltd", "co", "al"})
_DOTTED_ACRONYM = re.compile(r"(?:[a-z]\.)+[a-z]", re.IGNORECASE)
# A whole word that only marks up the start of a line: heading, quote, bullet, list number, rule.
_LINE_MARKER = re.compile(r"#{1,6}|>+|[-*+•]|\d{1,3}[.)]|[-*_=]{3,}")
_MARKUP_OPENERS = "*_`~[(\"'“‘"
# The next word to take: the word, the whitespace after it, and the first character of the word after that.
_NEXT_WORD = re.compile(rf"(\S+)(\s+)(?!\s)(?=[{re.escape(_MARKUP_OPENERS)}]*+(.))", re.DOTALL)
_LINK_TARGET = re.compile(r"\]\([^)]*\)?")
# A URL in a word, with its <> if it is an autolink, up to the punctuation that ends the word.
_URL = re.compile(r"<?(?:https?://|ftp://|www\.)[^\s<>]*?>?(?=[.,;:!?)\]\"'”’»]*$)", re.IGNORECASE)
_SPOKEN_URL = "a link"  # "see https://x.org." is spoken "see a link.", which keeps the sentence whole
_EMPTY_BRACKETS = re.compile(r"\(\)|<>|\[\]")
_PICTOGRAPHS = re.compile(
    "["
    "\u200b-\u200d\u2060\ufeff"  # zero-width space, joiners (ZWJ), word joiner, BOM
    "\u20e3\ufe00-\ufe0f"  # combining keycap, variation selectors
    "\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u25a0-\u27bf"  # arrows, technical, enclosed, shapes, dingbats
    "\u2900-\u297f\u2b00-\u2bff\u3030\u303d\u3297\u3299"  # supplemental arrows, stars, CJK emoji
    "\U0001f000-\U0001faff"  # mahjong .. symbols & pictographs extended-A (emoji, flags, skin tones)
    "\U000e0000-\U000e007f"  # tag characters (subdivision flags)
    "]"
)
_DROPPED_CHARS = str.maketrans("", "", "*`[]|#")


def speakable_word(word: str, at_line_start: bool = False) -> str:
    """One whitespace-free word of model text as it should be spoken ("" when nothing of it is)."""
    word = _LINK_TARGET.sub("", word)
    word = _URL.sub(_SPOKEN_URL, word)
    word = _PICTOGRAPHS.sub("", word)
    word = word.translate(_DROPPED_CHARS).replace("~~", "")
    if at_line_start:
        word = word.lstrip(">")
    word = _EMPTY_BRACKETS.sub("", word)
    # `_em_` loses its markers; snake_case is spoken as two words.
    return " ".join(word.replace("_", " ").split())


class SpeechSplitter:
    """Feed the LLM's text as it streams; get back pieces ready to synthesize."""

    def __init__(self, first_piece_max_words: int = 8, max_piece_chars: int = 220) -> None:
        if first_piece_max_words < 1:
            raise ValueError(f"first_piece_max_words must be at least 1, not {first_piece_max_words}")
        if max_piece_chars < 2:
            raise ValueError(f"max_piece_chars must be at least 2, not {max_piece_chars}")
        self._first_max_words = first_piece_max_words
        self._max_chars = max_piece_chars
        self._reset()

    def _reset(self) -> None:
        self._raw = ""  # text not yet taken: empty, or starting with the next word
        self._piece = ""  # the piece being built, words joined by single spaces
        self._out: list[str] = []
        self._line_start = True  # the next word opens a line (or follows only line markers)
        self._in_fence = False
        self._first_sent = False

    def feed(self, text: str) -> list[str]:
        """Take the next piece of model text; return the pieces it completed (often none)."""
        raw = self._raw + text
        if not self._raw:
            raw = raw.lstrip()
        while match := _NEXT_WORD.match(raw):
            self._take(match[1], match[2], match[3])
            raw = raw[match.end(2) :]
        self._raw = raw
        out, self._out = self._out, []
        return out

    def flush(self) -> list[str]:
        """The stream has ended: return what is left. The splitter is then ready for a new stream."""
        words = self._raw.split()
        if words:  # at most one: feed took every word that had whitespace and more text after it
            self._take(words[0], self._raw[len(words[0]) :], None)
        self._end_piece()
        out = self._out
        self._reset()
        return out

    def _take(self, word: str, gap: str, following: str | None) -> None:
        """Add one word; `gap` is the whitespace after it, `following` the next word's first letter, if any."""
        newline = "\n" in gap or "\r" in gap
        at_line_start, self._line_start = self._line_start, newline
        added = False
        if word.count("```") % 2 or (at_line_start and word.startswith("~~~")):
            self._end_piece()  # what precedes a code block is spoken on its own
            self._in_fence = not self._in_fence
        elif self._in_fence:
            pass
        elif at_line_start and _LINE_MARKER.fullmatch(word):
            self._line_start = True  # the word after "1." or "> -" still opens the line's content
        else:
            added = self._add(speakable_word(word, at_line_start))
        if newline or (added and self._ends_sentence(following)):
            self._end_piece()

    def _add(self, unit: str) -> bool:
        """Append a spoken word to the piece, cutting pieces as the limits say; whether anything was added."""
        if not unit:
            return False
        if all(char in _TRAILING_PUNCTUATION for char in unit):
            if not self._piece:
                return False  # nothing to attach it to: a lone mark is not worth a piece
            self._piece += unit
        else:
            self._piece = f"{self._piece} {unit}" if self._piece else unit
        while len(self._piece) > self._max_chars:
            cut = self._piece.rfind(" ", 0, self._max_chars + 1)
            cut = cut if cut > 0 else self._max_chars  # a single word longer than a piece: cut it
            self._emit(self._piece[:cut])
            self._piece = self._piece[cut:].lstrip()
        clause = unit in _DASHES or unit.rstrip(_CLOSERS).endswith(_CLAUSE_ENDS)
        if not self._first_sent:
            words = len(self._piece.split())
            if (clause and words >= _FIRST_CLAUSE_MIN_WORDS) or words >= self._first_max_words:
                self._end_piece()
        elif clause and len(self._piece) >= self._max_chars // 2:
            self._end_piece()
        return True

    def _ends_sentence(self, following: str | None) -> bool:
        """Whether the piece's last word ends a sentence, given the next word's first letter."""
        last = self._piece.rsplit(" ", 1)[-1].rstrip(_CLOSERS)
        capital_next = following is None or following.isupper()
        if last.endswith(_SENTENCE_ENDS):
            return True
        if last.endswith(_ELLIPSES):
            return capital_next  # "Well... maybe" goes on; "Well... Maybe" is a new sentence
        if not last.endswith("."):
            return False
        stem = last[:-1].lstrip(_OPENERS)
        if stem.lower() in _NEVER_END or (len(stem) == 1 and stem.isupper()):
            return False  # "Dr. Who", "J. K. Rowling"
        if stem.lower() in _END_IF_CAPITAL or _DOTTED_ACRONYM.fullmatch(stem):
            return capital_next
        return True

    def _end_piece(self) -> None:
        piece, self._piece = self._piece, ""
        self._emit(piece)

    def _emit(self, piece: str) -> None:
        piece = piece.strip()
        if any(char.isalnum() for char in piece):
            self._out.append(piece)
            self._first_sent = True
