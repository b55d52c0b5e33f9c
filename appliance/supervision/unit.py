"""Render Mynah's systemd unit from systemd/mynah.service.in (the installer runs this file as a script).

Standard library only: installer/install.sh runs it with the system's Python, before (or without, under
--dry-run) the virtual environment exists.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).resolve().parents[2] / "systemd" / "mynah.service.in"


@dataclass(frozen=True)
class UnitSettings:
    """Where an installed appliance lives and who runs it."""

    user: str
    group: str
    app_dir: Path  # the code
    venv: Path
    config: Path
    state_dir: Path  # the service's home: data and models live below it
    writable: tuple[Path, ...]  # data, models, runtime and log folders


def _unit_path(path: Path) -> str:
    text = str(path)
    if not path.is_absolute() or any(c.isspace() or c in "\"'\\%$;" for c in text):
        raise ValueError(f"unit paths must be absolute, without spaces, quotes, '%', '$' or ';': {text!r}")
    return text


def render_unit(settings: UnitSettings, template: Path = TEMPLATE) -> str:
    for name in (settings.user, settings.group):
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"not a plain user or group name: {name!r}")
    return Template(template.read_text(encoding="utf-8")).substitute(
        user=settings.user,
        group=settings.group,
        app_dir=_unit_path(settings.app_dir),
        venv=_unit_path(settings.venv),
        config=_unit_path(settings.config),
        state_dir=_unit_path(settings.state_dir),
        read_write_paths=" ".join(_unit_path(p) for p in settings.writable),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="print Mynah's systemd unit, filled in")
    parser.add_argument("--user", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--app-dir", type=Path, required=True)
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--writable", type=Path, action="append", required=True, help="repeat for each folder")
    args = parser.parse_args(argv)
    settings = UnitSettings(
        args.user, args.group, args.app_dir, args.venv, args.config, args.state_dir, tuple(args.writable)
    )
    try:
        sys.stdout.write(render_unit(settings))
    except ValueError as err:
        print(f"unit.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
