"""SpeechSplitter: the LLM's token stream cut into speakable pieces as soon as each is complete."""

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procs.tts.splitter import SpeechSplitter, speakable_word


def _split(text: str, first_piece_max_words: int = 8, max_piece_chars: int = 220) -> list[str]:
    splitter = SpeechSplitter(first_piece_max_words, max_piece_chars)
    return splitter.feed(text) + splitter.flush()


def _stream(chunks: list[str], first_piece_max_words: int = 8, max_piece_chars: int = 220) -> list[str]:
    splitter = SpeechSplitter(first_piece_max_words, max_piece_chars)
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)]
    return pieces + splitter.flush()


# -- the first piece ---------------------------------------------------------------------------------------------


def test_first_piece_ends_at_the_first_clause_of_three_words() -> None:
    assert _split("Well, the weather today is sunny, warm and bright. See you.") == [
        "Well, the weather today is sunny,",
        "warm and bright.",
        "See you.",
    ]


@pytest.mark.parametrize("mark", [",", ";", ":", " —", " -"])
def test_first_piece_may_end_at_any_clause_mark(mark: str) -> None:
    assert _split(f"Here is the answer{mark} it is four.")[0] == f"Here is the answer{mark}"


def test_first_piece_is_cut_after_max_words_when_no_clause_comes() -> None:
    assert _split("One two three four five six seven eight nine ten. Okay.") == [
        "One two three four five six seven eight",
        "nine ten.",
        "Okay.",
    ]
    assert _split("One two three four five.", first_piece_max_words=3) == ["One two three", "four five."]


def test_a_short_first_sentence_goes_out_alone() -> None:
    assert _split("Hi there. Apples, pears, and plums are fruit. The end.") == [
        "Hi there.",
        "Apples, pears, and plums are fruit.",
        "The end.",
    ]


def test_first_piece_is_returned_while_the_llm_is_still_writing() -> None:
    text = (
        "Sure thing, the capital of France is Paris, and it has been for centuries. "
        "It sits on the Seine. Would you like to know more?"
    )
    tokens = text.split(" ")
    splitter = SpeechSplitter()
    pieces: list[str] = []
    first_at = None
    for index, token in enumerate(tokens):
        got = splitter.feed(token if index == 0 else f" {token}")
        if got and first_at is None:
            first_at = index
        pieces += got
    # The first clause was complete when the ninth token arrived, long before the reply ended.
    assert first_at == 8
    assert pieces[0] == "Sure thing, the capital of France is Paris,"
    assert pieces == [
        "Sure thing, the capital of France is Paris,",
        "and it has been for centuries.",
        "It sits on the Seine.",
    ]
    pieces += splitter.flush()
    assert pieces[-1] == "Would you like to know more?"
    assert pieces == _split(text)


def test_nothing_is_returned_until_a_word_is_known_to_be_complete() -> None:
    splitter = SpeechSplitter(first_piece_max_words=2)
    assert splitter.feed("Hello") == []
    assert splitter.feed(" wor") == []
    assert splitter.feed("ld") == []
    assert splitter.feed(" ") == []
    assert splitter.feed("again") == ["Hello world"]
    assert splitter.flush() == ["again"]


# -- later pieces ------------------------------------------------------------------------------------------------


def test_later_pieces_end_at_sentence_ends_and_line_breaks() -> None:
    assert _split("Okay. Really? Yes! Then… Next line\nand another\n\n\nlast one") == [
        "Okay.",
        "Really?",
        "Yes!",
        "Then…",
        "Next line",
        "and another",
        "last one",
    ]


def test_closing_quotes_and_brackets_stay_with_their_sentence() -> None:
    assert _split('Okay. He said "stop." Then he left (quietly.) The end.') == [
        "Okay.",
        'He said "stop."',
        "Then he left (quietly.)",
        "The end.",
    ]


def test_a_long_sentence_is_cut_at_a_clause_mark() -> None:
    text = (
        "Okay. The museum opens early on weekdays and stays open late on Fridays, "
        "but on public holidays it closes at noon, so plan ahead."
    )
    assert _split(text, max_piece_chars=120) == [
        "Okay.",
        "The museum opens early on weekdays and stays open late on Fridays,",
        "but on public holidays it closes at noon, so plan ahead.",
    ]


