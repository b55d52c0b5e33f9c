"""POST /generate-avatar end to end: text or an uploaded recording in, an MP4 of the avatar saying it out.

Short speech comes back as the MP4 itself; long speech becomes a job whose MP4 is at /api/jobs/{id}/result. Each
video is read back with PyAV: H.264 at exactly 30 fps, AAC at 48 kHz, and the two streams as long as each other
within a frame. Every bad input (a landscape with no face, two faces, a thumbnail, a truncated PNG, an upload
over the limit, empty audio) is refused with its code, and no render leaves anything under data/jobs.
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import cv2
import numpy as np
import pytest

from tests.audio_files import encode
from tests.conftest import ROOT, Appliance
from tests.speech import SENTENCES, synthesize
from tests.sse import follow_job

pytestmark = pytest.mark.integration

AVATAR = ROOT / "assets" / "avatar.png"
FPS = 30
SHORT_TEXT = "Hello! I am Mynah, and I can talk."
LONG_TEXT = " ".join(SENTENCES[:8])  # about 30 s of speech: over lipsync.direct_max_s (12 s)


# --- inputs --------------------------------------------------------------------------------------------------


def png(image_bgr: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image_bgr)
    assert ok
    return data.tobytes()


def avatar_bgr() -> np.ndarray:
    image = cv2.imread(str(AVATAR), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def landscape() -> bytes:
    """A sky gradient over green hills: a picture, with no face in it."""
    height, width = 480, 800
    y = np.linspace(0, 1, height)[:, None]
    sky = np.stack([np.broadcast_to(235 - 60 * y, (height, width)), np.broadcast_to(200 - 70 * y, (height, width)),
                    np.broadcast_to(140 - 40 * y, (height, width))], axis=-1)  # fmt: skip  # BGR: blue on top
    image = sky.astype(np.uint8).copy()
    x = np.arange(width)
    for amplitude, period, base, colour in ((60, 350, 300, (60, 140, 70)), (40, 220, 360, (40, 110, 50))):
        ridge = (base + amplitude * np.sin(2 * np.pi * x / period)).astype(int)
        for column, top in enumerate(ridge):
            image[top:, column] = colour
    return png(image)


def two_faces() -> bytes:
    face = avatar_bgr()
    return png(np.concatenate([face, face], axis=1))


def thumbnail() -> bytes:
    return png(cv2.resize(avatar_bgr(), (64, 64), interpolation=cv2.INTER_AREA))


def truncated_png() -> bytes:
    data = AVATAR.read_bytes()
    return data[: len(data) // 3]


def wide_avatar() -> bytes:
    """The avatar on a wider canvas: usable, but it has to be cropped square around the face."""
    face = avatar_bgr()
    margin = np.full((face.shape[0], 160, 3), 235, np.uint8)
    return png(np.concatenate([margin, face, margin], axis=1))


def speech_wav(text: str = SENTENCES[1]) -> tuple[bytes, float]:
    clip = synthesize(text, "espeak")
    return encode(clip.samples, 16_000, "wav"), clip.duration_s


def some_speech() -> bytes:
    return speech_wav()[0]


def empty_wav() -> bytes:
    """A well-formed WAV header with no samples after it."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
    return out.getvalue()


# --- helpers ------------------------------------------------------------------------------------------------


def generate(appliance: Appliance, **parts: Any) -> Any:
    """POST /generate-avatar with form fields (str) and files (bytes) taken from `parts`."""
    files = {name: (f"{name}.bin", value, "application/octet-stream") for name, value in parts.items()
             if isinstance(value, bytes)}  # fmt: skip
    data = {name: str(value) for name, value in parts.items() if not isinstance(value, bytes)}
    with appliance.client(timeout=600) as client:
        return client.post("/generate-avatar", data=data, files=files or None)


def leftovers(appliance: Appliance) -> list[str]:
    """Folders under data/jobs other than those of done jobs (which keep their MP4 there)."""
    jobs = appliance.home / "data" / "jobs"
    if not jobs.exists():
        return []
    with appliance.client() as client:
        found = {p.name: client.get(f"/api/jobs/{p.name}") for p in jobs.iterdir()}
    return sorted(name for name, r in found.items() if r.status_code != 200 or r.json()["status"] != "done")


