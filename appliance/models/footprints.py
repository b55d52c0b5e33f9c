"""Model footprints (VRAM, RAM, CPU) and priorities: the defaults in footprints.toml, overridden model by model
by what `mynah models measure` recorded on this box in `<data_dir>/footprints.json`."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ipc.errors import CodedError

DEFAULTS_PATH = Path(__file__).with_name("footprints.toml")
MEASURED_NAME = "footprints.json"


class FootprintError(CodedError):
    """The footprint table or the measured overrides are malformed (code footprints-invalid)."""


class ModelFootprint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Literal["cpu", "cuda"] = "cpu"
    vram_mib: Annotated[float, Field(ge=0)] = 0.0
    ram_mib: Annotated[float, Field(ge=0)] = 0.0
    cpu_cores: Annotated[float, Field(ge=0)] = 0.0
    priority: Annotated[int, Field(ge=0, le=100)] = 50
    source: str = ""


class FootprintTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Annotated[int, Field(alias="schema")] = 1
    cuda_context_mib: Annotated[float, Field(ge=0)] = 586.0
    program_priority: dict[str, int] = {}
    model: dict[str, ModelFootprint] = {}
    job: dict[str, ModelFootprint] = {}

    def of(self, name: str) -> ModelFootprint:
        """A model's footprint; one the table does not know is an estimate-free zero (logged by the caller)."""
        return self.model.get(name, ModelFootprint(source="unknown: not in footprints.toml"))

    def priority(self, program: str, model: str) -> int:
        return self.program_priority.get(program, self.of(model).priority)


def load_footprints(data_dir: Path | None = None, defaults: Path = DEFAULTS_PATH) -> FootprintTable:
    """The defaults, with `<data_dir>/footprints.json`'s measured models laid over them."""
    try:
        table = FootprintTable.model_validate(tomllib.loads(defaults.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
        raise FootprintError("footprints-invalid", f"footprint table {defaults}: {err}") from err
    measured = read_measured(data_dir) if data_dir is not None else {}
    if not measured:
        return table
    merged = dict(table.model)
    for name, found in measured.items():
        base = merged.get(name, ModelFootprint())
        merged[name] = base.model_copy(update=found.model_dump(exclude_unset=True, exclude={"priority"}))
    return table.model_copy(update={"model": merged})


def read_measured(data_dir: Path) -> dict[str, ModelFootprint]:
    path = data_dir / MEASURED_NAME
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: ModelFootprint.model_validate(value) for name, value in raw.get("models", {}).items()}
    except (OSError, ValueError, ValidationError) as err:
        raise FootprintError("footprints-invalid", f"{path}: {err}; remove it or run `mynah models measure`") from err


def write_measured(data_dir: Path, found: Mapping[str, ModelFootprint]) -> Path:
    """Merge `found` into `<data_dir>/footprints.json` (other models' earlier measures stay)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    merged = read_measured(data_dir) | dict(found)
    path = data_dir / MEASURED_NAME
    body = {"schema": 1, "models": {n: f.model_dump(exclude_unset=True) for n, f in sorted(merged.items())}}
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    staging.replace(path)
    return path
