"""The one-time pairing code and the limit on wrong guesses.

The code lives in a file, `<runtime_dir>/pairing-code` (0600, in the 0700 runtime directory): `mynah up` and
`mynah devices pair-code` write it, the gateway reads it, and the gateway removes it when a device pairs with
it, so a code works once. Nothing else is shared between the CLI and the gateway, and a code survives a
gateway restart until it expires.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

CODE_FILE = "pairing-code"
CODE_DIGITS = 6
WINDOW_S = 60.0


@dataclass(frozen=True)
class PairingCode:
    code: str
    expires_at: float  # time.time()


def code_path(runtime_dir: Path) -> Path:
    return runtime_dir / CODE_FILE


def new_code(runtime_dir: Path, ttl_s: float, now: float | None = None) -> PairingCode:
    """Make a fresh code, replacing any earlier one."""
    issued = PairingCode(f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}", (now or time.time()) + ttl_s)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    path = code_path(runtime_dir)
    tmp = path.with_name(f".{CODE_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"code": issued.code, "expires_at": issued.expires_at}, f)
    os.replace(tmp, path)
    return issued


def current_code(runtime_dir: Path, now: float | None = None) -> PairingCode | None:
    """The code waiting to be used, or None when there is none or it has expired."""
    try:
        raw = json.loads(code_path(runtime_dir).read_text())
        issued = PairingCode(str(raw["code"]), float(raw["expires_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return issued if issued.expires_at > (now or time.time()) else None


def redeem(runtime_dir: Path, offered: str, now: float | None = None) -> bool:
    """True, once, for the current code; the file is removed so the code cannot be used again."""
    issued = current_code(runtime_dir, now)
    if issued is None or not hmac.compare_digest(issued.code.encode(), offered.strip().encode()):
        return False
    try:
        code_path(runtime_dir).unlink()
    except FileNotFoundError:
        return False  # another request used it first
    return True


class AttemptLimiter:
    """At most `limit` failures per WINDOW_S from each key, and from all keys together (sliding window)."""

    def __init__(self, limit: int, window_s: float = WINDOW_S) -> None:
        self._limit = limit
        self._window_s = window_s
        self._by_key: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, times: deque[float], now: float) -> deque[float]:
        while times and times[0] <= now - self._window_s:
            times.popleft()
        return times

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        waits = [
            times[0] + self._window_s - now
            for times in (self._trim(self._by_key.get(key, deque()), now), self._trim(self._all, now))
            if len(times) >= self._limit
        ]
        return max(waits, default=0.0)

    def failed(self, key: str, now: float) -> None:
        self._by_key.setdefault(key, deque()).append(now)
        self._all.append(now)
        for stale in [k for k, times in self._by_key.items() if not self._trim(times, now)]:
            del self._by_key[stale]
