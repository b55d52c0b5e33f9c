"""Generated videos: speech (text spoken by the `tts` worker, or an uploaded file) said by an avatar, rendered to an
MP4 by the `lipsync` worker (POST /generate-avatar); and avatars prepared ahead of it (POST /api/avatars).

An uploaded image is prepared first (PrepareAvatar), so an image without a usable face fails the request itself.
Short speech (up to `lipsync.direct_max_s`; for text, its length estimated from its characters) is rendered while
the client waits: the answer is AvatarVideo, and the MP4 is fetched once with GetJobResult, which removes its
files. Longer speech becomes a job (kind "generate-avatar") in the job store that voice training uses: answered
with JobAccepted at once, followed through GetJob, its MP4 fetched with GetJobResult once done.

Every render works in its own folder, `<data_dir>/jobs/<id>/`: speech.wav in, avatar.mp4 out. A failed or
cancelled render leaves nothing, and a direct render's folder goes once its MP4 was fetched (or after
DIRECT_KEEP_S if nobody fetches it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import MynahConfig, SttLimits
from appliance.coordinator.face import LIPSYNC
from appliance.coordinator.programs import ProgramTable, wait_until_ready
from appliance.coordinator.speech_out import TTS
from appliance.coordinator.voices import VoiceRouter
from appliance.logs import log_context
from appliance.store.db import StoreError
from appliance.store.jobs import JobStore
from ipc.bus import ControlServer
from ipc.codec import Buffer
from ipc.errors import CodedError, PeerUnreachable
from ipc.messages import (
    AvatarPrepared,
    AvatarVideo,
    CancelJob,
    CancelTurn,
    ErrorReply,
    GenerateAvatar,
    GetJobResult,
    JobAccepted,
    JobCancelRequested,
    JobProgress,
    JobResult,
    Message,
    PhonemeSpan,
    PrepareAvatar,
    RenderVideo,
    SpeakDone,
    SpeakEnd,
    SpeakText,
    SpeechAudio,
    SpeechPiece,
    SynthesisOpen,
    VideoRendered,
    VoiceSpec,
)
from ipc.rings import RingReader

log = logging.getLogger(__name__)

AVATAR_JOB = "generate-avatar"
MEDIA_TYPE = "video/mp4"
OUTPUT_RATE = 48_000
RESOLUTIONS = (512, 768, 1024)
# Piper's English at speed 1 says about 14-16 characters a second; the low end errs toward making a job.
CHARS_PER_S = 14.0
MIN_AUDIO_S = 0.2
PREPARE_TIMEOUT_S = 60.0
SPEECH_IDLE_S = 60.0  # the longest silence from the tts worker while it speaks a text
DIRECT_KEEP_S = 120.0
SPEECH_SHARE = 0.2  # of a text job's progress: the speech, then the render


class AvatarError(CodedError):
    """A generated video failed, with the code the client sees (docs/errors.md)."""


@dataclass
class Asked:
    """A request to a worker, waiting for its final answer; `activity` is set by every message for it."""

    answer: asyncio.Future[Message]
    activity: asyncio.Event = field(default_factory=asyncio.Event)
    on_progress: Callable[[JobProgress], Awaitable[None]] | None = None


@dataclass
class Speech:
    """A text being spoken by the tts worker: its PCM16 on the turn's 48 kHz timeline and its phonemes."""

    answer: asyncio.Future[Message]
    activity: asyncio.Event = field(default_factory=asyncio.Event)
    pcm: bytearray = field(default_factory=bytearray)
    phonemes: list[PhonemeSpan] = field(default_factory=list)
    lost: int = 0  # audio slots overwritten before they were read


@dataclass(frozen=True)
class Plan:
    """What to render, once the request has passed its checks."""

    text: str
    voice: VoiceSpec | None
    pcm: bytes | None  # the uploaded audio, decoded; None: speak `text`
    avatar_id: str | None
    resolution: int | None
    adjusted: str


@dataclass
class Render:
    """A render in progress. `client` is (peer, request id) for a direct render, None for a job."""

    render_id: str
    client: tuple[bytes, str] | None
    asked: dict[str, Asked | Speech] = field(default_factory=dict)  # by worker: what it is doing for us


