"""Speech in: live audio streams go to the `stt` worker, uploaded files to `stt-batch`.

Live and batch work run in separate programs so that a long file never sits in front of a live utterance;
the batch program runs in the idle scheduling class (SCHED_IDLE), so the kernel gives live decoding the cores first.

Log lines carry the live stream's id as their `turn_id`, a file's `file:<request id>` as their `job_id`.

A live stream outlives its worker: when `stt` dies the client gets a StreamFault event (the stream stays
open), audio that arrives meanwhile is dropped and counted, and when `stt` is ready again the stream is
re-opened on it, so the next utterance is transcribed.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from appliance.config import MynahConfig
from appliance.coordinator.outbox import Sender
from appliance.coordinator.programs import ProgramTable, wait_until_ready
from appliance.logs import log_context
from ipc.errors import PeerUnreachable
from ipc.messages import (
    AudioChunk,
    AudioStreamClose,
    AudioStreamClosed,
    AudioStreamOpen,
    ErrorReply,
    Message,
    StreamFault,
    TranscribeFile,
)

log = logging.getLogger(__name__)

LIVE = "stt"
BATCH = "stt-batch"


@dataclass
class LiveStream:
    open: AudioStreamOpen
    peer: bytes
    request_id: str
    on_worker: bool = False
    dropped_chunks: int = 0


@dataclass
class FileJob:
    peer: bytes
    request_id: str


class SpeechInRouter:
    def __init__(self, config: MynahConfig, server: Sender, programs: ProgramTable) -> None:
        self._config = config
        self._server = server
        self._programs = programs
        self._streams: dict[str, LiveStream] = {}
        self._files: dict[str, FileJob] = {}

    @property
    def dropped_chunks(self) -> int:
        return sum(s.dropped_chunks for s in self._streams.values())

    # --- live streams -----------------------------------------------------------------------------------

    async def open_stream(self, peer: bytes, request_id: str, request: AudioStreamOpen) -> None:
        stream = LiveStream(request, peer, request_id)
        self._streams[request.stream_id] = stream
        with log_context(turn_id=request.stream_id):
            if self._programs.is_ready(LIVE):
                await self._open_on_worker(stream)
            else:
                await self._fault(
                    stream, "stt-not-ready", "speech recognition is starting; audio is dropped until then"
                )

    async def _open_on_worker(self, stream: LiveStream) -> None:
        try:
            await self._server.send(LIVE.encode(), stream.open, stream.open.stream_id)
            stream.on_worker = True
        except PeerUnreachable:
            await self._fault(stream, "stt-unreachable", "the speech recognition worker cannot be reached")

    async def chunk(self, chunk: AudioChunk) -> None:
        stream = self._streams.get(chunk.stream_id)
        if stream is None:
            return
        if not stream.on_worker:
            stream.dropped_chunks += 1
            return
        try:
            await self._server.send(LIVE.encode(), chunk)
        except PeerUnreachable:
            stream.dropped_chunks += 1

    async def close_stream(self, request: AudioStreamClose) -> None:
        stream = self._streams.get(request.stream_id)
        if stream is None:
            return
        if stream.on_worker:
            with contextlib.suppress(PeerUnreachable):
                await self._server.send(LIVE.encode(), request)
                return  # the worker answers AudioStreamClosed, which ends the stream
        self._streams.pop(request.stream_id, None)
        with log_context(turn_id=request.stream_id):
            await self._relay(stream, AudioStreamClosed(request.stream_id, stream.dropped_chunks))

    async def stream_event(self, stream_id: str, message: Message) -> None:
        """An event from the live worker for one stream: relay it to the client that opened the stream."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        if isinstance(message, AudioStreamClosed):
            self._streams.pop(stream_id, None)
            message = AudioStreamClosed(stream_id, message.dropped_chunks + stream.dropped_chunks)
        elif isinstance(message, ErrorReply):
            # A failure inside the worker for this stream: tell the client, keep the stream.
            message = StreamFault(stream_id, message.code, message.message)
        with log_context(turn_id=stream_id):
            await self._relay(stream, message)

    async def _fault(self, stream: LiveStream, code: str, why: str) -> None:
        await self._relay(stream, StreamFault(stream.open.stream_id, code, why))

    async def _relay(self, stream: LiveStream, message: Message) -> None:
        try:
            await self._server.send(stream.peer, message, stream.request_id)
        except PeerUnreachable:
            log.info("stream %s: its client went away", stream.open.stream_id)
            self._streams.pop(stream.open.stream_id, None)
            if stream.on_worker:
                with contextlib.suppress(PeerUnreachable):
                    await self._server.send(LIVE.encode(), AudioStreamClose(stream.open.stream_id))

    def owns(self, request_id: str) -> bool:
        return request_id in self._streams or request_id in self._files

    # --- files ---------------------------------------------------------------------------------------------

    async def transcribe_file(
        self, peer: bytes, request_id: str, request: TranscribeFile, payload: tuple[memoryview, ...]
    ) -> None:
        if not await wait_until_ready(self._programs, BATCH, self._config.supervision.worker_wait_s):
            await self._server.answer(peer, ErrorReply("stt-not-ready", "speech recognition is not ready"), request_id)
            return
        job_id = f"file:{request_id}"
        self._files[job_id] = FileJob(peer, request_id)
        try:
            await self._server.send(BATCH.encode(), request, job_id, payload)
        except PeerUnreachable:
            self._files.pop(job_id, None)
            with log_context(job_id=job_id):
                await self._server.answer(
                    peer, ErrorReply("stt-unreachable", "the batch STT worker is unreachable"), request_id
                )

    async def file_result(self, job_id: str, message: Message) -> None:
        job = self._files.pop(job_id, None)
        if job is not None:
            with log_context(job_id=job_id):
                await self._server.answer(job.peer, message, job.request_id)

    # --- worker lifecycle ------------------------------------------------------------------------------------

    async def program_down(self, program: str, code: str, why: str) -> None:
        if program == LIVE:
            for stream in list(self._streams.values()):
                stream.on_worker = False
                with log_context(turn_id=stream.open.stream_id):
                    await self._fault(stream, code, why)
        elif program == BATCH:
            for job_id in list(self._files):
                await self.file_result(job_id, ErrorReply(code, why))

    async def program_ready(self, program: str) -> None:
        if program == LIVE:
            for stream in list(self._streams.values()):
                if not stream.on_worker:
                    with log_context(turn_id=stream.open.stream_id):
                        await self._open_on_worker(stream)
