"""The GPT-SoVITS backend against a fake of GPT-SoVITS's api_v2.py server (tests/fakes/fake_gpt_sovits.py).

GPT-SoVITS's weights and a GPU cannot be had here, so these tests run the real backend over real loopback HTTP
against a fake server that speaks api_v2's wire format (read from api_v2.py and TTS_infer_pack/TTS.py) and
makes its own deterministic audio. They check what the backend sends (the fake records every request), how it
turns streamed raw PCM into 48 kHz chunks, and how it reports the server's failures.
"""

from __future__ import annotations

import socket
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import soxr

from procs.tts.backends.base import OUTPUT_RATE, SpeechChunk, TtsError
from procs.tts.backends.gpt_sovits import GptSovitsBackend, PcmAssembler, ReferenceClip
from tests.fakes.fake_gpt_sovits import REFERENCE_OUTSIDE, SAMPLE_RATE, FakeGptSovits

PARAGRAPH = (
    "Good morning! The kettle is on, and the tea will be ready in four minutes. "
    "Would you like me to read the news while you wait? There is a storm coming in from the west."
)
TOLERANCE_MS = 1.0  # on the total length of the chunks


@pytest.fixture
def fake() -> Iterator[FakeGptSovits]:
    with FakeGptSovits() as server:
        yield server


