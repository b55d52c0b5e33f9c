"""Paired devices and their tokens. Only a token's sha256 is stored: the token itself is shown once, at pairing.

The gateway checks tokens here on every request, the CLI lists and revokes devices here directly (a user with
the data directory in hand is the box's owner).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.store.conversations import new_id
from appliance.store.db import StoreError, database_error, transaction

log = logging.getLogger(__name__)

Clock = Callable[[], float]
TOKEN_BYTES = 32
MAX_NAME_CHARS = 80
# last_seen is written at most this often per device: a write on every request would contend with the
# coordinator for the database.
SEEN_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    name: str
    created_at: float
    last_seen_at: float | None
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_name(name: str) -> str:
    printable = "".join(ch for ch in name if ch.isprintable()).strip()[:MAX_NAME_CHARS]
    return printable or "unnamed device"


def _device(row: sqlite3.Row) -> Device:
    return Device(row["id"], row["name"], row["created_at"], row["last_seen_at"], row["revoked_at"])


class DeviceStore:
    def __init__(self, conn: sqlite3.Connection, clock: Clock = time.time) -> None:
        self._conn = conn
        self._clock = clock

    def pair(self, name: str) -> tuple[Device, str]:
        """A new device and its token (returned once; only its digest is kept)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        device_id, now = new_id(), self._clock()
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO devices (id, name, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                (device_id, clean_name(name), token_digest(token), now),
            )
        return self.get(device_id), token

    def get(self, device_id: str) -> Device:
        row = self._conn.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).fetchone()
        if row is None:
            raise StoreError("device-not-found", f"no device {device_id[:64]!r}")
        return _device(row)

    def list(self) -> list[Device]:
        rows = self._conn.execute("SELECT * FROM devices ORDER BY created_at").fetchall()
        return [_device(row) for row in rows]

    def by_token(self, token: str) -> Device | None:
        """The device holding this token (revoked or not), noting that it was seen; None for an unknown token."""
        row = self._conn.execute("SELECT * FROM devices WHERE token_sha256 = ?", (token_digest(token),)).fetchone()
        if row is None:
            return None
        device = _device(row)
        now = self._clock()
        if not device.revoked and (device.last_seen_at is None or now - device.last_seen_at >= SEEN_EVERY_S):
            try:
                self._conn.execute("UPDATE devices SET last_seen_at = ? WHERE id = ?", (now, device.device_id))
            except sqlite3.Error as err:
                # Bookkeeping only: a full disk (or a busy database) must not turn every request of a paired
                # device, reads included, into a server error. The next request past SEEN_EVERY_S tries again.
                log.warning("device %s: cannot note that it was seen: %s", device.device_id, database_error(err))
                return device
            device = dataclasses.replace(device, last_seen_at=now)
        return device

    def revoke(self, device_id: str) -> Device:
        with transaction(self._conn):
            device = self.get(device_id)
            if not device.revoked:
                self._conn.execute("UPDATE devices SET revoked_at = ? WHERE id = ?", (self._clock(), device_id))
        return self.get(device_id)
