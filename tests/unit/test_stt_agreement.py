"""LocalAgreement-2: committed text grows only where two consecutive hypotheses agree, and never shrinks."""

from __future__ import annotations

from procs.stt.agreement import LocalAgreement, Partial


def test_first_hypothesis_commits_nothing() -> None:
    assert LocalAgreement().update(["Turn", "on", "the"]) == Partial("", "Turn on the")


def test_growing_hypothesis_commits_the_agreed_prefix() -> None:
    agreement = LocalAgreement()
    agreement.update(["Turn", "on"])
    assert agreement.update(["Turn", "on", "the", "kitchen"]) == Partial("Turn on", "the kitchen")
    assert agreement.update(["Turn", "on", "the", "kitchen", "lights"]) == Partial("Turn on the kitchen", "lights")
    assert agreement.update(["Turn", "on", "the", "kitchen", "lights."]) == Partial("Turn on the kitchen lights.", "")


def test_revised_tail_leaves_committed_text_alone() -> None:
    agreement = LocalAgreement()
    agreement.update(["What", "is", "the", "whether"])
    assert agreement.update(["What", "is", "the", "whether", "in"]) == Partial("What is the whether", "in")
    # The decoder changes its mind about a committed word and the tail: committed text stays as it was.
    partial = agreement.update(["What", "is", "the", "weather", "like"])
    assert partial == Partial("What is the whether", "like")
    # Both recent decodes now agree on the revision: the committed spelling stands, and only the words beyond
    # it are added.
    partial = agreement.update(["What", "is", "the", "weather", "like", "today"])
    assert partial == Partial("What is the whether like", "today")


def test_committed_text_never_shrinks() -> None:
    agreement = LocalAgreement()
    hypotheses = [
        ["Set", "a"],
        ["Set", "a", "timer"],
        ["Set", "a", "timer", "for"],
        ["Set"],  # a bad decode of a noisy chunk
        [],
        ["Sit", "a", "time", "or"],
        ["Set", "a", "timer", "for", "five", "minutes"],
        ["Set", "a", "timer", "for", "five", "minutes."],
    ]
    previous = ""
    for words in hypotheses:
        committed = agreement.update(words).committed
        assert committed.startswith(previous)
        previous = committed
    assert previous == "Set a timer for five minutes."


def test_case_and_punctuation_variants_agree_and_keep_the_hypothesis_spelling() -> None:
    agreement = LocalAgreement()
    agreement.update(["hello", "there", "how"])
    partial = agreement.update(["Hello,", "there!", "How", "are"])
    assert partial == Partial("Hello, there! How", "are")
    assert agreement.update(["Hello", "there.", "how", "ARE", "you"]) == Partial("Hello, there! How ARE", "you")


def test_surrounding_spaces_from_the_decoder_are_ignored() -> None:
    agreement = LocalAgreement()
    agreement.update([" Good", " morning"])
    assert agreement.update([" Good", " morning", " Mynah"]) == Partial("Good morning", "Mynah")


def test_reset_starts_a_new_utterance() -> None:
    agreement = LocalAgreement()
    agreement.update(["one", "two"])
    agreement.update(["one", "two"])
    assert agreement.committed == "one two"
    agreement.reset()
    assert agreement.committed == ""
    assert agreement.update(["one", "two"]) == Partial("", "one two")


def test_prompt_is_the_last_200_characters_on_a_word_boundary() -> None:
    agreement = LocalAgreement()
    assert agreement.prompt() == ""
    words = [f"word{i:03d}" for i in range(60)]  # 60 * 8 - 1 = 479 characters committed
    agreement.update(words)
    agreement.update(words)
    prompt = agreement.prompt()
    assert len(prompt) <= 200
    assert agreement.committed.endswith(prompt)
    assert prompt.split()[0] in words  # starts on a whole word
    assert len(prompt) > 200 - len("word000 ")  # and loses at most one word to the cut
    assert agreement.prompt(max_chars=1000) == agreement.committed
    assert agreement.prompt(max_chars=15) == "word058 word059"
