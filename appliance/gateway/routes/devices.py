"""Pairing (`POST /api/pair`, open) and the paired devices (`GET /api/devices`, `DELETE /api/devices/{id}`)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from appliance.gateway.auth import DeviceAccess
from appliance.gateway.deps import Config
from appliance.gateway.errors import ApiError
from appliance.gateway.schemas import ApiErrorOut
from appliance.security.pairing import AttemptLimiter, redeem
from appliance.store.db import StoreError
from appliance.store.devices import Device

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["devices"])


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=32, description="The one-time code `mynah up` (or `mynah devices pair-code`) shows")
    device_name: str = Field("", max_length=200, description="What to call this device, e.g. 'Kitchen tablet'")


class PairOut(BaseModel):
    token: str = Field(description="Send it as `Authorization: Bearer <token>`; it is shown only this once")
    device_id: str


class DeviceOut(BaseModel):
    device_id: str
    name: str
    created_at: float
    last_seen_at: float | None
    revoked: bool
    revoked_at: float | None
    current: bool = Field(description="The device making this request")


class DevicesOut(BaseModel):
    devices: list[DeviceOut]


PAIR_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ApiErrorOut, "description": "pairing-code-invalid (wrong, already used or expired)"},
    429: {"model": ApiErrorOut, "description": "pairing-rate-limited (too many wrong codes; see Retry-After)"},
}


def _devices(request: Request) -> DeviceAccess:
    devices: DeviceAccess = request.app.state.devices
    return devices


def _limiter(request: Request, per_minute: int) -> AttemptLimiter:
    limiter: AttemptLimiter | None = getattr(request.app.state, "pairing_limiter", None)
    if limiter is None:
        limiter = request.app.state.pairing_limiter = AttemptLimiter(per_minute)
    return limiter


def _error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


@router.post("/pair", response_model=PairOut, responses=PAIR_ERRORS, summary="Trade the pairing code for a token")
async def pair(body: PairIn, request: Request, config: Config) -> PairOut | JSONResponse:
    client = request.client.host if request.client else "unknown"
    limiter = _limiter(request, config.security.pairing_attempts_per_minute)
    now = time.monotonic()
    wait = limiter.retry_after(client, now)
    if wait > 0:
        return _error("pairing-rate-limited", f"too many wrong pairing codes: try again in {math.ceil(wait)} s",
                      429, {"Retry-After": str(math.ceil(wait))})  # fmt: skip
    if not redeem(config.paths.runtime_dir, body.code):
        limiter.failed(client, now)
        log.warning("a wrong pairing code came from %s", client)
        return _error("pairing-code-invalid", "the pairing code is wrong, used or expired: `mynah devices "
                      "pair-code` on the box shows a fresh one", 403)  # fmt: skip
    device, token = _devices(request).store.pair(body.device_name)
    log.info("paired device %s (%s) from %s", device.device_id, device.name, client)
    return PairOut(token=token, device_id=device.device_id)


def _out(device: Device, current: str | None) -> DeviceOut:
    return DeviceOut(device_id=device.device_id, name=device.name, created_at=device.created_at,
                     last_seen_at=device.last_seen_at, revoked=device.revoked, revoked_at=device.revoked_at,
                     current=device.device_id == current)  # fmt: skip


@router.get("/devices", response_model=DevicesOut, summary="The paired devices, revoked ones included")
async def list_devices(request: Request) -> DevicesOut:
    current = getattr(request.state, "device_id", None)
    return DevicesOut(devices=[_out(d, current) for d in _devices(request).store.list()])


@router.delete(
    "/devices/{device_id}",
    status_code=204,
    responses={404: {"model": ApiErrorOut, "description": "device-not-found"}},
    summary="Revoke a device: its token stops working at once",
)
async def revoke_device(device_id: str, request: Request) -> None:
    try:
        device = _devices(request).store.revoke(device_id)
    except StoreError as err:
        raise ApiError(err.code, err.message, 404) from err
    log.info("revoked device %s (%s)", device.device_id, device.name)
