"""Speech out, end to end: the tts worker under supervisord, reached through the coordinator and the gateway.

The streaming tests talk to the coordinator the way the voice pipeline does: they open a speech stream, send
the text a token at a time and read the audio from the tts worker's shared-memory ring. What they hear is
checked by transcribing it with the running STT worker.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
import wave
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
import zmq.asyncio

from ipc.bus import ControlClient
from ipc.messages import CancelTurn, ErrorReply, SpeakDone, SpeakEnd, SpeakOpen, SpeakText, SpeechAudio, SpeechPiece
from ipc.paths import control_endpoint
from ipc.rings import RingReader
from tests.conftest import Appliance
from tests.speech import SENTENCES, corpus_wer, wer

pytestmark = pytest.mark.integration

OUTPUT_RATE = 48_000
PARAGRAPH = (
    "Sure, this is the plan for tomorrow. We leave the house at eight in the morning and drive to the lake. "
    "After lunch we walk along the shore, and in the evening we cook dinner together."
)
TOKEN_GAP_S = 0.03  # a small LLM's pace on this box (bench/llm.py: ~70 tokens/s, tokens are word pieces)


def tokens(text: str) -> list[str]:
    """LLM-like tokens: words with their leading space, long words cut in two."""
    pieces: list[str] = []
    for word in re.findall(r"\s*\S+", text):
        cut = max(2, len(word) // 2) if len(word.strip()) > 6 else len(word)
        pieces += [word[:cut], word[cut:]] if cut < len(word) else [word]
    return pieces


@dataclass
class Heard:
    sent_last_token_at: float = 0.0
    first_audio_at: float = 0.0
    pcm: bytearray = field(default_factory=bytearray)
    pieces: list[SpeechPiece] = field(default_factory=list)
    audio_after_done: int = 0
    done: SpeakDone | None = None
    error: ErrorReply | None = None
    done_at: float = 0.0

    @property
    def samples(self) -> np.ndarray:
        return np.frombuffer(bytes(self.pcm), dtype="<i2").astype(np.float32) / 32768.0


async def speak_tokens(appliance: Appliance, parts: list[str], *, cancel_after_audio: bool = False) -> Heard:
    """Stream `parts` into a speech stream as an LLM would, collecting the audio as it comes back."""
    ctx = zmq.asyncio.Context()
    client = ControlClient(ctx, control_endpoint(appliance.home / "run"), f"test-speaker-{time.monotonic_ns()}")
    rings = RingReader()
    heard = Heard()
    turn_id = f"t{time.monotonic_ns()}"
    try:
        replies = await client.open(SpeakOpen(turn_id), first_timeout=60, idle_timeout=60)

        async def feed() -> None:
            for part in parts:
                await client.send(SpeakText(turn_id, part))
                await asyncio.sleep(TOKEN_GAP_S)
            heard.sent_last_token_at = time.monotonic()
            await client.send(SpeakEnd(turn_id))

        feeding = asyncio.create_task(feed())
        async for packet in replies:
            message = packet.message
            if isinstance(message, SpeechPiece):
                heard.pieces.append(message)
            elif isinstance(message, SpeechAudio):
                heard.first_audio_at = heard.first_audio_at or time.monotonic()
                pcm = rings.read(message.ref)
                assert pcm is not None, "audio in the ring was overwritten before it was read"
                heard.pcm += pcm
                if cancel_after_audio:
                    cancel_after_audio = False
                    await client.send(CancelTurn(turn_id))
            elif isinstance(message, SpeakDone):
                heard.done, heard.done_at = message, time.monotonic()
            elif isinstance(message, ErrorReply):
                heard.error = message
        feeding.cancel()
    finally:
        rings.close()
        await client.close()
        ctx.term()
    return heard


def transcribe(appliance: Appliance, samples: np.ndarray) -> str:
    with appliance.client() as client:
        response = client.post("/api/transcribe", files={"file": ("speech.wav", wav_file(samples), "audio/wav")})
    assert response.status_code == 200, response.text
    text: str = response.json()["text"]
    return text


def wav_file(samples: np.ndarray, rate: int = OUTPUT_RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
        pcm = wav.readframes(wav.getnframes())
        return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, wav.getframerate()


def test_a_paragraph_streamed_token_by_token_is_heard_before_its_last_token(appliance: Appliance) -> None:
    heard = asyncio.run(speak_tokens(appliance, tokens(PARAGRAPH)))
    assert heard.error is None, heard.error
    assert heard.done is not None and not heard.done.cancelled
    assert heard.first_audio_at, "no audio came back"
    lead_s = heard.sent_last_token_at - heard.first_audio_at
    print(f"first audio {lead_s:.2f} s before the last token; first piece {heard.pieces[0].text!r}")
    assert heard.first_audio_at < heard.sent_last_token_at, "the first audio waited for the whole text"
    # The first clause went out alone, and the pieces tile the stream's timeline.
    assert heard.pieces[0].text.startswith("Sure") and len(heard.pieces[0].text.split()) <= 8
    assert [p.first_sample for p in heard.pieces] == list(np.cumsum([0] + [p.samples for p in heard.pieces[:-1]]))
    assert len(heard.pcm) // 2 == heard.done.samples == sum(p.samples for p in heard.pieces)
    for piece in heard.pieces:  # Piper's phoneme timing, on the stream's 48 kHz timeline, tiling each piece
        assert piece.phonemes[0].start_sample == piece.first_sample
        assert piece.phonemes[-1].end_sample == piece.first_sample + piece.samples
    text = transcribe(appliance, heard.samples)
    assert wer(PARAGRAPH, text) < 0.05, text


def test_cancelling_a_turn_stops_its_speech_at_once(appliance: Appliance) -> None:
    long_text = " ".join(SENTENCES[:12])
    heard = asyncio.run(speak_tokens(appliance, tokens(long_text), cancel_after_audio=True))
    assert heard.done is not None and heard.done.cancelled, heard.done
    full_s = len(long_text) * 0.06  # Piper speaks ~16 characters a second
    assert len(heard.pcm) / 2 / OUTPUT_RATE < full_s / 3, "most of the text was still spoken"
    # The worker is free again: the next turn is spoken whole.
    again = asyncio.run(speak_tokens(appliance, tokens("All done.")))
    assert again.done is not None and not again.done.cancelled and again.pcm


def test_a_second_streams_first_words_do_not_wait_for_a_first_streams_whole_answer(appliance: Appliance) -> None:
    """Two sessions answering at once: the tts worker speaks the stream with the least speech ready first, so the
    second stream's first piece comes while the first stream still has pieces left to say."""
    long_answer = " ".join([PARAGRAPH] * 3)

    async def both() -> tuple[Heard, Heard, float]:
        first = asyncio.create_task(speak_tokens(appliance, [long_answer]))  # the whole text at once
        await asyncio.sleep(0.5)  # its first pieces are spoken, the rest queued
        second = await speak_tokens(appliance, ["Yes, it is."])
        return await first, second, time.monotonic()

    first, second, _ = asyncio.run(both())
    assert first.error is None and second.error is None
    assert first.done is not None and second.done is not None and not first.done.cancelled
    assert second.first_audio_at < first.done_at, "the short answer waited for the long one to be said"
    assert second.pcm and len(second.pcm) < len(first.pcm) // 4


