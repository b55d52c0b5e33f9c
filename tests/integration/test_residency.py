"""The resource coordinator end to end, on a budget small enough that plans must evict.

`[resources]` gives this 2-core box a RAM budget that holds every worker and four sessions' RAM, but not the
embedded voice training beside them: the plan evicts batch STT, the face and the LLM (lowest priority first),
which stop through supervisord and come back, ready, after the job. Sessions are asked for the way the voice
pipeline will ask: AdmitSession over the control socket; the fourth is refused on the CPU budget.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq.asyncio

from appliance.config import MynahConfig
from appliance.coordinator.resources import residents_of, training_footprint
from appliance.models.footprints import load_footprints
from ipc.bus import ControlClient
from ipc.messages import AdmitSession, ErrorReply, Message, ReleaseSession, SessionAdmitted, SessionReleased
from ipc.paths import control_endpoint
from tests.audio_files import encode
from tests.conftest import Appliance, start_appliance, stop_appliance
from tests.speech import SAMPLE_RATE, minute_of_speech
from tests.sse import follow_job

pytestmark = pytest.mark.integration

SESSION_RAM_MIB = 30
_TABLE = load_footprints(None)
_RAM = {r.name: r.footprint.ram_mib for r in residents_of(MynahConfig(), _TABLE)}
# Everything resident plus four sessions' RAM fits; training beside them needs batch STT, the face and the LLM gone.
BUDGET_MIB = sum(_RAM.values()) + 4 * SESSION_RAM_MIB + 5
TRAINING = training_footprint(MynahConfig(), _TABLE)
assert sum(_RAM.values()) + TRAINING.ram_mib - _RAM["stt-batch"] - _RAM["lipsync"] > BUDGET_MIB
assert sum(_RAM.values()) + TRAINING.ram_mib - _RAM["stt-batch"] - _RAM["lipsync"] - _RAM["llm"] <= BUDGET_MIB
EVICTED = ("stt-batch", "lipsync", "llm")


@pytest.fixture(scope="module")
def appliance() -> Iterator[Appliance]:
    extra = f"[resources]\nram_mib = {BUDGET_MIB}\ncpu_cores = 2\nsession_ram_mib = {SESSION_RAM_MIB}\n"
    running = start_appliance(extra)
    try:
        yield running
    finally:
        stop_appliance(running)


async def _ask(appliance: Appliance, messages: list[Message]) -> list[Message]:
    ctx = zmq.asyncio.Context()
    client = ControlClient(ctx, control_endpoint(appliance.home / "run"), f"test-residency-{time.monotonic_ns()}")
    client.start()
    try:
        return [await client.request(message, deadline_s=30) for message in messages]
    finally:
        await client.close()
        ctx.term()


def ask(appliance: Appliance, *messages: Message) -> list[Message]:
    return asyncio.run(_ask(appliance, list(messages)))


def states(appliance: Appliance) -> dict[str, tuple[str, bool]]:
    return {p["name"]: (p["state"], p["ready"]) for p in appliance.status()["programs"]}


def test_a_fourth_live_session_is_refused_on_the_cpu_budget(appliance: Appliance) -> None:
    answers = ask(appliance, *(AdmitSession(f"s{n}") for n in range(1, 5)))
    assert [type(a) for a in answers[:3]] == [SessionAdmitted] * 3, answers
    assert [a.sessions for a in answers[:3] if isinstance(a, SessionAdmitted)] == [1, 2, 3]
    refused = answers[3]
    assert isinstance(refused, ErrorReply) and refused.code == "session-refused-budget", refused
    assert "CPU: 4 sessions need" in refused.message and "RAM" not in refused.message
    released = ask(appliance, *(ReleaseSession(f"s{n}") for n in range(1, 4)))
    assert [r.sessions for r in released if isinstance(r, SessionReleased)] == [2, 1, 0]
    assert all(ready for _, ready in states(appliance).values())  # nothing had to go for them
    again = ask(appliance, AdmitSession("s5"), ReleaseSession("s5"))
    assert isinstance(again[0], SessionAdmitted) and again[0].sessions == 1


def test_voice_training_evicts_the_face_and_the_llm_and_restores_them(appliance: Appliance) -> None:
    sample = encode(minute_of_speech("espeak-high"), SAMPLE_RATE, "ogg")
    with appliance.client(timeout=120) as client:
        started = client.post("/train-voice", data={"name": "Roomy", "language": "en", "consent": "yes"},
                              files={"file": ("sample.ogg", sample, "application/octet-stream")})  # fmt: skip
    assert started.status_code == 202, started.text
    seen: dict[str, set[str]] = {name: set() for name in EVICTED}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        following = pool.submit(follow_job, appliance.client(timeout=600), started.json()["job_id"])
        while not following.done():
            for name, (state, _) in states(appliance).items():
                if name in seen:
                    seen[name].add(state)
            time.sleep(0.5)
        stream: list[tuple[str, dict[str, Any]]] = following.result()
    assert stream[-1][0] == "done", stream[-3:]
    details = [event["detail"] for kind, event in stream if kind == "progress" and event["step"] == "adapt"]
    assert any(d == "made room: program:stt-batch, program:lipsync, program:llm" for d in details), details
    for name in ("lipsync", "llm"):
        assert "STOPPED" in seen[name], (name, seen[name])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = states(appliance)
        if all(now[name] == ("RUNNING", True) for name in EVICTED):
            break
        time.sleep(1)
    assert all(now[name] == ("RUNNING", True) for name in EVICTED), now
    with appliance.client() as client:
        reply = client.post("/chat", json={"text": "Hello there."})
    assert reply.status_code == 200, reply.text
