"""GPT-SoVITS over HTTP: the cloned voice, spoken by the api_v2.py server of RVC-Boss/GPT-SoVITS on a GPU box.

The server runs outside Mynah (`python api_v2.py -a 127.0.0.1 -p 9880 -c GPT_SoVITS/configs/tts_infer.yaml`)
and holds one voice at a time: load() switches its weights and has it read the reference clip. Speech comes back
as headerless int16 PCM (`media_type=raw`) at the model's rate (32 kHz for v1/v2/v2Pro, 24 kHz for v3, 48 kHz for
v4: raw PCM does not say, so the rate is configured), in streaming mode 1 one HTTP chunk per clause (its cut5
splitting cuts at , . ; ? ! and the like). Each piece received is resampled once to the 48 kHz output timeline by
one streaming resampler, so joins have no clicks.
GPT-SoVITS gives no phoneme timing: chunks carry none.

In streaming modes api_v2 answers 200 before synthesis starts, so a failure then (a reference clip it cannot
read, text it cannot speak) ends the stream early instead of answering 400 with JSON. load() therefore has the
server read the reference (/set_refer_audio), which reports a bad clip as 400 {"message", "Exception"}.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import av
import av.error
import httpx
import numpy as np
import numpy.typing as npt
import soxr

from procs.tts.backends.base import OUTPUT_RATE, SpeechChunk, TtsError, VoiceSettings

log = logging.getLogger(__name__)

MIN_REFERENCE_S, MAX_REFERENCE_S = 3.0, 10.0  # GPT-SoVITS refuses a reference clip outside this (TTS.py)
_START_HINT = ("start GPT-SoVITS's api_v2.py on that address "
               "(python api_v2.py -a 127.0.0.1 -p 9880 -c GPT_SoVITS/configs/tts_infer.yaml)")  # fmt: skip
_SPEAKABLE = re.compile(r"\w")
_INT16_SCALE = np.float32(1 / 32768)  # the inverse of GPT-SoVITS's own float-to-int16 scaling
# api_v2.py's documented defaults, sent explicitly so that a server whose defaults changed still speaks alike.
_TTS_DEFAULTS: dict[str, Any] = {
    "aux_ref_audio_paths": [], "top_k": 15, "top_p": 1.0, "temperature": 1.0, "text_split_method": "cut5",
    "batch_size": 1, "batch_threshold": 0.75, "split_bucket": True, "fragment_interval": 0.3, "seed": -1,
    "parallel_infer": True, "repetition_penalty": 1.35, "sample_steps": 32, "super_sampling": False,
    "overlap_length": 2, "min_chunk_length": 16, "media_type": "raw",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ReferenceClip:
    """The voice to clone: a 3-10 s clip on the GPT-SoVITS server's disk, and what it says."""

    path: Path  # as the server sees it
    text: str  # its transcript (prompt_text)
    lang: str  # in GPT-SoVITS's codes: en, zh, ja, ko, yue, auto, ...


