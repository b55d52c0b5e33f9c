"""The trainer worker's service: long batch jobs, one at a time, with progress reports and cancellation.

A job's first report is SampleAccepted (or its error): the coordinator answers the user's request with it. Then
JobProgress per step, and TrainedVoice last. The trainer asks the coordinator for what it needs on the way:
transcripts from the batch STT worker, and the GPU to itself before GPT-SoVITS trains.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from appliance.config import MynahConfig
from appliance.models.store import ModelStore
from ipc.bus import ControlClient
from ipc.codec import Packet
from ipc.errors import BusTimeout, CodedError, PeerUnreachable
from ipc.messages import (
    CancelJob,
    ErrorReply,
    GpuLease,
    GpuLeaseGranted,
    GpuRelease,
    JobProgress,
    Message,
    SampleAccepted,
    TrainVoice,
    TranscribeFile,
    TranscriptResult,
)
from procs.common.priority import worker_threads
from procs.common.worker import Replier
from procs.trainer.voice_job import Transcribe, VoiceJob

log = logging.getLogger(__name__)

LEASE_TIMEOUT_S = 120.0


class TrainerService:
    def __init__(self, config: MynahConfig, models: ModelStore) -> None:
        self._config = config
        self._models = models
        self._client: ControlClient | None = None
        self._job_id = ""
        self._cancelled = threading.Event()
        self._threads = worker_threads("job", batch=True)

    @property
    def backend(self) -> str:
        return "gpt-sovits" if self._config.trainer.gpt_sovits_root else "embedded"

    @property
    def model(self) -> str:
        return self._config.tts.piper.model if self.backend == "embedded" else str(self._config.trainer.gpt_sovits_root)

    def bind(self, client: ControlClient) -> None:
        self._client = client

    async def load(self) -> None:
        return None  # each job loads what it needs, and lets it go after

    def control(self, packet: Packet) -> None:
        message = packet.message
        if isinstance(message, CancelJob) and message.job_id == self._job_id:
            log.info("job %s: cancel requested", message.job_id)
            self._cancelled.set()

    async def handle(self, packet: Packet, reply: Replier) -> None:
        if not isinstance(packet.message, TrainVoice):
            await reply(
                ErrorReply("unsupported-request", f"the trainer does not serve {type(packet.message).__name__}")
            )
            return
        request = packet.message
        self._job_id, self._cancelled = request.job_id, threading.Event()

        async def report(step: str, progress: float, detail: str) -> None:
            log.info("job %s: %s %.0f%% %s", request.job_id, step, progress * 100, detail)
            await reply(JobProgress(request.job_id, step, progress, detail))

        job = VoiceJob(request.job_id, request.name, request.language, Path(request.sample_path),
                       Path(request.work_dir), self._config.trainer, self._config.tts, self._models, report,
                       self._transcriber(request.language), self._cancelled, self._lease, self._threads)  # fmt: skip
        try:
            sample = await job.accept_sample()
            await reply(SampleAccepted(request.job_id, sample.duration_s, sample.speech_s))
            await reply(await job.run(sample))
        except CodedError as err:
            log.warning("job %s failed: %s (%s)", request.job_id, err.message, err.code)
            await reply(ErrorReply(err.code, err.message))
        finally:
            self._job_id = ""

    def _transcriber(self, language: str) -> Transcribe:
        async def transcribe(wav: bytes, filename: str) -> str:
            answer = await self._ask(TranscribeFile(filename, language), self._config.stt.limits.transcribe_timeout_s,
                                     payload=[wav])  # fmt: skip
            if isinstance(answer, TranscriptResult):
                return answer.text
            if isinstance(answer, ErrorReply) and answer.code == "no-speech":
                return ""
            code, why = (answer.code, answer.message) if isinstance(answer, ErrorReply) else ("stt-failed", "")
            raise CodedError(code, f"transcribing {filename} failed: {why}")

        return transcribe

    async def _lease(self, take: bool) -> tuple[str, ...]:
        answer = await self._ask(GpuLease(self._job_id) if take else GpuRelease(self._job_id), LEASE_TIMEOUT_S)
        if not isinstance(answer, GpuLeaseGranted):
            raise CodedError("gpu-lease-failed", f"the coordinator did not free the GPU: {answer}")
        return answer.freed

    async def _ask(self, message: Message, deadline_s: float, payload: list[bytes] | None = None) -> Message:
        assert self._client is not None, "bind() is called before any request is handled"
        try:
            return await self._client.request(message, deadline_s=deadline_s, payload=payload or ())
        except (BusTimeout, PeerUnreachable) as err:
            raise CodedError("coordinator-unavailable", f"{type(message).__name__}: {err}") from err

    async def close(self) -> None:
        self._cancelled.set()
        self._threads.shutdown(wait=False, cancel_futures=True)
