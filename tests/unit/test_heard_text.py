"""Barge-in keeps what was heard: the words played by the reported playback position."""

from __future__ import annotations

from appliance.coordinator.heard import Spoken, heard_text, word_ends
from ipc.messages import PhonemeSpan

# Piper's own timing for "Well, it's 3 o'clock: time for tea, isn't it?" (48 kHz), as the tts worker sends it.
SPANS = [("", 0, 2229), ("w", 2229, 6130), ("ɛ", 6130, 14489), ("l", 14489, 18948), (",", 18948, 23406),
         (" ", 23406, 34551), ("ɪ", 34551, 37338), ("t", 37338, 39567), ("s", 39567, 42911), (" ", 42911, 44582),
         ("θ", 44582, 45697), ("ɹ", 45697, 46812), ("i", 46812, 51827), ("ʲ", 51827, 53499), (" ", 53499, 55171),
         ("ə", 55171, 58514), ("k", 58514, 61858), ("l", 61858, 63530), ("ɑ", 63530, 71889), ("k", 71889, 76905),
         (":", 76905, 83592), (" ", 83592, 85821), ("t", 85821, 86936), ("a", 86936, 91951), ("ɪ", 91951, 94180),
         ("m", 94180, 95852), (" ", 95852, 97524), ("f", 97524, 99196), ("ɔ", 99196, 102540), ("ɹ", 102540, 104769),
         (" ", 104769, 107555), ("t", 107555, 110341), ("i", 110341, 123159), (",", 123159, 127617),
         (" ", 127617, 138763), ("ɪ", 138763, 143221), ("z", 143221, 144893), ("ə", 144893, 147679),
         ("n", 147679, 149908), ("t", 149908, 153809), (" ", 153809, 157153), ("ɪ", 157153, 158825),
         ("t", 158825, 159939), ("?", 159939, 162726), ("", 162726, 167184)]  # fmt: skip
TEXT = "Well, it's 3 o'clock: time for tea, isn't it?"
FIRST = Spoken(TEXT, 0, 167184, tuple(PhonemeSpan(*span) for span in SPANS))


def test_each_word_ends_where_its_phonemes_do() -> None:
    ends = dict(word_ends(FIRST))
    assert ends["Well,"] == 18948 and ends["o'clock:"] == 76905 and ends["it?"] == 159939


def test_only_the_words_played_are_kept() -> None:
    assert heard_text([FIRST], 0) == ""
    assert heard_text([FIRST], 60_000) == "Well, it's 3"
    assert heard_text([FIRST], 76_905 - 2_000) == "Well, it's 3 o'clock:"  # cut in its last 42 ms: heard
    assert heard_text([FIRST], 76_905 - 8_000) == "Well, it's 3"  # 167 ms short of its end: not heard
    assert heard_text([FIRST], 10**9) == TEXT


def test_later_pieces_follow_on_the_turns_timeline() -> None:
    second = Spoken("Shall I make some?", 167184, 48_000, ())  # no timing: its sound shared by word length
    assert heard_text([second, FIRST], 167184 + 10) == TEXT
    assert heard_text([FIRST, second], 167184 + 48_000) == f"{TEXT} Shall I make some?"
    halfway = heard_text([FIRST, second], 167184 + 26_000)
    assert halfway.startswith(TEXT) and halfway != f"{TEXT} Shall I make some?"


def test_a_number_read_as_two_words_falls_back_to_sharing_by_length() -> None:
    # "25" is spoken as "twenty five": two word groups for one written word, so the counts disagree.
    spans = (PhonemeSpan("t", 0, 9_600), PhonemeSpan(" ", 9_600, 10_000), PhonemeSpan("f", 10_000, 19_600),
             PhonemeSpan(" ", 19_600, 20_000), PhonemeSpan("d", 20_000, 29_600))  # fmt: skip
    piece = Spoken("25 days", 0, 29_600, spans)
    ends = word_ends(piece)
    assert [word for word, _ in ends] == ["25", "days"] and ends[-1][1] == 29_600
    assert heard_text([piece], 5_000) == ""
