"""The tts worker's service: text streams in, speech streams out through the worker's audio ring.

A speech stream is opened with SynthesisOpen, fed with SpeakText (e.g. the LLM's tokens as they come) and
closed with SpeakEnd. The sentence splitter turns the text into pieces as soon as each is complete, and one
synthesis thread speaks the pieces of every open stream, oldest stream first. Each piece's audio goes into the
ring in 200 ms slots (PCM16, 48 kHz): a SpeechPiece message (its words and phoneme timing on the stream's
timeline) and then one SpeechAudio message per slot. SpeakDone ends the stream.

Cancelling (CancelTurn, a control message) ends the stream at once: SpeakDone(cancelled) goes out, nothing
more is sent for it, and synthesis stops at the next chunk boundary (Piper speaks a sentence in one call of
~0.1-0.6 s, whose result is then thrown away; GPT-SoVITS's HTTP stream is closed, which stops the server).

Log lines carry the stream's turn id (`log_context`): each message is handled under it, and each task that works
for one stream is created under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from appliance.config import PathsConfig, TtsConfig
from appliance.logs import log_context
from appliance.models.store import ModelStore
from ipc.codec import Packet
from ipc.errors import CodedError, IpcError
from ipc.messages import (
    CancelTurn,
    ErrorReply,
    Message,
    PhonemeSpan,
    SpeakDone,
    SpeakEnd,
    SpeakText,
    SpeechAudio,
    SpeechPiece,
    SynthesisOpen,
)
from ipc.rings import FrameRing
from procs.common.fallback import BackendChain
from procs.common.worker import Replier, WorkerError
from procs.stt.audio import float_to_pcm16
from procs.tts.backends import backend_chain, create_backend
from procs.tts.backends.base import OUTPUT_RATE, SpeechChunk, TtsError, VoiceSettings
from procs.tts.splitter import SpeechSplitter
from procs.tts.voices import VoiceBook

log = logging.getLogger(__name__)

SLOT_SAMPLES = OUTPUT_RATE // 5  # 200 ms: six 30 fps video frames
SLOT_BYTES = SLOT_SAMPLES * 2
RING_SLOTS = 1024  # ~205 s of speech in flight across every stream: far more than any reader lags


@dataclass
class _Stream:
    open: SynthesisOpen
    reply: Replier
    splitter: SpeechSplitter
    opened_at: float
    pieces: deque[str] = field(default_factory=deque)
    ended: bool = False
    finished: bool = False  # SpeakDone has been sent
    cancelled: bool = False
    chunks: int = 0
    next_sample: int = 0
    first_audio_s: float = 0.0
    backend: str = ""

    @property
    def turn_id(self) -> str:
        return self.open.turn_id

    def ahead_s(self, now: float) -> float:
        """How much of its speech is ready beyond what a listener who started at its first audio has heard:
        the stream's slack. One with no audio yet has none at all (it waits for its first words)."""
        if not self.chunks:
            return float("-inf")
        return self.next_sample / OUTPUT_RATE - (now - (self.opened_at + self.first_audio_s))


# Errors in use that mean the backend is gone (GPT-SoVITS's server stopped), not that one piece was bad: the
# worker falls back to Piper and retries GPT-SoVITS until it is back.
GONE = frozenset({"tts-unreachable", "tts-stream-failed"})


