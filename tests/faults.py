"""What the fault tests look at, shared: a voice client of the appliance, the first clear error it heard, and
what a fault may leave behind (shared-memory segments, temporary files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from appliance.coordinator.janitor import is_temporary
from ipc.paths import SEGMENT_ROOT, segment_prefix
from tests.conftest import Appliance
from tests.voice_client import VoiceClient


def client(appliance: Appliance, **kwargs: Any) -> VoiceClient:
    return VoiceClient(appliance.url, appliance.token, ca=appliance.ca, **kwargs)


def first_problem(voice: VoiceClient, since: float) -> tuple[float, dict[str, Any]] | None:
    """The first error event, or failed turn_end, that arrived after `since`, with its arrival time."""
    for at, event in voice.events:
        if at >= since and (event["type"] == "error" or (event["type"] == "turn_end" and event["status"] == "failed")):
            return at, event
    return None


def shm_segments(appliance: Appliance) -> set[str]:
    """This appliance's shared-memory segments (another one may be running beside it)."""
    prefix = segment_prefix(appliance.home / "run")
    return {name for name in os.listdir(SEGMENT_ROOT) if name.startswith(prefix)} if SEGMENT_ROOT.is_dir() else set()


def leftovers(appliance: Appliance) -> set[Path]:
    """Temporary-looking files under the data and runtime directories: the janitor's rule (`*.tmp`, `*.partial`,
    dot-named), and tempfile's default `tmp*` names."""
    found = set()
    for folder in (appliance.home / "data", appliance.home / "run"):
        for path in folder.rglob("*"):
            if is_temporary(path.name) or path.name.startswith("tmp"):
                found.add(path)
    return found
