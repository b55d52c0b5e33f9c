"""A worker that hangs during a voice turn (SIGSTOP: alive, silent, holding its work), and the stt worker killed
while the user speaks. The coordinator takes a worker silent for `supervision.hang_timeout_s` (3 s here) for hung:
it fails what the worker held with `<program>-worker-hung` and has supervisord kill it (SIGKILL), and supervisord
starts it again. Each time: the client hears a clear error within 5 s of the fault, the appliance recovers without
a person, the next turn works, the stored conversation keeps what was said, and no shared-memory segment or
temporary file is left behind.

The helpers mirror tests/integration/test_faults.py (kill -9 of the other workers), which is not imported: a test
module is no library.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Appliance
from tests.faults import client, first_problem, leftovers, shm_segments
from tests.speech import pad, synthesize
from tests.voice_client import VoiceClient

pytestmark = pytest.mark.integration

SEED = "What colour is the sky?"
LONG_QUESTION = "Tell me a very long story about a dragon and a knight."
FOLLOW_UP = "What is the capital of France?"
ERROR_WITHIN_S = 5.0
RECOVERY_S = 120.0
TURN_END_S = 60.0


@dataclass(frozen=True)
class Fault:
    program: str
    moment: str  # speaking | after-speech | turn (the question became a turn) | playing (its answer is heard)
    signal: signal.Signals = signal.SIGSTOP


FAULTS = {
    "stt-hangs-while-the-user-speaks": Fault("stt", "speaking"),
    "stt-hangs-right-after-the-end-of-speech": Fault("stt", "after-speech"),
    # Frozen before the turn reaches it (the embedded model would finish a short answer in a second), so the
    # turn's request waits in the hung worker's hands.
    "llm-hangs-holding-the-turn": Fault("llm", "after-speech"),
    "tts-hangs-holding-the-answer": Fault("tts", "turn"),
    "lipsync-hangs-while-the-answer-plays": Fault("lipsync", "playing"),
    "stt-killed-while-the-user-speaks": Fault("stt", "speaking", signal.SIGKILL),
}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_healthy(appliance: Appliance, program: str, old_pid: int) -> None:
    deadline = time.monotonic() + RECOVERY_S
    while time.monotonic() < deadline:
        report = appliance.status()
        mine = {p["name"]: p for p in report.get("programs", [])}.get(program, {})
        if report.get("status") == "ok" and mine.get("pid") not in (None, 0, old_pid) and mine.get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{program} did not come back within {RECOVERY_S} s: {appliance.status()}")


def seed(appliance: Appliance) -> tuple[str, list[tuple[str, str]]]:
    """A conversation with one exchange in it: its id and its stored lines."""
    with appliance.client() as http:
        answered = http.post("/chat", json={"text": SEED})
    assert answered.status_code == 200, answered.text
    session_id: str = answered.json()["session_id"]
    return session_id, [(line["role"], line["text"]) for line in appliance.history(session_id)]


async def strike_when_due(voice: VoiceClient, fault: Fault, turn_no: int) -> None:
    """Wait for the fault's moment in the turn."""
    match fault.moment:
        case "speaking" | "after-speech":
            kind = "start" if fault.moment == "speaking" else "end"
            await voice.wait_for(lambda: [e for e in voice.of("vad") if e["kind"] == kind], 90)
        case "turn":
            await voice.wait_for(lambda: [e for e in voice.of("turn") if e["turn"] == turn_no], 90)
        case "playing":
            media = await voice.wait_for(lambda: voice.turns.get(turn_no), 90)
            await voice.wait_for(lambda: media.available() > 0, 90)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(FAULTS))
def test_a_worker_that_hangs_or_dies_during_a_voice_turn(appliance: Appliance, name: str) -> None:
    fault = FAULTS[name]
    question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)
    follow_up = pad(synthesize(FOLLOW_UP, "piper"), 0.4, 0.2)
    session_id, seeded = seed(appliance)
    shm_before, temp_before = shm_segments(appliance), leftovers(appliance)
    before = appliance.program(fault.program)
    pid = before["pid"]

    async def talk() -> tuple[float, float, dict[str, Any], dict[str, Any] | None]:
        async with client(appliance, session_id=session_id) as voice:
            turn_no = voice.session["turns"] + 1
            voice.say(question.samples, question.speech_end_s)
            await strike_when_due(voice, fault, turn_no)
            struck_at = time.monotonic()
            os.kill(pid, fault.signal)
            at, problem = await voice.wait_for(lambda: first_problem(voice, struck_at), 60)
            # A question that became a turn must still end (failed, or done with what could be delivered).
            end = None
            if [e for e in voice.of("turn") if e["turn"] == turn_no]:
                end = await voice.wait_for(
                    lambda: next((e for e in voice.of("turn_end") if e["turn"] == turn_no), None), TURN_END_S
                )
            return struck_at, at - struck_at, problem, end

    try:
        struck_at, delay, problem, end = asyncio.run(talk())
        wait_healthy(appliance, fault.program, pid)
        recovered = time.monotonic() - struck_at
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone, as it should be: never leave a stopped process
            os.kill(pid, signal.SIGCONT)
    print(f"{name}: {problem.get('code')} {delay:.2f} s after the {fault.signal.name}; {fault.program} ready again "
          f"after {recovered:.1f} s; turn {end and end['status']}")  # fmt: skip
    assert delay < ERROR_WITHIN_S, f"the client heard of the {fault.program} fault after {delay:.1f} s: {problem}"
    codes = {f"{fault.program}-worker-crashed"}
    if fault.signal == signal.SIGSTOP:  # found hung first; killed for it after
        codes.add(f"{fault.program}-worker-hung")
    assert problem.get("code") in codes, problem
    after = appliance.program(fault.program)
    assert not alive(pid), f"the hung {fault.program} (pid {pid}) was not killed"
    assert after["restarts"] == before["restarts"] + 1, (before, after)
    if fault.program == "llm":
        assert end is not None and end["status"] == "failed" and end["code"] == problem["code"], end
    if fault.program == "lipsync":  # no face: the speech goes on with the still avatar
        assert end is not None and end["status"] == "done" and end["samples"] > 0, end
    if end is not None and end["status"] == "done":
        assert end["reply"].strip(), end

    async def next_turn() -> dict[str, Any]:
        async with client(appliance, session_id=session_id) as again:
            assert again.session["resumed"], again.session
            again.say(follow_up.samples, follow_up.speech_end_s)
            heard: dict[str, Any] = await again.turn_heard(again.session["turns"] + 1)
            return heard

    heard = asyncio.run(next_turn())
    assert heard["status"] == "done" and "paris" in heard["reply"].lower(), heard
    lines = appliance.history(session_id)
    assert [(line["role"], line["text"]) for line in lines[: len(seeded)]] == seeded, lines
    users = [line["text"].lower() for line in lines if line["role"] == "user"]
    assert any("capital" in text for text in users), lines
    if end is not None:  # the question became a turn: what the user said is kept
        assert any("dragon" in text for text in users), lines
    leaked = shm_segments(appliance) - shm_before
    assert not leaked, f"shared memory left behind: {sorted(leaked)}"
    left = leftovers(appliance) - temp_before
    assert not left, f"temporary files left behind: {sorted(map(str, left))}"
