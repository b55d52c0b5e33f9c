"""Typed IPC errors. Each carries a stable code that reaches logs, /health and API errors unchanged."""

from __future__ import annotations


class CodedError(Exception):
    """Any failure that carries a stable code (docs/errors.md) and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class IpcError(Exception):
    code = "ipc-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ProtocolError(IpcError):
    """A frame that is not a message of this protocol version."""

    code = "ipc-protocol"


class BusTimeout(IpcError):
    """A request's deadline passed with no (further) reply."""

    code = "ipc-timeout"


class PeerUnreachable(IpcError):
    """ROUTER_MANDATORY refused the send: the peer is not connected (or its queue is full)."""

    code = "ipc-peer-unreachable"


class RingOverwritten(IpcError):
    """The ring slot was rewritten before the reader finished copying it: the data is gone, not corrupt."""

    code = "ring-overwritten"