def _write_clip(path: Path, seconds: float, rate: int = 32_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((0.2 * np.sin(2 * np.pi * 180 * t) * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
def clip(tmp_path: Path) -> ReferenceClip:
    path = _write_clip(tmp_path / "reference.wav", 4.5)
    return ReferenceClip(path=path, text="I keep the lighthouse lamp lit every night.", lang="en")


def _backend(url: str, reference: ReferenceClip, *, text_lang: str = "en", gpt_weights: Path | None = None,
             sovits_weights: Path | None = None, streaming_mode: int = 1) -> GptSovitsBackend:  # fmt: skip
    return GptSovitsBackend(url, reference=reference, text_lang=text_lang, gpt_weights=gpt_weights,
                            sovits_weights=sovits_weights, streaming_mode=streaming_mode, timeout_s=10.0)  # fmt: skip


@pytest.fixture
def backend(fake: FakeGptSovits, clip: ReferenceClip) -> Iterator[GptSovitsBackend]:
    tts = _backend(fake.url, clip)
    tts.load()
    yield tts
    tts.close()


def _as_float(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return pcm.astype(np.float32) / np.float32(32768)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here once the socket is closed


def _assert_matches_one_resampling(chunks: list[SpeechChunk], fake: FakeGptSovits, text: str) -> None:
    """The chunks joined are the fake's whole audio resampled at once: same length within 1 ms, same samples
    (a click at a join would differ there)."""
    expected = soxr.resample(_as_float(fake.audio_for(text)), SAMPLE_RATE, OUTPUT_RATE)
    joined = np.concatenate([c.samples for c in chunks])
    assert len(fake.audio_for(text)) * OUTPUT_RATE // SAMPLE_RATE == len(expected)
    assert abs(len(joined) - len(expected)) <= TOLERANCE_MS * OUTPUT_RATE / 1000
    common = min(len(joined), len(expected))
    np.testing.assert_allclose(joined[:common], expected[:common], atol=1e-5)


def test_load_switches_both_weights_then_reads_the_reference(fake: FakeGptSovits, clip: ReferenceClip,
                                                             tmp_path: Path) -> None:  # fmt: skip
    gpt, sovits = tmp_path / "mynah-e15.ckpt", tmp_path / "mynah_e8_s200.pth"
    gpt.write_bytes(b"gpt")
    sovits.write_bytes(b"sovits")
    tts = _backend(fake.url, clip, gpt_weights=gpt, sovits_weights=sovits)

    tts.load()

    assert [r.path for r in fake.requests] == ["/set_gpt_weights", "/set_sovits_weights", "/set_refer_audio"]
    assert fake.queries("/set_gpt_weights") == [{"weights_path": str(gpt)}]
    assert fake.queries("/set_sovits_weights") == [{"weights_path": str(sovits)}]
    assert (fake.gpt_weights, fake.sovits_weights, fake.reference) == (str(gpt), str(sovits), str(clip.path))
    assert tts.model == "mynah_e8_s200"
    assert tts.native_rate == SAMPLE_RATE
    tts.close()


def test_paragraph_arrives_as_several_48k_chunks_with_no_seams(fake: FakeGptSovits, backend: GptSovitsBackend,
                                                               clip: ReferenceClip) -> None:  # fmt: skip
    chunks = list(backend.synthesize(PARAGRAPH))

    assert len(chunks) >= len(fake.fragments(PARAGRAPH)) >= 4
    assert all(c.samples.dtype == np.float32 and c.samples.ndim == 1 and c.phonemes == () for c in chunks)
    assert [c.text for c in chunks] == [PARAGRAPH] + [""] * (len(chunks) - 1)
    _assert_matches_one_resampling(chunks, fake, PARAGRAPH)
    assert fake.streams[-1].outcome == "done"
    assert fake.streams[-1].writes == [len(f) * 800 * 2 + 9600 * 2 for f in fake.fragments(PARAGRAPH)]
    (body,) = fake.bodies("/tts")
    assert {k: body[k] for k in ("text", "text_lang", "ref_audio_path", "prompt_text", "prompt_lang")} == {
        "text": PARAGRAPH, "text_lang": "en", "ref_audio_path": str(clip.path), "prompt_text": clip.text,
        "prompt_lang": "en",
    }  # fmt: skip
    assert {k: body[k] for k in ("media_type", "streaming_mode", "text_split_method", "batch_size")} == {
        "media_type": "raw", "streaming_mode": 1, "text_split_method": "cut5", "batch_size": 1,
    }  # fmt: skip
    assert (body["top_k"], body["temperature"], body["fragment_interval"], body["speed_factor"]) == (15, 1.0, 0.3, 1.0)


def test_samples_cut_at_odd_byte_offsets_are_reassembled(fake: FakeGptSovits, backend: GptSovitsBackend) -> None:
    fake.script.write_bytes = 1001  # every write ends in the middle of a sample
    fake.script.write_delay_s = 0.001  # so that most writes reach the client as pieces of their own

    chunks = list(backend.synthesize(PARAGRAPH))

    assert sum(w % 2 for w in fake.streams[-1].writes) > 100
    assert len(chunks) > 10
    _assert_matches_one_resampling(chunks, fake, PARAGRAPH)


def test_pcm_assembler_carries_an_odd_byte_to_the_next_piece() -> None:
    samples = np.array([0, 1, -1, 32767, -32768, 12345, -2, 300], dtype="<i2")
    data = samples.tobytes()
    assembler = PcmAssembler()

    pieces = [assembler.push(data[a:b]) for a, b in [(0, 1), (1, 4), (4, 4), (4, 9), (9, 16)]]

    assert [len(p) for p in pieces] == [0, 2, 0, 2, 4]
    assert assembler.pending == 0
    np.testing.assert_array_equal(np.concatenate(pieces), samples.astype(np.float32) / 32768)


def test_whole_body_mode_gives_the_same_audio(fake: FakeGptSovits, clip: ReferenceClip) -> None:
    tts = _backend(fake.url, clip, streaming_mode=0)
    tts.load()

    chunks = list(tts.synthesize(PARAGRAPH))

    assert fake.streams[-1].streaming_mode == 0
    _assert_matches_one_resampling(chunks, fake, PARAGRAPH)
    tts.close()


def test_a_reference_the_server_lacks_is_tts_failed_with_its_message(fake: FakeGptSovits, clip: ReferenceClip) -> None:
    tts = _backend(fake.url, clip, streaming_mode=0)
    tts.load()
    clip.path.unlink()
    fake.reference = None  # the server restarted: it must read the clip again

    with pytest.raises(TtsError) as caught:
        next(tts.synthesize("Hello there, how are you?"))

    assert caught.value.code == "tts-failed"
    assert caught.value.message.endswith(f"tts failed: {clip.path} not exists")
    tts.close()


def test_the_same_failure_while_streaming_is_a_broken_stream(fake: FakeGptSovits, backend: GptSovitsBackend,
                                                             clip: ReferenceClip) -> None:  # fmt: skip
    # api_v2 has answered 200 before TTS.run fails in a streaming mode: the stream just ends, with no audio.
    clip.path.unlink()
    fake.reference = None

    with pytest.raises(TtsError) as caught:
        list(backend.synthesize("Hello there, how are you?"))

    assert caught.value.code == "tts-stream-failed"
    assert "before any audio" in caught.value.message
    assert fake.streams[-1].outcome == "failed"


def test_a_refused_request_is_tts_failed_with_the_servers_message(fake: FakeGptSovits, clip: ReferenceClip) -> None:
    tts = _backend(fake.url, clip, text_lang="xx")
    tts.load()

    with pytest.raises(TtsError) as caught:
        next(tts.synthesize("Hello there."))

    assert caught.value.code == "tts-failed"
    assert caught.value.message.endswith("text_lang: xx is not supported in version v2")
    tts.close()


def test_load_reports_a_reference_the_server_cannot_use(fake: FakeGptSovits, tmp_path: Path) -> None:
    missing = ReferenceClip(path=tmp_path / "elsewhere.wav", text="Hi.", lang="en")  # checked by the server only
    tts = _backend(fake.url, missing)

    with pytest.raises(TtsError) as caught:
        tts.load()

    assert caught.value.code == "tts-reference-invalid"
    assert "set refer audio failed" in caught.value.message
    tts.close()


@pytest.mark.parametrize("seconds", [2.5, 10.5])
def test_load_refuses_a_local_clip_outside_3_to_10_seconds(fake: FakeGptSovits, tmp_path: Path,
                                                           seconds: float) -> None:  # fmt: skip
    clip = ReferenceClip(path=_write_clip(tmp_path / "odd.wav", seconds, rate=22_050), text="Hi.", lang="en")
    tts = _backend(fake.url, clip)

    with pytest.raises(TtsError) as caught:
        tts.load()

    assert caught.value.code == "tts-reference-invalid"
    assert f"lasts {seconds:.2f} s" in caught.value.message
    assert fake.requests == []  # refused before asking the server
    # The fake would have refused it too, as GPT-SoVITS does.
    assert httpx.get(f"{fake.url}/set_refer_audio", params={"refer_audio_path": str(clip.path)}).json() == {
        "message": "set refer audio failed", "Exception": REFERENCE_OUTSIDE,
    }  # fmt: skip
    tts.close()


def test_missing_weights_are_tts_weights_failed(fake: FakeGptSovits, clip: ReferenceClip, tmp_path: Path) -> None:
    tts = _backend(fake.url, clip, gpt_weights=tmp_path / "gone.ckpt")

    with pytest.raises(TtsError) as caught:
        tts.load()

    assert caught.value.code == "tts-weights-failed"
    assert "change gpt weight failed: [Errno 2] No such file or directory" in caught.value.message
    assert fake.gpt_weights != str(tmp_path / "gone.ckpt")
    tts.close()


def test_a_refused_connection_is_tts_unreachable(clip: ReferenceClip) -> None:
    tts = _backend(f"http://127.0.0.1:{_closed_port()}", clip)

    with pytest.raises(TtsError) as caught:
        tts.load()

    assert caught.value.code == "tts-unreachable"
    assert "api_v2.py" in caught.value.message
    tts.close()


def test_a_server_gone_after_load_is_tts_unreachable(fake: FakeGptSovits, backend: GptSovitsBackend) -> None:
    fake.stop()

    with pytest.raises(TtsError) as caught:
        next(backend.synthesize("Hello there."))

    assert caught.value.code == "tts-unreachable"


def test_a_stream_dropped_midway_is_tts_stream_failed(fake: FakeGptSovits, backend: GptSovitsBackend) -> None:
    fake.script.drop_after_bytes = 150_001
    received: list[SpeechChunk] = []

    with pytest.raises(TtsError) as caught:
        received.extend(backend.synthesize(PARAGRAPH))

    assert caught.value.code == "tts-stream-failed"
    assert "after 150001 bytes of audio" in caught.value.message
    assert fake.streams[-1].outcome == "dropped"
    assert sum(len(c.samples) for c in received) > 0


def test_closing_the_generator_early_closes_the_http_stream(fake: FakeGptSovits, backend: GptSovitsBackend) -> None:
    fake.script.stall_after_writes = 1  # the fake holds the stream open after the first sentence

    speech = backend.synthesize(PARAGRAPH)
    first = next(speech)
    speech.close()

    assert len(first.samples) > 0
    assert fake.wait_blocking(lambda: fake.streams[-1].outcome == "disconnected")
    assert len(fake.streams[-1].writes) == 1


def test_text_with_nothing_to_say_and_an_unloaded_backend_are_refused(fake: FakeGptSovits,
                                                                      clip: ReferenceClip) -> None:  # fmt: skip
    tts = _backend(fake.url, clip)
    with pytest.raises(TtsError) as caught:
        tts.synthesize("Hello.")
    assert caught.value.code == "tts-not-loaded"
    tts.load()
    with pytest.raises(TtsError) as caught:
        tts.synthesize(" ... ")
    assert caught.value.code == "tts-empty-text"
    assert fake.bodies("/tts") == []
    tts.close()


def test_the_fake_streams_wav_as_a_header_with_zero_length_then_raw_pcm(fake: FakeGptSovits,
                                                                        clip: ReferenceClip) -> None:  # fmt: skip
    params = {"text": "Hello there, friend.", "text_lang": "EN", "ref_audio_path": str(clip.path),
              "prompt_lang": "en", "media_type": "wav", "streaming_mode": "true"}  # fmt: skip

    response = httpx.get(f"{fake.url}/tts", params=params)

    assert response.status_code == 200
    header, pcm = response.content[:44], response.content[44:]
    assert header[:4] == b"RIFF" and header[36:40] == b"data" and header[40:44] == b"\0\0\0\0"
    assert int.from_bytes(header[24:28], "little") == SAMPLE_RATE
    assert np.array_equal(np.frombuffer(pcm, "<i2"), fake.audio_for("Hello there, friend."))
    assert httpx.get(f"{fake.url}/tts", params={"text": "Hi"}).status_code == 500  # .lower() on None
