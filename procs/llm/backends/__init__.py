"""LLM backends by name. A new backend is one module plus one line here; modules import lazily, so a
missing optional dependency only matters when that backend is chosen, and then says what to install."""

from __future__ import annotations

import logging

from appliance.config import LlmConfig
from appliance.models.store import ModelError, ModelStore
from procs.common.registry import BackendEntry, backend_class
from procs.llm.backends.base import LlmBackend, LlmError
from procs.llm.persona import system_prompt

log = logging.getLogger(__name__)

# name -> (module, class, the pip extra that provides its dependencies)
BACKENDS: dict[str, BackendEntry] = {
    "embedded": BackendEntry("procs.llm.backends.embedded", "EmbeddedBackend", "embedded"),
    "ollama": BackendEntry("procs.llm.backends.ollama", "OllamaBackend", ""),
}


def _backend_class(name: str) -> type:
    return backend_class("llm", BACKENDS, name, LlmError)


async def backend_chain(config: LlmConfig) -> list[str]:
    """The backends to try, in order of preference. `ollama` falls back to the embedded model (and comes back
    when its server does); `auto` means Ollama when its server answers and has the configured model, else
    embedded, which is then the choice, not a fallback."""
    if config.backend == "embedded":
        return ["embedded"]
    if config.backend == "ollama":
        return ["ollama", "embedded"]
    ollama_cls = _backend_class("ollama")
    probe = ollama_cls(config.ollama, config.reply, "")
    if await probe.has_model():
        log.info("auto: Ollama at %s has %s; using it", config.ollama.host, config.ollama.model)
        return ["ollama", "embedded"]
    log.info("auto: no Ollama with %s at %s; using the embedded model", config.ollama.model, config.ollama.host)
    return ["embedded"]


def create_backend(name: str, config: LlmConfig, models: ModelStore) -> LlmBackend:
    """Backend `name`, not loaded."""
    cls = _backend_class(name)
    if name == "embedded":
        try:
            path = models.resolve(config.embedded.model)
        except ModelError as err:
            raise LlmError(err.code, err.message) from err
        backend: LlmBackend = cls(config.embedded, config.reply, path)
    else:
        backend = cls(config.ollama, config.reply, system_prompt(config.reply))
    return backend