class TtsService:
    def __init__(self, config: TtsConfig, paths: PathsConfig, models: ModelStore, *, retry_s: float = 30.0) -> None:
        self._config = config
        self._paths = paths
        self._models = models
        self._chain = BackendChain(backend_chain(config), self._make, retry_s=retry_s, on_switch=self._release)
        self._ring: FrameRing | None = None
        self._synth = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth")
        self._streams: dict[str, _Stream] = {}
        self._speaking: asyncio.Task[None] | None = None

    @property
    def _voices(self) -> VoiceBook | None:
        return self._chain.current if self._chain.loaded else None

    @property
    def backend(self) -> str:
        return self._voices.base.name if self._voices else ""

    @property
    def model(self) -> str:
        return self._voices.base.model if self._voices else ""

    @property
    def degraded(self) -> str:
        return self._chain.degraded

    async def load(self) -> None:
        try:
            await self._chain.load()
        except CodedError as err:
            raise WorkerError(err.code, err.message) from err
        self._ring = FrameRing.create(self._paths.runtime_dir, "tts", "audio", slots=RING_SLOTS, slot_bytes=SLOT_BYTES)

    async def _make(self, name: str) -> VoiceBook:
        base = create_backend(self._config, self._models, name)
        await asyncio.get_running_loop().run_in_executor(self._synth, base.load)
        return VoiceBook(self._config, base)

    async def _release(self, old: VoiceBook, new: VoiceBook) -> None:
        close = getattr(old.base, "close", None)  # GPT-SoVITS's HTTP client; Piper holds nothing to close
        if close is not None:
            with contextlib.suppress(TtsError):
                await asyncio.get_running_loop().run_in_executor(self._synth, close)

    def control(self, packet: Packet) -> None:
        if isinstance(packet.message, CancelTurn):
            stream = self._streams.get(packet.message.turn_id)
            if stream is not None and not stream.finished:
                stream.cancelled = True
                _task_for(stream, self._finish(stream))

    async def handle(self, packet: Packet, reply: Replier) -> None:
        turn_id = packet.message.turn_id if isinstance(packet.message, SynthesisOpen | SpeakText | SpeakEnd) else None
        with log_context(turn_id=turn_id):
            await self._handle(packet, reply)

    async def _handle(self, packet: Packet, reply: Replier) -> None:
        match packet.message:
            case SynthesisOpen() as request:
                splitter = SpeechSplitter(self._config.first_piece_max_words, self._config.max_piece_chars)
                self._streams[request.turn_id] = _Stream(request, reply, splitter, time.monotonic())
            case SpeakText() as request:
                if (stream := self._streams.get(request.turn_id)) is not None and not stream.ended:
                    stream.pieces.extend(stream.splitter.feed(request.text))
                    self._kick()
            case SpeakEnd() as request:
                if (stream := self._streams.get(request.turn_id)) is not None and not stream.ended:
                    stream.pieces.extend(stream.splitter.flush())
                    stream.ended = True
                    self._kick()
            case other:
                await reply(ErrorReply("unsupported-request", f"the tts worker does not serve {type(other).__name__}"))

    def _kick(self) -> None:
        """Start the most urgent work, if the synthesis thread is free: the next piece of the stream with the least
        speech ready ahead of its listener (a stream's first words before anyone's later ones, so a second
        session does not wait for a first one's whole answer), then the end of a stream that has said it all."""
        if self._speaking is not None and not self._speaking.done():
            return
        for stream in [s for s in self._streams.values() if s.finished]:
            self._streams.pop(stream.turn_id, None)
        now = time.monotonic()
        waiting = [s for s in self._streams.values() if s.pieces]
        if waiting:
            stream = min(waiting, key=lambda s: s.ahead_s(now))  # ties: the oldest (dicts keep their order)
            self._speaking = _task_for(stream, self._speak(stream, stream.pieces.popleft()))
            return
        for stream in self._streams.values():
            if stream.ended:
                self._speaking = _task_for(stream, self._finish(stream))
                return

    async def _speak(self, stream: _Stream, piece: str) -> None:
        assert self._voices is not None
        loop = asyncio.get_running_loop()
        settings = VoiceSettings(speed=stream.open.speed * self._config.speed)
        chunks: Generator[SpeechChunk] | None = None
        try:
            backend = await loop.run_in_executor(self._synth, self._voices.backend_for, stream.open.voice)
            stream.backend = backend.name
            started = time.monotonic()
            chunks = backend.synthesize(piece, voice=settings)
            while not stream.cancelled:
                chunk = await loop.run_in_executor(self._synth, next, chunks, None)
                if chunk is None or stream.cancelled:
                    break
                await self._send_chunk(stream, chunk, time.monotonic() - started)
                started = time.monotonic()
        except TtsError as err:
            if err.code != "tts-empty-text":  # a piece with nothing to say is skipped, not an error
                await self._fail(stream, err)
            if err.code in GONE:
                self._chain.failed(err)
        finally:
            if chunks is not None:
                with contextlib.suppress(TtsError):
                    await loop.run_in_executor(self._synth, chunks.close)
            self._speaking = None
            self._kick()

    async def _send_chunk(self, stream: _Stream, chunk: SpeechChunk, synth_s: float) -> None:
        assert self._ring is not None
        now = time.monotonic()
        if not stream.chunks:
            stream.first_audio_s = now - stream.opened_at
        first = stream.next_sample
        phonemes = tuple(PhonemeSpan(p.phoneme, first + p.start_sample, first + p.end_sample) for p in chunk.phonemes)
        index = stream.chunks
        stream.chunks += 1
        stream.next_sample += len(chunk.samples)
        await self._send(stream, SpeechPiece(stream.turn_id, index, chunk.text, first, len(chunk.samples), phonemes,
                                             synth_s, now))  # fmt: skip
        pcm = float_to_pcm16(chunk.samples)
        for offset in range(0, len(chunk.samples), SLOT_SAMPLES):
            ref = self._ring.write(pcm[offset * 2 : (offset + SLOT_SAMPLES) * 2], pts=first + offset)
            await self._send(stream, SpeechAudio(stream.turn_id, ref, first + offset))

    async def _fail(self, stream: _Stream, err: TtsError) -> None:
        if stream.finished:
            return
        stream.finished = True
        log.warning("turn %s: %s (%s)", stream.turn_id, err.message, err.code)
        await self._send(stream, ErrorReply(err.code, err.message), even_if_finished=True)

    async def _finish(self, stream: _Stream) -> None:
        if stream.finished:
            return
        stream.finished = True
        voice = stream.open.voice
        done = SpeakDone(stream.turn_id, stream.chunks, stream.next_sample, stream.cancelled, stream.first_audio_s,
                         stream.backend or self.backend, voice.voice_id if voice else None)  # fmt: skip
        await self._send(stream, done, even_if_finished=True)
        if self._speaking is not None and self._speaking is asyncio.current_task():
            self._speaking = None
            self._kick()

    async def _send(self, stream: _Stream, message: Message, *, even_if_finished: bool = False) -> None:
        if stream.finished and not even_if_finished:
            return
        try:
            await stream.reply(message)
        except IpcError as err:
            log.warning("turn %s: could not send %s: %s", stream.turn_id, type(message).__name__, err)

    async def close(self) -> None:
        await self._chain.close()
        self._synth.shutdown(wait=False, cancel_futures=True)
        if self._ring is not None:
            self._ring.unlink()
            self._ring.close()


def _task_for(stream: _Stream, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
    """A task working for `stream`, logging under its turn id (a task copies the context it is created in)."""
    with log_context(turn_id=stream.turn_id):
        return asyncio.get_running_loop().create_task(work)
