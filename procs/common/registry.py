"""Backends by name, imported lazily: a missing optional dependency matters only when that backend is chosen,
and then the error says which pip extra to install."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ipc.errors import CodedError


@dataclass(frozen=True, slots=True)
class BackendEntry:
    module: str
    cls: str
    extra: str  # the pip extra that provides its dependencies; "" when they are core dependencies


def backend_class(stage: str, registry: dict[str, BackendEntry], name: str, error: type[CodedError]) -> type:
    """The class registered as `name`; `error(f"{stage}-backend-unavailable", ...)` when it cannot be imported."""
    entry = registry[name]
    try:
        module = importlib.import_module(entry.module)
    except ImportError as err:
        target = f"'.[{entry.extra}]'" if entry.extra else "."
        raise error(
            f"{stage}-backend-unavailable",
            f"the {name} {stage.upper()} backend needs {err.name!r}: run `.venv/bin/pip install -e {target}`",
        ) from err
    cls: type = getattr(module, entry.cls)
    return cls