def test_speak_returns_a_48_khz_wav_that_transcribes_back(appliance: Appliance) -> None:
    pairs = []
    with appliance.client() as client:
        for sentence in SENTENCES[1::4]:
            response = client.post("/api/speak", json={"text": sentence})
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "audio/wav"
            samples, rate = read_wav(response.content)
            assert rate == OUTPUT_RATE and len(samples) > OUTPUT_RATE // 2
            pairs.append((sentence, transcribe(appliance, samples)))
    assert corpus_wer(pairs) < 0.05, pairs


def test_speak_streams_raw_pcm(appliance: Appliance) -> None:
    with (
        appliance.client() as client,
        client.stream(
            "POST", "/api/speak", json={"text": "Streaming speech. It comes in pieces.", "format": "pcm"}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/L16;rate=48000;channels=1"
        chunks = list(response.iter_bytes())
    pcm = b"".join(chunks)
    assert len(pcm) % 2 == 0 and len(pcm) > OUTPUT_RATE  # over half a second of 16-bit samples
    assert "streaming" in transcribe(appliance, np.frombuffer(pcm, "<i2").astype(np.float32) / 32768).lower()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "   "}, 422, "empty-text"),
        ({"text": "x" * 5000}, 422, "text-too-long"),
        ({"text": "Hello.", "voice": "no-such-voice"}, 404, "voice-not-found"),
        ({"text": "🙂 ** `` "}, 422, "nothing-to-say"),
        ({"text": "Hello.", "speed": 0}, 422, "invalid-request"),
        ({"text": "Hello.", "format": "mp3"}, 422, "invalid-request"),
    ],
)
def test_bad_speak_requests_get_clear_errors(
    appliance: Appliance, body: dict[str, object], status: int, code: str
) -> None:
    with appliance.client() as client:
        response = client.post("/api/speak", json=body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


def test_a_crashed_tts_worker_fails_its_turn_and_the_next_one_is_spoken(appliance: Appliance) -> None:
    import os
    import signal
    import threading

    pid = appliance.program("tts")["pid"]
    long_text = " ".join(SENTENCES[:10])
    killer = threading.Timer(0.4, os.kill, (pid, signal.SIGKILL))
    killer.start()
    heard = asyncio.run(speak_tokens(appliance, [long_text]))
    killer.join()
    assert heard.error is not None and heard.error.code == "tts-worker-crashed", heard.error
    deadline = time.monotonic() + 60
    while not appliance.program("tts")["ready"] and time.monotonic() < deadline:
        time.sleep(0.2)
    with appliance.client() as client:
        response = client.post("/api/speak", json={"text": "I am back."})
    assert response.status_code == 200, response.text
    assert appliance.program("tts")["restarts"] >= 1


def test_the_openapi_contract_lists_the_speech_and_voice_routes(appliance: Appliance) -> None:
    paths = httpx.get(f"{appliance.url}/openapi.json").json()["paths"]
    voices = ("/api/voices", "/api/voices/{voice_id}", "/api/voices/{voice_id}/activate")
    jobs = ("/train-voice", "/api/jobs/{job_id}", "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/cancel")
    for path in ("/api/speak", *voices, *jobs):
        assert path in paths, path
