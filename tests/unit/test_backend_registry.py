"""Backends import lazily; a missing dependency is a coded error naming what to install."""

from __future__ import annotations

import pytest

from procs.common.registry import BackendEntry, backend_class
from procs.llm.backends.base import LlmError
from procs.stt.backends.base import SttError


def test_a_registered_backend_is_imported_by_name() -> None:
    registry = {"ollama": BackendEntry("procs.llm.backends.ollama", "OllamaBackend", "")}
    assert backend_class("llm", registry, "ollama", LlmError).__name__ == "OllamaBackend"


@pytest.mark.parametrize(("extra", "hint"), [("gpu", "'.[gpu]'"), ("", "pip install -e .`")])
def test_a_backend_whose_module_is_missing_says_what_to_install(extra: str, hint: str) -> None:
    registry = {"ghost": BackendEntry("procs.stt.backends.no_such_engine", "Ghost", extra)}
    with pytest.raises(SttError) as caught:
        backend_class("stt", registry, "ghost", SttError)
    assert caught.value.code == "stt-backend-unavailable"
    assert hint in caught.value.message
    assert "no_such_engine" in caught.value.message
