"""ReplyShaper: what may be spoken now, and when a reply must stop."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procs.llm.reply import ReplyShaper

FEWSHOT_STOP = ("\nUser:", "\nAssistant:", "\n\n")


def _shape(pieces: list[str], stop: tuple[str, ...] = FEWSHOT_STOP, max_sentences: int = 3) -> tuple[str, ReplyShaper]:
    shaper = ReplyShaper(stop, max_sentences)
    text = "".join(shaper.feed(piece) for piece in pieces) + shaper.finish()
    assert text == shaper.text
    return text, shaper


def test_stops_at_a_stop_string_split_across_pieces() -> None:
    shaper = ReplyShaper(FEWSHOT_STOP, 3)
    assert shaper.feed(" The capital of France is Paris.") == "The capital of France is Paris."
    assert shaper.feed("\n") == ""  # could be the start of "\nUser:"
    assert shaper.feed("Us") == ""
    assert not shaper.done
    assert shaper.feed("er: And") == ""
    assert shaper.done
    assert shaper.stop_reason == "stop"
    assert shaper.feed(" more") == ""
    assert shaper.text == "The capital of France is Paris."


def test_held_text_that_never_becomes_a_stop_string_is_released() -> None:
    shaper = ReplyShaper(FEWSHOT_STOP, 3)
    assert shaper.feed("Hello\nU") == "Hello"
    assert shaper.feed("p we go") == " Up we go"
    assert not shaper.done


def test_finish_releases_the_held_tail_but_no_trailing_space() -> None:
    text, shaper = _shape(["Paris is lovely", "\n"])
    assert text == "Paris is lovely"
    assert shaper.stop_reason is None


def test_stop_string_at_the_very_start_is_not_mistaken_for_the_end() -> None:
    # Leading whitespace is trimmed before stop strings are matched, so "\n\n" first does not end the reply.
    text, shaper = _shape(["\n\n", "Rome", "."])
    assert text == "Rome."
    assert shaper.stop_reason is None


def test_stops_after_max_sentences() -> None:
    text, shaper = _shape([" One.", " Two!", " Three?", " Four."], max_sentences=2)
    assert text == "One. Two!"
    assert shaper.stop_reason == "sentences"
    assert shaper.sentences == 2


def test_sentence_cap_stops_as_soon_as_the_sentence_is_known_to_end() -> None:
    shaper = ReplyShaper((), 1)
    assert shaper.feed("It is 3.5 km") == "It is 3.5 km"
    assert shaper.feed(" away.") == " away."
    assert not shaper.done  # "away." might still be "away.com"
    assert shaper.feed(" Then") == ""
    assert shaper.stop_reason == "sentences"


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    text, shaper = _shape(["Dr. Smith met J. K. Rowling, e.g. at home. Then", " left."], max_sentences=1)
    assert text == "Dr. Smith met J. K. Rowling, e.g. at home."
    assert shaper.sentences == 1


def test_closing_quotes_stay_with_their_sentence() -> None:
    text, _ = _shape(['He said "yes." Then', " more."], max_sentences=1)
    assert text == 'He said "yes."'


def test_markdown_is_never_spoken() -> None:
    text, _ = _shape(["## Fruit\n", "- **apples**\n", "* pears\n", "+ `plums`\n", "It is -5 degrees."])
    assert text == "Fruit apples pears plums It is -5 degrees."


def test_a_lone_dash_at_a_line_start_is_kept_when_no_space_follows() -> None:
    text, _ = _shape(["-", "5 degrees"])
    assert text == "-5 degrees"


def test_leading_and_repeated_whitespace_is_trimmed() -> None:
    text, _ = _shape(["  ", " \t", "Hello", "   ", "there", "\n", "friend"])
    assert text == "Hello there friend"


def test_multibyte_text_passes_through() -> None:
    text, _ = _shape([" Café", " naïve ", "日本", " 🙂"])
    assert text == "Café naïve 日本 🙂"


@pytest.mark.parametrize("split", [1, 2, 3, 5, 7])
def test_piece_boundaries_do_not_change_the_result(split: int) -> None:
    raw = " The **capital** of Spain is Madrid. It is big! And old.\nUser: next"
    pieces = [raw[i : i + split] for i in range(0, len(raw), split)]
    text, shaper = _shape(pieces, max_sentences=5)
    assert text == "The capital of Spain is Madrid. It is big! And old."
    assert shaper.stop_reason == "stop"


@given(st.lists(st.text(alphabet="ab .!\n*-#U:ser", max_size=6), max_size=12))
def test_chunking_is_irrelevant(pieces: list[str]) -> None:
    whole, _ = _shape(["".join(pieces)])
    chunked, _ = _shape(pieces)
    assert chunked == whole
    assert not any(marker in chunked for marker in ("*", "#", "\n", "  "))
    assert chunked == chunked.strip()
