"""A worker's backend, falling back to the next configured one while the preferred one cannot be used, and back.

A worker names its backends in order of preference (`("gpt-sovits", "piper")`). `load()` keeps the first that
loads. When that is not the first, the worker is *degraded*: `degraded` says why (it travels with every
heartbeat, and /health shows it), and the preferred backend is tried again every `retry_s` until it loads;
then the worker switches back and is whole again. A backend that fails in use (`failed(err)` with an error
that means it is gone, not that one request was bad) is replaced by the next one the same way.

Switching is the caller's to finish: `on_switch(old, new)` runs after the new backend is current, to release
the old one (unload a model, close a connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ipc.errors import CodedError

log = logging.getLogger(__name__)

B = TypeVar("B")


class BackendChain(Generic[B]):
    def __init__(self, names: Sequence[str], make: Callable[[str], Awaitable[B]], *, retry_s: float,
                 on_switch: Callable[[B, B], Awaitable[None]] | None = None) -> None:  # fmt: skip
        if not names:
            raise ValueError("a backend chain needs at least one backend")
        self._names = tuple(names)
        self._make = make
        self._retry_s = retry_s
        self._on_switch = on_switch
        self._current: B | None = None
        self._index = 0
        self._why = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> B:
        if self._current is None:
            raise RuntimeError("no backend is loaded yet")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    @property
    def name(self) -> str:
        return self._names[self._index] if self._current is not None else ""

    @property
    def degraded(self) -> str:
        """Why the worker is not on its preferred backend ("" when it is)."""
        return self._why

    async def load(self) -> B:
        """Load the first backend that loads; the errors of all of them when none does."""
        errors: list[tuple[str, CodedError]] = []
        for index, name in enumerate(self._names):
            try:
                backend = await self._make(name)
            except CodedError as err:
                log.warning("backend %s did not load: %s (%s)", name, err.message, err.code)
                errors.append((name, err))
                continue
            self._current, self._index = backend, index
            if index > 0:
                first, cause = errors[0]
                self._degrade(f"{first} unavailable ({cause.code}: {cause.message})")
            return backend
        first_error = errors[0][1]
        if len(errors) == 1:
            raise first_error
        raise CodedError(first_error.code, "; ".join(f"{name}: {err.message}" for name, err in errors))

    def failed(self, err: CodedError) -> None:
        """The current backend failed in a way that means it is gone: move on to the next one, if any."""
        if self._current is None or self._index == len(self._names) - 1 or self._switching():
            return
        failed = self._names[self._index]
        log.warning("backend %s failed in use: %s (%s); falling back", failed, err.message, err.code)
        self._why = f"{failed} failed ({err.code}: {err.message}); falling back"
        self._task = asyncio.get_running_loop().create_task(self._fall_back(self._index + 1), name="fallback")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- switching ----------------------------------------------------------------------------------------

    def _switching(self) -> bool:
        return self._task is not None and not self._task.done()

    def _degrade(self, cause: str) -> None:
        self._why = f"{cause}; using {self._names[self._index]} until it is back"
        log.warning("degraded: %s", self._why)
        if not self._switching():
            self._task = asyncio.get_running_loop().create_task(self._recover(), name="recover")

    async def _fall_back(self, start: int) -> None:
        cause = self._why.removesuffix("; falling back")
        for index in range(start, len(self._names)):
            try:
                backend = await self._make(self._names[index])
            except CodedError as err:
                log.warning("fallback %s did not load either: %s (%s)", self._names[index], err.message, err.code)
                continue
            await self._switch(backend, index)
            self._why = f"{cause}; using {self._names[index]} until it is back"
            log.warning("degraded: %s", self._why)
            await self._recover()
            return
        self._why = f"{cause}; no fallback loaded"  # the current one stays: the next call may still work
        await self._recover()

    async def _recover(self) -> None:
        """Try the preferred backend every retry_s until it loads, then switch back to it."""
        preferred = self._names[0]
        while True:
            await asyncio.sleep(self._retry_s)
            try:
                backend = await self._make(preferred)
            except CodedError as err:
                log.info("%s is still unavailable: %s (%s)", preferred, err.message, err.code)
                continue
            await self._switch(backend, 0)
            self._why = ""
            log.info("%s is back: the worker is whole again", preferred)
            return

    async def _switch(self, backend: B, index: int) -> None:
        old, self._current, self._index = self._current, backend, index
        if old is not None and old is not backend and self._on_switch is not None:
            await self._on_switch(old, backend)
