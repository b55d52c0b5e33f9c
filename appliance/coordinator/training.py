"""Voice training jobs: accept a sample, run the job in the `trainer` program, record every step, register the voice.

The sample is written to the job's folder (`<data_dir>/jobs/<id>/`) before anything else, so a job waiting for
the trainer survives restarts. The request is answered once the trainer has checked the sample (decoded, long
enough, speech in it): bad samples fail the request itself with a clear code. Everything the job makes stays in
its folder until the voice is registered in one step (appliance/store/voices.py); a failed or cancelled job
leaves no voice and its folder is removed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

from appliance.config import MynahConfig
from appliance.coordinator.programs import ProgramTable, wait_until_ready
from appliance.coordinator.resources import Residency
from appliance.store.db import StoreError
from appliance.store.jobs import JobRecord, JobStore
from appliance.store.voices import VoiceFiles, VoiceStore, check_voice_name
from ipc.bus import ControlServer
from ipc.errors import PeerUnreachable
from ipc.messages import (
    CancelJob,
    ErrorReply,
    GetJob,
    GpuLease,
    GpuLeaseGranted,
    GpuRelease,
    JobAccepted,
    JobCancelRequested,
    JobDetail,
    JobEvent,
    JobInfo,
    JobProgress,
    Message,
    SampleAccepted,
    TrainedVoice,
    TrainVoice,
    TrainVoiceRequest,
)

log = logging.getLogger(__name__)

TRAINER = "trainer"
VOICE_JOB = "train-voice"
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}")
MAX_CONSENT_CHARS = 1000


@dataclass
class Waiting:
    """A client waiting for its job to be accepted (or refused)."""

    peer: bytes
    request_id: str


class TrainingRouter:
    def __init__(
        self,
        config: MynahConfig,
        server: ControlServer,
        programs: ProgramTable,
        jobs: JobStore,
        voices: VoiceStore,
        leases: Residency,
    ) -> None:
        self._config = config
        self._server = server
        self._programs = programs
        self._jobs = jobs
        self._voices = voices
        self._leases = leases
        self._jobs_dir = config.paths.data_dir / "jobs"
        self._waiting: dict[str, Waiting] = {}
        self._on_worker: set[str] = set()

    # --- start-up -------------------------------------------------------------------------------------------

    def recover(self) -> None:
        """After a coordinator restart: jobs that were running are failed (their trainer reports went to the old
        coordinator); queued jobs stay queued and go to the trainer when it is ready."""
        for job in self._jobs.unfinished():
            if job.status == "running":
                self._jobs.fail(job.job_id, "coordinator-restarted", "the coordinator restarted while the job ran")
                self._remove_folder(job.job_id)

    # --- requests ---------------------------------------------------------------------------------------------

    async def train(
        self, peer: bytes, request_id: str, request: TrainVoiceRequest, payload: tuple[memoryview, ...]
    ) -> None:
        try:
            job = self._create(request, payload)
        except StoreError as err:
            await self._server.answer(peer, ErrorReply(err.code, err.message), request_id)
            return
        self._waiting[job.job_id] = Waiting(peer, request_id)
        if await wait_until_ready(self._programs, TRAINER, self._config.supervision.worker_wait_s):
            await self._send_job(job)
        else:
            self._waiting.pop(job.job_id, None)
            await self._server.answer(peer, JobAccepted(job.job_id, "queued"), request_id)

    def _create(self, request: TrainVoiceRequest, payload: tuple[memoryview, ...]) -> JobRecord:
        name = check_voice_name(request.name)
        if self._voices.name_taken(name):
            raise StoreError("voice-name-taken", f"there is already a voice named {name!r}")
        consent = request.consent.strip()
        if not consent:
            raise StoreError("consent-required", "training a voice needs the speaker's consent")
        if len(consent) > MAX_CONSENT_CHARS:
            raise StoreError("invalid-request", f"the consent statement is over {MAX_CONSENT_CHARS} characters")
        language = request.language.strip().lower()
        if not _LANGUAGE.fullmatch(language):
            raise StoreError("voice-language-invalid", f"{request.language!r} is not a language code such as 'en'")
        if len(payload) != 1 or not payload[0].nbytes:
            raise StoreError("audio-empty", "the sample is empty")
        if payload[0].nbytes > self._config.trainer.max_upload_bytes:
            raise StoreError("audio-too-large", f"samples are limited to {self._config.trainer.max_upload_bytes} bytes")
        suffix = PurePath(request.filename).suffix
        suffix = suffix if _EXTENSION.fullmatch(suffix) else ".bin"
        params: dict[str, str | float] = {
            "name": name, "language": language, "consent": consent, "consent_at": time.time(),
            "filename": request.filename[-200:], "sample": f"sample{suffix}",
        }  # fmt: skip
        job = self._jobs.create(VOICE_JOB, params)
        folder = self._jobs_dir / job.job_id
        try:
            folder.mkdir(parents=True)
            (folder / str(params["sample"])).write_bytes(payload[0])
        except OSError as err:
            self._jobs.fail(job.job_id, "storage-failed", f"cannot store the sample: {err}")
            self._remove_folder(job.job_id)
            raise StoreError("storage-failed", f"cannot store the sample: {err}") from err
        return job

    async def _send_job(self, job: JobRecord) -> None:
        folder = self._jobs_dir / job.job_id
        params = job.params
        message = TrainVoice(
            job.job_id, params["name"], params["language"], str(folder / params["sample"]), str(folder)
        )
        if job.job_id in self._on_worker:
            return  # already sent (the trainer became ready while the request waited for it)
        self._on_worker.add(job.job_id)
        try:
            await self._server.send(TRAINER.encode(), message, job.job_id)
        except PeerUnreachable:
            await self._end(job.job_id, ErrorReply("trainer-unreachable", "the trainer cannot be reached"))
            return
        self._jobs.progress(job.job_id, "decode", 0.0, "the trainer took the job")

    async def cancel(self, peer: bytes, request_id: str, request: CancelJob) -> None:
        try:
            job = self._jobs.get(request.job_id)
        except StoreError as err:
            await self._server.answer(peer, ErrorReply(err.code, err.message), request_id)
            return
        if not job.ended:
            if job.job_id in self._on_worker:
                with contextlib.suppress(PeerUnreachable):
                    await self._server.send(TRAINER.encode(), request)
            else:
                await self._end(job.job_id, ErrorReply("cancelled", "cancelled before it started"))
        await self._server.answer(peer, JobCancelRequested(job.job_id, self._jobs.get(job.job_id).status), request_id)

    def detail(self, request: GetJob) -> Message:
        try:
            job = self._jobs.get(request.job_id)
            events = self._jobs.events(request.job_id, request.events_after)
        except StoreError as err:
            return ErrorReply(err.code, err.message)
        info = JobInfo(job.job_id, job.kind, job.status, job.step, job.progress, job.error_code, job.error_message,
                       job.voice_id, job.created_at, job.updated_at)  # fmt: skip
        return JobDetail(info, tuple(JobEvent(e.seq, e.at, e.kind, e.step, e.progress, e.detail) for e in events))

    async def lease(self, peer: bytes, request_id: str, message: GpuLease | GpuRelease) -> None:
        if isinstance(message, GpuLease):
            self._jobs.progress(message.job_id, "gpu", 0.0, "freeing the GPU for training")
            freed = await self._leases.grant(message.job_id)
            self._jobs.progress(message.job_id, "gpu", 0.0, "freed: " + (", ".join(freed) or "nothing was on the GPU"))
            await self._server.answer(peer, GpuLeaseGranted(message.job_id, freed), request_id)
        else:
            await self._leases.release(message.job_id)
            await self._server.answer(peer, GpuLeaseGranted(message.job_id, ()), request_id)

    # --- the trainer's reports --------------------------------------------------------------------------------

    async def worker_event(self, job_id: str, message: Message) -> None:
        match message:
            case SampleAccepted():
                heard = f"{message.duration_s:.1f} s of audio, {message.speech_s:.1f} s of speech"
                self._jobs.progress(job_id, "decode", 0.05, heard)
                waiting = self._waiting.pop(job_id, None)
                if waiting is not None:
                    await self._server.answer(waiting.peer, JobAccepted(job_id, "running"), waiting.request_id)
            case JobProgress():
                self._jobs.progress(job_id, message.step, message.progress, message.detail)
            case TrainedVoice():
                await self._register(job_id, message)
            case ErrorReply():
                await self._end(job_id, message)

    async def _register(self, job_id: str, result: TrainedVoice) -> None:
        job = self._jobs.get(job_id)
        files = VoiceFiles(kind=result.kind, reference_path=result.reference_path,
                           reference_text=result.reference_text, dataset_list=result.dataset_list, clips=result.clips,
                           adaptation_path=result.adaptation_path, gpt_weights=result.gpt_weights,
                           sovits_weights=result.sovits_weights, measures=dict(result.measures))  # fmt: skip
        params = job.params
        try:
            voice = self._voices.register(name=params["name"], language=params["language"], consent=params["consent"],
                                          consent_at=params["consent_at"], files=files,
                                          source=self._jobs_dir / job_id / "voice", job_id=job_id)  # fmt: skip
        except (StoreError, OSError) as err:
            code, why = (err.code, err.message) if isinstance(err, StoreError) else ("storage-failed", str(err))
            await self._end(job_id, ErrorReply(code, f"the voice could not be registered: {why}"))
            return
        self._on_worker.discard(job_id)
        self._jobs.finish(job_id, voice.voice_id, f"voice {voice.name!r} registered ({voice.kind})")
        self._remove_folder(job_id)
        log.info("job %s registered voice %s (%s)", job_id, voice.voice_id, voice.kind)

    async def _end(self, job_id: str, error: ErrorReply) -> None:
        self._on_worker.discard(job_id)
        with contextlib.suppress(StoreError):
            self._jobs.fail(job_id, error.code, error.message)
        self._remove_folder(job_id)
        await self._leases.release(job_id)
        waiting = self._waiting.pop(job_id, None)
        if waiting is not None:
            await self._server.answer(waiting.peer, error, waiting.request_id)

    # --- the trainer's lifecycle ------------------------------------------------------------------------------

    async def program_down(self, program: str, code: str, why: str) -> None:
        if program == TRAINER:
            for job_id in list(self._on_worker):
                await self._end(job_id, ErrorReply(code, why))

    async def program_ready(self, program: str) -> None:
        if program == TRAINER:
            for job in self._jobs.unfinished():
                if job.status == "queued" and job.job_id not in self._on_worker:
                    await self._send_job(job)

    def _remove_folder(self, job_id: str) -> None:
        folder: Path = self._jobs_dir / job_id
        shutil.rmtree(folder, ignore_errors=True)