def check_mp4(data: bytes, *, frames: int | None = None) -> dict[str, float]:
    """The MP4's promises; returns what it measured."""
    assert data[4:8] == b"ftyp", data[:16]
    with av.open(io.BytesIO(data), mode="r") as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert video.average_rate == Fraction(FPS, 1)
        assert audio.codec_context.sample_rate == 48_000
        width, height = video.codec_context.width, video.codec_context.height
        video_times = [f.time for f in container.decode(video=0)]
    with av.open(io.BytesIO(data), mode="r") as container:
        spans = [(f.time, f.samples / f.sample_rate) for f in container.decode(audio=0)]
    assert all(t is not None for t in video_times) and all(t is not None for t, _ in spans)
    assert video_times == pytest.approx([i / FPS for i in range(len(video_times))], abs=1e-3)  # pts = index
    video_s = len(video_times) / FPS
    audio_s = max(t + n for t, n in spans if t is not None) - min(t for t, _ in spans if t is not None)
    assert abs(video_s - audio_s) <= 1 / FPS, (video_s, audio_s)
    if frames is not None:
        assert len(video_times) == frames
    assert width == height and width % 2 == 0
    return {"frames": len(video_times), "video_s": video_s, "audio_s": audio_s, "size": width}


def assert_refused(response: Any, status: int, *codes: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] in codes, response.json()


# --- tests --------------------------------------------------------------------------------------------------


def test_a_short_text_comes_back_as_an_mp4(appliance: Appliance) -> None:
    response = generate(appliance, text=SHORT_TEXT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    frames = int(response.headers["X-Mynah-Frames"])
    measured = check_mp4(response.content, frames=frames)
    assert float(response.headers["X-Mynah-Duration"]) == pytest.approx(measured["video_s"], abs=1 / FPS)
    assert 1.0 < measured["video_s"] < 12.0, measured
    assert response.headers["X-Mynah-Lipsync-Backend"]
    assert "X-Mynah-Avatar-Adjusted" not in response.headers  # the default avatar needs nothing done
    assert leftovers(appliance) == []


def test_an_uploaded_recording_comes_back_as_an_mp4_of_its_length(appliance: Appliance) -> None:
    wav, seconds = speech_wav()
    response = generate(appliance, audio=wav, resolution=512)
    assert response.status_code == 200, response.text
    measured = check_mp4(response.content)
    assert measured["frames"] == math.ceil(round(seconds * 48_000) / 1600)
    assert measured["size"] == 512
    assert leftovers(appliance) == []


def test_an_uploaded_portrait_is_prepared_and_its_adjustment_reported(appliance: Appliance) -> None:
    with appliance.client(timeout=120) as client:
        prepared = client.post("/api/avatars", files={"image": ("wide.png", wide_avatar(), "image/png")})
    assert prepared.status_code == 200, prepared.text
    info = prepared.json()
    assert info["adjusted"] and info["width"] == info["height"]
    x, y, w, h = info["face_box"]
    assert 0 <= x < x + w <= info["width"] and 0 <= y < y + h <= info["height"]
    assert len(info["lips"]) >= 8 and info["mouth_width_px"] > 0
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in info["lips"])  # the lips are in the face

    by_image = generate(appliance, text=SHORT_TEXT, avatar=wide_avatar())
    assert by_image.status_code == 200, by_image.text
    assert by_image.headers["X-Mynah-Avatar-Adjusted"]
    check_mp4(by_image.content)
    by_id = generate(appliance, text=SHORT_TEXT, avatar_id=info["avatar_id"])
    assert by_id.status_code == 200, by_id.text
    check_mp4(by_id.content)
    assert leftovers(appliance) == []


