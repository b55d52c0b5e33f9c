"""Every socket and shared-memory name derives from the runtime directory (and the owning program).

A restarted owner therefore finds what its previous life left behind under the same name, and `mynah up`
can sweep every stale segment of one appliance without touching another appliance's on the same box.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SEGMENT_ROOT = Path("/dev/shm")  # noqa: S108 - POSIX shared memory lives here on Linux; not a temp file


def runtime_tag(runtime_dir: Path) -> str:
    """A short stable tag for one runtime directory (shared-memory names have no folders)."""
    return hashlib.sha1(str(runtime_dir.resolve()).encode(), usedforsecurity=False).hexdigest()[:10]


def control_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir.resolve() / 'control.sock'}"


def events_endpoint(runtime_dir: Path) -> str:
    return f"ipc://{runtime_dir.resolve() / 'events.sock'}"


def supervisor_socket(runtime_dir: Path) -> Path:
    return runtime_dir.resolve() / "supervisor.sock"


def segment_prefix(runtime_dir: Path) -> str:
    return f"mynah-{runtime_tag(runtime_dir)}-"


def segment_name(runtime_dir: Path, program: str, ring: str) -> str:
    for part in (program, ring):
        if not part or not part.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"ring and program names are [A-Za-z0-9_-]+, got {part!r}")
    return f"{segment_prefix(runtime_dir)}{program}-{ring}"