def test_no_piece_exceeds_the_limit_and_cuts_fall_between_words() -> None:
    text = "Okay. " + " ".join(["word"] * 60) + "."
    pieces = _split(text, max_piece_chars=50)
    assert all(len(piece) <= 50 for piece in pieces)
    assert " ".join(pieces) == text
    assert all(not piece.startswith(" ") and not piece.endswith(" ") for piece in pieces)


def test_a_word_longer_than_a_piece_is_cut_anyway() -> None:
    assert _split("Okay. " + "x" * 25, max_piece_chars=10) == ["Okay.", "x" * 10, "x" * 10, "x" * 5]


# -- where a full stop is not the end of a sentence -------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "Dr. Smith met Mr. Jones and Mrs. Brown on Elm St. today.",
        "Bring fruit, e.g. apples, i.e. something sweet, vs. nothing.",
        "The U.S. team won.",
        "We meet at 5 p.m. on Monday and 9 a.m. on Tuesday.",
        "Bring pens, paper etc. and a snack.",
        "Pi is 3.14 and the version is 2.0.1 today.",
        "The train leaves at 10:30 sharp.",
        "J. K. Rowling and George R. R. Martin wrote them.",
        "Well... maybe… not.",
    ],
)
def test_no_split_inside_a_sentence(sentence: str) -> None:
    assert _split(f"Okay. {sentence} Next.") == ["Okay.", sentence, "Next."]


def test_an_abbreviation_or_ellipsis_before_a_capital_ends_the_sentence() -> None:
    assert _split("Okay. We left at 5 p.m. The end came. Bring pens etc. Then go. Wait... No!") == [
        "Okay.",
        "We left at 5 p.m.",
        "The end came.",
        "Bring pens etc.",
        "Then go.",
        "Wait...",
        "No!",
    ]


def test_a_number_at_the_end_of_a_sentence_ends_it() -> None:
    assert _split("Okay. The answer is 42. Then we go.") == ["Okay.", "The answer is 42.", "Then we go."]


def test_list_items_are_pieces_without_their_markers() -> None:
    text = "Here are the steps:\n1. Mix the flour.\n2. Add water\n10) Bake it.\n- Serve warm\n* Enjoy\n+ Relax"
    assert _split(text) == [
        "Here are the steps:",
        "Mix the flour.",
        "Add water",
        "Bake it.",
        "Serve warm",
        "Enjoy",
        "Relax",
    ]


def test_a_number_mid_line_is_not_a_list_marker() -> None:
    assert _split("Okay. I have 2) things and 3. More later.") == ["Okay.", "I have 2) things and 3.", "More later."]


# -- speakable text ----------------------------------------------------------------------------------------------


def test_markdown_emphasis_and_code_markers_are_dropped() -> None:
    assert _split("Okay. This is **bold**, *em*, _under_ and ~~gone~~ with `code` and __init__ or snake_case.") == [
        "Okay.",
        "This is bold, em, under and gone with code and init or snake case.",
    ]


def test_headings_quotes_and_rules_are_dropped() -> None:
    assert _split("# Title\n## Sub *title*\n> quoted text\n> > nested - quote\n---\n***\nBody.") == [
        "Title",
        "Sub title",
        "quoted text",
        "nested - quote",
        "Body.",
    ]


def test_links_keep_their_text_and_urls_become_a_link() -> None:
    text = "Okay. See [the docs](https://ex.org/a.b?c=1) or https://ex.com/x.html. Also <https://x.y>, www.z.org."
    assert _split(text) == ["Okay.", "See the docs or a link.", "Also a link, a link."]


def test_fenced_code_blocks_are_dropped() -> None:
    text = "Here is code:\n```python\nprint('Hi. There.')\nx = 1\n```\nRun it. Or this:\n~~~\nls -la\n~~~\nDone."
    assert _split(text) == ["Here is code:", "Run it.", "Or this:", "Done."]


def test_a_code_block_opened_mid_line_still_ends_the_piece_before_it() -> None:
    assert _split("Okay. Try this ```python\nx = 1. y\n``` and done.") == ["Okay.", "Try this", "and done."]