def test_long_text_becomes_a_job_with_events_and_a_result(appliance: Appliance) -> None:
    started = generate(appliance, text=LONG_TEXT)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert started.headers["Location"] == f"/api/jobs/{job_id}/result"
    with appliance.client() as client:
        early = client.get(f"/api/jobs/{job_id}/result")
        status = client.get(f"/api/jobs/{job_id}").json()["status"]
    if status != "done":  # ~30 s of speech is not rendered in the moment it took to ask
        assert_refused(early, 409, "job-not-done")

    stream = follow_job(appliance.client(timeout=900), job_id)
    kinds = [kind for kind, _ in stream]
    assert kinds[0] == "queued" and kinds[-1] == "done", stream[-3:]
    steps = {event["step"] for kind, event in stream if kind == "progress"}
    assert {"speech", "render"} <= steps, steps
    progress = [event["progress"] for _, event in stream]
    assert progress == sorted(progress) and progress[-1] == 1.0

    with appliance.client(timeout=120) as client:
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["kind"] == "generate-avatar" and job["status"] == "done", job
        result = client.get(f"/api/jobs/{job_id}/result")
        assert client.get("/api/jobs/0123456789abcdef0123456789abcdef/result").status_code == 404
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    measured = check_mp4(result.content)
    assert measured["video_s"] > 12.0, measured
    folder = appliance.home / "data" / "jobs" / job_id
    assert sorted(p.name for p in folder.iterdir()) == ["avatar.mp4"]  # the speech it was made from is gone


@pytest.mark.parametrize(
    ("image", "status", "codes"),
    [
        (landscape, 422, ("avatar-no-face",)),
        (two_faces, 422, ("avatar-several-faces",)),
        (thumbnail, 422, ("avatar-too-small", "avatar-face-too-small")),
        (truncated_png, 422, ("avatar-unreadable",)),
    ],
    ids=["landscape", "two-faces", "64x64", "truncated-png"],
)
def test_an_unusable_avatar_is_refused(appliance: Appliance, image: Any, status: int, codes: tuple[str, ...]) -> None:
    data = image()
    assert_refused(generate(appliance, text=SHORT_TEXT, avatar=data), status, *codes)
    with appliance.client(timeout=120) as client:
        assert_refused(client.post("/api/avatars", files={"image": ("a.png", data, "image/png")}), status, *codes)
    assert leftovers(appliance) == []


def test_uploads_over_the_limits_are_refused(appliance: Appliance) -> None:
    fifty_mb = b"\x89PNG\r\n\x1a\n" + bytes(50 * 1024 * 1024)
    assert_refused(generate(appliance, text=SHORT_TEXT, avatar=fifty_mb), 413, "avatar-too-large", "request-too-large")
    with appliance.client() as client:
        refused = client.post("/api/avatars", files={"image": ("big.png", fifty_mb, "image/png")})
    assert_refused(refused, 413, "avatar-too-large", "request-too-large")
    too_much_audio = b"RIFF" + bytes(51 * 1024 * 1024)
    assert_refused(generate(appliance, audio=too_much_audio), 413, "audio-too-large", "request-too-large")
    assert leftovers(appliance) == []


@pytest.mark.parametrize(
    ("parts", "status", "codes"),
    [
        ({"audio": b""}, 422, ("audio-empty",)),
        ({"audio": "EMPTY_WAV"}, 422, ("audio-empty",)),
        ({"audio": b"this is not audio at all" * 100}, 422, ("audio-undecodable",)),
        ({"text": "   "}, 422, ("empty-text",)),
        ({}, 422, ("empty-text",)),
        ({"text": SHORT_TEXT, "audio": "WAV"}, 422, ("invalid-request",)),
        ({"text": SHORT_TEXT, "resolution": "300"}, 422, ("invalid-request",)),
        ({"text": "x" * 5000}, 422, ("text-too-long",)),
    ],
    ids=["zero-bytes", "zero-samples", "not-audio", "blank-text", "nothing", "both", "resolution", "too-long"],
)
def test_bad_speech_is_refused(
    appliance: Appliance, parts: dict[str, Any], status: int, codes: tuple[str, ...]
) -> None:
    stand_ins: dict[str, Callable[[], bytes]] = {"EMPTY_WAV": empty_wav, "WAV": some_speech}
    resolved = {name: stand_ins[value]() if value in stand_ins else value for name, value in parts.items()}
    assert_refused(generate(appliance, **resolved), status, *codes)
    assert leftovers(appliance) == []
