"""The disk quota end to end: a data directory pushed over `[retention] disk_quota_mib` refuses uploads with
507 `disk-quota-exceeded` and stores nothing, /health says why; under it again, uploads go through.

The janitor decides (appliance/coordinator/janitor.py): it measures the data directory at start-up and every
`interval_s` (its floor, 10 s, here), so each change is waited for, not assumed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Appliance, start_appliance, stop_appliance

pytestmark = pytest.mark.integration

# Above the ~12 MiB the face worker's default avatar rig takes in data/avatars, so only the ballast tips it over.
QUOTA_MIB = 32
INTERVAL_S = 10
AVATAR = ROOT / "assets" / "avatar.png"


@pytest.fixture(scope="module")
def small_disk() -> Iterator[Appliance]:
    running = start_appliance(extra=f"[retention]\ndisk_quota_mib = {QUOTA_MIB}\ninterval_s = {INTERVAL_S}\n")
    try:
        yield running
    finally:
        stop_appliance(running)


def health(appliance: Appliance) -> dict[str, Any]:
    with appliance.client() as http:
        body: dict[str, Any] = http.get("/health").json()
    return body


def wait_for_health(appliance: Appliance, over: bool) -> dict[str, Any]:
    deadline = time.monotonic() + 3 * INTERVAL_S
    while True:
        body = health(appliance)
        if body["summary"]["problem"].startswith("disk-quota-exceeded") == over:
            return body
        assert time.monotonic() < deadline, f"the janitor did not notice (over={over}): {body}"
        time.sleep(0.5)


def stored(data_dir: Path) -> set[Path]:
    """What the data directory holds, less the database (its WAL moves with any request)."""
    return {p.relative_to(data_dir) for p in data_dir.rglob("*") if not p.name.startswith("mynah.db")}


def upload(appliance: Appliance) -> Any:
    with appliance.client(timeout=120) as http:
        return http.post("/api/avatars", files={"image": ("portrait.png", AVATAR.read_bytes(), "image/png")})


def test_an_over_quota_data_directory_refuses_uploads_until_it_is_under_again(small_disk: Appliance) -> None:
    data_dir = small_disk.home / "data"
    assert wait_for_health(small_disk, over=False)["status"] == "ok"
    ballast = data_dir / "ballast.bin"
    ballast.write_bytes(b"\0" * (QUOTA_MIB << 20))

    body = wait_for_health(small_disk, over=True)
    assert body["status"] == "degraded"
    assert f"of its {QUOTA_MIB} MiB" in body["summary"]["problem"], body
    before = stored(data_dir)
    refused = upload(small_disk)
    assert refused.status_code == 507, refused.text
    assert refused.json()["code"] == "disk-quota-exceeded"
    assert f"of its {QUOTA_MIB} MiB" in refused.json()["message"]
    assert stored(data_dir) == before

    ballast.unlink()
    body = wait_for_health(small_disk, over=False)
    assert body["status"] == "ok" and body["summary"]["problem"] == ""
    accepted = upload(small_disk)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["avatar_id"]
