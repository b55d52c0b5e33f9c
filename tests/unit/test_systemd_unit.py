"""The systemd unit the installer writes: rendered from systemd/mynah.service.in, and `systemd-analyze verify` clean."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.supervision.unit import UnitSettings, render_unit


def _settings(root: Path) -> UnitSettings:
    venv = root / "opt" / "mynah" / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "mynah").write_text("#!/bin/sh\n")
    (venv / "bin" / "mynah").chmod(0o755)
    state = root / "var" / "lib" / "mynah"
    return UnitSettings("mynah", "mynah", root / "opt" / "mynah" / "app", venv, root / "etc" / "mynah" / "mynah.toml",
                        state, (state, root / "var" / "log" / "mynah", root / "run" / "mynah"))  # fmt: skip


def test_the_unit_runs_supervisord_in_the_foreground_hardened_with_the_gpu_allowed(tmp_path: Path) -> None:
    unit = render_unit(_settings(tmp_path))
    lines = set(unit.splitlines())
    assert (
        f"ExecStart={tmp_path}/opt/mynah/venv/bin/mynah --config {tmp_path}/etc/mynah/mynah.toml up --foreground"
        in lines
    )
    assert {"User=mynah", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
            "PrivateTmp=yes", "DevicePolicy=closed", "DeviceAllow=char-nvidia* rw"} <= lines  # fmt: skip
    assert f"ReadWritePaths={tmp_path}/var/lib/mynah {tmp_path}/var/log/mynah {tmp_path}/run/mynah" in lines
    assert "PrivateDevices=yes" not in lines  # it would hide /dev/nvidia*
    assert "$" not in unit.replace("$(", "")  # every placeholder filled


def test_paths_a_unit_cannot_say_are_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(ValueError, match="absolute"):
        render_unit(UnitSettings(**{**settings.__dict__, "config": Path("/etc/my mynah.toml")}))
    with pytest.raises(ValueError, match="user or group"):
        render_unit(UnitSettings(**{**settings.__dict__, "user": "root; rm"}))


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: installer/install.sh --dev --test installs the systemd package")
        pytest.skip("systemd-analyze is not installed (apt install systemd; CI installs it)")
    unit = tmp_path / "mynah.service"
    unit.write_text(render_unit(_settings(tmp_path / "root")))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Only complaints about this unit count (a container's own units may draw their own warnings).
    assert "mynah.service" not in result.stderr, result.stderr
