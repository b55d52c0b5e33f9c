"""`mynah doctor` with its real checks on the machine the tests run on (a CPU-only CI box): every check runs,
nothing fails, the missing GPU is a warning with its fix, and the exit status says so."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import Appliance, free_port, write_config

pytestmark = pytest.mark.integration

CHECKS = {"gpu", "ram", "disk-data", "disk-models", "port", "certs", "ollama"}


def test_doctor_reports_this_cpu_only_box_correctly() -> None:
    home = Path(tempfile.mkdtemp(prefix="mynah-doc-"))
    try:
        port = free_port()
        # Ollama where nothing listens: its check must say so, whatever runs on this machine's 11434.
        config = write_config(home, port, f'[llm.ollama]\nhost = "http://127.0.0.1:{free_port()}"\n', backend="auto")
        doctor = Appliance(home, config, f"http://127.0.0.1:{port}", "").mynah("doctor", "--json", check=False)
        report = json.loads(doctor.stdout)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    findings = {f["check"]: f for f in report["findings"]}
    assert set(findings) >= CHECKS, findings
    assert not [f for f in findings.values() if f["status"] == "fail"], findings
    assert all(f["fix"] for f in findings.values() if f["status"] != "ok"), "every warning says what to do"
    assert findings["port"]["status"] == "ok" and str(port) in findings["port"]["detail"]
    assert findings["ram"]["status"] == "ok" and findings["disk-data"]["status"] == "ok"
    assert findings["ollama"]["status"] == "warn" and "embedded model will answer" in findings["ollama"]["detail"]
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvidia0").exists():
        assert findings["gpu"]["status"] == "warn" and "no NVIDIA GPU" in findings["gpu"]["detail"], findings["gpu"]
    assert report["status"] == "warn" and doctor.returncode == 0, (report["status"], doctor.returncode)
