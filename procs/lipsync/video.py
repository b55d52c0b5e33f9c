"""Write a talking-avatar MP4: RGB frames at exactly 30 fps (H.264) and 48 kHz mono speech (AAC), with PyAV.

The audio is the master clock (DESIGN.md section 3): frame i shows samples [1600 i, 1600 (i + 1)), so the caller
renders ceil(samples / 1600) frames. At the end the audio is padded with silence to the video's length (at most
1599 samples, under one frame) or, when fewer frames came than it needs, trimmed to it: the two streams then last
exactly as long as each other, up to the AAC encoder's own 1024-sample framing.

The file is written to a hidden temporary file beside the target and renamed into place only once it is
complete, so a reader never sees half a video and a failure (an exception in the `with` block or while
finishing) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from ipc.errors import CodedError

FPS = 30
OUTPUT_RATE = 48_000
FRAME_SAMPLES = OUTPUT_RATE // FPS  # 1600
# x264's default quality, a little better: a face on a plain background compresses well, and lips need detail.
DEFAULT_CRF = 20
AUDIO_BITRATE = 96_000  # mono speech


class VideoError(CodedError):
    """Writing the MP4 failed: `video-bad-frame` (the caller's bug) or `video-write-failed` (FFmpeg, the disk)."""


Pcm = bytes | bytearray | memoryview | npt.NDArray[np.int16]


class Mp4Writer:
    """`with Mp4Writer(path, width, height) as out: out.add_audio(pcm); out.add_frame(rgb) ...`.

    Audio (PCM16 mono 48 kHz) may be added all at once or in pieces, before or between frames; it is encoded
    interleaved with the frames so that the muxer never holds the whole video in memory.
    """

    def __init__(
        self, path: Path, width: int, height: int, *, crf: int = DEFAULT_CRF, threads: int = 1, faststart: bool = True
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise VideoError("video-bad-frame", f"H.264 4:2:0 needs an even width and height, not {width}x{height}")
        self.path = path
        self.width = width
        self.height = height
        self._crf = crf
        self._threads = threads
        self._faststart = faststart
        self._temp: Path | None = None
        self._container: OutputContainer | None = None
        self._video: VideoStream | None = None
        self._audio: AudioStream | None = None
        self._pcm = bytearray()  # audio added and not encoded yet
        self._samples_added = 0
        self._samples_encoded = 0
        self.frames = 0

    # --- the context --------------------------------------------------------------------------------------

    def __enter__(self) -> Mp4Writer:
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        os.close(fd)
        self._temp = Path(name)
        try:
            self._open(self._temp)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            self._finish()
        except BaseException:
            self._discard()
            raise
        assert self._temp is not None
        os.replace(self._temp, self.path)
        self._temp = None

    @property
    def duration_s(self) -> float:
        return self.frames / FPS

    def _open(self, temp: Path) -> None:
        options = {"movflags": "+faststart"} if self._faststart else {}
        try:
            container = av.open(str(temp), mode="w", format="mp4", options=options)
        except av.error.FFmpegError as err:
            raise VideoError("video-write-failed", f"cannot create {temp}: {err}") from err
        self._container = container
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = self.width, self.height, "yuv420p"
        video.time_base = Fraction(1, FPS)
        video.codec_context.time_base = Fraction(1, FPS)
        # The thread budget is explicit (DESIGN.md section 3): x264 would take every core by default.
        video.codec_context.thread_count = self._threads
        video.options = {"preset": "veryfast", "crf": str(self._crf)}
        audio = container.add_stream("aac", rate=OUTPUT_RATE)
        audio.layout = "mono"
        audio.bit_rate = AUDIO_BITRATE
        audio.codec_context.thread_count = 1
        self._video, self._audio = video, audio

    # --- writing --------------------------------------------------------------------------------------------

    def add_audio(self, pcm: Pcm) -> None:
        """More PCM16 mono 48 kHz samples, following those added before."""
        raw = pcm.tobytes() if isinstance(pcm, np.ndarray) else bytes(pcm)
        if len(raw) % 2:
            raise VideoError("video-bad-frame", "PCM16 audio needs whole two-byte samples")
        self._pcm += raw
        self._samples_added += len(raw) // 2

    def add_frame(self, rgb: npt.NDArray[np.uint8]) -> None:
        """The next frame: an HxWx3 uint8 RGB array of the writer's size. Its pts is its index (1/30 s)."""
        if self._container is None or self._video is None:
            raise VideoError("video-write-failed", "the writer is not open (use it in a with block)")
        if rgb.dtype != np.uint8 or rgb.shape != (self.height, self.width, 3):
            raise VideoError(
                "video-bad-frame", f"frames are {self.height}x{self.width}x3 uint8, not {rgb.shape} {rgb.dtype}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        frame.time_base = Fraction(1, FPS)
        self._encode(self._video, frame)
        self.frames += 1
        # Keep the audio level with the video, so the muxer interleaves as it goes.
        self._encode_audio(min(self._samples_added, self.frames * FRAME_SAMPLES))

    def _finish(self) -> None:
        if self._container is None or self._video is None:
            return
        target = self.frames * FRAME_SAMPLES
        if self._samples_added < target:
            self.add_audio(bytes(2 * (target - self._samples_added)))  # silence to the video's length
        self._encode_audio(target)  # anything past the last frame is trimmed
        assert self._audio is not None
        self._encode(self._video, None)
        self._encode(self._audio, None)
        try:
            self._container.close()
        except av.error.FFmpegError as err:
            raise VideoError("video-write-failed", f"cannot finish {self.path.name}: {err}") from err
        finally:
            self._container = None

    def _encode_audio(self, up_to: int) -> None:
        """Encode the added audio up to sample `up_to` of the timeline."""
        assert self._audio is not None
        count = up_to - self._samples_encoded
        if count <= 0:
            return
        chunk = np.frombuffer(bytes(self._pcm[: 2 * count]), dtype="<i2").reshape(1, -1)
        del self._pcm[: 2 * count]
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = OUTPUT_RATE
        frame.pts = self._samples_encoded
        frame.time_base = Fraction(1, OUTPUT_RATE)
        self._samples_encoded += count
        self._encode(self._audio, frame)

    def _encode(self, stream: VideoStream | AudioStream, frame: av.VideoFrame | av.AudioFrame | None) -> None:
        """Encode a frame (None: flush the encoder) and mux what comes out."""
        assert self._container is not None
        try:
            if isinstance(stream, VideoStream):
                assert not isinstance(frame, av.AudioFrame)
                packets = stream.encode(frame)
            else:
                assert not isinstance(frame, av.VideoFrame)
                packets = stream.encode(frame)
            self._container.mux(packets)
        except av.error.FFmpegError as err:
            raise VideoError("video-write-failed", f"cannot write {self.path.name}: {err}") from err

    def _discard(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):  # already failing: the first error is the one to report
                self._container.close()
            self._container = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None
