"""Device tokens on every route and WebSocket (ASGI middleware), except the few that are open.

HTTP: `Authorization: Bearer <token>`. WebSocket (browsers cannot set its headers): the connection is accepted,
and its FIRST message must be the JSON text `{"type": "auth", "token": "<token>"}` (docs/stt.md); a missing or
bad one gets an `error` event and close code 4401. Being a middleware, it covers every route, including routes
added later: a route is open only by being listed here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from functools import cached_property
from pathlib import Path

from fastapi import Request
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.gateway.metrics import count_stream_error
from appliance.store.db import connect
from appliance.store.devices import Device, DeviceStore

# Open to anyone: the health probe, the pairing exchange, the API's own documentation, and the web UI's shell
# and the CA certificate (appliance/gateway/webui.py), so a browser can load the page that asks for the code.
PUBLIC_PATHS = frozenset({"/health", "/api/pair", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/",
                          "/ca.pem"})  # fmt: skip
PUBLIC_PREFIXES: tuple[str, ...] = ("/assets/",)
# Open without a token to clients on this machine only (Prometheus scraping locally); others need a token.
LOOPBACK_PATHS = frozenset({"/metrics"})
WS_AUTH_TIMEOUT_S = 10.0
WS_CLOSE_AUTH = 4401  # an application close code (4000-4999) that mirrors HTTP 401


class DeviceAccess:
    """The devices table, opened on first use (the app factory touches no disk)."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path

    @cached_property
    def store(self) -> DeviceStore:
        return DeviceStore(connect(self._db_path))


def is_loopback_address(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_loopback(request: Request) -> bool:
    """The request came from this machine (behind a local reverse proxy everything would: keep none there)."""
    return is_loopback_address(request.client.host if request.client else None)


def is_open(path: str, client_host: str | None) -> bool:
    if path in PUBLIC_PATHS or any(path.startswith(prefix) for prefix in PUBLIC_PREFIXES):
        return True
    return path in LOOPBACK_PATHS and is_loopback_address(client_host)


def check_token(devices: DeviceStore, token: str | None) -> tuple[str, str] | Device:
    """The device holding `token`, or the (code, message) that refuses it."""
    if not token:
        return "auth-required", "this needs a device token: pair with POST /api/pair, then send it as a Bearer token"
    device = devices.by_token(token)
    if device is None:
        return "auth-invalid", "the token is not known: pair this device again"
    if device.revoked:
        return "device-revoked", "this device was removed from the appliance: pair it again"
    return device


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class TokenAuth:
    def __init__(self, app: ASGIApp, devices: DeviceAccess, enabled: bool = True) -> None:
        self._app = app
        self._devices = devices
        self._enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if (
            scope["type"] not in ("http", "websocket")
            or not self._enabled
            or is_open(scope["path"], client[0] if client else None)
        ):
            await self._app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        verdict = check_token(self._devices.store, _bearer(scope))
        if not isinstance(verdict, Device):
            await _refuse(send, *verdict)
            return
        scope.setdefault("state", {})["device_id"] = verdict.device_id
        await self._app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        try:
            first = await asyncio.wait_for(receive(), WS_AUTH_TIMEOUT_S)
        except TimeoutError:
            first = {"type": "websocket.receive"}
        if first["type"] == "websocket.disconnect":
            return
        verdict = check_token(self._devices.store, _first_message_token(first.get("text")))
        if not isinstance(verdict, Device):
            code, message = verdict
            count_stream_error(HTTPConnection(scope), code)  # the app counts it: CountErrors sees HTTP only
            await send({"type": "websocket.send", "text": json.dumps({"type": "error", "code": code,
                                                                      "message": message})})  # fmt: skip
            await send({"type": "websocket.close", "code": WS_CLOSE_AUTH, "reason": code})
            return
        scope.setdefault("state", {})["device_id"] = verdict.device_id
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return connect  # the app accepts as usual ...

        async def accepted(message: Message) -> None:
            if message["type"] != "websocket.accept":  # ... but the connection is open already
                await send(message)

        await self._app(scope, replay, accepted)


def _first_message_token(text: str | None) -> str | None:
    if not text:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "auth" or not isinstance(message.get("token"), str):
        return None
    token: str = message["token"]
    return token


async def _refuse(send: Send, code: str, message: str) -> None:
    body = json.dumps({"code": code, "message": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="mynah"'),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