class PcmAssembler:
    """Whole little-endian int16 samples from a byte stream cut anywhere: an odd byte waits for its partner."""

    def __init__(self) -> None:
        self._carry = b""

    @property
    def pending(self) -> int:
        """Bytes held back: 1 after an odd total, else 0."""
        return len(self._carry)

    def push(self, piece: bytes) -> npt.NDArray[np.float32]:
        data = self._carry + piece if self._carry else piece
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        return np.frombuffer(data, dtype="<i2", count=whole // 2).astype(np.float32) * _INT16_SCALE


class GptSovitsBackend:
    name: ClassVar[str] = "gpt-sovits"

    def __init__(self, base_url: str, *, reference: ReferenceClip, text_lang: str = "en",
                 gpt_weights: Path | None = None, sovits_weights: Path | None = None, streaming_mode: int = 1,
                 sample_rate: int = 32_000, timeout_s: float = 120.0) -> None:  # fmt: skip
        if streaming_mode not in (0, 1, 2, 3):
            raise ValueError(f"streaming_mode must be 0, 1, 2 or 3, got {streaming_mode}")
        if sample_rate <= 0 or timeout_s <= 0:
            raise ValueError(f"sample_rate and timeout_s must be positive, got {sample_rate} and {timeout_s}")
        self._base_url = base_url.rstrip("/")
        self._reference = reference
        self._text_lang = text_lang.lower()  # api_v2's POST /tts does not lower-case it, and TTS.run asserts
        self._gpt_weights, self._sovits_weights = gpt_weights, sovits_weights
        self._streaming_mode = streaming_mode
        self._sample_rate = sample_rate
        # A refused or silent connection fails fast; a read may wait while the GPU speaks a long sentence.
        self._client = httpx.Client(base_url=self._base_url, timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._loaded = False

    @property
    def model(self) -> str:
        return self._sovits_weights.stem if self._sovits_weights is not None else "server-default"

    @property
    def native_rate(self) -> int:
        return self._sample_rate

    def load(self) -> None:
        started = time.monotonic()
        check_reference(self._reference.path)
        switches = (("/set_gpt_weights", self._gpt_weights), ("/set_sovits_weights", self._sovits_weights))
        for endpoint, weights in switches:
            if weights is not None:
                self._get(endpoint, {"weights_path": str(weights)}, "tts-weights-failed")
        # After the weights: switching them leaves the features of a clip read before as they were, and /tts does
        # not read a clip again whose path it has seen. Reading it now also spares the first turn that work.
        self._get("/set_refer_audio", {"refer_audio_path": str(self._reference.path)}, "tts-reference-invalid")
        self._loaded = True
        log.info("GPT-SoVITS at %s speaks %s with reference %s (%.2f s)", self._base_url, self.model,
                 self._reference.path, time.monotonic() - started)  # fmt: skip

    def synthesize(self, text: str, *, voice: VoiceSettings | None = None) -> Generator[SpeechChunk, None, None]:
        if not self._loaded:  # checked now, not at the first next(): a generator body starts late
            raise TtsError("tts-not-loaded", f"GPT-SoVITS ({self.model}) is not loaded: call load() first")
        if not _SPEAKABLE.search(text):  # GPT-SoVITS drops punctuation-only text, then fails on nothing
            raise TtsError("tts-empty-text", f"there is nothing to say in {text!r}")
        settings = voice or VoiceSettings()
        # variation, timing_variation and speaker_id have no GPT-SoVITS counterpart: the reference sets the voice.
        body = {**_TTS_DEFAULTS, "text": text, "text_lang": self._text_lang,
                "ref_audio_path": str(self._reference.path), "prompt_text": self._reference.text,
                "prompt_lang": self._reference.lang.lower(), "speed_factor": settings.speed,
                "streaming_mode": self._streaming_mode}  # fmt: skip
        return self._stream(body, text)

    def close(self) -> None:
        self._client.close()

    def _stream(self, body: dict[str, Any], text: str) -> Generator[SpeechChunk, None, None]:
        pcm = PcmAssembler()
        resampler = soxr.ResampleStream(self._sample_rate, OUTPUT_RATE, 1, dtype="float32")
        # The stream does not say which words each piece speaks; the worker sends a sentence at a time, and the
        # first piece is credited with all of it.
        words = text
        received = 0
        try:
            # Closing this generator at a yield leaves the `with`, which closes the response and, its body
            # unfinished, the connection: the server sees the disconnect and stops (barge-in).
            with self._client.stream("POST", "/tts", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise TtsError("tts-failed", f"GPT-SoVITS could not speak {text!r}: {_server_message(response)}")
                for piece in response.iter_bytes():
                    received += len(piece)
                    samples = pcm.push(piece)
                    out = resampler.resample_chunk(samples) if len(samples) else samples
                    if len(out):
                        yield _chunk(out, words)
                        words = ""
            if pcm.pending:
                raise TtsError("tts-stream-failed", f"GPT-SoVITS's audio for {text!r} ended mid-sample")
            if received == 0:
                raise TtsError("tts-failed", f"GPT-SoVITS sent no audio for {text!r}")
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)  # the filter's last samples
            if len(tail):
                yield _chunk(tail, words)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise TtsError("tts-unreachable", f"cannot reach GPT-SoVITS at {self._base_url}: {err}; "
                           f"{_START_HINT}") from err  # fmt: skip
        except httpx.HTTPError as err:  # the connection dropped, or a read timed out, mid-stream
            cause = (f"after {received} bytes of audio" if received else "before any audio (its console shows "
                     "why: a reference clip it cannot read, text it cannot speak, the GPU)")  # fmt: skip
            raise TtsError("tts-stream-failed", f"GPT-SoVITS's stream for {text!r} broke {cause}: "
                           f"{type(err).__name__}: {err}") from err  # fmt: skip

    def _get(self, path: str, params: dict[str, str], code: str) -> None:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as err:
            reason = "refused the connection" if isinstance(err, httpx.ConnectError) else "did not answer"
            raise TtsError("tts-unreachable", f"GPT-SoVITS at {self._base_url} {reason} ({type(err).__name__}: "
                           f"{err}); {_START_HINT}") from err  # fmt: skip
        if response.status_code != 200:
            raise TtsError(code, f"GPT-SoVITS refused {path} {params}: {_server_message(response)}")


def check_reference(path: Path) -> None:
    """Refuse a reference clip that GPT-SoVITS would refuse, when the server's path can be read here too."""
    if not (path.is_file() and os.access(path, os.R_OK)):
        return  # the server is elsewhere: load() has the server read the clip
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            duration = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    except (av.error.FFmpegError, OSError, ValueError, IndexError, EOFError) as err:  # not audio, or truncated
        raise TtsError("tts-reference-invalid", f"cannot read the reference clip {path}: {err}") from err
    if not MIN_REFERENCE_S <= duration <= MAX_REFERENCE_S:
        raise TtsError("tts-reference-invalid", f"the reference clip {path} lasts {duration:.2f} s; GPT-SoVITS "
                       f"needs {MIN_REFERENCE_S:g}-{MAX_REFERENCE_S:g} s")  # fmt: skip


def _chunk(samples: npt.NDArray[np.float32], words: str) -> SpeechChunk:
    # The resampler's filter can overshoot a full-scale peak.
    return SpeechChunk(samples=np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False), phonemes=(), text=words)


def _server_message(response: httpx.Response) -> str:
    """api_v2's error body {"message", "Exception"?} as one line, or what else the server said."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        exception = body.get("Exception")
        return f"{body['message']}: {exception}" if exception else str(body["message"])
    if isinstance(body, dict) and "detail" in body:  # FastAPI's own 422 for a body of the wrong shape
        return f"HTTP {response.status_code}: {body['detail']}"
    return f"HTTP {response.status_code}: {response.text[:200]}"