def test_an_unclosed_code_block_drops_the_rest() -> None:
    assert _split("Okay. Look:\n```\ncode. more code") == ["Okay.", "Look:"]


def test_emoji_and_pictographs_are_dropped() -> None:
    text = "Okay. Great job 🎉👍🏽 well done ❤️ see 👨‍👩‍👧 you ✅ soon 🇫🇷 ok 1️⃣ ★ →."
    assert _split(text) == ["Okay.", "Great job well done see you soon ok 1."]


def test_whitespace_is_collapsed() -> None:
    assert _split("  Okay.\t\tThis   has \u00a0 odd\u200b   spacing.  ") == ["Okay.", "This has odd spacing."]


def test_pieces_with_nothing_to_say_are_not_returned() -> None:
    assert _split("Okay.\n...\n---\n- \n😀\n```\nx\n```\n!!!\nBye.") == ["Okay.", "Bye."]
    assert _split("") == []
    assert _split("   \n ") == []


def test_punctuation_left_alone_joins_the_word_before_it() -> None:
    assert _split("Okay. Hello , world ! Bye .") == ["Okay.", "Hello, world!", "Bye."]


def test_speakable_word() -> None:
    assert speakable_word("**Note:**") == "Note:"
    assert speakable_word("[docs](http://x.org).") == "docs."
    assert speakable_word(">quote", at_line_start=True) == "quote"
    assert speakable_word(">quote") == ">quote"
    assert speakable_word("(https://x.org),") == "(a link),"
    assert speakable_word("🎉") == ""


def test_flush_readies_the_splitter_for_a_new_stream() -> None:
    splitter = SpeechSplitter()
    assert splitter.feed("Look:\n```\ncode") == ["Look:"]
    assert splitter.flush() == []
    assert splitter.feed("1. First") == []
    assert splitter.flush() == ["First"]


def test_rejects_limits_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="first_piece_max_words"):
        SpeechSplitter(first_piece_max_words=0)
    with pytest.raises(ValueError, match="max_piece_chars"):
        SpeechSplitter(max_piece_chars=1)


# -- properties --------------------------------------------------------------------------------------------------

# No word may look like a list marker at a line start ("42." would be one), hence "1984."
_PLAIN_WORDS = st.one_of(
    st.builds(
        str.__add__,
        st.text(alphabet="abcdefghiJKLMNOPQR", min_size=1, max_size=10),
        st.sampled_from(["", "", "", ",", ".", "!", "?", ";", ":", "...", "…", '."', ".)"]),
    ),
    st.sampled_from(["Dr.", "Mr.", "e.g.", "i.e.", "etc.", "p.m.", "U.S.", "J.", "3.14", "2.0.1", "10:30", "1984."]),
)
_GAPS = st.sampled_from([" ", " ", " ", "  ", "\n", " \n\n", "\t"])


@st.composite
def _plain_prose(draw: st.DrawFn) -> str:
    words = draw(st.lists(_PLAIN_WORDS, max_size=40))
    return "".join(word + draw(_GAPS) for word in words)


def _chunked(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(cuts), len(text)]
    return [text[start:end] for start, end in pairwise(bounds)]


@given(_plain_prose(), st.integers(1, 12), st.integers(20, 300), st.data())
def test_plain_prose_pieces_are_exactly_its_words(
    text: str, first_words: int, max_chars: int, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text))))
    pieces = _stream(_chunked(text, cuts), first_words, max_chars)
    assert " ".join(pieces) == " ".join(text.split())


