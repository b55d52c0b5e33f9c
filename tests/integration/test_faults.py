"""Faults injected into the running appliance during a voice turn: `kill -9` of the coordinator and of the workers
the turn is using. Each time: the client hears a clear error within 5 s, the appliance recovers without a person,
the next turn works, the stored conversation keeps what was said, and no shared-memory segment is left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from tests.conftest import Appliance
from tests.faults import client, first_problem, shm_segments
from tests.speech import pad, synthesize
from tests.voice_client import VoiceClient

pytestmark = pytest.mark.integration

LONG_QUESTION = "Tell me a very long story about a dragon and a knight."
FOLLOW_UP = "What is the capital of France?"
ERROR_WITHIN_S = 5.0
RECOVERY_S = 120.0
# Workers frozen (SIGSTOP) at the first event, then killed at the second: (event type, kind), event type.
HELD = {"llm": (("vad", "end"), "turn"), "tts": (("turn", "turn"), "reply")}


def wait_healthy(appliance: Appliance, restarted: str, old_pid: int) -> None:
    deadline = time.monotonic() + RECOVERY_S
    while time.monotonic() < deadline:
        report = appliance.status()
        programs = {p["name"]: p for p in report.get("programs", [])}
        mine = programs.get(restarted, {})
        if report.get("status") == "ok" and mine.get("pid") not in (None, 0, old_pid) and mine.get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{restarted} did not come back within {RECOVERY_S} s: {appliance.status()}")


@pytest.mark.parametrize("program", ["coordinator", "llm", "tts", "lipsync"])
def test_kill_9_during_a_voice_turn(appliance: Appliance, program: str) -> None:
    question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)
    follow_up = pad(synthesize(FOLLOW_UP, "piper"), 0.4, 0.2)
    before = shm_segments(appliance)

    async def talk() -> tuple[str, float, dict[str, Any], VoiceClient]:
        voice = client(appliance)
        await voice.__aenter__()
        voice.say(question.samples, question.speech_end_s)
        pid = appliance.program(program)["pid"]
        if program in HELD:
            # The model would finish this short answer in a second: freeze the worker before the turn reaches
            # it, so the kill finds the turn's work in its hands, as a crash mid-answer does.
            freeze, kill = HELD[program]
            await voice.wait_for(lambda: [e for e in voice.of(freeze[0]) if e.get("kind", freeze[1]) == freeze[1]], 90)
            os.kill(pid, signal.SIGSTOP)
            await voice.wait_for(lambda: voice.of(kill), 90)
            await asyncio.sleep(0.3)
        else:  # while the answer is spoken: the face is drawn as it plays, the coordinator relays it all
            turn = await voice.wait_for(lambda: voice.turns.get(1), 90)
            await voice.wait_for(lambda: turn.available() > 0, 90)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        at, problem = await voice.wait_for(lambda: first_problem(voice, killed_at), 30)
        if program == "tts":  # the answer goes on as text: its end comes once the model has written it all
            await voice.wait_for(lambda: [e for e in voice.of("turn_end") if e["turn"] == 1], 60)
        if program == "coordinator":  # the session itself is gone: the socket says to reconnect
            await voice.wait_for(lambda: voice._ws is None or voice._ws.close_code is not None, 10)
            assert voice._ws is None or voice._ws.close_code == 4503, voice._ws.close_code
        session_id: str = voice.session["session_id"]
        await voice.close(bye=program != "coordinator")
        return session_id, at - killed_at, problem, voice

    old_pid = appliance.program(program)["pid"]
    session_id, delay, problem, voice = asyncio.run(talk())
    print(f"{program}: {problem.get('code')} after {delay:.2f} s")
    assert delay < ERROR_WITHIN_S, f"the client heard of the {program}'s death after {delay:.1f} s"
    assert problem.get("code"), problem
    if program == "tts":  # no speech: the answer is delivered as text, and kept
        assert problem["type"] == "error" and "no speech" in problem["message"], problem
        first_end = next(e for e in voice.of("turn_end") if e["turn"] == 1)
        assert first_end["status"] == "done" and first_end["reply"].strip(), first_end
    wait_healthy(appliance, program, old_pid)

    async def next_turn() -> dict[str, Any]:
        async with client(appliance, session_id=session_id) as again:
            assert again.session["resumed"], again.session
            again.say(follow_up.samples, follow_up.speech_end_s)
            turn_no = again.session["turns"] + 1
            end: dict[str, Any] = await again.turn_heard(turn_no)
            return end

    end = asyncio.run(next_turn())
    assert end["status"] == "done" and "paris" in end["reply"].lower(), end
    lines = appliance.history(session_id)
    users = [line["text"].lower() for line in lines if line["role"] == "user"]
    assert any("dragon" in text for text in users) and any("capital" in text for text in users), lines
    if program == "tts":
        assert lines[1]["role"] == "assistant" and lines[1]["text"] == first_end["reply"], lines
    leaked = shm_segments(appliance) - before
    assert not leaked, f"shared memory left behind: {sorted(leaked)}"
