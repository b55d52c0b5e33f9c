"""A fake of Ollama's HTTP server, for tests: a real HTTP server on 127.0.0.1 speaking Ollama's API.

No Ollama binary can be installed here, so code that talks to Ollama is tested against this fake. It follows
docs/api.md of ollama/ollama:
- `POST /api/chat`: NDJSON (`application/x-ndjson`) chunks `{"model", "created_at", "message", "done": false}`,
  then one `"done": true` chunk with `done_reason`, the token counts and the durations (ns); `"stream": false`
  returns one object. Empty `messages` loads the model; with `"keep_alive": 0` it unloads it.
- `POST /api/generate`: no prompt loads the model (`done_reason` "load"), with `"keep_alive": 0` unloads it
  ("unload"); a prompt generates like chat, into the `response` field.
- `GET /api/ps`, `GET /api/tags`, `POST /api/show`. An unknown model is HTTP 404 `{"error": "model 'x' not found"}`;
  a failure once a stream has begun is an `{"error": ...}` line.

Not modelled: real tokenization (a "token" here is a word with its leading space), prompt caching
(`prompt_eval_count` counts the whole prompt every time), the request queue and parallel requests.

Tests script its behaviour through `FakeOllama.script`, and read what it saw in `FakeOllama.requests` (every
request and its JSON body), `FakeOllama.streams` (every generation stream: chunks sent and how it ended) and
`FakeOllama.loads` (every time a model had to be loaded).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server import LoopbackServer

DEFAULT_NUM_CTX = 4096  # what recent Ollama uses when a request sets no num_ctx
DEFAULT_KEEP_ALIVE_S = 300.0  # Ollama's default keep_alive, "5m"
_FOREVER = timedelta(days=292 * 365)  # a negative keep_alive is Go's largest time.Duration, ~292 years
_MODEL_SIZE = 4_920_753_328
_TOKEN = re.compile(r"\s*\S+")
_GO_DURATION = re.compile(r"([-+]?)((?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))+)")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_FAKE_LOAD_NS = 1_250_000_000  # the load_duration reported when a request had to load the model
_FAKE_PROMPT_NS_PER_TOKEN = 400_000


@dataclass
class FakeOllamaScript:
    """How the fake answers /api/chat and /api/generate. Each request uses a copy taken when it arrives."""

    reply: str = "Hello there! I am a fake of Ollama, and I answer in a few short words."
    chunk_delay_s: float = 0.0  # pause before each content chunk
    fail_status: int | None = None  # answer with this HTTP status and `fail_message` instead of generating
    fail_message: str = "server busy, please try again.  maximum pending requests exceeded"
    error_after_chunks: int | None = None  # then send `{"error": error_message}` and end the stream
    error_message: str = "llama runner process has terminated: signal: killed"
    drop_after_chunks: int | None = None  # then close the connection mid-response (no terminating chunk)
    end_without_done: bool = False  # end the stream cleanly but never send the `done: true` chunk
    prompt_eval_count: int | None = None  # None: the number of words in the prompt, plus 4 per message


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: dict[str, Any] | None  # the parsed JSON body; None for GET or a body that was not JSON


@dataclass
class StreamRecord:
    """One streamed generation as the fake sent it."""

    path: str
    model: str
    chunks_sent: int = 0  # content chunks, not counting the final `done` chunk
    # "streaming", then "done", "error-line", "dropped", "ended-without-done" or "disconnected" (the client
    # went away before the stream ended)
    outcome: str = "streaming"


@dataclass
class _Resident:
    expires_at: datetime
    num_ctx: int


class _DropConnection(Exception):
    """Raised inside a response body: uvicorn then aborts the connection without ending the chunked body."""


@dataclass(frozen=True)
class _Generation:
    model: str  # as the client spelled it; Ollama echoes it back
    pieces: list[str]
    done_reason: str
    prompt_eval_count: int
    load_ns: int
    content: Callable[[str], dict[str, Any]]  # a piece of text -> the fields that carry it in a chunk


class FakeOllama(LoopbackServer):
    """A fake Ollama server on 127.0.0.1 and a free port; a context manager that starts and stops it."""

    label = "fake Ollama server"

    def __init__(self, models: Iterable[str] = ("llama3.1:8b",)) -> None:
        super().__init__()
        self.script = FakeOllamaScript()
        self.installed: set[str] = {_canonical(m) for m in models}
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamRecord] = []
        self.loads: list[tuple[str, int]] = []  # (model, num_ctx) for every load, reloads included
        self._resident: dict[str, _Resident] = {}
        self._lock = threading.Lock()  # state is written on the server's thread and read on the test's

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies received on `path`, oldest first."""
        with self._lock:
            return [r.body for r in self.requests if r.path == path and r.body is not None]

    def resident(self) -> list[str]:
        """The models held in memory now, as /api/ps would list them."""
        now = datetime.now(UTC)
        with self._lock:
            return [name for name, r in self._resident.items() if r.expires_at > now]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        """Poll `predicate` (which reads state the server thread writes) until true or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/chat", self._chat, methods=["POST"]),
                Route("/api/generate", self._generate, methods=["POST"]),
                Route("/api/show", self._show, methods=["POST"]),
                Route("/api/ps", self._ps, methods=["GET"]),
                Route("/api/tags", self._tags, methods=["GET"]),
                Route("/", self._root, methods=["GET", "HEAD"]),
            ]
        )

    # -- endpoints

    async def _root(self, request: Request) -> Response:
        self._record(request, None)
        return Response("Ollama is running", media_type="text/plain")

    async def _chat(self, request: Request) -> Response:
        body, refusal = await self._accept(request, scripted_failures=True)
        if refusal is not None:
            return refusal
        messages = body.get("messages") or []
        if not messages:
            return self._load_or_unload(body, {"message": {"role": "assistant", "content": ""}})
        prompt_tokens = sum(len(_tokens(str(m.get("content") or ""))) + 4 for m in messages)
        return self._reply(
            body, "/api/chat", prompt_tokens, lambda text: {"message": {"role": "assistant", "content": text}}
        )

    async def _generate(self, request: Request) -> Response:
        body, refusal = await self._accept(request, scripted_failures=True)
        if refusal is not None:
            return refusal
        if not body.get("prompt"):
            return self._load_or_unload(body, {"response": ""})
        prompt_tokens = len(_tokens(str(body["prompt"]))) + 4
        return self._reply(body, "/api/generate", prompt_tokens, lambda text: {"response": text})

    async def _show(self, request: Request) -> Response:
        body, refusal = await self._accept(request, scripted_failures=False)
        if refusal is not None:
            return refusal
        return JSONResponse(
            {
                "modelfile": f"# Modelfile generated by the fake Ollama\nFROM {_canonical(body['model'])}\n",
                "parameters": 'stop                           "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": _details(),
                "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
                "capabilities": ["completion"],
                "modified_at": _local_time(datetime.now(UTC) - timedelta(days=3)),
            }
        )

    async def _ps(self, request: Request) -> Response:
        self._record(request, None)
        now = datetime.now(UTC)
        with self._lock:
            running = [(name, r) for name, r in self._resident.items() if r.expires_at > now]
        models = [
            {
                **_listing(name),
                "expires_at": _local_time(r.expires_at),
                "size_vram": _MODEL_SIZE,
                "context_length": r.num_ctx,
            }
            for name, r in running
        ]
        return JSONResponse({"models": models})

    async def _tags(self, request: Request) -> Response:
        self._record(request, None)
        modified = _local_time(datetime.now(UTC) - timedelta(days=3))
        return JSONResponse({"models": [{**_listing(n), "modified_at": modified} for n in sorted(self.installed)]})

    # -- behaviour

    async def _accept(self, request: Request, *, scripted_failures: bool) -> tuple[dict[str, Any], Response | None]:
        """Record the request and refuse it the way Ollama would, or return its body."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = None
        self._record(request, body if isinstance(body, dict) else None)
        if not isinstance(body, dict):
            return {}, _error(400, "invalid character in request body")
        model = body.get("model")
        if not model:
            return body, _error(400, "model is required")
        if _canonical(str(model)) not in self.installed:
            return body, _error(404, f"model '{model}' not found")
        if "keep_alive" in body:
            try:
                _keep_alive_s(body["keep_alive"])
            except ValueError as err:
                return body, _error(400, str(err))
        if scripted_failures and self.script.fail_status is not None:
            return body, _error(self.script.fail_status, self.script.fail_message)
        return body, None

    def _load_or_unload(self, body: dict[str, Any], empty: dict[str, Any]) -> Response:
        keep_alive = _keep_alive_s(body.get("keep_alive"))
        name = _canonical(body["model"])
        if keep_alive == 0:
            with self._lock:
                self._resident.pop(name, None)
            reason = "unload"
        else:
            self._make_resident(name, body.get("options") or {}, keep_alive)
            reason = "load"
        return JSONResponse(
            {"model": body["model"], "created_at": _utc_time(), **empty, "done": True, "done_reason": reason}
        )

    def _make_resident(self, name: str, options: dict[str, Any], keep_alive_s: float) -> int:
        """Hold `name` in memory, loading it (again, when num_ctx changed); return the load time in ns."""
        num_ctx = int(options.get("num_ctx") or DEFAULT_NUM_CTX)
        now = datetime.now(UTC)
        expires = now + (_FOREVER if keep_alive_s < 0 else timedelta(seconds=keep_alive_s))
        with self._lock:
            current = self._resident.get(name)
            reload = current is None or current.expires_at <= now or current.num_ctx != num_ctx
            self._resident[name] = _Resident(expires_at=expires, num_ctx=num_ctx)
            if reload:
                self.loads.append((name, num_ctx))
        return _FAKE_LOAD_NS if reload else 2_500_000

    def _reply(
        self, body: dict[str, Any], path: str, prompt_tokens: int, content: Callable[[str], dict[str, Any]]
    ) -> Response:
        script = dataclasses.replace(self.script)
        options = body.get("options") or {}
        load_ns = self._make_resident(_canonical(body["model"]), options, _keep_alive_s(body.get("keep_alive")))
        text, done_reason = script.reply, "stop"
        stops = [s for s in options.get("stop") or [] if s and s in text]
        if stops:
            text = text[: min(text.index(s) for s in stops)]
        pieces = _tokens(text)
        num_predict = int(options.get("num_predict", -1))
        if 0 <= num_predict < len(pieces):  # negative means no limit
            pieces, done_reason = pieces[:num_predict], "length"
        gen = _Generation(
            model=str(body["model"]),
            pieces=pieces,
            done_reason=done_reason,
            prompt_eval_count=script.prompt_eval_count if script.prompt_eval_count is not None else prompt_tokens,
            load_ns=load_ns,
            content=content,
        )
        if body.get("stream", True) is False:
            return JSONResponse(_final(gen, "".join(pieces), eval_ns=len(pieces) * 20_000_000))
        record = StreamRecord(path=path, model=gen.model)
        with self._lock:
            self.streams.append(record)
        return StreamingResponse(self._chunks(gen, script, record), media_type="application/x-ndjson")

    async def _chunks(self, gen: _Generation, script: FakeOllamaScript, record: StreamRecord) -> AsyncIterator[bytes]:
        started = time.monotonic_ns()
        try:
            for sent in range(len(gen.pieces) + 1):
                if script.error_after_chunks == sent:
                    record.outcome = "error-line"
                    yield _line({"error": script.error_message})
                    return
                if script.drop_after_chunks == sent:
                    record.outcome = "dropped"
                    raise _DropConnection(f"the fake drops the connection after {sent} chunks, as scripted")
                if sent == len(gen.pieces):
                    break
                if script.chunk_delay_s:
                    await asyncio.sleep(script.chunk_delay_s)
                yield _line(
                    {"model": gen.model, "created_at": _utc_time(), **gen.content(gen.pieces[sent]), "done": False}
                )
                record.chunks_sent += 1
            if script.end_without_done:
                record.outcome = "ended-without-done"
                return
            yield _line(_final(gen, "", eval_ns=time.monotonic_ns() - started))
            record.outcome = "done"
        finally:
            # Cancelled by Starlette when the client disconnects, or closed without finishing.
            if record.outcome == "streaming":
                record.outcome = "disconnected"

    def _record(self, request: Request, body: dict[str, Any] | None) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.url.path, body))


