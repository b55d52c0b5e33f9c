"""The coordinator's Ollama residency client against a mock of Ollama's documented /api/ps and /api/generate."""

from __future__ import annotations

import asyncio
import json

import httpx

from appliance.config import OllamaConfig
from appliance.coordinator.ollama_residency import OllamaResidency


def test_ps_sizes_and_keep_alive_zero_unloads() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/ps":
            return httpx.Response(200, json={"models": [{"name": "llama3.1:8b", "model": "llama3.1:8b",
                                                         "size": 6 << 30, "size_vram": 5900 << 20}]})  # fmt: skip
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={"done": True})

    ollama = OllamaResidency(OllamaConfig(), transport=httpx.MockTransport(handler))
    assert asyncio.run(ollama.resident()) == {"llama3.1:8b": 5900.0}
    assert asyncio.run(ollama.unload("llama3.1:8b"))
    assert asyncio.run(ollama.load("llama3.1:8b"))
    assert seen == [{"model": "llama3.1:8b", "keep_alive": 0},
                    {"model": "llama3.1:8b", "keep_alive": "30m", "options": {"num_ctx": 4096}}]  # fmt: skip


def test_an_unreachable_ollama_reports_nothing_loaded() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    ollama = OllamaResidency(OllamaConfig(), transport=httpx.MockTransport(refuse))
    assert asyncio.run(ollama.resident()) is None
    assert not asyncio.run(ollama.unload("llama3.1:8b"))
