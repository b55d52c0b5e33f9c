"""Read server-sent events from an httpx streaming response."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    event, data = "", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif not line and event:
            yield event, json.loads(data)
            event, data = "", ""


def follow_job(client: httpx.Client, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event of a job, from its event stream, until the job ends (the client is closed after)."""
    with client, client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.status_code == 200, response.read()
        return list(events(response))
