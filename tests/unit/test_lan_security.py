"""LAN security's pure parts and the gateway's door, without running the appliance: pairing codes and their
rate limit, device tokens, the certificate authority, and a token required on every route the app has."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import stat
from pathlib import Path

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from appliance.config import MynahConfig, SecurityConfig
from appliance.gateway.app import create_app
from appliance.gateway.auth import PUBLIC_PATHS, is_open
from appliance.security import certs
from appliance.security.pairing import AttemptLimiter, current_code, new_code, redeem
from appliance.store.db import connect
from appliance.store.devices import DeviceStore, token_digest


def config_in(tmp_path: Path, **security: object) -> MynahConfig:
    return MynahConfig(security=SecurityConfig.model_validate(security)).resolved(tmp_path)


def test_a_limiter_blocks_after_the_limit_per_address_and_overall_then_forgets() -> None:
    limiter = AttemptLimiter(limit=3, window_s=60)
    for i in range(3):
        assert limiter.retry_after("a", 100.0 + i) == 0
        limiter.failed("a", 100.0 + i)
    assert limiter.retry_after("a", 103.0) == pytest.approx(57.0)
    assert limiter.retry_after("b", 103.0) > 0  # the global limit holds for every address
    assert limiter.retry_after("a", 160.5) == 0


def test_a_pairing_code_works_once_and_only_before_it_expires(tmp_path: Path) -> None:
    issued = new_code(tmp_path, ttl_s=60, now=1000.0)
    assert len(issued.code) == 6 and issued.code.isdigit()
    assert stat.S_IMODE(os.stat(tmp_path / "pairing-code").st_mode) == 0o600
    wrong = f"{(int(issued.code) + 1) % 10**6:06d}"
    assert not redeem(tmp_path, wrong, now=1001.0)
    assert not redeem(tmp_path, issued.code, now=1061.0)  # expired
    assert redeem(tmp_path, issued.code, now=1001.0)
    assert not redeem(tmp_path, issued.code, now=1002.0)  # used
    assert current_code(tmp_path, now=1002.0) is None


def test_devices_keep_only_the_token_digest_and_revoking_one_is_seen(tmp_path: Path) -> None:
    store = DeviceStore(connect(tmp_path / "mynah.db"))
    device, token = store.pair("Kitchen\x00 tablet\n")
    assert device.name == "Kitchen tablet"
    raw = store._conn.execute("SELECT token_sha256 FROM devices").fetchone()[0]
    assert raw == token_digest(token) and token not in raw
    found = store.by_token(token)
    assert found is not None and not found.revoked and found.last_seen_at is not None
    store.revoke(device.device_id)
    again = store.by_token(token)
    assert again is not None and again.revoked
    assert store.by_token("not-a-token") is None


def test_the_ca_and_server_certificate_are_made_once_with_the_boxs_names(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    paths = certs.ensure_certificates(config)
    assert stat.S_IMODE(os.stat(paths.ca_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths.server_key).st_mode) == 0o600
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    names = certs.certified_names(server)
    host = socket.gethostname().split(".")[0]
    assert {host, f"{host}.local", "localhost"} <= names.dns
    assert ipaddress.ip_address("127.0.0.1") in names.ips
    before = paths.server_cert.read_bytes()
    certs.ensure_certificates(config)
    assert paths.server_cert.read_bytes() == before  # still good: not made again
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    now = dt.datetime.now(dt.UTC)
    wanted = certs.wanted_names(config)
    assert certs.needs_renewal(server, ca, wanted, now) == ""
    assert certs.needs_renewal(server, ca, wanted, now + dt.timedelta(days=380)) == "it expires soon"
    moved = certs.Names(wanted.dns, wanted.ips | {ipaddress.ip_address("10.9.8.7")})
    assert "changed" in certs.needs_renewal(server, ca, moved, now)
    certs.ensure_certificates(config, renew=True)
    assert paths.server_cert.read_bytes() != before


@pytest.mark.parametrize(
    ("host", "tls", "expected"),
    [("127.0.0.1", "auto", False), ("0.0.0.0", "auto", True), ("localhost", "on", True), ("0.0.0.0", "off", False)],
)
def test_tls_is_on_beyond_localhost(tmp_path: Path, host: str, tls: str, expected: bool) -> None:
    config = MynahConfig.model_validate({"gateway": {"host": host}, "security": {"tls": tls}})
    assert certs.tls_enabled(config) is expected


def test_metrics_is_open_from_this_machine_only() -> None:
    assert is_open("/metrics", "127.0.0.1") and is_open("/metrics", "::1")
    assert not is_open("/metrics", "192.168.1.20") and not is_open("/api/voices", "127.0.0.1")


@pytest.fixture
def gateway(tmp_path: Path) -> TestClient:
    # No lifespan (no coordinator): the door refuses before any route runs, which is what is tested here.
    return TestClient(create_app(config_in(tmp_path)))


def protected_routes(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    routes = [
        (method.upper(), path.replace("{", "").replace("}", ""))
        for path, methods in paths.items()
        for method in methods
        if path not in PUBLIC_PATHS
    ]
    assert len(routes) > 10
    return routes


def test_every_route_but_the_open_ones_needs_a_token(gateway: TestClient) -> None:
    for method, path in protected_routes(gateway):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = gateway.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["code"] in ("auth-required", "auth-invalid"), (method, path)
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_paired_device_gets_in_until_it_is_revoked(gateway: TestClient, tmp_path: Path) -> None:
    code = new_code(tmp_path / "run", 60)
    paired = gateway.post("/api/pair", json={"code": code.code, "device_name": "phone"})
    assert paired.status_code == 200
    token, device_id = paired.json()["token"], paired.json()["device_id"]
    auth = {"Authorization": f"Bearer {token}"}
    listed = gateway.get("/api/devices", headers=auth).json()["devices"]
    assert [(d["device_id"], d["current"], d["revoked"]) for d in listed] == [(device_id, True, False)]
    assert gateway.post("/api/pair", json={"code": code.code}).json()["code"] == "pairing-code-invalid"  # used
    assert gateway.delete(f"/api/devices/{device_id}", headers=auth).status_code == 204
    refused = gateway.get("/api/devices", headers=auth)
    assert refused.status_code == 401 and refused.json()["code"] == "device-revoked"


def test_wrong_pairing_codes_are_rate_limited(gateway: TestClient, tmp_path: Path) -> None:
    code = new_code(tmp_path / "run", 60)
    wrong = f"{(int(code.code) + 1) % 10**6:06d}"
    for _ in range(5):
        assert gateway.post("/api/pair", json={"code": wrong}).status_code == 403
    limited = gateway.post("/api/pair", json={"code": code.code})  # even the right code waits now
    assert limited.status_code == 429 and limited.json()["code"] == "pairing-rate-limited"
    assert int(limited.headers["retry-after"]) > 0


def test_a_websocket_without_a_token_first_is_closed(gateway: TestClient) -> None:
    for first in ('{"type": "end"}', '{"type": "auth", "token": "nope"}'):
        with gateway.websocket_connect("/api/transcribe/live") as ws:
            ws.send_text(first)
            assert ws.receive_json()["code"] in ("auth-required", "auth-invalid")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4401


def test_cors_allows_the_appliances_own_origin_only(gateway: TestClient) -> None:
    port = 8765
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    own = gateway.options("/chat", headers={"Origin": f"http://127.0.0.1:{port}", **preflight})
    assert own.status_code == 200 and own.headers["access-control-allow-origin"] == f"http://127.0.0.1:{port}"
    other = gateway.options("/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
