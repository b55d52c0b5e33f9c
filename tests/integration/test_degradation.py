"""Graceful degradation, against the running appliance: a backend that cannot be used falls back to the next
configured one (GPT-SoVITS -> Piper, Ollama -> the embedded model, SadTalker -> the real-time renderer), the
turn delivers what it can, /health says `degraded` and why, and the preferred backend is taken back, without a
person, once it answers again (`supervision.fallback_retry_s`, 2 s in tests).

The engines are FAKES speaking their documented HTTP APIs (tests/fakes/fake_ollama.py, fake_gpt_sovits.py):
neither Ollama nor GPT-SoVITS can run here. Stopping a fake is its engine going away; starting it again on the
same port is the engine coming back. SadTalker is simply not installed (no `lipsync.sadtalker.root`).
Everything else is real: supervisord, the workers, the buses, Piper, the embedded LLM, the face renderer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Appliance, free_port, start_appliance, stop_appliance
from tests.fakes.fake_gpt_sovits import FakeGptSovits, write_reference_clip
from tests.fakes.fake_ollama import FakeOllama
from tests.faults import first_problem, shm_segments
from tests.speech import pad, synthesize
from tests.voice_client import VoiceClient

pytestmark = pytest.mark.integration

OLLAMA_MODEL = "llama3.2:3b"
OLLAMA_REPLY = "Paris is the capital of France."
QUESTION = "What is the capital of France?"
ERROR_WITHIN_S = 5.0
RECOVERY_S = 60.0


@dataclass
class Stack:
    appliance: Appliance
    ollama: FakeOllama
    gpt_sovits: FakeGptSovits


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reference = write_reference_clip(tmp_path_factory.mktemp("reference") / "default.wav")
    gpt_sovits = FakeGptSovits()
    gpt_sovits.port = free_port()  # where the config points; nothing answers there until the test starts it
    with FakeOllama(models=[OLLAMA_MODEL]) as ollama:
        ollama.script.reply = OLLAMA_REPLY
        appliance = start_appliance(
            f"""
[llm.ollama]
host = "{ollama.host}"
model = "{OLLAMA_MODEL}"
[tts]
backend = "gpt-sovits"
[tts.gpt_sovits]
url = "{gpt_sovits.url}"
reference_path = "{reference}"
reference_text = "A default voice."
[lipsync]
backend = "sadtalker"
[resources]
# The GPU box these backends are configured for: the residency planner budgets sessions by the configured
# stack (GPT-SoVITS, SadTalker, Ollama on the GPU), and this machine has no GPU for NVML to measure.
gpu_mib = 16384
""",
            backend="ollama",
        )
        try:
            yield Stack(appliance, ollama, gpt_sovits)
        finally:
            stop_appliance(appliance)
            gpt_sovits.stop()


def health(appliance: Appliance) -> dict[str, Any]:
    with appliance.client() as http:
        body: dict[str, Any] = http.get("/health").json()
    return body


def problem_of(report: dict[str, Any], program: str) -> str:
    return next((p for p in report["problems"] if p.startswith(f"{program}: ")), "")


def wait_until(check: Callable[[], Any], what: str, within_s: float = RECOVERY_S) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {within_s} s: {what}")


def voice_turn(appliance: Appliance, session_id: str | None = None) -> tuple[dict[str, Any], VoiceClient]:
    """Ask QUESTION aloud; the turn's turn_end once its answer was heard, and the client."""
    question = pad(synthesize(QUESTION, "piper"), 0.4, 0.2)

    async def talk() -> tuple[dict[str, Any], VoiceClient]:
        async with VoiceClient(appliance.url, appliance.token, ca=appliance.ca, session_id=session_id) as voice:
            voice.say(question.samples, question.speech_end_s)
            end: dict[str, Any] = await voice.turn_heard(voice.session["turns"] + 1)
            return end, voice

    return asyncio.run(talk())


