"""A small typed client for supervisord's XML-RPC interface over its unix socket."""

from __future__ import annotations

import asyncio
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from ipc.paths import supervisor_socket


class SupervisorUnavailable(Exception):
    code = "supervisor-unavailable"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    name: str
    state: str
    pid: int
    start: float  # epoch seconds; 0 when never started
    exit_status: int
    description: str


class SupervisorClient:
    def __init__(self, runtime_dir: Path) -> None:
        self.socket = supervisor_socket(runtime_dir)

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        # The host part is ignored: the transport talks to the unix socket.
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def _call(self, method: str, *args: object) -> Any:
        try:
            return getattr(self._proxy().supervisor, method)(*args)
        except (OSError, xmlrpc.client.ProtocolError) as err:
            raise SupervisorUnavailable(f"supervisord at {self.socket} does not answer: {err}") from err

    def processes(self) -> list[ProcessInfo]:
        return [
            ProcessInfo(
                name=p["name"],
                state=p["statename"],
                pid=int(p["pid"]),
                start=float(p["start"]),
                exit_status=int(p["exitstatus"]),
                description=p["description"],
            )
            for p in self._call("getAllProcessInfo")
        ]

    def signal(self, name: str, signal_name: str) -> None:
        self._call("signalProcess", name, signal_name)

    def start(self, name: str) -> None:
        self._call("startProcess", name, True)

    def stop(self, name: str) -> None:
        self._call("stopProcess", name, True)

    def shutdown(self) -> None:
        self._call("shutdown")

    def pid(self) -> int:
        return int(self._call("getPID"))

    def read_log(self, name: str, offset: int, length: int) -> str:
        text: str = self._call("readProcessStdoutLog", name, offset, length)
        return text

    async def aprocesses(self) -> list[ProcessInfo]:
        return await asyncio.to_thread(self.processes)

    async def asignal(self, name: str, signal_name: str) -> None:
        await asyncio.to_thread(self.signal, name, signal_name)

    async def astart(self, name: str) -> None:
        await asyncio.to_thread(self.start, name)

    async def astop(self, name: str) -> None:
        await asyncio.to_thread(self.stop, name)
