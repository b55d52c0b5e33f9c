"""Render the supervisord configuration for one appliance from systemd/supervisord.conf.in."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from string import Template

from appliance.config import CONFIG_ENV, MynahConfig
from ipc.paths import runtime_tag

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "systemd" / "supervisord.conf.in"

# The thread budget: every numeric library gets one thread unless its own setting says otherwise
# (llama.cpp's n_threads, CTranslate2's cpu_threads are set explicitly from the configuration).
THREAD_LIMITS = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
PASSED_THROUGH = ("MYNAH_LOG_LEVEL", "PATH", "HOME")


def _quote(value: str) -> str:
    if '"' in value or "%" in value:
        raise ValueError(f"supervisord environment values cannot hold '\"' or '%': {value!r}")
    return f'"{value}"'


def program_environment(config: MynahConfig) -> dict[str, str]:
    assert config.source is not None, "render from a configuration loaded from a file"
    env = {CONFIG_ENV: str(config.source), "PYTHONUNBUFFERED": "1", **THREAD_LIMITS}
    env.update({name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
    return env


def render(config: MynahConfig, python: str = sys.executable, *, syslog: bool = False) -> str:
    """`syslog`: also send every program's output to syslog (journald under systemd), tagged with its name."""
    paths = config.paths
    environment = ",".join(f"{k}={_quote(v)}" for k, v in program_environment(config).items())
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        runtime_dir=paths.runtime_dir,
        log_dir=paths.log_dir,
        root=ROOT,
        python=python,
        tag=runtime_tag(paths.runtime_dir),
        environment=environment,
        syslog="true" if syslog else "false",
    )


def write(config: MynahConfig, *, syslog: bool = False) -> Path:
    target = config.paths.runtime_dir / "supervisord.conf"
    target.write_text(render(config, syslog=syslog), encoding="utf-8")
    return target