def test_backends_that_cannot_load_fall_back_and_the_preferred_one_is_taken_back(stack: Stack) -> None:
    appliance = stack.appliance
    report = health(appliance)
    assert report["status"] == "degraded", report
    tts_problem, face_problem = problem_of(report, "tts"), problem_of(report, "lipsync")
    assert "gpt-sovits unavailable (tts-unreachable" in tts_problem and "using piper" in tts_problem, report
    assert "sadtalker unavailable (sadtalker-unavailable" in face_problem, report
    assert "real-time renderer" in face_problem, report
    assert not problem_of(report, "llm"), "Ollama answers: the llm is on its preferred backend"
    assert appliance.program("tts")["backend"] == "piper"

    # Degraded, the turn still delivers everything: Ollama's words, spoken by Piper, with the face drawn.
    end, voice = voice_turn(appliance)
    assert end["status"] == "done" and end["reply"] == OLLAMA_REPLY, end
    assert end["samples"] > 0 and end["frames"] > 0, end
    assert not voice.of("error"), voice.of("error")
    assert not stack.gpt_sovits.requests, "nothing reached GPT-SoVITS: it was not there"

    # GPT-SoVITS's server starts: the tts worker takes it back by itself.
    stack.gpt_sovits.start()
    wait_until(lambda: appliance.program("tts")["backend"] == "gpt-sovits", "the tts worker back on GPT-SoVITS")
    report = health(appliance)
    assert not problem_of(report, "tts"), report
    assert [p.split(":")[0] for p in report["problems"]] == ["lipsync"], "only SadTalker is still missing"
    end, _ = voice_turn(appliance, voice.session["session_id"])
    assert end["status"] == "done" and end["samples"] > 0, end
    assert any(r.path == "/tts" for r in stack.gpt_sovits.requests), "the answer was spoken by GPT-SoVITS"


def test_ollama_going_away_mid_answer_fails_that_turn_fast_then_the_embedded_model_answers_until_it_is_back(
    stack: Stack,
) -> None:
    appliance, ollama = stack.appliance, stack.ollama
    before = shm_segments(appliance)
    ollama.script.reply = "Once upon a time " + "a dragon flew over the hills and far away, " * 6
    ollama.script.chunk_delay_s = 0.25
    question = pad(synthesize("Tell me a story about a dragon.", "piper"), 0.4, 0.2)

    async def interrupted_by_ollama() -> tuple[float, dict[str, Any], str]:
        async with VoiceClient(appliance.url, appliance.token, ca=appliance.ca) as voice:
            voice.say(question.samples, question.speech_end_s)
            await voice.wait_for(lambda: voice.of("reply"), 90)  # Ollama's words are streaming in
            gone_at = time.monotonic()
            await asyncio.to_thread(ollama.stop)  # the server goes away mid-answer
            problem = await voice.wait_for(lambda: first_problem(voice, gone_at), 30)
            await voice.wait_for(lambda: [e for e in voice.of("turn_end") if e["turn"] == 1], 30)
            return problem[0] - gone_at, problem[1], voice.session["session_id"]

    delay, problem, session_id = asyncio.run(interrupted_by_ollama())
    print(f"ollama gone: {problem.get('code')} after {delay:.2f} s")
    assert delay < ERROR_WITHIN_S, f"the client heard of Ollama's going away after {delay:.1f} s"
    assert problem.get("code", "").startswith("llm-"), problem

    def on_embedded() -> dict[str, Any] | None:  # "falling back" first, while the embedded model loads
        report = health(appliance)
        return report if "using embedded" in problem_of(report, "llm") else None

    report = wait_until(on_embedded, "the llm degraded, on the embedded model")
    assert problem_of(report, "llm").startswith("llm: ollama failed (llm-"), report
    assert appliance.program("llm")["backend"] == "embedded"
    # The next turn is answered, by the embedded model, in the same conversation.
    end, _ = voice_turn(appliance, session_id)
    assert end["status"] == "done" and end["reply"].strip() and "dragon flew" not in end["reply"], end

    # Ollama is back where it was: the llm worker takes it back by itself, and answers with it.
    ollama.script.reply, ollama.script.chunk_delay_s = OLLAMA_REPLY, 0.0
    ollama.start()
    wait_until(lambda: not problem_of(health(appliance), "llm"), "the llm back on Ollama")
    assert appliance.program("llm")["backend"] == "ollama"
    end, _ = voice_turn(appliance, session_id)
    assert end["status"] == "done" and end["reply"] == OLLAMA_REPLY, end

    lines = appliance.history(session_id)
    users = [line["text"].lower() for line in lines if line["role"] == "user"]
    assert len(users) == 3 and "dragon" in users[0] and all("capital" in u for u in users[1:]), lines
    assert not shm_segments(appliance) - before, "shared memory left behind"


def test_without_sadtalker_a_generated_video_is_drawn_by_the_real_time_renderer(stack: Stack) -> None:
    with stack.appliance.client(timeout=180) as http:
        response = http.post("/generate-avatar", data={"text": "Hello from the fallback renderer."})
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("video/mp4")
    assert response.content[4:8] == b"ftyp" and len(response.content) > 10_000
    assert problem_of(health(stack.appliance), "lipsync"), "still degraded: SadTalker is still not installed"
