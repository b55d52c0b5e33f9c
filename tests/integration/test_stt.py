"""Speech in, end to end: live PCM over the WebSocket and uploaded files, through the running STT workers.

The speech is synthesized by the tests themselves (tests/speech.py); nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import statistics
import threading
import time
from typing import Any

import numpy as np
import pytest

from tests.audio_files import encode
from tests.conftest import Appliance
from tests.live import SAMPLE_RATE, end_of_speech_latency, stream_audio
from tests.speech import SENTENCES, Clip, corpus_wer, pad, synthesize, wer

pytestmark = pytest.mark.integration

# Long enough that partial transcripts are due before the end (partials start after ~0.8 s of speech).
LONG = "We should plant some flowers near the front door, and then water the garden before it gets dark."


def live(appliance: Appliance, samples: np.ndarray, **kwargs: Any) -> Any:
    return asyncio.run(stream_audio(appliance.url, samples, token=appliance.token, ca=appliance.ca, **kwargs))


@pytest.fixture(scope="module")
def long_clip() -> Clip:
    return pad(synthesize(LONG, "piper"), 1.0, 1.5)


def test_a_live_utterance_gives_partials_then_a_final_at_the_true_end(appliance: Appliance, long_clip: Clip) -> None:
    result = live(appliance, long_clip.samples)
    kinds = [event["type"] for _, event in result.events]
    assert "error" not in kinds, result.events
    finals = result.of("final")
    assert len(finals) == 1, kinds
    partials = result.of("partial")
    assert partials, "partial transcripts while the user speaks"
    assert result.arrival(partials[0]) < result.arrival(finals[0])
    assert wer(LONG, finals[0]["text"]) < 0.1, finals[0]["text"]
    # Committed text never changes: each partial's committed text extends the previous one.
    committed = [p["committed"] for p in partials]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(committed))
    vad = result.of("vad")
    assert [v["kind"] for v in vad] == ["start", "end"]
    end_error_s = vad[1]["sample"] / SAMPLE_RATE - long_clip.speech_end_s
    assert abs(end_error_s) < 0.15, f"end of speech detected {end_error_s * 1000:.0f} ms from the true end"
    assert vad[0]["sample"] / SAMPLE_RATE <= long_clip.speech_start_s + 0.05
    latency = end_of_speech_latency(result, long_clip.speech_end_s)
    assert latency is not None and latency > 0
    assert kinds[-1] == "closed"


def test_two_utterances_in_one_stream_give_two_finals(appliance: Appliance) -> None:
    first, second = synthesize(SENTENCES[0], "piper"), synthesize(SENTENCES[3], "festival")
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    samples = np.concatenate([gap[:8000], first.samples, gap, second.samples, gap])
    result = live(appliance, samples)
    finals = [event["text"] for event in result.of("final")]
    assert len(finals) == 2, result.events
    assert corpus_wer([(SENTENCES[0], finals[0]), (SENTENCES[3], finals[1])]) < 0.1, finals


def test_silence_gives_no_transcript(appliance: Appliance) -> None:
    result = live(appliance, np.zeros(SAMPLE_RATE * 2, dtype=np.float32), settle_s=0.5)
    assert result.of("final") == [] and result.of("vad") == []


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "webm", "mp3", "m4a"])
def test_an_uploaded_file_in_every_common_format_is_transcribed(appliance: Appliance, fmt: str) -> None:
    clip = pad(synthesize(SENTENCES[7], "piper"), 0.3, 0.5)
    data = encode(clip.samples, SAMPLE_RATE, fmt)
    with appliance.client(timeout=120) as http:
        response = http.post("/api/transcribe", files={"file": (f"speech.{fmt}", data)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert wer(SENTENCES[7], body["text"]) < 0.1, body["text"]
    assert abs(body["duration_s"] - clip.duration_s) < 0.15
    assert body["language"] == "en"
    assert (
        body["segments"] and 0 <= body["segments"][0]["start"] < body["segments"][-1]["end"] <= body["duration_s"] + 0.5
    )


def test_an_upload_may_name_its_language(appliance: Appliance) -> None:
    data = encode(pad(synthesize(SENTENCES[7], "piper"), 0.3, 0.5).samples, SAMPLE_RATE, "wav")
    with appliance.client(timeout=120) as http:
        forced = http.post("/api/transcribe", files={"file": ("speech.wav", data)}, data={"language": "de"})
        refused = http.post("/api/transcribe", files={"file": ("speech.wav", data)}, data={"language": "xx"})
    assert forced.status_code == 200 and forced.json()["language"] == "de", forced.text
    assert refused.status_code == 422 and refused.json()["code"] == "stt-bad-language", refused.text


def _garbage() -> bytes:
    return np.random.default_rng(3).integers(0, 256, 20_000, dtype=np.uint8).tobytes()


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("garbage.wav", _garbage(), 422, "audio-undecodable"),
        ("empty.wav", b"", 422, "audio-empty"),
        ("notes.wav", b"These are my notes, not audio at all.\n" * 200, 422, "audio-undecodable"),
        ("short.wav", encode(np.zeros(1600, np.float32) + 0.01, SAMPLE_RATE, "wav"), 422, "audio-too-short"),
        ("silence.wav", encode(np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE, "wav"), 422, "no-speech"),
    ],
)
def test_bad_uploads_get_clear_errors_and_the_worker_stays_up(
    appliance: Appliance, name: str, data: bytes, status: int, code: str
) -> None:
    before = appliance.program("stt-batch")
    with appliance.client() as http:
        response = http.post("/api/transcribe", files={"file": (name, data)})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    after = appliance.program("stt-batch")
    assert after["pid"] == before["pid"] and after["ready"]


def test_an_oversized_upload_is_refused_before_it_is_read(appliance: Appliance) -> None:
    huge = b"\0" * (51 * 1024 * 1024)
    with appliance.client() as http:
        response = http.post("/api/transcribe", files={"file": ("huge.wav", huge)})
    assert response.status_code == 413
    assert response.json()["code"] == "request-too-large"


ROUNDS = 7


def test_a_long_upload_does_not_delay_a_live_utterance(appliance: Appliance) -> None:
    """Batch work yields to live work: the final of an utterance spoken during a long file upload arrives
    within 20% of the time it takes with nothing else running (medians of 7, measured side by side: the ratio is
    1.1-1.15 on a quiet machine, and with 3 or 5 rounds the VM's noise crossed the bound in CI, 1.22 and 1.20)."""
    clip = pad(synthesize(SENTENCES[1], "piper"), 0.8, 1.2)
    long_speech = np.concatenate([pad(synthesize(s, "piper"), 0.2, 0.3).samples for s in SENTENCES[:16]] * 3)
    upload = encode(long_speech, SAMPLE_RATE, "flac")

    def latency() -> float:
        value = end_of_speech_latency(live(appliance, clip.samples, settle_s=2.5), clip.speech_end_s)
        assert value is not None, "no final"
        return value

    alone: list[float] = []
    loaded: list[float] = []
    uploads: list[int] = []

    def transcribe_file(started: threading.Event) -> None:
        with appliance.client(timeout=600) as http:
            started.set()
            uploads.append(http.post("/api/transcribe", files={"file": ("long.flac", upload)}).status_code)

    for _ in range(ROUNDS):
        alone.append(latency())
        started = threading.Event()
        worker = threading.Thread(target=transcribe_file, args=(started,))
        worker.start()
        started.wait()
        time.sleep(1.0)  # the batch decode is under way
        loaded.append(latency())
        worker.join()
    assert uploads == [200] * ROUNDS
    ratio = statistics.median(loaded) / statistics.median(alone)
    print(f"live final latency alone {alone} loaded {loaded} ratio {ratio:.2f}")
    assert ratio <= 1.2, f"alone {alone}, during a long upload {loaded}"


def test_kill_9_of_the_stt_worker_during_a_stream(appliance: Appliance) -> None:
    before = appliance.program("stt")
    first = pad(synthesize(SENTENCES[10], "espeak"), 0.5, 1.0)
    second = pad(synthesize(SENTENCES[12], "piper"), 0.5, 1.5)
    waiting = np.zeros(SAMPLE_RATE * 12, dtype=np.float32)  # time for the worker to come back

    def kill_soon() -> None:
        time.sleep(first.duration_s + 0.5)
        os.kill(before["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    result = live(appliance, np.concatenate([first.samples, waiting, second.samples]))
    killer.join()
    errors = result.of("error")
    assert errors and errors[0]["code"] == "stt-worker-crashed", result.events
    after = appliance.program("stt")
    assert after["pid"] != before["pid"] and after["ready"]
    assert after["restarts"] == before["restarts"] + 1
    finals = result.of("final")
    assert finals, result.events
    assert wer(SENTENCES[12], finals[-1]["text"]) < 0.15, finals[-1]["text"]
    assert result.arrival(errors[0]) < result.arrival(finals[-1])
