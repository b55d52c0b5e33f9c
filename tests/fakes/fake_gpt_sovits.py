"""A FAKE of GPT-SoVITS's api_v2.py HTTP server, for tests: a real HTTP server on 127.0.0.1 speaking its API.

GPT-SoVITS needs its weights and a GPU, and neither can be had here, so code that talks to api_v2.py is tested
against this fake. It follows api_v2.py and GPT_SoVITS/TTS_infer_pack/TTS.py of RVC-Boss/GPT-SoVITS (HEAD 2026-08):
- `GET|POST /tts`. First api_v2's check_params: 400 {"message": "text is required"} (no "Exception") for a
  missing ref_audio_path, text, text_lang or prompt_lang, or an unsupported language, media_type or
  text_split_method; 400 for a streaming_mode other than 0-3 or true/false. A GET without text_lang or prompt_lang
  is a 500 (api_v2 calls .lower() on None). POST does not lower-case the languages; TTS.run then fails on "EN".
- Then TTS.run, which is a generator: it fails on a missing reference, a clip outside 3-10 s or text with nothing
  to speak before its first chunk. With streaming_mode 0 that failure is a 400 {"message": "tts failed",
  "Exception": ...}; in streaming modes api_v2 has already answered 200, and the stream ends with no body (the
  connection closes mid-response). A reference already read (same path as last time) is not read again.
- streaming_mode 0 sends one body; 1 one chunk per text fragment (cut5: a cut after , . ; ? ! : and the like,
  pieces under 5 characters merged into the one before); 2 and 3 each fragment in 16-token pieces (0.64 s).
  Every fragment's audio is followed by `fragment_interval` s of silence (its own chunk in modes 2 and 3).
- media_type raw: int16 little-endian PCM, no header; wav: a whole WAV file, or in streaming modes a WAV header
  with zero data length, then raw PCM. ogg and aac are not modelled (400).
- `GET /set_gpt_weights`, `GET /set_sovits_weights`: {"message": "success"}, or 400 {"message": "change gpt
  weight failed", "Exception": "[Errno 2] No such file or directory: ..."} when the file does not exist here.
- `GET /set_refer_audio?refer_audio_path=`: reads the clip now; 400 {"message": "set refer audio failed", ...}.
- `GET /control?command=`: restart resets the weights and the cached reference and closes the connection (the
  real server execs itself and never answers; the fake has sent its headers first); exit answers 500 and stops
  the server (api_v2 raises SystemExit inside the request); another command answers `null`.

The audio is the fake's own and deterministic: a harmonic tone (140 Hz and two overtones) of 25 ms per character
of each fragment, at 32 kHz (a v2 model). `FakeGptSovits.audio_for(text)` is what every mode sends for `text`.
Not modelled: models and their versions (v3/v4 rates), batching, aux_ref_audio_paths, sampling parameters, the
request lock (requests are served as they come).

Tests script failures through `FakeGptSovits.script`, and read what it saw in `requests` (every request, its
query and JSON body) and `streams` (every /tts answer: its body writes and how it ended).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import math
import threading
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server import LoopbackServer

SAMPLE_RATE = 32_000  # v1, v2, v2Pro and v2ProPlus models
SAMPLES_PER_CHAR = 800  # the fake speaks 25 ms per character
PIECE_SAMPLES = 16 * 1280  # min_chunk_length=16 semantic tokens at 25 Hz: a streaming-mode 2/3 piece
LANGUAGES = ("auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue", "all_ko")
SPLIT_METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")
DEFAULT_GPT_WEIGHTS = (
    "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"
)
DEFAULT_SOVITS_WEIGHTS = "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained/s2G2333k.pth"
REFERENCE_OUTSIDE = "Reference audio is outside the 3-10 second range, please choose another one!"
_CUT5 = frozenset(",.;?!、，。？！：…")


@dataclass
class FakeGptSovitsScript:
    """How the fake answers /tts. Each request uses a copy taken when it arrives."""

    fail_status: int | None = None  # answer every /tts with this status and the JSON below, in any mode
    fail_message: str = "tts failed"
    fail_exception: str = "CUDA out of memory. Tried to allocate 20.00 MiB"
    # Fail inside TTS.run's inference: it yields 1 s of silence at 16 kHz, then raises. Mode 0 answers that
    # silence with a 200; streaming modes send it, then the connection closes.
    inference_error: str | None = None
    write_bytes: int | None = None  # cut every engine chunk into body writes of this many bytes (odd: odd cuts)
    write_delay_s: float = 0.0  # pause before each body write
    drop_after_bytes: int | None = None  # close the connection mid-body once this many body bytes went out
    stall_after_writes: int | None = None  # then hold the stream open, sending nothing, for stall_s
    stall_s: float = 10.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None  # the parsed JSON body; None for GET or a body that was not JSON


@dataclass
class StreamRecord:
    """One synthesis (/tts answered 200) as the fake sent it."""

    text: str
    streaming_mode: int
    media_type: str
    writes: list[int] = field(default_factory=list)  # the body's writes, in bytes, in order
    # "streaming", then "done", "dropped" (scripted), "failed" (synthesis failed after the 200) or "disconnected"
    # (the client went away before the end)
    outcome: str = "streaming"

    @property
    def bytes_sent(self) -> int:
        return sum(self.writes)


class _DropConnection(Exception):
    """Raised inside a response body: uvicorn then closes the connection without ending the body."""


class _EngineError(Exception):
    """A failure inside TTS.run before its first chunk (api_v2 reports str(err) as "Exception")."""


class FakeGptSovits(LoopbackServer):
    """A fake api_v2.py server on 127.0.0.1 and a free port; a context manager that starts and stops it."""

    label = "fake GPT-SoVITS server"

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.script = FakeGptSovitsScript()
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamRecord] = []
        self.gpt_weights = DEFAULT_GPT_WEIGHTS
        self.sovits_weights = DEFAULT_SOVITS_WEIGHTS
        self.reference: str | None = None  # the clip TTS.run last read (its prompt cache)
        self.restarts = 0
        self.exited = False
        self._lock = threading.Lock()  # state is written on the server's thread and read on the test's

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fragments(self, text: str) -> list[str]:
        """`text` cut as cut5 and TextPreprocessor.pre_seg_text cut it: one fragment per streamed chunk."""
        pieces: list[str] = []
        current = ""
        for char in text.strip("\n"):
            current += char
            if char in _CUT5:
                pieces.append(current)
                current = ""
        pieces.append(current)
        merged: list[str] = []
        pending = ""
        for piece in (p.strip() for p in pieces):
            if not piece or set(piece) <= _CUT5:
                continue
            pending += piece
            if len(pending) >= 5:
                merged.append(pending)
                pending = ""
        if pending:
            merged[-1:] = [merged[-1] + pending] if merged else [pending]
        return merged

    def audio_for(
        self, text: str, *, speed_factor: float = 1.0, fragment_interval: float = 0.3
    ) -> npt.NDArray[np.int16]:
        """Everything the fake sends for `text`, as int16 samples at `sample_rate`."""
        return np.concatenate(
            [np.concatenate(parts) for parts in self._fragment_audio(text, speed_factor, fragment_interval)]
        )

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests if r.path == path and r.body is not None]

    def queries(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return [r.query for r in self.requests if r.path == path]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/tts", self._tts, methods=["GET", "POST"]),
                Route("/set_gpt_weights", self._set_gpt_weights, methods=["GET"]),
                Route("/set_sovits_weights", self._set_sovits_weights, methods=["GET"]),
                Route("/set_refer_audio", self._set_refer_audio, methods=["GET"]),
                Route("/control", self._control, methods=["GET"]),
            ]
        )

    # -- endpoints

    async def _tts(self, request: Request) -> Response:
        if request.method == "GET":
            query = dict(request.query_params)
            self._record(request, None)
            if "text_lang" not in query or "prompt_lang" not in query:
                return PlainTextResponse("Internal Server Error", status_code=500)
            req: dict[str, Any] = {**query, "text_lang": query["text_lang"].lower(),
                                   "prompt_lang": query["prompt_lang"].lower()}  # fmt: skip
        else:
            try:
                body = json.loads(await request.body())
            except json.JSONDecodeError:
                body = None
            self._record(request, body if isinstance(body, dict) else None)
            if not isinstance(body, dict):  # FastAPI's answer to a body that is no JSON object
                detail = {"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary"}
                return JSONResponse({"detail": [detail]}, status_code=422)
            req = body
        try:
            mode = _streaming_mode(req.get("streaming_mode", False))
            speed = float(req.get("speed_factor", 1.0))
            interval = float(req.get("fragment_interval", 0.3))
        except ValueError as err:
            return JSONResponse({"detail": [{"type": "value_error", "msg": str(err)}]}, status_code=422)
        refusal = _check_params(req)
        if refusal is not None:
            return _error(400, refusal)
        if mode is None:
            return _error(400, "the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)")
        script = dataclasses.replace(self.script)
        if script.fail_status is not None:
            return _error(script.fail_status, script.fail_message, script.fail_exception)
        media_type, text = str(req.get("media_type", "wav")), str(req["text"])
        try:
            self._prepare(req)
            parts = self._fragment_audio(text, speed, interval)
        except _EngineError as err:
            if mode == 0:
                return _error(400, "tts failed", str(err))
            chunks: list[bytes] = []
            failure: str | None = str(err)
        else:
            chunks, failure = self._engine_chunks(parts, mode), None
        if script.inference_error is not None:
            chunks, failure = [np.zeros(16_000, np.int16).tobytes()], script.inference_error
        record = StreamRecord(text=text, streaming_mode=mode, media_type=media_type)
        with self._lock:
            self.streams.append(record)
        if mode == 0:
            pcm = b"".join(chunks)
            record.writes.append(len(pcm))
            record.outcome = "done"
            return Response(
                pcm if media_type == "raw" else _wav(pcm, self.sample_rate), media_type=f"audio/{media_type}"
            )
        if media_type == "wav" and chunks:  # api_v2 sends the header with the first chunk TTS.run yields
            chunks.insert(0, _wav(b"", self.sample_rate))
        return StreamingResponse(self._body(chunks, failure, script, record), media_type=f"audio/{media_type}")

    async def _set_gpt_weights(self, request: Request) -> Response:
        return self._set_weights(request, "gpt")

    async def _set_sovits_weights(self, request: Request) -> Response:
        return self._set_weights(request, "sovits")

    def _set_weights(self, request: Request, kind: str) -> Response:
        self._record(request, None)
        path = request.query_params.get("weights_path")
        if not path:
            return _error(400, f"{kind} weight path is required")
        if not Path(path).is_file():
            return _error(400, f"change {kind} weight failed", f"[Errno 2] No such file or directory: '{path}'")
        with self._lock:
            if kind == "gpt":
                self.gpt_weights = path
            else:
                self.sovits_weights = path
        return JSONResponse({"message": "success"})

    async def _set_refer_audio(self, request: Request) -> Response:
        self._record(request, None)
        path = request.query_params.get("refer_audio_path")
        try:
            _read_reference(path)
        except _EngineError as err:
            return _error(400, "set refer audio failed", str(err))
        with self._lock:
            self.reference = path
        return JSONResponse({"message": "success"})

    async def _control(self, request: Request) -> Response:
        self._record(request, None)
        command = request.query_params.get("command")
        if command is None:
            return _error(400, "command is required")
        if command == "restart":
            with self._lock:
                self.restarts += 1
                self.gpt_weights, self.sovits_weights = DEFAULT_GPT_WEIGHTS, DEFAULT_SOVITS_WEIGHTS
                self.reference = None
            return StreamingResponse(_dropped(), media_type="application/json")
        if command == "exit":
            self.exited = True
            if self._server is not None:
                self._server.should_exit = True
            return PlainTextResponse("Internal Server Error", status_code=500)
        return JSONResponse(None)

    # -- behaviour

    def _prepare(self, req: dict[str, Any]) -> None:
        """TTS.run up to its first chunk: the checks that fail before any audio."""
        if req["text_lang"] not in LANGUAGES or (req.get("prompt_text") and req["prompt_lang"] not in LANGUAGES):
            raise _EngineError("")  # a bare `assert`: str(AssertionError()) is empty
        path = str(req["ref_audio_path"])
        if path != self.reference:
            if not Path(path).exists():
                raise _EngineError(f"{path} not exists")
            _read_reference(path)
            with self._lock:
                self.reference = path
        if not self.fragments(str(req["text"])):
            raise _EngineError("Please enter valid text.")

    def _fragment_audio(self, text: str, speed: float, interval: float) -> list[tuple[npt.NDArray[np.int16], ...]]:
        """(speech, silence) for each fragment of `text`."""
        silence = np.zeros(int(self.sample_rate * interval), np.int16)
        return [
            (_tone(round(len(f) * SAMPLES_PER_CHAR / speed), self.sample_rate), silence) for f in self.fragments(text)
        ]

    def _engine_chunks(self, parts: list[tuple[npt.NDArray[np.int16], ...]], mode: int) -> list[bytes]:
        """The chunks TTS.run yields: whole fragments in modes 0 and 1, token-sized pieces in 2 and 3."""
        if mode in (0, 1):
            return [np.concatenate(part).tobytes() for part in parts]
        chunks: list[bytes] = []
        for speech, silence in parts:
            chunks += [speech[i : i + PIECE_SAMPLES].tobytes() for i in range(0, len(speech), PIECE_SAMPLES)]
            chunks.append(silence.tobytes())
        return chunks

    async def _body(self, chunks: list[bytes], failure: str | None, script: FakeGptSovitsScript,
                    record: StreamRecord) -> AsyncIterator[bytes]:  # fmt: skip
        try:
            for index, piece in enumerate(_writes(chunks, script.write_bytes)):
                if script.stall_after_writes == index:
                    await asyncio.sleep(script.stall_s)
                if script.write_delay_s:
                    await asyncio.sleep(script.write_delay_s)
                if script.drop_after_bytes is not None and record.bytes_sent + len(piece) >= script.drop_after_bytes:
                    piece = piece[: script.drop_after_bytes - record.bytes_sent]
                    if piece:
                        yield piece
                        record.writes.append(len(piece))
                    record.outcome = "dropped"
                    raise _DropConnection(f"the fake drops the connection after {record.bytes_sent} bytes, as scripted")
                yield piece
                record.writes.append(len(piece))
                await asyncio.sleep(0)  # a disconnect can land between writes
            if failure is not None:
                record.outcome = "failed"
                raise _DropConnection(f"synthesis failed after the 200: {failure}")
            record.outcome = "done"
        finally:
            # Cancelled by Starlette when the client disconnects, or closed without finishing.
            if record.outcome == "streaming":
                record.outcome = "disconnected"

    def _record(self, request: Request, body: dict[str, Any] | None) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.url.path, dict(request.query_params), body))


def _check_params(req: dict[str, Any]) -> str | None:
    """api_v2's check_params: the reason to refuse the request, or None."""
    for name in ("ref_audio_path", "text", "text_lang", "prompt_lang"):
        value = req.get(name)
        if value in (None, ""):
            return f"{name} is required"
        if name.endswith("_lang") and str(value).lower() not in LANGUAGES:
            return f"{name}: {value} is not supported in version v2"
    media_type = req.get("media_type", "wav")
    if media_type not in ("wav", "raw", "ogg", "aac"):
        return f"media_type: {media_type} is not supported"
    if media_type in ("ogg", "aac"):
        return f"media_type: {media_type} is not modelled by the fake"
    split_method = req.get("text_split_method", "cut5")
    if split_method not in SPLIT_METHODS:
        return f"text_split_method:{split_method} is not supported"
    return None


