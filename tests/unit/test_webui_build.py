"""The web UI's own checks, run from the suite: its generated API client matches the gateway's OpenAPI, it type
checks, and its Vitest unit tests pass (their summary is printed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.gateway.openapi import openapi_document

WEBUI = Path(__file__).resolve().parents[2] / "webui"
NPX = shutil.which("npx")
needs_node = pytest.mark.skipif(
    NPX is None or not (WEBUI / "node_modules").is_dir(),
    reason="Node.js and webui/node_modules come with installer/install.sh",
)


def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert NPX is not None
    return subprocess.run([NPX, "--no-install", *argv], cwd=WEBUI, capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip


def test_the_committed_openapi_document_is_the_gateways() -> None:
    committed = json.loads((WEBUI / "openapi.json").read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(openapi_document())), (
        "webui/openapi.json is stale: run `python -m appliance.gateway.openapi webui/openapi.json && "
        "(cd webui && npm run api)`"
    )


@needs_node
def test_the_typescript_client_is_generated_from_it(tmp_path: Path) -> None:
    out = tmp_path / "schema.d.ts"
    result = run("openapi-typescript", "openapi.json", "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_text() == (WEBUI / "src" / "api" / "schema.d.ts").read_text(), "run `npm run api` in webui/"


@needs_node
def test_the_ui_type_checks_and_its_unit_tests_pass() -> None:
    typed = run("tsc", "-p", ".")
    assert typed.returncode == 0, typed.stdout + typed.stderr
    tests = run("vitest", "run", "--reporter=default")
    print(tests.stdout[-3000:])
    assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]
