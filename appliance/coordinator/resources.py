"""GPU residency for batch work: before voice training, the coordinator frees the GPU; afterwards it restores it.

Training a GPT-SoVITS voice needs ~14 GB of VRAM at batch 16 (integrations.md), so the models that live on the GPU
go first: workers whose configuration puts them on it are stopped through supervisord (stopping a process is
the one sure way to return its memory), and Ollama is told to unload its model (keep_alive 0). When the lease is
given back, the stopped workers start again; Ollama loads its model on the next turn.
"""

from __future__ import annotations

import logging

import httpx

from appliance.config import MynahConfig
from appliance.supervision.rpc import SupervisorClient, SupervisorUnavailable

log = logging.getLogger(__name__)

OLLAMA_UNLOAD_TIMEOUT_S = 10.0


def gpu_programs(config: MynahConfig) -> list[str]:
    """The worker programs this configuration puts on the GPU."""
    programs: list[str] = []
    if config.stt.active_profile().device != "cpu":
        programs += ["stt", "stt-batch"]
    if config.lipsync.backend == "sadtalker" and config.lipsync.sadtalker.device == "cuda":
        programs += ["lipsync"]
    return programs


def uses_ollama(config: MynahConfig) -> bool:
    return config.llm.backend in ("ollama", "auto")


class GpuLeases:
    def __init__(self, config: MynahConfig, supervisor: SupervisorClient) -> None:
        self._config = config
        self._supervisor = supervisor
        self._stopped: dict[str, list[str]] = {}  # job id -> programs it stopped

    async def grant(self, job_id: str) -> tuple[str, ...]:
        """Free the GPU for `job_id`; return what was stopped or unloaded."""
        freed: list[str] = []
        stopped: list[str] = []
        for program in gpu_programs(self._config):
            try:
                await self._supervisor.astop(program)
            except SupervisorUnavailable as err:
                log.warning("could not stop %s to free the GPU: %s", program, err)
                continue
            stopped.append(program)
            freed.append(f"program:{program}")
        self._stopped[job_id] = stopped
        if uses_ollama(self._config) and await self._unload_ollama():
            freed.append(f"ollama:{self._config.llm.ollama.model}")
        log.info("GPU lease for job %s: freed %s", job_id, ", ".join(freed) or "nothing (no model is on the GPU)")
        return tuple(freed)

    async def release(self, job_id: str) -> None:
        for program in self._stopped.pop(job_id, []):
            try:
                await self._supervisor.astart(program)
            except SupervisorUnavailable as err:
                log.error("could not restart %s after training: %s", program, err)

    async def _unload_ollama(self) -> bool:
        """Ask Ollama to drop the chat model from memory now (documented: /api/generate with keep_alive 0)."""
        settings = self._config.llm.ollama
        body = {"model": settings.model, "keep_alive": 0}
        try:
            async with httpx.AsyncClient(base_url=settings.host, timeout=OLLAMA_UNLOAD_TIMEOUT_S) as client:
                response = await client.post("/api/generate", json=body)
        except (TimeoutError, httpx.HTTPError) as err:
            log.info("Ollama not reachable to unload %s: %s", settings.model, err)
            return False
        return response.status_code == 200
