"""Errors sent inside open streams count in /metrics like error responses: SSE `error` events under status 200,
WebSocket `{"type": "error"}` frames under 101 (the handshake's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.config import MynahConfig
from appliance.gateway.app import create_app
from appliance.gateway.errors import install_error_handlers
from appliance.gateway.metrics import CountErrors, GatewayMetrics
from appliance.gateway.routes import chat, transcribe
from ipc.messages import (
    AudioStreamClose,
    AudioStreamClosed,
    AudioStreamOpen,
    ChatRequest,
    ChatStarted,
    ErrorReply,
    Message,
    StreamFault,
)


class _Link:
    """A coordinator whose chat turns fail after they start and whose live streams start with a fault."""

    def __init__(self) -> None:
        self._closed: asyncio.Event | None = None

    async def converse(self, message: Message, *, idle_timeout_s: float | None = None) -> AsyncIterator[Message]:
        if isinstance(message, ChatRequest):
            yield ChatStarted("s1", "t1")
            yield ErrorReply("llm-worker-crashed", "the llm worker exited")
        elif isinstance(message, AudioStreamOpen):
            self._closed = asyncio.Event()
            yield StreamFault(message.stream_id, "stt-not-ready", "speech recognition is starting")
            await self._closed.wait()
            yield AudioStreamClosed(message.stream_id, 0)

    async def tell(self, message: Message) -> None:
        if isinstance(message, AudioStreamClose) and self._closed is not None:
            self._closed.set()


def _app(tmp_path: Path) -> tuple[FastAPI, GatewayMetrics]:
    app = FastAPI()
    app.state.config = MynahConfig().resolved(tmp_path)
    app.state.link = _Link()
    app.state.mic = None  # whole-sample frames only reach it; these tests send none
    app.state.metrics = metrics = GatewayMetrics()
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(transcribe.router)
    app.add_middleware(CountErrors, metrics=metrics)
    return app, metrics


def _count(metrics: GatewayMetrics, code: str, status: str) -> float:
    value = metrics.registry.get_sample_value("mynah_api_errors_total", {"code": code, "status": status})
    return value or 0.0


def test_a_chat_streams_error_event_counts_under_200(tmp_path: Path) -> None:
    app, metrics = _app(tmp_path)
    with TestClient(app) as client:
        streamed = client.post("/chat", json={"text": "hello", "stream": True})
        answered = client.post("/chat", json={"text": "hello"})
    assert streamed.status_code == 200 and "event: error" in streamed.text
    assert answered.status_code == 503  # the same failure answered whole: counted by the middleware
    assert _count(metrics, "llm-worker-crashed", "200") == 1.0
    assert _count(metrics, "llm-worker-crashed", "503") == 1.0


def test_websocket_error_frames_count_under_101(tmp_path: Path) -> None:
    app, metrics = _app(tmp_path)
    with TestClient(app) as client, client.websocket_connect("/api/transcribe/live") as ws:
        assert ws.receive_json()["code"] == "stt-not-ready"  # relayed from the coordinator
        ws.send_bytes(b"\x00\x01\x02")  # not whole 16-bit samples
        assert ws.receive_json()["code"] == "audio-bad-frame"  # the gateway's own
        ws.send_text('{"type": "end"}')
        assert ws.receive_json()["type"] == "closed"
    assert _count(metrics, "stt-not-ready", "101") == 1.0
    assert _count(metrics, "audio-bad-frame", "101") == 1.0
    assert _count(metrics, "audio-bad-frame", "200") == 0.0


def test_a_websocket_refused_for_its_token_counts_under_101(tmp_path: Path) -> None:
    app = create_app(MynahConfig().resolved(tmp_path))  # no lifespan: the door refuses before any route runs
    client = TestClient(app)
    with client.websocket_connect("/api/transcribe/live") as ws:
        ws.send_text('{"type": "end"}')
        assert ws.receive_json()["code"] == "auth-required"
    assert _count(app.state.metrics, "auth-required", "101") == 1.0