_WORD = st.text(alphabet="abcdefgh", min_size=1, max_size=8)
# Each markdown-bearing word with the words it must be spoken as.
_INLINE = st.one_of(
    _WORD.map(lambda w: (w, w)),
    _WORD.map(lambda w: (w + ",", w + ",")),
    _WORD.map(lambda w: (w + ".", w + ".")),
    _WORD.map(lambda w: (f"**{w}**", w)),
    _WORD.map(lambda w: (f"*{w}*", w)),
    _WORD.map(lambda w: (f"_{w}_", w)),
    _WORD.map(lambda w: (f"~~{w}~~", w)),
    _WORD.map(lambda w: (f"`{w}`", w)),
    _WORD.map(lambda w: (f"{w}_{w}", f"{w} {w}")),
    _WORD.map(lambda w: (f"[{w} link](https://ex.org/{w}.html?a=1)", f"{w} link")),
    _WORD.map(lambda w: (f"{w}👍🏽", w)),
    st.sampled_from(["https://example.com/a.b?c=1", "www.example.org", "<http://x.y/z>"]).map(lambda u: (u, "a link")),
    st.sampled_from(["😀", "❤️", "👨‍👩‍👧", "🇫🇷", "✅", "→", "★"]).map(lambda e: (e, "")),
)
_LINE_PREFIXES = st.sampled_from(["", "", "# ", "## ", "> ", "> > ", "- ", "* ", "+ ", "1. ", "12) "])
_FENCE = "```python\nzz = 1. Zz\nprint('zz. Zz')\n```"


@st.composite
def _markdown(draw: st.DrawFn) -> tuple[str, str]:
    """A markdown reply and what it must be spoken as."""
    lines: list[str] = []
    spoken: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(_FENCE)
            continue
        items = draw(st.lists(_INLINE, min_size=1, max_size=12))
        lines.append(draw(_LINE_PREFIXES) + " ".join(raw for raw, _ in items))
        spoken += [words for _, words in items if words]
    return "\n".join(lines), " ".join(spoken)


@given(_markdown(), st.integers(1, 12), st.integers(30, 300), st.data())
def test_pieces_are_the_speakable_form_of_the_whole_text(
    case: tuple[str, str], first_words: int, max_chars: int, data: st.DataObject
) -> None:
    text, spoken = case
    cuts = data.draw(st.lists(st.integers(0, len(text))))
    pieces = _stream(_chunked(text, cuts), first_words, max_chars)
    assert " ".join(pieces) == spoken


_FRAGMENTS = st.sampled_from(
    [" ", " ", "  ", "\n", "\n\n", "\t", "word", "Word", "x", "E", "a", ",", ".", "!", "?", ":", ";", "...", "…",
     "Dr.", "etc.", "p.m.", "J.", "3.14", "10:30", "1.", "2)", "-", "—", "*", "**", "_", "`", "```", "~~~", "#",
     ">", "[", "](", ")", "(", '"', "’", "https://", "www.", "a.b", "😀", "\u200d", "\ufe0f", "🏽", "é", "z" * 30]
)  # fmt: skip
_ANY_TEXT = st.one_of(st.lists(_FRAGMENTS, max_size=80).map("".join), st.text(max_size=200))


@settings(max_examples=300)
@given(_ANY_TEXT, st.integers(1, 10), st.integers(2, 120), st.data())
def test_pieces_do_not_depend_on_how_the_text_is_chunked(
    text: str, first_words: int, max_chars: int, data: st.DataObject
) -> None:
    whole = _split(text, first_words, max_chars)
    for _ in range(3):
        cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=40))
        assert _stream(_chunked(text, cuts), first_words, max_chars) == whole
    assert _stream(list(text), first_words, max_chars) == whole


@given(_ANY_TEXT, st.integers(1, 10), st.integers(2, 120))
def test_no_piece_exceeds_max_piece_chars_or_is_blank(text: str, first_words: int, max_chars: int) -> None:
    for piece in _split(text, first_words, max_chars):
        assert 0 < len(piece) <= max_chars
        assert piece == piece.strip()
        assert any(char.isalnum() for char in piece)


_EMOJI_AND_JOINERS = set("😀❤👨👩👧🇫🇷✅→★👍🏽\u200d\ufe0f")


@given(_markdown(), st.integers(1, 12), st.integers(30, 300))
def test_no_piece_has_markdown_a_url_or_an_emoji(case: tuple[str, str], first_words: int, max_chars: int) -> None:
    text, _ = case
    for piece in _split(text, first_words, max_chars):
        for marker in ("*", "`", "_", "#", "[", "]", "~~", "http", "www.", "<", "zz", "Zz"):
            assert marker not in piece
        assert not piece.startswith((">", "- ", "+ ", "1. ", "12) "))
        assert not _EMOJI_AND_JOINERS & set(piece)
        assert all(ord(char) < 0x1F000 for char in piece)
