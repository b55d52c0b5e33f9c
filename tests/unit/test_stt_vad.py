"""SileroVad: frame-by-frame equals faster-whisper's batched model; FrameChunker; endpointing on real speech."""

from __future__ import annotations

import logging
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from appliance.config import SttStreamingConfig
from procs.stt.backends.base import SAMPLE_RATE, Audio
from procs.stt.segmenter import Endpointer, EndpointEvent, SpeechEnded, SpeechStarted
from procs.stt.vad import FRAME_SAMPLES, FrameChunker, SileroVad, contains_speech, frames, silero_model_path

log = logging.getLogger(__name__)

SENTENCES = [
    "Please turn on the kitchen lights and tell me the weather for tomorrow.",
    "What time is it in Tokyo right now?",
    "Hello.",
]


@dataclass(frozen=True)
class SpeechClip:
    audio: Audio  # 1 s of silence, the speech, 1 s of silence; 16 kHz
    true_start: int  # first sample of the speech above a small amplitude, in `audio`
    true_end: int  # one past the last such sample


def synthesize(text: str, tmp_path: Path) -> SpeechClip:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    soxr = pytest.importorskip("soxr")
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    with wave.open(str(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
    speech = soxr.resample(pcm.astype(np.float32) / 32768.0, rate, SAMPLE_RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(speech) > 0.01)  # espeak pads its output with a little near-silence
    pad = np.zeros(SAMPLE_RATE, dtype=np.float32)
    return SpeechClip(np.concatenate([pad, speech, pad]), SAMPLE_RATE + int(loud[0]), SAMPLE_RATE + int(loud[-1]) + 1)


@pytest.fixture
def vad() -> SileroVad:
    pytest.importorskip("onnxruntime")
    if not silero_model_path().is_file():
        pytest.skip("faster-whisper (which ships the Silero ONNX) is not installed")
    return SileroVad()


def test_streaming_matches_faster_whisper_batched(vad: SileroVad, tmp_path: Path) -> None:
    fw_vad = pytest.importorskip("faster_whisper.vad")
    clip = synthesize(SENTENCES[0], tmp_path)
    noise = np.random.default_rng(7).normal(0.0, 0.05, SAMPLE_RATE).astype(np.float32)
    audio = np.concatenate([clip.audio, noise])
    audio = audio[: len(audio) - len(audio) % FRAME_SAMPLES]

    batched = np.asarray(fw_vad.SileroVADModel(str(silero_model_path()))(audio)).reshape(-1)
    streamed = np.array([vad.process(frame) for frame in frames(audio)])

    assert streamed.shape == batched.shape
    assert np.max(np.abs(streamed - batched)) < 1e-4
    # The clip exercised both speech and silence.
    assert streamed.max() > 0.9
    assert streamed.min() < 0.1


def test_silence_has_low_probability(vad: SileroVad) -> None:
    silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)
    assert all(vad.process(silence) < 0.1 for _ in range(20))


def test_reset_starts_a_fresh_stream(vad: SileroVad) -> None:
    rng = np.random.default_rng(1)
    probe = rng.normal(0.0, 0.3, FRAME_SAMPLES).astype(np.float32)
    fresh = vad.process(probe)
    for _ in range(10):
        vad.process(rng.normal(0.0, 0.3, FRAME_SAMPLES).astype(np.float32))
    vad.reset()
    assert vad.process(probe) == pytest.approx(fresh, abs=1e-6)


def test_process_rejects_a_wrong_frame_size(vad: SileroVad) -> None:
    with pytest.raises(ValueError, match="512"):
        vad.process(np.zeros(480, dtype=np.float32))


def test_chunker_handles_any_chunk_size_in_order() -> None:
    rng = np.random.default_rng(3)
    audio = np.arange(10_000, dtype=np.float32)
    chunker = FrameChunker()
    out: list[Audio] = []
    position = 0
    for size in [0, 1, 511, 512, 513, 2000, 7, 1023, *rng.integers(0, 1500, 20).tolist()]:
        chunk = audio[position : position + size]
        position += len(chunk)
        out.extend(chunker.frames(chunk))
        assert chunker.pending == position % FRAME_SAMPLES
    assert all(frame.shape == (FRAME_SAMPLES,) for frame in out)
    joined = np.concatenate(out)
    assert np.array_equal(joined, audio[: len(joined)])
    assert len(joined) == position - chunker.pending


def test_chunker_keeps_the_remainder_even_if_frames_are_not_iterated() -> None:
    chunker = FrameChunker()
    chunker.frames(np.ones(700, dtype=np.float32))  # result deliberately dropped
    assert chunker.pending == 700 - FRAME_SAMPLES
    chunker.reset()
    assert chunker.pending == 0


def test_frames_drops_a_trailing_partial_frame() -> None:
    assert [len(f) for f in frames(np.zeros(3 * FRAME_SAMPLES + 100, dtype=np.float32))] == [FRAME_SAMPLES] * 3


@pytest.mark.parametrize("text", SENTENCES)
def test_endpointer_fed_by_silero_finds_real_speech(vad: SileroVad, tmp_path: Path, text: str) -> None:
    clip = synthesize(text, tmp_path)
    config = SttStreamingConfig()
    endpointer = Endpointer(config)
    chunker = FrameChunker()
    events: list[tuple[int, EndpointEvent]] = []  # (frame end at which it was emitted, event)
    fed = 0
    for position in range(0, len(clip.audio), 1000):  # live audio arrives in chunks of any size
        for frame in chunker.frames(clip.audio[position : position + 1000]):
            fed += FRAME_SAMPLES
            events.extend((fed, event) for event in endpointer.feed(vad.process(frame), fed))

    started = [event for _, event in events if isinstance(event, SpeechStarted)]
    ended = [(at, event) for at, event in events if isinstance(event, SpeechEnded)]
    assert len(started) == 1, events
    assert len(ended) == 1, events
    ms = 1000 / SAMPLE_RATE
    start_offset_ms = (started[0].start_sample - clip.true_start) * ms
    detected_at, end = ended[0]
    end_offset_ms = (end.end_sample - clip.true_end) * ms
    log.info(
        "%r: start %+.0f ms, end %+.0f ms, detected %.0f ms after the true end",
        text,
        start_offset_ms,
        end_offset_ms,
        (detected_at - clip.true_end) * ms,
    )

    assert -450 <= start_offset_ms <= 0  # the 400 ms pre-roll keeps the onset in, without much silence before it
    assert abs(end_offset_ms) <= 150
    assert not end.forced
    silence_waited = detected_at - end.end_sample
    end_of_speech = config.end_of_speech_ms * SAMPLE_RATE // 1000
    assert end_of_speech <= silence_waited < end_of_speech + FRAME_SAMPLES


def test_contains_speech_hears_a_sentence_and_not_dither_or_a_quiet_room(vad: SileroVad, tmp_path: Path) -> None:
    clip = synthesize(SENTENCES[1], tmp_path)
    rng = np.random.default_rng(7)
    seconds = 30 * SAMPLE_RATE
    dither = (rng.integers(-1, 2, seconds) / 32768.0).astype(np.float32)  # a "silent" 16-bit recording
    room = (rng.standard_normal(seconds) * 10 ** (-60 / 20)).astype(np.float32)  # a quiet room's noise floor
    quiet_speech = np.concatenate([room, clip.audio * 0.05, room])  # -26 dB, in the middle of half a minute
    assert contains_speech(clip.audio, 0.5, 5, vad)
    assert contains_speech(quiet_speech, 0.5, 5, SileroVad())
    assert not contains_speech(dither, 0.5, 5, SileroVad())
    assert not contains_speech(room, 0.5, 5, SileroVad())
    assert not contains_speech(np.zeros(0, np.float32), 0.5, 5, SileroVad())
