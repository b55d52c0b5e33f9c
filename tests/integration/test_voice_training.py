"""Voice training on the embedded path, end to end: a one-minute sample in, an approximated voice registered.

The sample is another synthesizer's voice (espeak-ng's higher "f3" variant, tests/speech.py), so the test knows how far
the embedded Piper voice has to move: the adaptation target (docs/tts.md) is checked on what the job measured and
again on what /api/speak says in the new voice. Every bad sample is refused with its code and leaves nothing.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audio_files import encode
from tests.conftest import Appliance
from tests.speech import SAMPLE_RATE, SENTENCES, corpus_wer, minute_of_speech
from tests.sse import follow_job

pytestmark = pytest.mark.integration

# A higher voice than Piper's joe: median F0 ~190 Hz against ~130, spectral centroid ~2000 Hz against ~1400.
SAMPLE_VOICE = "espeak-high"
CHECK_SENTENCES = SENTENCES[2::5]


def wav(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    return encode(samples.astype(np.float32), rate, "wav")


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    return minute_of_speech(SAMPLE_VOICE)


def train(appliance: Appliance, data: bytes, *, name: str = "Kal", consent: str | None = "yes", language: str = "en",
          filename: str = "sample.ogg", timeout: float = 60) -> Any:  # fmt: skip
    form = {"name": name, "language": language} | ({"consent": consent} if consent is not None else {})
    with appliance.client(timeout=timeout) as client:
        return client.post("/train-voice", data=form, files={"file": (filename, data, "application/octet-stream")})


def leftovers(appliance: Appliance) -> list[str]:
    jobs = appliance.home / "data" / "jobs"
    return sorted(p.name for p in jobs.iterdir()) if jobs.exists() else []


def voices(appliance: Appliance) -> dict[str, Any]:
    with appliance.client() as client:
        listed: dict[str, Any] = client.get("/api/voices").json()
    return listed


def speech_of(response: Any) -> np.ndarray:
    with wave.open(io.BytesIO(response.content)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def transcribe(appliance: Appliance, samples: np.ndarray) -> str:
    with appliance.client() as client:
        response = client.post(
            "/api/transcribe", files={"file": ("s.wav", encode(samples, 48_000, "wav"), "audio/wav")}
        )
    text: str = response.json()["text"]
    return text


def test_a_one_minute_sample_becomes_an_approximated_voice(appliance: Appliance, sample: np.ndarray) -> None:
    started = train(appliance, encode(sample, SAMPLE_RATE, "ogg"))
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    stream = follow_job(appliance.client(timeout=600), job_id)
    kinds = [kind for kind, _ in stream]
    assert kinds[0] == "queued" and kinds[-1] == "done", [event["detail"] for _, event in stream[-3:]]
    steps = [event["step"] for kind, event in stream if kind == "progress"]
    for step in ("decode", "slice", "transcribe", "reference", "adapt", "verify"):
        assert step in steps, step
    progress = [event["progress"] for _, event in stream]
    assert progress == sorted(progress) and progress[-1] == 1.0

    with appliance.client() as client:
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "done" and job["voice_id"], job
        voice = client.get(f"/api/voices/{job['voice_id']}").json()
    try:
        assert voice["name"] == "Kal" and voice["kind"] == "approximated" and voice["status"] == "ready"
        assert "approximation" in voice["note"] and "GPT-SoVITS" in voice["note"]
        assert voice["consent"] and voice["clips"] >= 4
        m = voice["measures"]
        print("measures:", m)
        # The adaptation target: median F0 at least half-way from the built-in voice to the sample, centroid toward it.
        assert abs(m["voice_f0_hz"] - m["builtin_f0_hz"]) >= 0.5 * abs(m["sample_f0_hz"] - m["builtin_f0_hz"])
        assert np.sign(m["voice_f0_hz"] - m["builtin_f0_hz"]) == np.sign(m["sample_f0_hz"] - m["builtin_f0_hz"])
        assert abs(m["voice_centroid_hz"] - m["sample_centroid_hz"]) < abs(
            m["builtin_centroid_hz"] - m["sample_centroid_hz"]
        )

        folder = appliance.home / "data" / "voices" / voice["voice_id"]
        lines = (folder / "dataset.list").read_text(encoding="utf-8").splitlines()
        assert len(lines) == voice["clips"]
        for line in lines:
            wav_path, speaker, lang, text = line.split("|")
            assert Path(wav_path).name.endswith(".wav") and speaker and lang == "EN" and text.strip()
            assert (folder / "dataset" / Path(wav_path).name).is_file()
        with wave.open(str(folder / "reference.wav")) as ref:
            assert 3.0 <= ref.getnframes() / ref.getframerate() <= 10.0
        assert (folder / "adaptation.json").is_file() and leftovers(appliance) == []

        # The voice speaks: words a listener understands (round trip through the STT worker), in the new voice.
        with appliance.client() as client:
            said = {s: client.post("/api/speak", json={"text": s, "voice": voice["voice_id"]}) for s in CHECK_SENTENCES}
            spoken = list(said.items())
            assert all(r.status_code == 200 for _, r in spoken), [r.text for _, r in spoken]
            pairs = [(s, transcribe(appliance, speech_of(r))) for s, r in spoken]
            # At most one word in twenty misheard: Piper's synthesis varies run to run, and "buy" once came back
            # as "put" (WER exactly 0.05) where other runs heard every word; a voice a listener cannot follow
            # misses far more.
            assert corpus_wer(pairs) <= 0.05, pairs

            activated = client.post(f"/api/voices/{voice['voice_id']}/activate").json()
            assert activated["active_voice_id"] == voice["voice_id"]
            default_voice = client.post("/api/speak", json={"text": CHECK_SENTENCES[0]})
            assert default_voice.headers["X-Mynah-Voice"] == voice["voice_id"]  # the active voice speaks unless named
            assert client.post("/api/voices/builtin/activate").json()["active_voice_id"] is None
            builtin = client.post("/api/speak", json={"text": CHECK_SENTENCES[0]})
            assert builtin.headers["X-Mynah-Voice"] == "builtin"

            assert train(appliance, encode(sample, SAMPLE_RATE, "ogg")).json()["code"] == "voice-name-taken"
            assert client.delete(f"/api/voices/{voice['voice_id']}").status_code == 204
            assert client.get(f"/api/voices/{voice['voice_id']}").status_code == 404
        assert not folder.exists()
    finally:  # a failed check must not leave the voice behind: the module's other tests reuse the name
        with appliance.client() as client:
            client.post("/api/voices/builtin/activate")
            client.delete(f"/api/voices/{job['voice_id']}")


def music_like_noise(seconds: float, seed: int = 3) -> np.ndarray:
    """Chords of harmonic tones changing every half second over pink-ish noise: sound, but no speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.5):
        span = (t >= start) & (t < start + 0.5)
        for root in rng.choice([220.0, 261.6, 293.7, 329.6, 392.0], size=3, replace=False):
            for harmonic in (1, 2, 3):
                out[span] += np.sin(2 * np.pi * root * harmonic * t[span]) / harmonic
    noise = np.cumsum(rng.normal(size=t.size))
    noise -= np.convolve(noise, np.ones(200) / 200, mode="same")
    out = out / np.max(np.abs(out)) * 0.4 + noise / np.max(np.abs(noise)) * 0.1
    music: np.ndarray = out.astype(np.float32)
    return music


