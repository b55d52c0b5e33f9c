"""The lipsync worker's service: avatars prepared and cached, live frames for a turn's speech, batch videos.

- PrepareAvatar: check the image, find the face, build its rig and render its idle loop, once per image (the
  avatar cache, `<data_dir>/avatars/<id>/`); the reply describes the face so a UI can draw it.
- AnimateOpen / AnimateSpeech / AnimateEnd: a live stream. Each speech chunk (PCM16 48 kHz, with phoneme
  spans when the voice has them, else spans found from the audio itself) is planned into frames
  (procs/lipsync/animate.py); each frame is rendered into the worker's frame ring (`lipsync-frames`, RGB24)
  and announced with FrameReady, tagged with its 48 kHz sample index. Frames are drawn at most LEAD_S ahead of
  the speech's real-time schedule (from its first chunk); one already more than LATE_S behind it is dropped and
  counted, never rendered late. CancelTurn stops a stream.
- RenderVideo: a whole MP4 (batch, in an idle-class thread, so live streams come first): phonemes as given, or
  from the STT worker's word timings (asked through the coordinator), or from the audio alone; then the
  real-time renderer or SadTalker, 30 fps H.264 + AAC (procs/lipsync/video.py).

Each message is handled, and its tasks created, under its turn id or job id (`log_context`), so their log lines
carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from appliance.config import MynahConfig, SadTalkerConfig
from appliance.logs import log_context
from appliance.models.store import ModelStore
from ipc.bus import ControlClient
from ipc.codec import Packet
from ipc.errors import BusTimeout, CodedError, IpcError, PeerUnreachable
from ipc.messages import (
    AnimateDone,
    AnimateEnd,
    AnimateOpen,
    AnimateSpeech,
    AvatarPrepared,
    CancelJob,
    CancelTurn,
    ErrorReply,
    FrameReady,
    JobProgress,
    Message,
    PrepareAvatar,
    RenderVideo,
    RingSlotRef,
    TranscribeFile,
    TranscriptResult,
    VideoRendered,
)
from ipc.rings import FrameRing
from procs.common.priority import worker_threads
from procs.common.worker import Replier, WorkerError
from procs.lipsync.align import TimedWord, spans_from_audio, spans_from_words
from procs.lipsync.animate import FramePlan, SpeechPlan
from procs.lipsync.avatar import AvatarCache, PreparedAvatar, default_avatar_bytes, prepare_cached
from procs.lipsync.backends.sadtalker import SadTalkerBackend, SadTalkerError, missing
from procs.lipsync.face import FaceFinder
from procs.lipsync.idle import IdleLoop
from procs.lipsync.layout import AVATAR_ID, AVATARS_DIR, IMAGE_FILE
from procs.lipsync.motion import FPS
from procs.lipsync.render import FULL_GAP, Renderer
from procs.lipsync.rig import Rig, build_rig, load_rig, save_rig
from procs.lipsync.visemes import OUTPUT_RATE, Span, frame_count
from procs.stt.audio import decode_audio

log = logging.getLogger(__name__)

RING_SLOTS = 32  # about a second of video in flight: readers take frames as they come
LATE_S = 0.5  # a frame this far behind its moment in the speech is dropped
# Live frames are drawn at most this far ahead of their moment in the speech (audio is the clock): the ring's
# readers never fall a ring behind (3 sessions x 7 frames < 32 slots), and the cores go to TTS and the LLM
# while the speech plays rather than to frames nobody can see yet.
LEAD_S = 0.22
RIG_FILE = "rig.npz"
KEPT_AVATARS = 3
PROGRESS_EVERY = 30  # frames between a batch video's progress reports


@dataclass
class Avatar:
    """A prepared avatar ready to draw: its rig, its idle loop, a renderer per thread that draws it."""

    prepared: PreparedAvatar
    rig: Rig
    idle: IdleLoop
    renderers: dict[str, Renderer] = field(default_factory=dict)

    def renderer(self, thread: str) -> Renderer:
        if thread not in self.renderers:
            self.renderers[thread] = Renderer(self.rig)
        return self.renderers[thread]

    @property
    def rest_opening(self) -> float:
        return self.rig.rest_gap / (FULL_GAP * self.rig.mouth_width)


@dataclass
class _Stream:
    open: AnimateOpen
    reply: Replier
    avatar: Avatar
    plan: SpeechPlan
    opened_at: float
    first_speech_at: float = 0.0
    first_frame_s: float = 0.0
    frames: int = 0
    dropped: int = 0
    cancelled: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # set with `cancelled`: wakes a paced stream
    finished: bool = False
    work: asyncio.Lock = field(default_factory=asyncio.Lock)  # chunks are rendered in order


# SadTalker errors that mean it cannot draw at all now (not installed, its host died), not that one video was bad.
SADTALKER_GONE = frozenset({"sadtalker-unavailable", "sadtalker-crashed"})


class LipsyncService:
    def __init__(self, config: MynahConfig, models: ModelStore) -> None:
        self._config = config
        self._models = models
        self._finder: FaceFinder | None = None
        self._cache = AvatarCache(config.paths.data_dir / AVATARS_DIR)
        self._avatars: OrderedDict[str, Avatar] = OrderedDict()
        self._default_id = ""
        self._ring: FrameRing | None = None
        self._live = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._batch = worker_threads("video", batch=True)
        self._streams: dict[str, _Stream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: ControlClient | None = None
        self._cancelled_jobs: set[str] = set()
        self._avatar_lock = threading.Lock()
        self._clock_zero = time.monotonic()
        self._sadtalker: SadTalkerBackend | None = None
        # Why SadTalker cannot be used now ("" when it can): generated videos use the real-time renderer meanwhile,
        # and it is tried again every supervision.fallback_retry_s until it starts (procs/common/fallback.py's rule).
        self._sadtalker_down = ""
        self._recovering: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live_frame = np.empty((0, 0, 3), np.uint8)  # drawn into by the live render thread only

    @property
    def backend(self) -> str:
        return "realtime" if self._sadtalker_down else self._config.lipsync.backend

    @property
    def degraded(self) -> str:
        if not self._sadtalker_down:
            return ""
        return f"sadtalker unavailable ({self._sadtalker_down}); using the real-time renderer until it is back"

    @property
    def model(self) -> str:
        return self._config.lipsync.face_model

    def bind(self, client: ControlClient) -> None:
        self._client = client

    async def load(self) -> None:
        self._loop = asyncio.get_running_loop()
        cv2.setNumThreads(self._config.lipsync.threads)
        if self._config.lipsync.backend == "sadtalker" and (problems := missing(self._sadtalker_settings())):
            self._sadtalker_unavailable(SadTalkerError("sadtalker-unavailable", "; ".join(problems)))
        try:
            folder = self._models.resolve(self._config.lipsync.face_model)
            self._finder = FaceFinder(folder)
            default = await asyncio.get_running_loop().run_in_executor(self._live, self._default_avatar)
        except CodedError as err:
            raise WorkerError(err.code, err.message) from err
        self._default_id = default.prepared.avatar_id
        side = self._config.lipsync.max_resolution
        self._ring = FrameRing.create(self._config.paths.runtime_dir, "lipsync", "frames", slots=RING_SLOTS,
                                      slot_bytes=side * side * 3)  # fmt: skip
        log.info("default avatar %s ready (%dx%d)", self._default_id, *default.prepared.image.shape[1::-1])

    def control(self, packet: Packet) -> None:
        match packet.message:
            case CancelTurn(turn_id=turn_id) if (stream := self._streams.get(turn_id)) is not None:
                stream.cancelled = True
                stream.stop.set()
                with log_context(turn_id=turn_id):
                    self._spawn(self._cancel(stream))
            case CancelJob(job_id=job_id):
                self._cancelled_jobs.add(job_id)
            case _:
                pass

    async def handle(self, packet: Packet, reply: Replier) -> None:
        message = packet.message
        turn_id = message.turn_id if isinstance(message, AnimateOpen | AnimateSpeech | AnimateEnd) else None
        with log_context(turn_id=turn_id, job_id=message.job_id if isinstance(message, RenderVideo) else None):
            await self._handle(packet, reply)  # the tasks it spawns copy the context

    async def _handle(self, packet: Packet, reply: Replier) -> None:
        match packet.message:
            case PrepareAvatar() as request:
                data = bytes(packet.payload[0]) if packet.payload else b""
                self._spawn(self._prepare(request, data, reply))
            case AnimateOpen() as request:
                await self._open(request, reply)
            case AnimateSpeech() as request:
                pcm = np.frombuffer(bytes(packet.payload[0]), np.int16) if packet.payload else np.zeros(0, np.int16)
                if (stream := self._streams.get(request.turn_id)) is not None:
                    self._spawn(self._speech(stream, request, pcm))
            case AnimateEnd() as request:
                if (stream := self._streams.get(request.turn_id)) is not None:
                    self._spawn(self._end(stream))
            case RenderVideo() as request:
                self._spawn(self._render_video(request, reply))
            case other:
                await reply(
                    ErrorReply("unsupported-request", f"the lipsync worker does not serve {type(other).__name__}")
                )

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- avatars ----------------------------------------------------------------------------------------------

    def _default_avatar(self) -> Avatar:
        """The configured portrait; when it is a prepared avatar's own image (the web UI's active avatar), that
        avatar as it is, rather than a second one prepared from its image."""
        chosen = self._config.lipsync.avatar
        if chosen is not None and chosen.name == IMAGE_FILE and chosen.parent.parent == self._cache.root:
            prepared = self._cache.get(chosen.parent.name) if AVATAR_ID.match(chosen.parent.name) else None
            if prepared is not None:
                with self._avatar_lock:
                    return self._ready(prepared)
        return self._avatar_from(default_avatar_bytes(self._config))[0]

    def _avatar_from(self, data: bytes) -> tuple[Avatar, bool]:
        """Prepare (or find in the cache) the avatar of an image, with its rig and idle loop. Any thread."""
        assert self._finder is not None
        limits = self._config.lipsync
        with self._avatar_lock:
            prepared, cached = prepare_cached(data, self._finder, self._cache, max_resolution=limits.max_resolution,
                                              max_bytes=limits.max_upload_bytes)  # fmt: skip
            return self._ready(prepared), cached

    def _ready(self, prepared: PreparedAvatar) -> Avatar:
        if (known := self._avatars.get(prepared.avatar_id)) is not None:
            self._avatars.move_to_end(prepared.avatar_id)
            return known
        folder = self._cache.path(prepared.avatar_id)
        rig = load_rig(prepared.image, folder / RIG_FILE)
        if rig is None:
            rig = build_rig(prepared.image, prepared.mesh)
            save_rig(rig, folder / RIG_FILE)
        renderer = Renderer(rig)
        idle = IdleLoop.load(folder)
        if idle is None:
            idle = IdleLoop.render(renderer)
            idle.save(folder)
        avatar = Avatar(prepared, rig, idle, {"idle": renderer})
        self._avatars[prepared.avatar_id] = avatar
        while len(self._avatars) > KEPT_AVATARS:
            oldest = next(iter(self._avatars))
            if oldest == self._default_id:
                self._avatars.move_to_end(oldest)
                oldest = next(iter(self._avatars))
            self._avatars.pop(oldest)
        return avatar

    def _avatar_by_id(self, avatar_id: str | None) -> Avatar:
        wanted = avatar_id or self._default_id
        with self._avatar_lock:
            if (known := self._avatars.get(wanted)) is not None:
                return known
            prepared = self._cache.get(wanted)
            if prepared is None:
                raise CodedError("avatar-not-found", f"no prepared avatar {wanted!r}: upload the image again")
            return self._ready(prepared)

    async def _prepare(self, request: PrepareAvatar, data: bytes, reply: Replier) -> None:
        loop = asyncio.get_running_loop()
        try:
            if data:
                avatar, cached = await loop.run_in_executor(self._batch, self._avatar_from, data)
            else:
                avatar, cached = await loop.run_in_executor(self._batch, self._avatar_by_id, request.avatar_id), True
            await reply(AvatarPrepared(avatar.prepared.info(), cached))
        except CodedError as err:
            log.info("avatar %r refused: %s (%s)", request.filename, err.message, err.code)
            await self._answer(reply, ErrorReply(err.code, err.message))

    # --- live streams -----------------------------------------------------------------------------------------

    async def _open(self, request: AnimateOpen, reply: Replier) -> None:
        try:
            avatar = self._avatar_by_id(request.avatar_id)
        except CodedError as err:
            await self._answer(reply, ErrorReply(err.code, err.message))
            return
        loop_start = int((time.monotonic() - self._clock_zero) * FPS)
        plan = SpeechPlan(face_height=avatar.rig.face_height, loop_start=loop_start, rest_opening=avatar.rest_opening)
        self._streams[request.turn_id] = _Stream(request, reply, avatar, plan, time.monotonic())

    async def _speech(self, stream: _Stream, request: AnimateSpeech, pcm: npt.NDArray[np.int16]) -> None:
        async with stream.work:
            if stream.finished or stream.cancelled:
                return
            if not stream.first_speech_at:
                stream.first_speech_at = time.monotonic()
            spans = [Span(p.phoneme, p.start_sample, p.end_sample) for p in request.phonemes]
            if not spans and len(pcm):
                spans = [Span(s.phoneme, s.start_sample + request.first_sample, s.end_sample + request.first_sample)
                         for s in spans_from_audio(pcm)]  # fmt: skip
            stream.plan.add_spans(spans)
            stream.plan.add_audio(request.first_sample, pcm)
            await self._render_live(stream, stream.plan.ready())

    async def _end(self, stream: _Stream) -> None:
        async with stream.work:
            if not stream.cancelled and not stream.finished:
                await self._render_live(stream, stream.plan.ready(final=True))
            await self._finish(stream)

    async def _cancel(self, stream: _Stream) -> None:
        async with stream.work:  # after the frame being drawn, if any
            await self._finish(stream)

    async def _render_live(self, stream: _Stream, plans: list[FramePlan]) -> None:
        loop = asyncio.get_running_loop()
        renderer = stream.avatar.renderer("live")
        for plan in plans:
            moment = stream.first_speech_at + plan.index / FPS
            if (early := moment - LEAD_S - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.stop.wait(), early)
            if stream.cancelled:
                await self._finish(stream)
                return
            if time.monotonic() > moment + LATE_S:
                stream.dropped += 1
                continue
            ref = await loop.run_in_executor(self._live, self._draw, renderer, plan)
            if not stream.frames:
                stream.first_frame_s = time.monotonic() - stream.first_speech_at
            stream.frames += 1
            width, height = renderer.size
            await self._answer(stream.reply, FrameReady(stream.open.turn_id, ref, plan.sample_index, width, height))

    def _draw(self, renderer: Renderer, plan: FramePlan) -> RingSlotRef:
        assert self._ring is not None
        width, height = renderer.size
        if self._live_frame.shape != (height, width, 3):  # one buffer for the live thread, not 3 MB a frame
            self._live_frame = np.empty((height, width, 3), np.uint8)
        renderer.render(self._live_frame, plan.shape, plan.pose, plan.blink)
        return self._ring.write(self._live_frame.data, pts=plan.sample_index)

    async def _finish(self, stream: _Stream) -> None:
        if stream.finished:
            return
        stream.finished = True
        self._streams.pop(stream.open.turn_id, None)
        done = AnimateDone(stream.open.turn_id, stream.frames, stream.dropped, stream.cancelled, stream.first_frame_s)
        await self._answer(stream.reply, done)

    # --- batch videos -----------------------------------------------------------------------------------------

    async def _render_video(self, request: RenderVideo, reply: Replier) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            avatar = await loop.run_in_executor(self._batch, self._avatar_by_id, request.avatar_id)
            pcm = await loop.run_in_executor(self._batch, self._read_speech, Path(request.audio_path))
            await self._answer(reply, JobProgress(request.job_id, "align", 0.05, "finding the mouth shapes"))
            spans = await self._spans_for(request, pcm)
            frames = frame_count(len(pcm))
            progress = _Progress(loop, reply, request.job_id, frames, self._answer)
            written = await loop.run_in_executor(
                self._batch, self._write_video, request, avatar, pcm, spans, progress.frame
            )
            result = VideoRendered(request.job_id, request.out_path, frames, written[0], written[1],
                                   len(pcm) / OUTPUT_RATE, self.backend, time.monotonic() - started)  # fmt: skip
            await self._answer(reply, result)
        except CodedError as err:
            log.warning("video %s failed: %s (%s)", request.job_id, err.message, err.code)
            await self._answer(reply, ErrorReply(err.code, err.message))
        finally:
            self._cancelled_jobs.discard(request.job_id)

    def _read_speech(self, path: Path) -> npt.NDArray[np.int16]:
        limits = self._config.stt.limits.model_copy(update={"max_duration_s": self._config.lipsync.max_audio_s,
                                                            "min_duration_s": 0.05})  # fmt: skip
        samples = decode_audio(path, limits, rate=OUTPUT_RATE).samples
        return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)

    async def _spans_for(self, request: RenderVideo, pcm: npt.NDArray[np.int16]) -> list[Span]:
        if request.phonemes:
            return [Span(p.phoneme, p.start_sample, p.end_sample) for p in request.phonemes]
        words = await self._words(Path(request.audio_path))
        loop = asyncio.get_running_loop()
        if words:
            return await loop.run_in_executor(self._batch, spans_from_words, words, pcm)
        return await loop.run_in_executor(self._batch, spans_from_audio, pcm)

    async def _words(self, path: Path) -> Sequence[TimedWord]:
        """The words heard in the file and when (the batch STT worker); none when it heard none or is away."""
        if self._client is None:
            return ()
        request = TranscribeFile(path.name, None, word_timestamps=True)
        try:
            wav = await asyncio.to_thread(path.read_bytes)
            answer = await self._client.request(request, deadline_s=self._config.stt.limits.transcribe_timeout_s,
                                                payload=[wav])  # fmt: skip
        except (BusTimeout, PeerUnreachable, OSError) as err:
            log.warning("no word timings for %s (%s): aligning from the audio alone", path.name, err)
            return ()
        if isinstance(answer, TranscriptResult):
            return answer.words
        log.info("no word timings for %s (%s): aligning from the audio alone", path.name, answer)
        return ()

    def _write_video(self, request: RenderVideo, avatar: Avatar, pcm: npt.NDArray[np.int16], spans: list[Span],
                     on_frame: Callable[[int], None]) -> tuple[int, int]:  # fmt: skip
        from procs.lipsync.video import Mp4Writer

        side = request.resolution or avatar.prepared.image.shape[0]
        frames = frame_count(len(pcm))
        with Mp4Writer(Path(request.out_path), side, side) as out:
            out.add_audio(pcm)
            for index, rgb in enumerate(self._frames(request, avatar, pcm, spans, frames)):
                if request.job_id in self._cancelled_jobs:
                    raise CodedError("cancelled", "the video was cancelled")
                if rgb.shape[0] != side:
                    shrink = rgb.shape[0] > side
                    rgb = np.asarray(
                        cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC),
                        np.uint8,
                    )
                out.add_frame(rgb)
                on_frame(index + 1)
        return side, side

    def _frames(self, request: RenderVideo, avatar: Avatar, pcm: npt.NDArray[np.int16], spans: list[Span],
                frames: int) -> Iterator[npt.NDArray[np.uint8]]:  # fmt: skip
        if self.backend == "sadtalker":
            drawn = self._sadtalker_frames(request, avatar)
            try:
                first = next(drawn, None)
            except SadTalkerError as err:
                if err.code not in SADTALKER_GONE:
                    raise
                self._sadtalker_unavailable(err)  # this video, and the next ones, from the real-time renderer
            else:
                if first is not None:
                    yield first
                yield from drawn
                return
        renderer = avatar.renderer("batch")
        plan = SpeechPlan(face_height=avatar.rig.face_height, loop_start=0, rest_opening=avatar.rest_opening)
        plan.add_spans(spans)
        plan.add_audio(0, pcm)
        width, height = renderer.size
        out = np.empty((height, width, 3), np.uint8)
        for step in plan.ready(final=True)[:frames]:
            renderer.render(out, step.shape, step.pose, step.blink)
            yield out

    def _sadtalker_frames(self, request: RenderVideo, avatar: Avatar) -> Iterator[npt.NDArray[np.uint8]]:
        sadtalker = self._start_sadtalker()
        image = self._cache.path(avatar.prepared.avatar_id) / "avatar.png"
        work = Path(request.out_path).parent
        yield from sadtalker.render(image, Path(request.audio_path), work, lambda share, what: None)

    def _sadtalker_settings(self) -> SadTalkerConfig:
        settings = self._config.lipsync.sadtalker
        if settings.checkpoint_dir is None:  # the model store's folder for it
            settings = settings.model_copy(update={"checkpoint_dir": self._config.paths.models_dir / "sadtalker"})
        return settings

    def _start_sadtalker(self) -> SadTalkerBackend:
        """SadTalker's host, started (blocking: its models load). Raises SadTalkerError."""
        if self._sadtalker is None:
            self._sadtalker = SadTalkerBackend(self._sadtalker_settings())
        self._sadtalker.start()
        return self._sadtalker

    def _sadtalker_unavailable(self, err: CodedError) -> None:
        """SadTalker cannot draw (called from any thread): fall back, and try it again until it starts."""
        log.warning("SadTalker unavailable: %s (%s); the real-time renderer draws generated videos", err.message,
                    err.code)  # fmt: skip
        self._sadtalker_down = f"{err.code}: {err.message}"
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._recover_sadtalker)

    def _recover_sadtalker(self) -> None:
        if self._recovering is None or self._recovering.done():
            self._recovering = asyncio.get_running_loop().create_task(self._retry_sadtalker(), name="sadtalker")

    async def _retry_sadtalker(self) -> None:
        while self._sadtalker_down:
            await asyncio.sleep(self._config.supervision.fallback_retry_s)
            try:
                await asyncio.get_running_loop().run_in_executor(self._batch, self._start_sadtalker)
            except CodedError as err:
                log.info("SadTalker is still unavailable: %s (%s)", err.message, err.code)
                self._sadtalker_down = f"{err.code}: {err.message}"
                continue
            self._sadtalker_down = ""
            log.info("SadTalker is back: generated videos use it again")

    async def _answer(self, reply: Replier, message: Message) -> None:
        try:
            await reply(message)
        except IpcError as err:
            log.warning("could not send %s: %s", type(message).__name__, err)

    async def close(self) -> None:
        if self._recovering is not None:
            self._recovering.cancel()
        for stream in list(self._streams.values()):
            stream.cancelled = True
        self._live.shutdown(wait=False, cancel_futures=True)
        self._batch.shutdown(wait=False, cancel_futures=True)
        if self._sadtalker is not None:
            with contextlib.suppress(CodedError, OSError):
                self._sadtalker.close()
        if self._ring is not None:
            self._ring.unlink()
            self._ring.close()


class _Progress:
    """Reports a batch video's progress from the rendering thread, every PROGRESS_EVERY frames."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reply: Replier, job_id: str, frames: int,
                 answer: Callable[[Replier, Message], object]) -> None:  # fmt: skip
        self._loop, self._reply, self._job_id, self._frames, self._answer = loop, reply, job_id, frames, answer

    def frame(self, done: int) -> None:
        if done % PROGRESS_EVERY and done != self._frames:
            return
        share = 0.1 + 0.85 * done / max(1, self._frames)
        message = JobProgress(self._job_id, "render", share, f"frame {done}/{self._frames}")
        asyncio.run_coroutine_threadsafe(self._answer(self._reply, message), self._loop)  # type: ignore[arg-type]
