"""The STT worker's service: live streams (the `stt` program) and files (the `stt-batch` program).

One decoder thread runs one decode at a time, most urgent first (finals, then speculative finals, then
partials; see procs/stt/live.py). The event loop keeps reading audio and running the VAD meanwhile, so
endpointing never waits for Whisper. Log lines carry a live stream's id as their `turn_id`, a file's job id
(`file:<request id>`, the coordinator's) as their `job_id`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

import numpy as np

from appliance.config import SttConfig
from appliance.logs import log_context
from appliance.models.store import ModelStore
from ipc.codec import Packet
from ipc.errors import CodedError, IpcError
from ipc.messages import (
    AudioChunk,
    AudioStreamClose,
    AudioStreamClosed,
    AudioStreamOpen,
    ErrorReply,
    Message,
    SttTimings,
    TranscribeFile,
    TranscriptResult,
    TranscriptSegment,
    TranscriptWord,
)
from ipc.rings import RingReader
from procs.common.fallback import BackendChain
from procs.common.priority import worker_threads
from procs.common.worker import Replier, WorkerError
from procs.stt.audio import decode_audio, pcm16_to_float
from procs.stt.backends import create_backend, profile_chain
from procs.stt.backends.base import SAMPLE_RATE, Audio, SttBackend, SttError, Transcript
from procs.stt.enhance import enhance
from procs.stt.live import DecodeJob, LiveStream
from procs.stt.vad import FRAME_SAMPLES, SileroVad, contains_speech

log = logging.getLogger(__name__)


class _Stream:
    def __init__(self, live: LiveStream, reply: Replier) -> None:
        self.live = live
        self.reply = reply
        self.dropped_chunks = 0


class SttService:
    def __init__(self, config: SttConfig, models: ModelStore, *, batch: bool = False, retry_s: float = 30.0) -> None:
        self._config = config
        self._models = models
        self._live = not batch
        # The old model goes with its last reference when the chain switches (a decode in flight keeps it).
        self._chain = BackendChain(profile_chain(config, live=self._live), self._make, retry_s=retry_s)
        # The model is loaded on this thread too, so CTranslate2's own threads inherit its scheduling class.
        self._decoder = worker_threads("decoder", batch=batch)
        self._streams: dict[str, _Stream] = {}
        self._rings = RingReader()
        self._decoding: asyncio.Task[None] | None = None

    @property
    def _backend(self) -> SttBackend | None:
        return self._chain.current if self._chain.loaded else None

    @property
    def backend(self) -> str:
        return self._backend.name if self._backend else ""

    @property
    def degraded(self) -> str:
        return self._chain.degraded

    @property
    def model(self) -> str:
        return self._backend.model if self._backend else ""

    async def load(self) -> None:
        try:
            await self._chain.load()
        except CodedError as err:
            raise WorkerError(err.code, err.message) from err

    async def _make(self, profile: str) -> SttBackend:
        backend = create_backend(self._config, self._models, live=self._live, profile_name=profile)
        await asyncio.get_running_loop().run_in_executor(self._decoder, backend.load)
        # The first decode pays for allocations; pay it now, not on the user's first words.
        await asyncio.get_running_loop().run_in_executor(self._decoder, backend.transcribe, _silence(1.0))
        return backend

    def control(self, packet: Packet) -> None:
        return None  # stream ends travel in order with the audio (AudioStreamClose is data)

    async def handle(self, packet: Packet, reply: Replier) -> None:
        match packet.message:
            case AudioChunk() as chunk:
                with log_context(turn_id=chunk.stream_id):
                    await self._chunk(chunk)
            case AudioStreamOpen() as request:
                live = LiveStream(request.stream_id, self._config.streaming, SileroVad(), time.monotonic,
                                  speculative=request.speculative)  # fmt: skip
                self._streams[request.stream_id] = _Stream(live, reply)
            case AudioStreamClose() as request:
                with log_context(turn_id=request.stream_id):
                    await self._close(request.stream_id)
            case TranscribeFile() as request:
                with log_context(job_id=packet.request_id):
                    await reply(await self._transcribe_file(request, packet.payload))
            case other:
                await reply(ErrorReply("unsupported-request", f"the stt worker does not serve {type(other).__name__}"))

    # --- live ------------------------------------------------------------------------------------------------

    async def _chunk(self, chunk: AudioChunk) -> None:
        stream = self._streams.get(chunk.stream_id)
        if stream is None:
            return
        pcm = self._rings.read(chunk.ref)
        if pcm is None:
            stream.dropped_chunks += 1
            return
        await self._send(stream, stream.live.feed(pcm16_to_float(pcm), chunk.first_sample))
        self._kick()

    async def _close(self, stream_id: str) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        await self._send(stream, stream.live.finish())
        self._kick()
        await self._maybe_closed(stream)

    async def _maybe_closed(self, stream: _Stream) -> None:
        if stream.live.closing and stream.live.idle:
            self._streams.pop(stream.live.stream_id, None)
            await self._send(stream, [AudioStreamClosed(stream.live.stream_id, stream.dropped_chunks)])

    def _kick(self) -> None:
        """Start the most urgent decode if the decoder is free."""
        if self._decoding is not None and not self._decoding.done():
            return
        jobs = [(job, stream) for stream in self._streams.values() if (job := stream.live.next_job()) is not None]
        if not jobs:
            return
        job, stream = min(jobs, key=lambda pair: (pair[0].kind, pair[0].created))
        stream.live.take(job)
        self._decoding = asyncio.get_running_loop().create_task(self._decode(stream, job))

    async def _decode(self, stream: _Stream, job: DecodeJob) -> None:
        # Started by whichever stream's message freed the decoder: it logs under its own stream.
        with log_context(turn_id=stream.live.stream_id):
            await self._decode_job(stream, job)

    async def _decode_job(self, stream: _Stream, job: DecodeJob) -> None:
        assert self._backend is not None
        started = time.monotonic()
        try:
            audio = enhance(job.audio, self._config.enhance)
            transcript = await asyncio.get_running_loop().run_in_executor(
                self._decoder, self._backend.transcribe, audio
            )
        except SttError as err:
            stream.live.failed(job)
            await self._send(stream, [ErrorReply(err.code, err.message)])
        else:
            await self._send(stream, stream.live.done(job, transcript, time.monotonic() - started))
        finally:
            self._decoding = None
            self._kick()
        await self._maybe_closed(stream)

    async def _send(self, stream: _Stream, events: list[Message]) -> None:
        for event in events:
            try:
                await stream.reply(event)
            except IpcError as err:
                log.warning("stream %s: could not send %s: %s", stream.live.stream_id, type(event).__name__, err)

    # --- files -----------------------------------------------------------------------------------------------

    async def _transcribe_file(self, request: TranscribeFile, payload: tuple[memoryview, ...]) -> Message:
        assert self._backend is not None
        received = time.monotonic()
        if len(payload) != 1:
            return ErrorReply("invalid-request", "a file to transcribe travels as exactly one payload frame")
        try:
            loop = asyncio.get_running_loop()
            decoded = await loop.run_in_executor(self._decoder, decode_audio, bytes(payload[0]), self._config.limits)
            audio = enhance(decoded.samples, self._config.enhance)
            streaming = self._config.streaming
            min_frames = max(1, round(streaming.min_speech_ms / 1000 * SAMPLE_RATE / FRAME_SAMPLES))
            if not await loop.run_in_executor(self._decoder, contains_speech, audio, streaming.vad_threshold,
                                              min_frames):  # fmt: skip
                return ErrorReply("no-speech", f"no speech was heard in {request.filename!r}")
            started = time.monotonic()
            decode = functools.partial(self._backend.transcribe, audio, word_timestamps=request.word_timestamps,
                                       language=request.language)  # fmt: skip
            transcript = await asyncio.get_running_loop().run_in_executor(self._decoder, decode)
        except SttError as err:
            return ErrorReply(err.code, err.message)
        finished = time.monotonic()
        if not transcript.text.strip():
            return ErrorReply("no-speech", f"no speech was recognised in {request.filename!r}")
        return _result(
            transcript, decoded.duration_s, SttTimings(finished - started, finished - received, started - received)
        )

    async def close(self) -> None:
        await self._chain.close()
        self._decoder.shutdown(wait=False, cancel_futures=True)
        self._rings.close()


def _silence(seconds: float) -> Audio:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def _result(transcript: Transcript, duration_s: float, timings: SttTimings) -> TranscriptResult:
    segments = tuple(TranscriptSegment(s.start, s.end, s.text) for s in transcript.segments)
    words = tuple(TranscriptWord(w.start, w.end, w.word, w.probability) for w in transcript.words)
    return TranscriptResult(transcript.text.strip(), transcript.language, duration_s, segments, timings, words)