def twenty_minutes(sample: np.ndarray) -> np.ndarray:
    """The sample repeated for 20 minutes, at 8 kHz so that the WAV (19 MB) stays under the upload limit."""
    repeated: np.ndarray = np.tile(sample, 22)[: 20 * 60 * SAMPLE_RATE][::2]
    return repeated


BAD_SAMPLES: list[tuple[str, Any, dict[str, str], int, str]] = [
    ("two seconds", lambda s: wav(s[: 2 * SAMPLE_RATE]), {}, 422, "voice-sample-too-short"),
    ("silence", lambda s: wav(np.zeros(60 * SAMPLE_RATE, np.float32)), {}, 422, "voice-sample-silent"),
    ("music-like noise", lambda s: wav(music_like_noise(60.0)), {}, 422, "voice-sample-no-speech"),
    ("twenty minutes", lambda s: wav(twenty_minutes(s), SAMPLE_RATE // 2), {}, 422, "voice-sample-too-long"),
    ("a language GPT-SoVITS cannot train", lambda s: wav(s), {"language": "fr"}, 422, "voice-language-invalid"),
    ("not audio", lambda s: b"%PDF-1.4\n" + bytes(range(256)) * 64, {}, 422, "audio-undecodable"),
    ("a name with path separators", lambda s: wav(s), {"name": "../../etc/passwd"}, 422, "voice-name-invalid"),
    ("a name with a backslash", lambda s: wav(s), {"name": "a\\b"}, 422, "voice-name-invalid"),
    ("no consent", lambda s: wav(s), {"consent": None}, 422, "consent-required"),  # type: ignore[dict-item]
    ("consent refused", lambda s: wav(s), {"consent": "no"}, 422, "consent-required"),
]


@pytest.mark.parametrize(("case", "make", "form", "status", "code"), BAD_SAMPLES, ids=[c[0] for c in BAD_SAMPLES])
def test_a_bad_sample_is_refused_with_its_code_and_leaves_nothing(
    appliance: Appliance, sample: np.ndarray, case: str, make: Any, form: dict[str, Any], status: int, code: str
) -> None:
    before = voices(appliance)
    response = train(appliance, make(sample), **form)
    assert (response.status_code, response.json().get("code")) == (status, code), response.text
    assert voices(appliance) == before
    assert leftovers(appliance) == []


def test_cancelling_a_job_stops_it_and_registers_nothing(appliance: Appliance, sample: np.ndarray) -> None:
    started = train(appliance, wav(sample), name="Cancelled voice")
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    with appliance.client() as client:
        cancelled = client.post(f"/api/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        stream = follow_job(appliance.client(timeout=600), job_id)
        assert stream[-1][0] == "cancelled", stream[-3:]
        job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["error_code"] == "cancelled" and job["voice_id"] is None
    assert all(v["name"] != "Cancelled voice" for v in voices(appliance)["voices"])
    assert leftovers(appliance) == []


def test_unknown_jobs_and_voices_are_404(appliance: Appliance) -> None:
    with appliance.client() as client:
        for method, path in (("GET", "/api/jobs/nope"), ("GET", "/api/jobs/nope/events"),
                             ("POST", "/api/jobs/nope/cancel"), ("GET", "/api/voices/nope"),
                             ("DELETE", "/api/voices/nope"), ("POST", "/api/voices/nope/activate")):  # fmt: skip
            response = client.request(method, path)
            assert response.status_code == 404 and response.json()["code"] in ("job-not-found", "voice-not-found")