def _streaming_mode(value: Any) -> int | None:
    """streaming_mode as an int 0-3, None for another value; ValueError for one that is no bool or int."""
    if isinstance(value, str):  # a GET query
        lowered = value.strip().lower()
        value = {"true": True, "false": False}.get(lowered, lowered)
        value = value if isinstance(value, bool) else int(value)
    if not isinstance(value, bool | int):
        raise ValueError(f"streaming_mode: {value!r} is not a bool or an int")
    return int(value) if int(value) in (0, 1, 2, 3) else None


def _read_reference(path: str | None) -> None:
    """TTS._set_prompt_semantic's check: the clip, at 16 kHz, must hold 48000-160000 samples."""
    try:
        with wave.open(str(path), "rb") as clip:
            at_16k = math.ceil(clip.getnframes() * 16_000 / clip.getframerate())
    except (OSError, EOFError, wave.Error) as err:
        raise _EngineError(str(err)) from err
    if not 48_000 <= at_16k <= 160_000:
        raise _EngineError(REFERENCE_OUTSIDE)


def _tone(length: int, rate: int) -> npt.NDArray[np.int16]:
    """A deterministic voiced sound: 140 Hz and two overtones with 5 ms fades, as GPT-SoVITS scales to int16."""
    t = np.arange(length) / rate
    wave_ = 0.3 * np.sin(2 * np.pi * 140 * t) + 0.15 * np.sin(2 * np.pi * 280 * t) + 0.08 * np.sin(2 * np.pi * 420 * t)
    fade = min(length // 2, rate // 200)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave_[:fade] *= ramp
        wave_[length - fade :] *= ramp[::-1]
    return (wave_ * 32768).astype(np.int16)


def _writes(chunks: list[bytes], size: int | None) -> Iterator[bytes]:
    for chunk in chunks:
        if size is None:
            yield chunk
        else:
            yield from (chunk[i : i + size] for i in range(0, len(chunk), size))


def _wav(pcm: bytes, rate: int) -> bytes:
    """A WAV file of int16 mono `pcm`; with no PCM, the header api_v2 streams first (data length 0)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


async def _dropped() -> AsyncIterator[bytes]:
    raise _DropConnection("the fake restarts: the connection closes without an answer")
    yield b""  # unreachable; makes this an async generator


def _error(status: int, message: str, exception: str | None = None) -> Response:
    body = {"message": message} if exception is None else {"message": message, "Exception": exception}
    return JSONResponse(body, status_code=status)


def write_reference_clip(path: Path, seconds: float = 4.0) -> Path:
    """A reference clip the server accepts (3-10 s, 32 kHz mono; silence: the fake's audio does not use it)."""
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(32_000)
        clip.writeframes(np.zeros(round(32_000 * seconds), "<i2").tobytes())
    return path