def _final(gen: _Generation, text: str, *, eval_ns: int) -> dict[str, Any]:
    prompt_ns = gen.prompt_eval_count * _FAKE_PROMPT_NS_PER_TOKEN
    return {
        "model": gen.model,
        "created_at": _utc_time(),
        **gen.content(text),
        "done": True,
        "done_reason": gen.done_reason,
        "total_duration": gen.load_ns + prompt_ns + eval_ns,
        "load_duration": gen.load_ns,
        "prompt_eval_count": gen.prompt_eval_count,
        "prompt_eval_duration": prompt_ns,
        "eval_count": len(gen.pieces),
        "eval_duration": eval_ns,
    }


def _tokens(text: str) -> list[str]:
    """Token-like pieces: each word with the whitespace before it, as BPE vocabularies split English."""
    return _TOKEN.findall(text)


def _keep_alive_s(value: Any) -> float:
    """Ollama's keep_alive: a number of seconds or a Go duration string; negative means forever."""
    if value is None:
        return DEFAULT_KEEP_ALIVE_S
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if value in ("0", "+0", "-0"):
            return 0.0
        match = _GO_DURATION.fullmatch(value)
        if match:
            seconds = sum(float(n) * _UNIT_S[unit] for n, unit in _GO_DURATION_PART.findall(match.group(2)))
            return -seconds if match.group(1) == "-" else seconds
        raise ValueError(f'time: invalid duration "{value}"')
    raise ValueError(f"json: cannot unmarshal {type(value).__name__} into keep_alive")


def _canonical(name: str) -> str:
    """Ollama's name resolution: a name without a tag means its `latest` tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _listing(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "size": _MODEL_SIZE,
        "digest": hashlib.sha256(name.encode()).hexdigest(),
        "details": _details(),
    }


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_K_M",
    }


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _utc_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _local_time(moment: datetime) -> str:
    return moment.astimezone().isoformat()
