"""Voice chat over `WS /voice-chat` against the running appliance on its embedded default (real STT, LLM, TTS and
face): a spoken conversation, barge-in, the avatar's own echo, three sessions, resuming, a vanished client.

The user's speech is synthesized (tests/speech.py) and spoken in real time by tests/voice_client.py, which plays
the replies like a speaker would and reports its playback position.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import numpy as np

from tests.conftest import Appliance
from tests.speech import corpus_wer, pad, synthesize, wer
from tests.voice_client import OUTPUT_RATE, SessionRefused, TurnMedia, VoiceClient

FRAME_SAMPLES = 1600
CONVERSATION = ("My favorite color is green.", "What is my favorite color?", "What is the capital of France?")
LONG_QUESTION = "Tell me a very long story about a dragon and a knight."


def client(appliance: Appliance, **kwargs: Any) -> VoiceClient:
    return VoiceClient(appliance.url, appliance.token, ca=appliance.ca, **kwargs)


def check_frames_follow_the_audio(turn: TurnMedia, end: dict[str, Any]) -> None:
    """30 fps on the audio's clock: one frame per 1600 samples from 0, in order, each there before its sound
    played plus one frame."""
    tags = [index for index, _, _ in turn.frames]
    assert tags == sorted(tags) and len(set(tags)) == len(tags)
    assert all(tag % FRAME_SAMPLES == 0 for tag in tags)
    spans = end["samples"] // FRAME_SAMPLES
    assert tags[0] == 0 and len(tags) + end["dropped_frames"] >= spans, (len(tags), end["dropped_frames"], spans)
    assert end["dropped_frames"] <= spans // 10
    late = []
    for index, arrival, _ in turn.frames:
        played_at = turn.when_played(index)
        if played_at is not None and arrival > played_at + 1 / 30 + 0.02:  # + one 20 ms speaker tick
            late.append((index, round(arrival - played_at, 3)))
    assert len(late) <= spans // 20, f"frames behind their sound: {late[:10]}"


def test_a_spoken_conversation_of_three_turns(appliance: Appliance) -> None:
    async def talk() -> tuple[VoiceClient, list[float]]:
        first_audio: list[float] = []
        async with client(appliance) as voice:
            for number, question in enumerate(CONVERSATION, 1):
                clip = pad(synthesize(question, "piper"), 0.4, 0.2)
                spoken = voice.say(clip.samples, clip.speech_end_s)
                await voice.turn_heard(number)
                first_audio.append(voice.turns[number].audio[0][2] - spoken.speech_end_at)
                await asyncio.sleep(0.3)
        return voice, first_audio

    voice, first_audio = asyncio.run(talk())
    assert not voice.of("error"), voice.of("error")
    finals = voice.of("final")
    # tiny.en, the live profile (docs/stt.md): pooled over the turns, as its WER is measured.
    assert len(finals) == 3 and corpus_wer(zip(CONVERSATION, [f["text"] for f in finals], strict=True)) < 0.15, finals
    ends = voice.of("turn_end")
    assert [e["status"] for e in ends] == ["done"] * 3, ends
    for number, end in enumerate(ends, 1):
        turn = voice.turns[number]
        assert end["reply"].strip() and end["heard"] == end["reply"]
        assert turn.available() == end["samples"] > OUTPUT_RATE // 2
        check_frames_follow_the_audio(turn, end)
        assert set(end["trace"]) >= {"final", "first_token", "first_audio", "first_frame", "end"}
    # The replies as a listener heard them, after a moment's silence (a reply starts abruptly: without the lead,
    # Whisper once heard its first words "Green is" as "Bring as").
    spoken_back = [appliance.transcribe(voice.turns[n].speech_48k(), OUTPUT_RATE, lead_s=0.5) for n in (1, 2, 3)]
    assert corpus_wer(zip([e["reply"] for e in ends], spoken_back, strict=True)) < 0.15, (ends, spoken_back)
    # The second turn used the first's context: only the first said the colour.
    assert "green" in ends[1]["reply"].lower(), ends[1]["reply"]
    lines = appliance.history(voice.session["session_id"])
    assert [line["role"] for line in lines] == ["user", "assistant"] * 3
    assert [line["text"] for line in lines[1::2]] == [e["reply"] for e in ends]
    print(f"end of speech -> first audio, per turn: {[round(s, 3) for s in first_audio]}")


def test_barge_in_stops_playback_cancels_the_work_and_keeps_what_was_heard(appliance: Appliance) -> None:
    question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)
    # One utterance: a sentence break in it ("Wait, stop. What ...") can end it early on a loaded machine, and then
    # its second half rightly interrupts the answer to its first (and joins it: the pause test).
    interruption = pad(synthesize("What time is it now?", "espeak"), 0.0, 0.3)

    async def talk() -> tuple[VoiceClient, float, float]:
        async with client(appliance) as voice:
            voice.say(question.samples, question.speech_end_s)
            turn = await voice.wait_for(lambda: voice.turns.get(1) if voice.turns.get(1) else None, 60)
            await voice.wait_for(lambda: turn.played >= OUTPUT_RATE, 60)  # a second of the answer heard
            spoken = voice.say(interruption.samples, interruption.speech_end_s)
            speech_starts_at = spoken.speech_end_at - interruption.speech_end_s + interruption.speech_start_s
            await voice.wait_for(lambda: turn.stopped_at, 10)
            played_when_stopped = turn.played
            second = await voice.turn_heard(2)
            assert second["status"] == "done", second
            return voice, turn.stopped_at - speech_starts_at, played_when_stopped

    voice, stop_s, played = asyncio.run(talk())
    first, second = voice.of("turn_end")[0], voice.of("turn_end")[-1]
    assert first["status"] == "interrupted" and second["status"] == "done"
    # The face was still drawing the answer (it keeps pace with the speech): its work was cancelled.
    assert "lipsync" in first["stopped"], first
    # Where the time went: the stt worker's detection (`at`, on the box's shared monotonic clock), then delivery.
    speech_started_at = voice.turns[1].stopped_at - stop_s
    detected_after = [e["at"] for e in voice.of("vad") if e["kind"] == "start"][-1] - speech_started_at
    print(
        f"barge-in: playback stopped {stop_s * 1000:.0f} ms after the speech started; the stt worker detected it "
        f"at {detected_after * 1000:.0f} ms"
    )
    # The 300 ms target is a measurement (quiet machine: 200-270 ms, nearly all of it the VAD's 160 ms of speech
    # to confirm a start; docs/voice-chat.md), not a wall-clock limit here: one loaded CI run took 516 ms. What
    # this asserts is that speaking stops the answer at once, well before it would have ended by itself.
    assert stop_s < 1.0, f"playback stopped {stop_s * 1000:.0f} ms after the user started speaking"
    # Heard: the words of the answer that had played, a whole-word prefix of it.
    heard, reply = first["heard"], first["reply"]
    assert 0 < len(heard.split()) < len(reply.split()), (heard, reply)
    assert reply.split()[: len(heard.split())] == heard.split(), (heard, reply)
    assert played < first["samples"]
    # The work stopped: the answer's audio ended well short of what a whole answer takes, nothing came after.
    assert voice.turns[1].available() <= first["samples"]
    lines = appliance.history(voice.session["session_id"])
    assert [line["role"] for line in lines] == ["user", "assistant", "user", "assistant"]
    assert lines[1]["text"] == heard
    assert wer("What time is it now?", lines[2]["text"]) < 0.3, lines[2]["text"]
    print(f"barge-in: playback stopped {stop_s * 1000:.0f} ms after the interruption began; heard {heard!r}")


def test_a_question_with_a_pause_in_it_is_answered_whole(appliance: Appliance) -> None:
    """The pause ends an utterance; the user going on before a word of its answer was heard makes the two parts
    one question. Which way depends on timing, and both are right: the second part began before the first one's
    transcript came back (no answer was started), or after (the answer started and was cut with nothing heard).
    A CI run once saw the first: the answer went on and its first words were heard."""
    first = synthesize("What is the capital", "piper")
    second = synthesize("of France?", "piper")
    gap = np.zeros(round(0.6 * 16_000), np.float32)  # over the 0.48 s that ends an utterance, under a first answer
    clip = np.concatenate([np.zeros(6400, np.float32), first.samples, gap, second.samples, np.zeros(3200, np.float32)])

    async def talk() -> VoiceClient:
        async with client(appliance) as voice:
            voice.say(clip, len(clip) / 16_000)
            await voice.wait_for(lambda: [e for e in voice.of("turn_end") if e["status"] == "done"], 90)
            await asyncio.sleep(0.5)
        return voice

    voice = asyncio.run(talk())
    ends = voice.of("turn_end")
    assert [e["status"] for e in ends] in (["done"], ["interrupted", "done"]), ends
    assert all(e["heard"] == "" for e in ends[:-1]), ends
    finals = [f["text"] for f in voice.of("final")]
    assert len(finals) == 2 and voice.of("turn")[-1]["user_text"] == f"{finals[0]} {finals[1]}", finals
    assert wer("What is the capital of France?", " ".join(finals)) < 0.4, finals
    lines = appliance.history(voice.session["session_id"])
    assert [line["role"] for line in lines] == ["user"] * len(ends) + ["assistant"], lines
    print(f"a question with a pause: {'started and cut' if len(ends) == 2 else 'held'} before its second part")


def test_the_avatars_own_voice_in_the_microphone_does_not_interrupt_it(appliance: Appliance) -> None:
    """Hands-free without echo cancellation in the client: what it plays comes back into its microphone,
    120 ms later at half its level, and must not count as the user speaking."""
    question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)

    async def talk() -> VoiceClient:
        async with client(appliance, echo_gain=0.5, echo_delay_s=0.12) as voice:
            voice.say(question.samples, question.speech_end_s)
            await voice.turn_heard(1)
            await asyncio.sleep(1.5)  # the echo's tail, and any late event
        return voice

    voice = asyncio.run(talk())
    ends = voice.of("turn_end")
    assert [e["status"] for e in ends] == ["done"], ends
    assert len(voice.of("final")) == 1, voice.of("final")
    assert voice.turns[1].finished_at and voice.turns[1].played == ends[0]["samples"] > OUTPUT_RATE


def test_three_sessions_at_once_and_a_fourth_refused(appliance: Appliance) -> None:
    questions = ("What is the capital of France?", "What is the capital of Italy?", "What is the capital of Spain?")

    async def one(question: str, delay: float) -> tuple[str, float]:
        await asyncio.sleep(delay)
        async with client(appliance) as voice:
            clip = pad(synthesize(question, "piper"), 0.3, 0.2)
            spoken = voice.say(clip.samples, clip.speech_end_s)
            end = await voice.turn_heard(1, within=180)
            assert end["status"] == "done", end
            return end["reply"], voice.turns[1].audio[0][2] - spoken.speech_end_at

    async def refused_while_full() -> dict[str, Any]:
        await asyncio.sleep(2.0)
        try:
            async with client(appliance):
                pass
        except SessionRefused as err:
            return err.event
        return {}

    async def all_of_them() -> tuple[list[tuple[str, float]], dict[str, Any]]:
        sessions = asyncio.gather(*(one(q, k * 0.7) for k, q in enumerate(questions)))
        refusal = asyncio.create_task(refused_while_full())
        return await sessions, await refusal

    answers, refusal = asyncio.run(all_of_them())
    assert refusal.get("code") == "session-refused-budget", refusal
    for (reply, _), city in zip(answers, ("paris", "rome", "madrid"), strict=True):
        assert city in reply.lower(), reply
    print(f"three sessions: first audio {[round(a, 3) for _, a in answers]}, median "
          f"{statistics.median(a for _, a in answers):.3f} s")  # fmt: skip


def test_a_dropped_connection_resumes_its_session_and_leaves_no_work_running(appliance: Appliance) -> None:
    question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)
    follow_up = pad(synthesize("What is the capital of France?", "piper"), 0.4, 0.2)

    async def talk() -> tuple[str, VoiceClient]:
        voice = client(appliance)
        await voice.__aenter__()
        voice.say(question.samples, question.speech_end_s)
        turn = await voice.wait_for(lambda: voice.turns.get(1), 60)
        await voice.wait_for(lambda: turn.played >= OUTPUT_RATE // 2, 60)
        await voice.drop()  # mid-answer, no goodbye
        session_id: str = voice.session["session_id"]
        await asyncio.sleep(1.0)
        async with client(appliance, session_id=session_id) as again:
            assert again.session["resumed"] and again.session["turns"] == 1, again.session
            assert again.session["sessions"] == 1, "the dropped connection's slot was given back"
            again.say(follow_up.samples, follow_up.speech_end_s)
            end = await again.turn_heard(2)  # the conversation's second turn
            assert end["status"] == "done", end
        return session_id, again

    session_id, _ = asyncio.run(talk())
    lines = appliance.history(session_id)
    assert [line["role"] for line in lines][:2] == ["user", "assistant"]
    cut = lines[1]["text"]
    assert cut and len(cut.split()) < 40, "the first answer was cut where the connection dropped"
    assert "paris" in lines[-1]["text"].lower()
    assert appliance.program("lipsync")["state"] == "RUNNING" and appliance.program("tts")["state"] == "RUNNING"


def test_an_unknown_session_is_refused_with_a_code(appliance: Appliance) -> None:
    async def attempt() -> dict[str, Any]:
        try:
            async with client(appliance, session_id="not-a-session"):
                return {}
        except SessionRefused as err:
            return err.event

    assert asyncio.run(attempt()).get("code") == "session-not-found"
