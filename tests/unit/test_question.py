"""When a voice session's user has finished asking (appliance/coordinator/question.py)."""

from appliance.coordinator.question import Question


def test_an_utterance_transcribed_while_no_other_has_begun_is_asked() -> None:
    question = Question()
    question.began(1)
    assert question.transcribed(1, " What time is it? ") == "What time is it?"
    assert question.held == ""


def test_the_user_going_on_before_the_transcript_came_back_makes_one_question() -> None:
    question = Question()
    question.began(1)
    question.began(2)  # "of France?" began while "What is the capital" was still being decoded
    assert question.transcribed(1, "What is the capital") is None
    assert question.transcribed(2, "of France?") == "What is the capital of France?"


def test_a_later_utterance_that_was_noise_releases_the_held_words() -> None:
    question = Question()
    question.began(1)
    question.began(2)
    assert question.transcribed(1, "Turn the music down.") is None
    assert question.transcribed(2, "") == "Turn the music down."


def test_noise_alone_asks_nothing() -> None:
    question = Question()
    question.began(1)
    assert question.transcribed(1, "  ") is None


def test_a_question_whose_answer_nobody_heard_is_asked_with_the_next_words() -> None:
    question = Question()
    question.began(1)
    assert question.transcribed(1, "What is the capital") == "What is the capital"
    question.hold("What is the capital")  # its answer was interrupted before a word of it played
    question.began(2)
    assert question.transcribed(2, "of France?") == "What is the capital of France?"


def test_a_stream_reopened_on_a_restarted_worker_counts_from_one_again() -> None:
    question = Question()
    question.began(1)
    question.began(2)
    assert question.transcribed(1, "Hello") is None
    question.began(1)  # the stt worker restarted: utterance 2 never got its transcript
    assert question.transcribed(1, "are you there?") == "Hello are you there?"
