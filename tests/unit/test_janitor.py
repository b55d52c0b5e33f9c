"""The janitor's selection (clock injected) and one run over a real folder."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from appliance.config import RetentionConfig
from appliance.coordinator.janitor import (
    DAY_S,
    Entry,
    Janitor,
    JobFolder,
    is_temporary,
    select_jobs,
    select_over_quota,
    select_temporary,
)
from appliance.store.conversations import ConversationStore
from appliance.store.db import connect
from appliance.store.jobs import JobStore

NOW = 1_000_000_000.0
HOUR = 3600.0


def folder(job_id: str, status: str | None, age_s: float, size: int = 100) -> JobFolder:
    ended = NOW - age_s if status in ("done", "failed", "cancelled") else None
    return JobFolder(job_id, Path("/data/jobs") / job_id, size, NOW - age_s, status, ended)


def test_finished_jobs_go_after_their_retention_running_ones_never() -> None:
    folders = [
        folder("old-done", "done", 31 * DAY_S),
        folder("new-done", "done", 29 * DAY_S),
        folder("old-failed", "failed", 40 * DAY_S),
        folder("old-running", "running", 90 * DAY_S),
        folder("old-queued", "queued", 90 * DAY_S),
    ]
    chosen = select_jobs(folders, NOW, results_max_age_s=30 * DAY_S, temp_max_age_s=HOUR, protected=set())
    assert sorted(r.path.name for r in chosen) == ["old-done", "old-failed"]
    assert {r.kind for r in chosen} == {"job-result"}


def test_unclaimed_folders_go_after_an_hour_unless_in_use() -> None:
    folders = [
        folder("direct-old", None, 2 * HOUR),
        folder("direct-new", None, 10 * 60),
        folder("rendering", None, 5 * HOUR),
    ]
    chosen = select_jobs(folders, NOW, results_max_age_s=0, temp_max_age_s=HOUR, protected={"rendering"})
    assert [(r.path.name, r.kind) for r in chosen] == [("direct-old", "unclaimed-folder")]


def test_zero_days_keeps_finished_jobs() -> None:
    chosen = select_jobs([folder("ancient", "done", 999 * DAY_S)], NOW, results_max_age_s=0, temp_max_age_s=HOUR,
                         protected=set())  # fmt: skip
    assert chosen == []


def test_temporary_names_and_age() -> None:
    assert is_temporary("speech.wav.partial") and is_temporary("x.tmp") and is_temporary(".staging.abc")
    assert not is_temporary("avatar.mp4") and not is_temporary("mynah.db-wal")
    entries = [Entry(Path("/d/a.partial"), 5, NOW - 2 * HOUR), Entry(Path("/d/b.tmp"), 5, NOW - 59 * 60)]
    assert [r.path.name for r in select_temporary(entries, NOW, HOUR)] == ["a.partial"]


def test_over_quota_removes_the_oldest_finished_results_first() -> None:
    folders = [
        folder("newest", "done", 1 * DAY_S, size=400),
        folder("oldest", "done", 3 * DAY_S, size=300),
        folder("middle", "cancelled", 2 * DAY_S, size=300),
        folder("running", "running", 9 * DAY_S, size=5000),
        folder("fetching", "done", 8 * DAY_S, size=5000),
    ]
    chosen, left = select_over_quota(folders, 1500, 1000, protected={"fetching"}, chosen=set())
    assert [r.path.name for r in chosen] == ["oldest", "middle"]
    assert left == 900
    assert select_over_quota(folders, 900, 1000, protected=set(), chosen=set()) == ([], 900)
    still, left = select_over_quota(folders, 99_999, 1000, protected={"fetching"}, chosen=set())
    assert len(still) == 3 and left > 1000  # everything removable went; the caller refuses uploads


def _age(path: Path, seconds: float, now: float) -> None:
    for p in [path, *path.rglob("*")]:
        os.utime(p, (now - seconds, now - seconds))


def test_a_run_over_a_real_data_directory(tmp_path: Path) -> None:
    now = [NOW]
    conn: sqlite3.Connection = connect(tmp_path / "mynah.db")
    conversations = ConversationStore(conn, clock=lambda: now[0])
    jobs = JobStore(conn, clock=lambda: now[0])
    old_session = conversations.create_session()
    now[0] += 10 * DAY_S
    new_session = conversations.create_session()
    done = jobs.create("generate-avatar", {})
    jobs.finish(done.job_id, None, "rendered")
    running = jobs.create("generate-avatar", {})
    for job_id in (done.job_id, running.job_id, "direct-render"):
        (tmp_path / "jobs" / job_id).mkdir(parents=True)
        (tmp_path / "jobs" / job_id / "avatar.mp4").write_bytes(b"x" * 1000)
    (tmp_path / "jobs" / running.job_id / "speech.wav.partial").write_bytes(b"y")
    (tmp_path / "avatars" / ".abc.staging").mkdir(parents=True)
    (tmp_path / "voices" / "v1").mkdir(parents=True)
    (tmp_path / "voices" / "v1" / "clip.tmp").write_bytes(b"z")
    now[0] += 40 * DAY_S
    for path in (tmp_path / "jobs", tmp_path / "avatars", tmp_path / "voices"):
        _age(path, 2 * HOUR, now[0])
    config = RetentionConfig(conversations_days=45, job_results_days=30, disk_quota_mib=0)
    janitor = Janitor(config, tmp_path, conversations, jobs, busy_jobs=lambda: {"direct-render"}, clock=lambda: now[0])
    removed = janitor.run()
    kinds = sorted((r.kind, r.path.name) for r in removed)
    assert kinds == [("job-result", done.job_id), ("temporary", ".abc.staging")]
    assert not conversations.exists(old_session) and conversations.exists(new_session)
    assert (tmp_path / "jobs" / running.job_id / "speech.wav.partial").exists()  # a running job's own
    assert (tmp_path / "jobs" / "direct-render").exists()  # waiting to be fetched
    assert (tmp_path / "voices" / "v1" / "clip.tmp").exists()  # voices are the API's to delete
    assert janitor.removed["conversation"] == 1 and not janitor.over_quota
    tight = Janitor(RetentionConfig(disk_quota_mib=1), tmp_path, conversations, jobs, lambda: set(), lambda: now[0])
    tight.run()
    assert not tight.over_quota  # a few KiB left: under 1 MiB
    (tmp_path / "big.bin").write_bytes(b"0" * (2 << 20))
    tight.run()
    assert tight.over_quota and "disk-quota-exceeded" in (tight.problem() or "")
