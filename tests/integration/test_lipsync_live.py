"""The live face, end to end: speech from the running tts worker drives the running lipsync worker, both through
the coordinator, as the voice pipeline will (issue 7). Each speech chunk (PCM from the tts ring, with its
piece's phoneme timing) goes to an animation stream; frames come back from the lipsync ring, tagged with the
48 kHz sample index of the audio they show.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import zmq.asyncio

from ipc.bus import ControlClient
from ipc.messages import (
    AnimateDone,
    AnimateEnd,
    AnimateOpen,
    AnimateSpeech,
    CancelTurn,
    ErrorReply,
    FrameReady,
    SpeakDone,
    SpeakEnd,
    SpeakOpen,
    SpeakText,
    SpeechAudio,
    SpeechPiece,
)
from ipc.paths import control_endpoint
from ipc.rings import RingReader
from tests.conftest import Appliance

pytestmark = pytest.mark.integration

TEXT = "Hello there. My name is Mynah, and I am glad to meet you. What shall we talk about today?"
FRAME_SAMPLES = 1600


@dataclass
class Performance:
    samples: int = 0
    first_chunk_at: float = 0.0
    first_frame_at: float = 0.0
    tags: list[int] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    done: AnimateDone | None = None
    errors: list[ErrorReply] = field(default_factory=list)


async def perform(appliance: Appliance, text: str, *, cancel_after_frames: int = 0) -> Performance:
    ctx = zmq.asyncio.Context()
    client = ControlClient(ctx, control_endpoint(appliance.home / "run"), f"test-face-{time.monotonic_ns()}")
    rings = RingReader()
    seen = Performance()
    turn = f"t{time.monotonic_ns()}"
    try:
        faces = await client.open(AnimateOpen(turn), first_timeout=60, idle_timeout=60)
        speech = await client.open(SpeakOpen(turn), first_timeout=60, idle_timeout=60)
        await client.send(SpeakText(turn, text))
        await client.send(SpeakEnd(turn))

        async def feed() -> None:
            pending: list[SpeechPiece] = []
            async for packet in speech:
                match packet.message:
                    case SpeechPiece() as piece:
                        pending.append(piece)
                    case SpeechAudio() as audio:
                        pcm = rings.read(audio.ref)
                        assert pcm is not None, "speech in the tts ring was overwritten before it was read"
                        spans = tuple(span for piece in pending for span in piece.phonemes)
                        pending.clear()
                        seen.first_chunk_at = seen.first_chunk_at or time.monotonic()
                        seen.samples = max(seen.samples, audio.first_sample + len(pcm) // 2)
                        await client.send(AnimateSpeech(turn, audio.first_sample, spans), payload=[pcm])
                    case SpeakDone():
                        await client.send(AnimateEnd(turn))
                    case ErrorReply() as error:
                        seen.errors.append(error)

        feeding = asyncio.create_task(feed())
        async for packet in faces:
            match packet.message:
                case FrameReady() as frame:
                    seen.first_frame_at = seen.first_frame_at or time.monotonic()
                    pixels = rings.read(frame.ref)
                    assert pixels is not None, "a frame in the lipsync ring was overwritten before it was read"
                    seen.tags.append(frame.sample_index)
                    seen.frames.append(np.frombuffer(pixels, np.uint8).reshape(frame.height, frame.width, 3))
                    if cancel_after_frames and len(seen.tags) == cancel_after_frames:
                        await client.send(CancelTurn(turn))
                case AnimateDone() as done:
                    seen.done = done
                case ErrorReply() as error:
                    seen.errors.append(error)
        await asyncio.wait_for(feeding, 30)
    finally:
        rings.close()
        await client.close()
        ctx.term()
    return seen


def test_speech_from_the_tts_worker_moves_the_face_frame_by_frame(appliance: Appliance) -> None:
    seen = asyncio.run(perform(appliance, TEXT))
    assert not seen.errors, seen.errors
    assert seen.done is not None and not seen.done.cancelled
    speech_frames = -(-seen.samples // FRAME_SAMPLES)
    # Every frame of the speech, in order, each tagged with the first sample it shows; then a short tail that
    # eases the mouth back to the avatar's own.
    assert seen.tags[:speech_frames] == [k * FRAME_SAMPLES for k in range(speech_frames)]
    assert seen.done.frames == len(seen.tags) and seen.done.dropped == 0
    assert seen.frames[0].shape == (512, 512, 3)
    mouth = [f[270:330, 200:310].astype(np.int16) for f in seen.frames[:speech_frames]]
    changes = [int(np.abs(a - b).mean() > 1.0) for a, b in itertools.pairwise(mouth)]
    assert sum(changes) > len(changes) / 3, "the mouth moves while the voice speaks"
    latency_ms = (seen.first_frame_at - seen.first_chunk_at) * 1000
    print(f"{len(seen.tags)} frames for {seen.samples / 48000:.2f} s of speech; first frame {latency_ms:.0f} ms after "
          f"the first chunk was sent; worker's own count: {seen.done.first_frame_s * 1000:.0f} ms")  # fmt: skip


def test_a_cancelled_turn_stops_its_frames(appliance: Appliance) -> None:
    seen = asyncio.run(perform(appliance, TEXT, cancel_after_frames=5))
    assert seen.done is not None and seen.done.cancelled
    assert seen.done.frames < 60, "frames went on after the cancel"
    after = asyncio.run(perform(appliance, "And now the next turn."))
    assert after.done is not None and not after.done.cancelled and after.done.frames > 10
