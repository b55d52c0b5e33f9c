"""A voice turn's idea of what the client has played (appliance/coordinator/voice_chat.py): the basis of barge-in's
`heard` and of whether speaking now interrupts an answer."""

from __future__ import annotations

from appliance.coordinator.voice_chat import VoiceTurn

RATE = 48_000


def turn(samples: int = 2 * RATE) -> VoiceTurn:
    made = VoiceTurn(1, "Tell me a story.", speech_end_at=100.0, chat_request="voice:1")
    made.samples = samples
    return made


def test_before_any_audio_nothing_was_played_and_the_answer_is_still_coming() -> None:
    fresh = turn(samples=0)
    assert fresh.position(105.0) == 0
    assert fresh.playing(105.0)  # being made: speaking now interrupts it


def test_without_reports_the_client_is_taken_to_play_from_the_first_audio() -> None:
    started = turn()
    started.first_audio_at = 101.0
    assert started.position(101.5) == RATE // 2
    assert started.position(110.0) == 2 * RATE  # never more than was sent


def test_a_report_is_carried_on_at_the_speech_rate() -> None:
    reported = turn()
    reported.first_audio_at = 101.0
    reported.played, reported.played_at = RATE // 4, 101.5  # the client started late (its jitter buffer)
    assert reported.position(102.0) == RATE // 4 + RATE // 2


def test_a_finished_answer_is_playing_until_its_last_sample_is_heard() -> None:
    done = turn()
    done.status, done.first_audio_at = "done", 101.0
    assert done.playing(102.0)
    assert not done.playing(103.5)
    done.status = "interrupted"
    assert not done.playing(101.5)


def test_stage_times_are_kept_from_the_end_of_speech_once() -> None:
    traced = turn()
    traced.mark("first_audio", 101.25)
    traced.mark("first_audio", 102.0)
    assert traced.trace == {"first_audio": 1.25}
