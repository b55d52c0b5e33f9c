"""Streaming voice activity: faster-whisper's Silero v6 ONNX run one 32 ms frame at a time, without torch.

The model takes 512 new samples plus the 64 samples before them, and an LSTM state (h, c) carried from the
previous frame. Fed frame by frame it gives the same probabilities as faster-whisper's batched
`SileroVADModel`, so offline and live endpointing agree.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from procs.stt.backends.base import Audio, SttError

FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the only frame size the 16 kHz model accepts
CONTEXT_SAMPLES = 64
_STATE_SHAPE = (1, 1, 128)


def silero_model_path() -> Path:
    """The ONNX file faster-whisper ships. Located without importing faster-whisper (which loads ctranslate2)."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or spec.origin is None:
        raise SttError("stt-vad-load-failed", "faster-whisper is not installed: pip install faster-whisper")
    return Path(spec.origin).parent / "assets" / "silero_vad_v6.onnx"


class SileroVad:
    """One stream's VAD. Not thread-safe: one instance per audio stream, `reset()` between streams."""

    def __init__(self, model_path: Path | None = None) -> None:
        path = model_path or silero_model_path()
        try:
            # onnxruntime ships no type information (no py.typed), so the session is Any below.
            import onnxruntime  # type: ignore[import-untyped]

            options = onnxruntime.SessionOptions()
            # Two cores are shared by every model in the appliance; one frame takes ~0.1 ms on one thread anyway.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except ImportError as err:
            raise SttError("stt-vad-load-failed", "onnxruntime is not installed: pip install onnxruntime") from err
        except Exception as err:  # onnxruntime raises its own untyped exception classes
            raise SttError("stt-vad-load-failed", f"cannot load the Silero VAD model {path}: {err}") from err
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frames: the next `process` starts a fresh stream."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._input.fill(0.0)

    def process(self, frame: Audio) -> float:
        """The speech probability of one 512-sample frame, given every frame since the last reset."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a VAD frame is {FRAME_SAMPLES} mono samples, got shape {frame.shape}")
        # The input row is [last 64 samples of the previous frame | this frame].
        self._input[0, :CONTEXT_SAMPLES] = self._input[0, -CONTEXT_SAMPLES:]
        self._input[0, CONTEXT_SAMPLES:] = frame
        prob, self._h, self._c = self._session.run(None, {"input": self._input, "h": self._h, "c": self._c})
        return float(np.asarray(prob).reshape(-1)[0])


class FrameChunker:
    """Cuts audio arriving in chunks of any size into whole VAD frames, in order, keeping the remainder."""

    def __init__(self, frame_samples: int = FRAME_SAMPLES) -> None:
        self.frame_samples = frame_samples
        self._pending: Audio = np.zeros(0, dtype=np.float32)

    @property
    def pending(self) -> int:
        """Samples held back until the next chunk completes a frame."""
        return int(self._pending.shape[0])

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)

    def frames(self, chunk: Audio) -> Iterator[Audio]:
        """Whole frames completed by `chunk`, in order; the rest waits for the next chunk.

        The split happens now, not lazily, so the remainder is kept even if the frames are never iterated.
        Each frame is a view into a fresh buffer, never into the caller's array.
        """
        buffer = np.concatenate([self._pending, np.asarray(chunk, dtype=np.float32).reshape(-1)])
        whole = buffer.shape[0] - buffer.shape[0] % self.frame_samples
        self._pending = buffer[whole:].copy()
        return iter([buffer[start : start + self.frame_samples] for start in range(0, whole, self.frame_samples)])


def frames(audio: Audio) -> Iterator[Audio]:
    """Whole 512-sample frames of one complete buffer; a trailing partial frame is dropped."""
    return FrameChunker().frames(audio)


def contains_speech(audio: Audio, threshold: float, min_frames: int, vad: SileroVad | None = None) -> bool:
    """Whether at least `min_frames` frames of a 16 kHz buffer sound like speech (stops at the first that many).

    Whisper given a recording with no speech in it makes some up ("You You You ..." from 10 minutes of dither,
    measured here), and takes minutes doing so; this answers first, at ~7 ms per second of audio."""
    vad = vad or SileroVad()
    found = 0
    for frame in frames(audio):
        if vad.process(frame) >= threshold:
            found += 1
            if found >= min_frames:
                return True
    return False
