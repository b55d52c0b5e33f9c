"""Shared test fixtures: a running appliance (real supervisord, real processes, the embedded model)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = Path(os.environ.get("MYNAH_TEST_MODELS_DIR", ROOT / "var" / "models"))
EMBEDDED_LLM = "smollm2-135m-instruct"


def require_model(name: str = EMBEDDED_LLM) -> Path:
    """A model's verified file or folder. Missing is a skip on a developer's box and a failure in CI."""
    from appliance.models.store import ModelError, ModelStore

    try:
        return ModelStore(MODELS_DIR).resolve(name)
    except ModelError as err:
        if os.environ.get("CI"):
            pytest.fail(f"{err.message}: CI must run installer/install.sh first")
        pytest.skip(f"{err.message} (installer/install.sh --dev fetches it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Appliance:
    home: Path
    config_path: Path
    url: str
    up_output: str
    token: str = ""  # a paired device's token (start_appliance pairs with the code `mynah up` printed)
    ca: Path | None = None  # the appliance's CA certificate when it serves HTTPS

    def mynah(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "appliance.cli.main", "--config", str(self.config_path), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)
        if check and result.returncode != 0:
            raise AssertionError(f"mynah {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def status(self) -> dict[str, Any]:
        result = self.mynah("status", "--json", check=False)
        report: dict[str, Any] = json.loads(result.stdout)
        return report

    def program(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(p for p in self.status()["programs"] if p["name"] == name)
        return found

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, timeout: float = 60, *, authenticated: bool = True) -> httpx.Client:
        headers = self.headers if authenticated else {}
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(self.ca)) if self.ca else True
        return httpx.Client(base_url=self.url, timeout=timeout, headers=headers, verify=verify)

    def pair(self, code: str, device_name: str = "tests") -> httpx.Response:
        with self.client(authenticated=False) as http:
            return http.post("/api/pair", json={"code": code, "device_name": device_name})

    def transcribe(self, samples: Any, rate: int, *, lead_s: float = 0.0) -> str:
        """Mono float samples at `rate`, after `lead_s` of silence, through POST /api/transcribe: the text."""
        samples = np.concatenate([np.zeros(round(lead_s * rate), np.float32), np.asarray(samples, np.float32)])
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
        with self.client(timeout=120) as http:
            response = http.post("/api/transcribe", files={"file": ("speech.wav", buffer.getvalue())})
        assert response.status_code == 200, response.text
        text: str = response.json()["text"]
        return text

    def history(self, session_id: str) -> list[dict[str, Any]]:
        """GET /api/sessions/{id}/history: its lines."""
        with self.client() as http:
            response = http.get(f"/api/sessions/{session_id}/history")
        assert response.status_code == 200, response.text
        lines: list[dict[str, Any]] = response.json()["lines"]
        return lines


def write_config(
    home: Path, port: int, extra: str = "", backend: str = "embedded", models_dir: Path = MODELS_DIR
) -> Path:
    path = home / "mynah.toml"
    path.write_text(
        f"""
[paths]
models_dir = "{models_dir}"
[gateway]
port = {port}
[llm]
backend = "{backend}"
[supervision]
heartbeat_interval_s = 0.5
hang_timeout_s = 3.0
ready_timeout_s = 90
fallback_retry_s = 2.0
{extra}
"""
    )
    return path


def start_appliance(extra: str = "", backend: str = "embedded", *, home: Path | None = None,
                    models_dir: Path = MODELS_DIR) -> Appliance:  # fmt: skip
    """`mynah up` in `home` (default: a fresh temporary folder; a prepared one may have its data directory on
    a mount already), paired as a device."""
    require_model()
    # Unix socket paths are limited to 107 bytes: keep the runtime directory short.
    home = home or Path(tempfile.mkdtemp(prefix="mynah-it-"))
    port = free_port()
    config = write_config(home, port, extra, backend, models_dir)
    appliance = Appliance(home, config, f"http://127.0.0.1:{port}", "")
    result = appliance.mynah("up", check=False)
    appliance.up_output = result.stdout + result.stderr
    if result.returncode != 0:
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in (home / "log").glob("*.log"))
        appliance.mynah("down", check=False)
        raise AssertionError(f"mynah up failed:\n{appliance.up_output}\n{logs}")
    _pair(appliance, port)
    return appliance


def _pair(appliance: Appliance, port: int) -> None:
    """Use the appliance as a paired device does: over HTTPS when it serves it, with a token from the code."""
    from appliance.config import load_config
    from appliance.security.certs import cert_paths, tls_enabled

    config = load_config(appliance.config_path)
    if tls_enabled(config):
        appliance.url = f"https://127.0.0.1:{port}"
        appliance.ca = cert_paths(config).ca_cert
    found = re.search(r"pairing code: (\d{6})", appliance.up_output)
    assert found, f"mynah up printed no pairing code:\n{appliance.up_output}"
    paired = appliance.pair(found.group(1))
    assert paired.status_code == 200, paired.text
    appliance.token = paired.json()["token"]


def stop_appliance(appliance: Appliance) -> None:
    appliance.mynah("down", check=False)
    shutil.rmtree(appliance.home, ignore_errors=True)


@pytest.fixture(scope="module")
def appliance() -> Iterator[Appliance]:
    running = start_appliance()
    try:
        yield running
    finally:
        stop_appliance(running)