@dataclass(frozen=True)
class Direct:
    """A direct render's MP4, waiting to be fetched."""

    folder: Path
    expires: float


class AvatarRouter:
    def __init__(
        self, config: MynahConfig, server: ControlServer, programs: ProgramTable, jobs: JobStore, voices: VoiceRouter
    ) -> None:
        self._config = config
        self._server = server
        self._programs = programs
        self._jobs = jobs
        self._voices = voices
        self._jobs_dir = config.paths.data_dir / "jobs"
        self._asked: dict[str, Asked] = {}  # by request id, for the lipsync worker
        self._speech: dict[str, Speech] = {}  # by turn id, for the tts worker
        self._renders: dict[str, Render] = {}
        self._direct: dict[str, Direct] = {}
        self._rings = RingReader()

    # --- start-up -------------------------------------------------------------------------------------------

    def recover(self) -> None:
        """After a coordinator restart: renders that were under way are gone with the old coordinator; so are the
        folders of direct renders nobody fetched (they have no job row)."""
        for job in self._jobs.unfinished():
            if job.kind == AVATAR_JOB:
                why = "the coordinator restarted while the video rendered"
                self._jobs.fail(job.job_id, "coordinator-restarted", why)
                self._remove(job.job_id)
        if self._jobs_dir.is_dir():
            for folder in self._jobs_dir.iterdir():
                try:
                    self._jobs.get(folder.name)
                except StoreError:
                    shutil.rmtree(folder, ignore_errors=True)

    # --- requests --------------------------------------------------------------------------------------------

    async def generate(
        self, peer: bytes, request_id: str, request: GenerateAvatar, payload: tuple[memoryview, ...]
    ) -> None:
        self._sweep(time.monotonic())
        try:
            plan, long = await self._plan(request, payload)
        except CodedError as err:
            await self._server.answer(peer, ErrorReply(err.code, err.message), request_id)
            return
        if not long:
            await self._render(uuid.uuid4().hex, plan, (peer, request_id))
            return
        source = "text" if plan.pcm is None else "audio"
        params: dict[str, str | int | float | None] = {
            "source": source, "avatar_id": plan.avatar_id, "resolution": plan.resolution, "adjusted": plan.adjusted,
            "chars": len(plan.text), "audio_s": len(plan.pcm) / 2 / OUTPUT_RATE if plan.pcm else 0.0,
        }  # fmt: skip
        job = self._jobs.create(AVATAR_JOB, params, "waiting for the lip-sync worker")
        # Running from here on: a queued job of another kind would be handed to the trainer (training.py).
        self._jobs.progress(job.job_id, "speech" if plan.pcm is None else "render", 0.0, f"{source} accepted")
        await self._server.answer(peer, JobAccepted(job.job_id, "running"), request_id)
        await self._render(job.job_id, plan, None)

    async def _plan(self, request: GenerateAvatar, payload: tuple[memoryview, ...]) -> tuple[Plan, bool]:
        """Check the request, prepare its avatar and decode its audio; True with the plan when it makes a job."""
        wanted = (request.audio_filename != "") + (request.avatar_filename != "")
        if len(payload) != wanted:
            raise AvatarError("invalid-request", f"expected {wanted} payload frames, got {len(payload)}")
        audio = payload[0] if request.audio_filename else None
        image = payload[-1] if request.avatar_filename else None
        text = request.text.strip()
        if (audio is None) == (not text):
            raise AvatarError("invalid-request", "send either text or an audio file")
        if text and len(text) > self._config.gateway.max_text_chars:
            raise AvatarError("text-too-long", f"text is limited to {self._config.gateway.max_text_chars} characters")
        if request.resolution is not None and request.resolution not in RESOLUTIONS:
            raise AvatarError("invalid-request", f"resolution is one of {', '.join(map(str, RESOLUTIONS))}")
        if image is not None and request.avatar_id is not None:
            raise AvatarError("invalid-request", "send an avatar image or an avatar_id, not both")
        try:
            voice = self._voices.spec(request.voice_id) if text else None
        except StoreError as err:
            raise AvatarError(err.code, err.message) from err
        avatar_id, adjusted = request.avatar_id, ""
        if image is not None:
            reply = await self._prepare(request.avatar_filename, image)
            if isinstance(reply, ErrorReply):
                raise AvatarError(reply.code, reply.message)
            assert isinstance(reply, AvatarPrepared)
            avatar_id, adjusted = reply.avatar.avatar_id, reply.avatar.adjusted
        pcm = None if audio is None else await asyncio.to_thread(self._decode, bytes(audio))
        seconds = len(pcm) / 2 / OUTPUT_RATE if pcm is not None else len(text) / CHARS_PER_S
        plan = Plan(text, voice, pcm, avatar_id, request.resolution, adjusted)
        return plan, seconds > self._config.lipsync.direct_max_s

    def _decode(self, data: bytes) -> bytes:
        """The upload as PCM16 mono 48 kHz, within the limits (the STT stage's decoder: any common format)."""
        from procs.stt.audio import decode_audio, float_to_pcm16  # heavy (PyAV, numpy): only when audio comes

        limits = SttLimits(max_upload_bytes=self._config.trainer.max_upload_bytes,
                           max_duration_s=self._config.lipsync.max_audio_s, min_duration_s=0.0)  # fmt: skip
        try:
            decoded = decode_audio(data, limits, rate=OUTPUT_RATE)
        except CodedError as err:
            raise AvatarError(err.code, err.message) from err
        if decoded.samples.size == 0:
            raise AvatarError("audio-empty", "the audio holds no samples")
        if decoded.duration_s < MIN_AUDIO_S:
            raise AvatarError("audio-too-short", f"the audio is {decoded.duration_s:.2f} s; at least {MIN_AUDIO_S} s")
        return float_to_pcm16(decoded.samples)

    async def prepare(
        self, peer: bytes, request_id: str, request: PrepareAvatar, payload: tuple[memoryview, ...]
    ) -> None:
        """POST /api/avatars: an image prepared (and cached) by the lipsync worker; AvatarPrepared or ErrorReply."""
        if not payload:  # one prepared before (None: the default avatar): describe it
            reply: Message = await self.describe(request.avatar_id)
        elif len(payload) != 1 or not payload[0].nbytes:
            reply = ErrorReply("avatar-unreadable", "the image is empty")
        else:
            reply = await self._prepare(request.filename, payload[0])
        await self._server.answer(peer, reply, request_id)

    async def _prepare(self, filename: str, image: memoryview) -> Message:
        limit = self._config.lipsync.max_upload_bytes
        if image.nbytes > limit:
            return ErrorReply("avatar-too-large", f"avatar images are limited to {limit} bytes")
        if not image.nbytes:
            return ErrorReply("avatar-unreadable", "the image is empty")
        if not await wait_until_ready(self._programs, LIPSYNC, self._config.supervision.worker_wait_s):
            return ErrorReply("lipsync-not-ready", "the lip-sync worker is not ready")
        return await self._ask(f"avatar:{uuid.uuid4().hex}", PrepareAvatar(filename[-200:]), [image], PREPARE_TIMEOUT_S)

    async def describe(self, avatar_id: str | None) -> Message:
        """A prepared avatar's AvatarPrepared (None: the default avatar, prepared now if it never was), or why not."""
        if not await wait_until_ready(self._programs, LIPSYNC, self._config.supervision.worker_wait_s):
            return ErrorReply("lipsync-not-ready", "the lip-sync worker is not ready")
        return await self._ask(f"avatar:{uuid.uuid4().hex}", PrepareAvatar("", avatar_id), [], PREPARE_TIMEOUT_S)

    async def result(self, peer: bytes, request_id: str, request: GetJobResult) -> None:
        self._sweep(time.monotonic())
        try:
            path, media_type, direct = self._result_path(request.job_id)
        except AvatarError as err:
            await self._server.answer(peer, ErrorReply(err.code, err.message), request_id)
            return
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as err:
            unread = ErrorReply("job-no-result", f"the result cannot be read: {err}")
            await self._server.answer(peer, unread, request_id)
            return
        finally:
            if direct:
                self._remove(request.job_id)  # a direct render's MP4 is fetched once
        with contextlib.suppress(PeerUnreachable):
            await self._server.send(peer, JobResult(request.job_id, media_type, len(data)), request_id, [data])

    def _result_path(self, job_id: str) -> tuple[Path, str, bool]:
        """The result file of a job (or of a direct render: True), or the AvatarError that says why there is none."""
        direct = self._direct.pop(job_id, None)
        if direct is not None:
            return direct.folder / "avatar.mp4", MEDIA_TYPE, True
        try:
            job = self._jobs.get(job_id)
        except StoreError as err:
            raise AvatarError(err.code, err.message) from err
        if not job.ended:
            raise AvatarError("job-not-done", f"the job is {job.status} ({job.step}, {job.progress:.0%})")
        if job.status != "done":
            raise AvatarError("job-failed", f"the job {job.status}: {job.error_message} ({job.error_code})")
        if not job.result_path:
            raise AvatarError("job-no-result", f"a {job.kind} job makes no file")
        return Path(job.result_path), job.result_type or "application/octet-stream", False

    def busy_ids(self) -> set[str]:
        """Folders in use: renders under way and direct renders waiting to be fetched (the janitor keeps them)."""
        return set(self._renders) | set(self._direct)

    def owns(self, job_id: str) -> bool:
        """A render of ours is under way with this id (so CancelJob is ours to answer)."""
        return job_id in self._renders

    async def cancel(self, peer: bytes, request_id: str, request: CancelJob) -> None:
        render = self._renders.get(request.job_id)
        if render is not None:
            for worker, asked in render.asked.items():
                with contextlib.suppress(PeerUnreachable):
                    if worker == LIPSYNC:
                        await self._server.send(LIPSYNC.encode(), request)
                    else:
                        await self._server.send(TTS.encode(), CancelTurn(_turn_id(render.render_id)))
                if not asked.answer.done():
                    asked.answer.set_result(ErrorReply("cancelled", "cancelled"))
                    asked.activity.set()
        status = "cancelled"
        with contextlib.suppress(StoreError):
            status = self._jobs.get(request.job_id).status
        await self._server.answer(peer, JobCancelRequested(request.job_id, status), request_id)

    # --- a render ----------------------------------------------------------------------------------------

    async def _render(self, render_id: str, plan: Plan, client: tuple[bytes, str] | None) -> None:
        with log_context(job_id=render_id):  # a job's id, or a direct render's
            await self._run_render(render_id, plan, client)

    async def _run_render(self, render_id: str, plan: Plan, client: tuple[bytes, str] | None) -> None:
        folder = self._jobs_dir / render_id
        render = self._renders[render_id] = Render(render_id, client)
        started = time.monotonic()
        try:
            # Before the speech is made: a text spoken for a renderer that is not there is wasted.
            if not await wait_until_ready(self._programs, LIPSYNC, self._config.supervision.worker_wait_s):
                raise AvatarError("lipsync-not-ready", "the lip-sync worker is not ready")
            folder.mkdir(parents=True, exist_ok=True)
            pcm, share = plan.pcm, 0.0
            phonemes: tuple[PhonemeSpan, ...] = ()
            if pcm is None:
                pcm, phonemes = await self._speak(render, plan)
                share = SPEECH_SHARE
            await asyncio.to_thread(_write_wav, folder / "speech.wav", pcm)
            await self._progress(render, JobProgress(render_id, "render", share, "rendering the video"))
            message = RenderVideo(render_id, str(folder / "speech.wav"), str(folder / "avatar.mp4"), plan.avatar_id,
                                  plan.text, phonemes, plan.resolution)  # fmt: skip

            async def progress(p: JobProgress) -> None:
                scaled = share + (1 - share) * min(max(p.progress, 0.0), 1.0)
                await self._progress(render, JobProgress(render_id, p.step, scaled, p.detail))

            asked = Asked(asyncio.get_running_loop().create_future(), on_progress=progress)
            render.asked[LIPSYNC] = asked
            reply = await self._ask(render_id, message, (), self._render_idle_s(), asked)
            if isinstance(reply, ErrorReply):
                raise AvatarError(reply.code, reply.message)
            if not isinstance(reply, VideoRendered):
                raise AvatarError("lipsync-failed", f"the render was answered by {type(reply).__name__}")
            (folder / "speech.wav").unlink(missing_ok=True)
            if not (folder / "avatar.mp4").is_file():
                raise AvatarError("lipsync-failed", "the lip-sync worker reported a video it did not write")
        except (AvatarError, OSError) as err:
            code, why = (err.code, err.message) if isinstance(err, AvatarError) else ("storage-failed", str(err))
            await self._failed(render, code, why)
            return
        finally:
            self._renders.pop(render_id, None)
        log.info("rendered %s: %s frames in %.1f s (%s)", render_id, reply.frames, time.monotonic() - started,
                 reply.backend)  # fmt: skip
        await self._done(render, plan, reply)

    async def _speak(self, render: Render, plan: Plan) -> tuple[bytes, tuple[PhonemeSpan, ...]]:
        """The text spoken by the tts worker, as one stream: its PCM16 and its phonemes on the same timeline."""
        if not await wait_until_ready(self._programs, TTS, self._config.supervision.worker_wait_s):
            raise AvatarError("tts-not-ready", "speech synthesis is not ready")
        await self._progress(render, JobProgress(render.render_id, "speech", 0.0, "synthesizing the speech"))
        turn_id = _turn_id(render.render_id)
        speech = self._speech[turn_id] = Speech(asyncio.get_running_loop().create_future())
        render.asked[TTS] = speech
        try:
            try:
                await self._server.send(TTS.encode(), SynthesisOpen(turn_id, plan.voice, 1.0), turn_id)
                await self._server.send(TTS.encode(), SpeakText(turn_id, plan.text))
                await self._server.send(TTS.encode(), SpeakEnd(turn_id))
            except PeerUnreachable as err:
                raise AvatarError("tts-unreachable", "the speech synthesis worker cannot be reached") from err
            reply = await _wait(speech.answer, speech.activity, SPEECH_IDLE_S)
        finally:
            self._speech.pop(turn_id, None)
            render.asked.pop(TTS, None)
        if reply is None:
            with contextlib.suppress(PeerUnreachable):
                await self._server.send(TTS.encode(), CancelTurn(turn_id))
            raise AvatarError("tts-timeout", f"speech synthesis was silent for {SPEECH_IDLE_S:g} s")
        if isinstance(reply, ErrorReply):
            raise AvatarError(reply.code, reply.message)
        if isinstance(reply, SpeakDone) and reply.cancelled:
            raise AvatarError("cancelled", "cancelled")
        if speech.lost:
            raise AvatarError("audio-lost", f"{speech.lost} pieces of speech were overwritten before they were read")
        seconds = len(speech.pcm) / 2 / OUTPUT_RATE
        if not speech.pcm:
            raise AvatarError("nothing-to-say", f"there is nothing to say in {plan.text[:80]!r}")
        if seconds > self._config.lipsync.max_audio_s:
            raise AvatarError("audio-too-long", f"the speech is {seconds:.0f} s; the limit is "
                              f"{self._config.lipsync.max_audio_s:g} s")  # fmt: skip
        said = f"{seconds:.1f} s of speech"
        await self._progress(render, JobProgress(render.render_id, "speech", SPEECH_SHARE, said))
        return bytes(speech.pcm), tuple(speech.phonemes)

    async def _ask(
        self, request_id: str, message: Message, payload: Sequence[Buffer], idle_s: float, asked: Asked | None = None
    ) -> Message:
        """Send `message` to the lipsync worker and wait for its final answer (progress keeps the wait alive)."""
        asked = asked or Asked(asyncio.get_running_loop().create_future())
        self._asked[request_id] = asked
        try:
            await self._server.send(LIPSYNC.encode(), message, request_id, payload)
            reply = await _wait(asked.answer, asked.activity, idle_s)
        except PeerUnreachable:
            return ErrorReply("lipsync-unreachable", "the lip-sync worker cannot be reached")
        finally:
            self._asked.pop(request_id, None)
        if reply is None:
            with contextlib.suppress(PeerUnreachable):
                await self._server.send(LIPSYNC.encode(), CancelJob(request_id))
            return ErrorReply("lipsync-timeout", f"the lip-sync worker was silent for {idle_s:g} s")
        return reply

    def _render_idle_s(self) -> float:
        # SadTalker reports little while it runs; its own timeout fails it first.
        return self._config.lipsync.sadtalker.timeout_s + 60.0

    async def _progress(self, render: Render, progress: JobProgress) -> None:
        if render.client is None:
            self._jobs.progress(render.render_id, progress.step, progress.progress, progress.detail)
        else:
            # Relayed to the waiting client: it also keeps the gateway's idle timer from running out.
            peer, request_id = render.client
            await self._server.answer(peer, progress, request_id)

    async def _failed(self, render: Render, code: str, why: str) -> None:
        self._remove(render.render_id)
        log.info("render %s failed: %s (%s)", render.render_id, why, code)
        if render.client is None:
            with contextlib.suppress(StoreError):
                self._jobs.fail(render.render_id, code, why)
        else:
            peer, request_id = render.client
            await self._server.answer(peer, ErrorReply(code, why), request_id)

    async def _done(self, render: Render, plan: Plan, video: VideoRendered) -> None:
        out = self._jobs_dir / render.render_id / "avatar.mp4"
        detail = f"{video.frames} frames, {video.width}x{video.height}, {video.duration_s:.1f} s ({video.backend})"
        if render.client is None:
            if not self._jobs.finish(render.render_id, None, detail, result=(str(out), MEDIA_TYPE)):
                self._remove(render.render_id)  # it was cancelled meanwhile
            return
        self._direct[render.render_id] = Direct(out.parent, time.monotonic() + DIRECT_KEEP_S)
        peer, request_id = render.client
        answer = AvatarVideo(render.render_id, video.frames, video.width, video.height, video.duration_s,
                             video.backend, video.render_s, plan.adjusted)  # fmt: skip
        if not await self._server.answer(peer, answer, request_id):
            self._direct.pop(render.render_id, None)
            self._remove(render.render_id)

    # --- the workers' reports ------------------------------------------------------------------------------

    def asked(self, request_id: str) -> bool:
        """A lipsync worker message for `request_id` is an answer to us."""
        return request_id in self._asked

    def speaking(self, turn_id: str) -> bool:
        """A tts worker message for `turn_id` is speech we asked for."""
        return turn_id in self._speech

    async def worker_event(self, request_id: str, message: Message) -> None:
        asked = self._asked.get(request_id)
        if asked is None:
            return
        if isinstance(message, JobProgress):
            if asked.on_progress is not None:
                await asked.on_progress(message)
        elif type(message).final and not asked.answer.done():
            asked.answer.set_result(message)
        asked.activity.set()

    def speech_event(self, turn_id: str, message: Message) -> None:
        speech = self._speech.get(turn_id)
        if speech is None:
            return
        match message:
            case SpeechPiece():
                speech.phonemes.extend(message.phonemes)
            case SpeechAudio():
                # Read now: the ring's slot is overwritten once the worker has gone round it.
                pcm = self._rings.read(message.ref)
                if pcm is None:
                    speech.lost += 1
                else:
                    start = 2 * message.first_sample
                    if len(speech.pcm) < start:
                        speech.pcm.extend(bytes(start - len(speech.pcm)))
                    speech.pcm[start : start + len(pcm)] = pcm
            case _ if type(message).final and not speech.answer.done():
                speech.answer.set_result(message)
        speech.activity.set()

    async def program_down(self, program: str, code: str, why: str) -> None:
        waiting: list[Asked | Speech] = []
        if program == LIPSYNC:
            waiting = list(self._asked.values())
        elif program == TTS:
            waiting = list(self._speech.values())
        for asked in waiting:
            if not asked.answer.done():
                asked.answer.set_result(ErrorReply(code, why))
                asked.activity.set()

    # --- files -----------------------------------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        for render_id, direct in list(self._direct.items()):
            if direct.expires < now:
                del self._direct[render_id]
                self._remove(render_id)

    def _remove(self, render_id: str) -> None:
        shutil.rmtree(self._jobs_dir / render_id, ignore_errors=True)

    def close(self) -> None:
        self._rings.close()


def _turn_id(render_id: str) -> str:
    return f"avatar:{render_id}"


async def _wait(answer: asyncio.Future[Message], activity: asyncio.Event, idle_s: float) -> Message | None:
    """The answer, or None once nothing at all came for `idle_s` seconds."""
    while not answer.done():
        activity.clear()
        try:
            await asyncio.wait_for(activity.wait(), idle_s)
        except TimeoutError:
            return None
    return answer.result()


def _write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(OUTPUT_RATE)
        wav.writeframes(pcm)
