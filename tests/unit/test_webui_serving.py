"""The gateway serves the built web UI and the CA certificate without a token, and nothing else of the disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from appliance.config import MynahConfig
from appliance.gateway.app import create_app
from appliance.gateway.errors import install_error_handlers
from appliance.gateway.webui import mount_webui
from appliance.security import certs


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "dist" / "assets").mkdir(parents=True)
    (tmp_path / "dist" / "index.html").write_text("<!doctype html><title>Mynah</title>")
    (tmp_path / "dist" / "assets" / "index-abc123.js").write_text("console.log('mynah')")
    (tmp_path / "secret.txt").write_text("not for the web")
    return tmp_path / "dist"


def served(config: MynahConfig, dist: Path) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    mount_webui(app, config, dist)
    return TestClient(app)


def test_the_page_and_its_assets_are_served_with_their_caching(tmp_path: Path, dist: Path) -> None:
    client = served(MynahConfig().resolved(tmp_path), dist)
    page = client.get("/")
    assert page.status_code == 200 and "<title>Mynah</title>" in page.text
    assert page.headers["cache-control"] == "no-cache"  # a new build is seen at the next load
    asset = client.get("/assets/index-abc123.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert client.get("/assets/../secret.txt").status_code == 404
    assert client.get("/assets/%2e%2e/secret.txt").status_code == 404


def test_an_unbuilt_ui_says_how_to_build_it(tmp_path: Path) -> None:
    page = served(MynahConfig().resolved(tmp_path), tmp_path / "missing").get("/")
    assert page.status_code == 503 and "npm run build" in page.text


def test_the_ca_certificate_is_downloadable_once_it_exists(tmp_path: Path, dist: Path) -> None:
    config = MynahConfig().resolved(tmp_path)
    client = served(config, dist)
    missing = client.get("/ca.pem")
    assert missing.status_code == 404 and missing.json()["code"] == "certificate-missing"
    paths = certs.ensure_certificates(config)
    got = client.get("/ca.pem")
    assert got.status_code == 200 and got.content == paths.ca_cert.read_bytes()
    assert b"PRIVATE KEY" not in got.content


def test_the_ui_shell_is_open_but_the_api_behind_it_is_not(tmp_path: Path) -> None:
    client = TestClient(create_app(MynahConfig().resolved(tmp_path)))
    assert client.get("/").status_code in (200, 503)  # built or not, never a 401: it is the pairing page
    assert client.get("/assets/none.js").status_code == 404
    for path in ("/api/status", "/api/settings", "/api/avatars"):
        refused = client.get(path)
        assert refused.status_code == 401 and refused.json()["code"] == "auth-required", path
