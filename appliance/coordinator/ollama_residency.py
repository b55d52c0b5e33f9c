"""Ollama's residency, as the coordinator sees it: `GET /api/ps` (what is loaded, and its size_vram) and
`/api/generate` with no prompt (keep_alive 0 unloads now; any other keep_alive loads). The same documented
calls procs/llm/backends/ollama.py makes, over plain httpx, so the coordinator needs no LLM client."""

from __future__ import annotations

import logging

import httpx

from appliance.config import OllamaConfig

log = logging.getLogger(__name__)

MIB = 1 << 20
TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 300.0  # a first load from disk can take minutes


class OllamaResidency:
    def __init__(self, config: OllamaConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._transport = transport  # tests pass a mock transport

    def _client(self, timeout_s: float) -> httpx.AsyncClient:
        timeout = httpx.Timeout(timeout_s, connect=self._config.connect_timeout_s)
        return httpx.AsyncClient(base_url=self._config.host, timeout=timeout, transport=self._transport)

    async def resident(self) -> dict[str, float] | None:
        """Loaded models and the MiB each holds on the GPU; None when Ollama does not answer."""
        try:
            async with self._client(TIMEOUT_S) as client:
                response = await client.get("/api/ps")
            response.raise_for_status()
            models = response.json().get("models", [])
        except (httpx.HTTPError, ValueError) as err:
            log.info("Ollama at %s: /api/ps failed: %s", self._config.host, err)
            return None
        return {str(m.get("model") or m.get("name")): float(m.get("size_vram", 0)) / MIB for m in models}

    async def unload(self, model: str) -> bool:
        return await self._generate({"model": model, "keep_alive": 0}, TIMEOUT_S)

    async def load(self, model: str) -> bool:
        options = {"num_ctx": self._config.num_ctx}  # as every chat asks, or Ollama reloads it to resize
        body: dict[str, object] = {"model": model, "keep_alive": self._config.keep_alive, "options": options}
        return await self._generate(body, LOAD_TIMEOUT_S)

    async def _generate(self, body: dict[str, object], timeout_s: float) -> bool:
        try:
            async with self._client(timeout_s) as client:
                response = await client.post("/api/generate", json=body)
        except httpx.HTTPError as err:
            log.info("Ollama at %s: /api/generate %s failed: %s", self._config.host, body, err)
            return False
        return response.status_code == 200
