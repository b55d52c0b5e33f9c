"""LAN security end to end: tokens on every route and WebSocket of the running gateway, pairing and revoking
through the CLI, wrong codes rate-limited, traversal names refused, and HTTPS that verifies against the CA."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import Appliance, start_appliance, stop_appliance

pytestmark = pytest.mark.integration

OPEN = {"/health", "/api/pair", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
LOOPBACK_OPEN = {"/metrics"}
TRAVERSALS = ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%00b", "..")


def fresh_code(appliance: Appliance) -> str:
    found = re.search(r"pairing code: (\d{6})", appliance.mynah("devices", "pair-code").stdout)
    assert found
    return found.group(1)


def test_every_protected_route_refuses_a_request_without_a_token(appliance: Appliance) -> None:
    with appliance.client(authenticated=False) as http:
        paths = http.get("/openapi.json").json()["paths"]
        assert http.get("/health").status_code == 200
        checked = 0
        for path, methods in paths.items():
            if path in OPEN:
                continue
            if path in LOOPBACK_OPEN:  # open to this machine only (the unit tests check a LAN client)
                assert http.get(path).status_code == 200
                continue
            for method in methods:
                response = http.request(method.upper(), re.sub(r"\{[^}]+\}", "x", path))
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["code"] == "auth-required"
                checked += 1
        assert checked >= 15
        wrong = http.get("/api/voices", headers={"Authorization": "Bearer not-a-token"})
        assert wrong.status_code == 401 and wrong.json()["code"] == "auth-invalid"


async def _live_first_reply(url: str, first: str) -> tuple[dict[str, object], int | None]:
    async with websockets.connect(url.replace("http://", "ws://") + "/api/transcribe/live") as ws:
        await ws.send(first)
        event = json.loads(await ws.recv())
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as closed:
            return event, closed.rcvd.code if closed.rcvd else None
        return event, None


def test_the_live_websocket_wants_the_token_first(appliance: Appliance) -> None:
    for first in ('{"type": "end"}', json.dumps({"type": "auth", "token": "wrong"})):
        event, code = asyncio.run(_live_first_reply(appliance.url, first))
        assert event["type"] == "error" and event["code"] in ("auth-required", "auth-invalid")
        assert code == 4401


def test_the_first_code_was_used_and_a_revoked_device_is_refused(appliance: Appliance) -> None:
    used = re.search(r"pairing code: (\d{6})", appliance.up_output)
    assert used
    again = appliance.pair(used.group(1))
    assert again.status_code == 403 and again.json()["code"] == "pairing-code-invalid"
    paired = appliance.pair(fresh_code(appliance), "doomed tablet")
    assert paired.status_code == 200
    token, device_id = paired.json()["token"], paired.json()["device_id"]
    headers = {"Authorization": f"Bearer {token}"}
    with appliance.client(authenticated=False) as http:
        assert http.get("/api/devices", headers=headers).status_code == 200
        assert "doomed tablet" in appliance.mynah("devices", "list").stdout
        appliance.mynah("devices", "revoke", device_id)
        refused = http.get("/api/devices", headers=headers)
        assert refused.status_code == 401 and refused.json()["code"] == "device-revoked"
    with appliance.client() as http:  # the fixture's own device is untouched
        devices = {d["device_id"]: d for d in http.get("/api/devices").json()["devices"]}
        assert devices[device_id]["revoked"] and sum(d["current"] for d in devices.values()) == 1


def test_the_boxs_owner_can_pair_a_device_from_the_command_line(appliance: Appliance, tmp_path: Path) -> None:
    saved = tmp_path / "token"
    result = appliance.mynah("devices", "add", "scripts", "--save", str(saved))
    token = result.stdout.strip()
    assert saved.read_text().strip() == token and (saved.stat().st_mode & 0o777) == 0o600
    with httpx.Client(base_url=appliance.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/api/sessions").status_code == 200
    device = next(line.split()[0] for line in appliance.mynah("devices").stdout.splitlines() if "scripts" in line)
    appliance.mynah("devices", "revoke", device)
    with httpx.Client(base_url=appliance.url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/api/sessions").status_code == 401


def test_names_that_try_to_leave_their_folder_are_refused(appliance: Appliance) -> None:
    with appliance.client() as http:
        for name in TRAVERSALS:
            routes = (("GET", f"/api/jobs/{name}"), ("GET", f"/api/jobs/{name}/result"), ("GET", f"/api/voices/{name}"),
                      ("DELETE", f"/api/voices/{name}"), ("GET", f"/api/sessions/{name}/history"),
                      ("DELETE", f"/api/devices/{name}"))  # fmt: skip
            for method, path in routes:
                response = http.request(method, path)
                assert 400 <= response.status_code < 500, (method, path, response.text)
                assert response.json()["code"], (method, path)
        for avatar_id in ("../../etc/passwd", "/etc/passwd", "a\x00b"):
            response = http.post("/generate-avatar", data={"text": "Hello.", "avatar_id": avatar_id})
            assert response.status_code == 422 and response.json()["code"] == "avatar-id-invalid", response.text
        for session_id in ("../../etc/passwd", "/etc/passwd"):
            response = http.post("/chat", json={"text": "Hi", "session_id": session_id})
            assert response.status_code == 404 and response.json()["code"] == "session-not-found"
        for name in ("../../etc/passwd", "/etc/passwd", "a\x00b"):
            files = {"file": ("../../etc/passwd", b"not audio at all", "audio/wav")}
            response = http.post("/train-voice", data={"name": name, "consent": "yes"}, files=files)
            assert response.status_code == 422 and response.json()["code"] == "voice-name-invalid", response.text
        # An upload's own filename never names a file: it is only repeated in messages.
        files = {"file": ("../../../../tmp/mynah-escape.wav", b"not audio at all", "audio/wav")}
        response = http.post("/api/transcribe", files=files)
        assert response.status_code == 422 and response.json()["code"].startswith("audio-"), response.text


def test_wrong_pairing_codes_are_rate_limited(appliance: Appliance) -> None:
    # Last in this module: it holds pairing shut for everyone for a minute.
    code = fresh_code(appliance)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    statuses = [appliance.pair(wrong).status_code for _ in range(6)]
    refused = statuses.count(403)  # the used code tried above counted as a wrong one too
    assert 1 <= refused <= 5 and statuses == [403] * refused + [429] * (6 - refused), statuses
    limited = appliance.pair(code)
    assert limited.status_code == 429 and limited.json()["code"] == "pairing-rate-limited"


@pytest.fixture(scope="module")
def tls_appliance() -> Iterator[Appliance]:
    running = start_appliance('[security]\ntls = "on"\n')
    try:
        yield running
    finally:
        stop_appliance(running)


def test_https_is_served_with_a_certificate_the_ca_vouches_for(tls_appliance: Appliance) -> None:
    assert tls_appliance.url.startswith("https://127.0.0.1:") and tls_appliance.ca is not None
    with tls_appliance.client() as http:  # verify= the CA: 127.0.0.1 is in the certificate
        assert http.get("/health").status_code == 200
        assert http.get("/api/devices").status_code == 200
    port = int(tls_appliance.url.rsplit(":", 1)[1])
    with pytest.raises(httpx.ConnectError):  # without the CA the certificate is not trusted
        httpx.get(f"https://127.0.0.1:{port}/health")
    host = socket.gethostname().split(".")[0]
    context = ssl.create_default_context(cafile=str(tls_appliance.ca))
    for name in (host, f"{host}.local", "localhost"):  # the names the box answers to, checked on 127.0.0.1
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(
            raw, server_hostname=name
        ) as tls:  # fmt: skip
            assert tls.version() is not None
    shown = tls_appliance.mynah("certs").stdout
    assert str(tls_appliance.ca) in shown and re.search(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", shown)
