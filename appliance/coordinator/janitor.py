"""The janitor: what the data directory keeps, and for how long (`[retention]`).

At start-up and every `interval_s` it deletes conversations idle for longer than `conversations_days`, finished
jobs' folders (generated videos, stored samples) older than `job_results_days`, and temporary leftovers older
than `temp_max_age_s`: `.partial` and `.tmp` files, dot-named staging folders, job folders without a job row
(direct renders nobody fetched, folders a crash left). Over `disk_quota_mib`, the oldest finished job results go
first; still over, new uploads are refused (`disk-quota-exceeded`) until it is under again.

It never touches a queued or running job's folder, a render in progress or waiting to be fetched, or a voice's
folder (voices are deleted through the API only). The selection is pure, with the clock passed in; the runner
scans, selects, deletes and logs what it removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from appliance.config import RetentionConfig
from appliance.store.conversations import ConversationStore
from appliance.store.db import StoreError
from appliance.store.jobs import JobStore

log = logging.getLogger(__name__)

DAY_S = 86400.0
MIB = 1 << 20
TEMP_SUFFIXES = (".partial", ".tmp", ".tmp.npz")
ENDED = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class JobFolder:
    """`<data_dir>/jobs/<id>/` and what the job store says of it (status None: no row)."""

    job_id: str
    path: Path
    size: int
    mtime: float  # the newest file's modification time inside it (wall clock)
    status: str | None = None
    ended_at: float | None = None  # the row's last update, for an ended job


@dataclass(frozen=True, slots=True)
class Entry:
    """A file or folder somewhere under the data directory that looks temporary."""

    path: Path
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Removal:
    path: Path
    kind: str  # "job-result" | "unclaimed-folder" | "temporary" | "over-quota"
    size: int
    why: str


def is_temporary(name: str) -> bool:
    """A name only unfinished writes and staging use: `*.partial`, `*.tmp`, or a dot-named file or folder."""
    return name.endswith(TEMP_SUFFIXES) or (name.startswith(".") and name not in (".", ".."))


def select_jobs(
    folders: Iterable[JobFolder], now: float, *, results_max_age_s: float, temp_max_age_s: float, protected: set[str]
) -> list[Removal]:
    """Finished jobs past their retention, and folders no job owns that nobody touched for `temp_max_age_s`.
    `results_max_age_s` 0 keeps finished jobs; protected ids (running, rendering, waiting) are never chosen."""
    chosen = []
    for folder in folders:
        if folder.job_id in protected:
            continue
        if folder.status is None:
            if now - folder.mtime > temp_max_age_s:
                chosen.append(Removal(folder.path, "unclaimed-folder", folder.size, "no job owns it"))
        elif folder.status in ENDED and results_max_age_s > 0:
            ended = folder.ended_at if folder.ended_at is not None else folder.mtime
            if now - ended > results_max_age_s:
                age_days = (now - ended) / DAY_S
                chosen.append(
                    Removal(folder.path, "job-result", folder.size, f"{folder.status} {age_days:.1f} days ago")
                )
    return chosen


def select_temporary(entries: Iterable[Entry], now: float, max_age_s: float) -> list[Removal]:
    return [
        Removal(e.path, "temporary", e.size, f"untouched for {(now - e.mtime) / 60:.0f} min")
        for e in entries
        if now - e.mtime > max_age_s
    ]


def select_over_quota(
    folders: Iterable[JobFolder], used_bytes: int, quota_bytes: int, *, protected: set[str], chosen: set[Path]
) -> tuple[list[Removal], int]:
    """While over the quota, the oldest ended jobs' folders (not already `chosen`); and the bytes left after."""
    if quota_bytes <= 0 or used_bytes <= quota_bytes:
        return [], used_bytes
    candidates = sorted(
        (f for f in folders if f.status in ENDED and f.job_id not in protected and f.path not in chosen),
        key=lambda f: f.ended_at if f.ended_at is not None else f.mtime,
    )
    out = []
    for folder in candidates:
        if used_bytes <= quota_bytes:
            break
        out.append(Removal(folder.path, "over-quota", folder.size, "the data directory is over its quota"))
        used_bytes -= folder.size
    return out, used_bytes


# --- the shell: scanning and deleting -----------------------------------------------------------------------


def _measure(path: Path) -> tuple[int, float]:
    """Bytes under a path and its newest modification time; (0, 0.0) for what vanished meanwhile."""
    try:
        stat = path.lstat()
    except OSError:
        return 0, 0.0
    if not path.is_dir() or path.is_symlink():
        return stat.st_size, stat.st_mtime
    size, newest = 0, stat.st_mtime
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            size += st.st_size
            newest = max(newest, st.st_mtime)
    return size, newest


def scan(data_dir: Path, skip: set[Path]) -> tuple[int, list[Entry]]:
    """The data directory's total bytes, and its temporary-looking entries outside `skip` (whose insides are not
    searched either: a running job's half-written files are its own)."""
    total, temporary = 0, []
    for root, dirs, files in os.walk(data_dir):
        here = Path(root)
        for name in files:
            with contextlib.suppress(OSError):  # gone between the listing and the look
                st = os.lstat(here / name)
                total += st.st_size
                if is_temporary(name) and here not in skip:
                    temporary.append(Entry(here / name, st.st_size, st.st_mtime))
        kept = []
        for name in dirs:
            path = here / name
            if path in skip:
                total += _measure(path)[0]
            elif is_temporary(name):
                size, mtime = _measure(path)
                total += size
                temporary.append(Entry(path, size, mtime))
            else:
                kept.append(name)
        dirs[:] = kept
    return total, temporary


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Janitor:
    """Runs the selection over the real data directory and deletes what it chose."""

    def __init__(
        self,
        config: RetentionConfig,
        data_dir: Path,
        conversations: ConversationStore,
        jobs: JobStore,
        busy_jobs: Callable[[], set[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._data_dir = data_dir
        self._conversations = conversations
        self._jobs = jobs
        self._busy_jobs = busy_jobs
        self._clock = clock
        self.removed: Counter[str] = Counter()
        self.data_bytes = -1
        self.over_quota = False

    @property
    def quota_bytes(self) -> int:
        return self._config.disk_quota_mib * MIB

    def problem(self) -> str | None:
        if not self.over_quota:
            return None
        used, quota = self.data_bytes / MIB, self.quota_bytes / MIB
        return (
            f"disk-quota-exceeded: the data directory holds {used:.0f} MiB of its {quota:.0f} MiB; uploads are refused"
        )

    def run(self) -> list[Removal]:
        now = self._clock()
        removals: list[Removal] = []
        if self._config.conversations_days > 0:
            for session_id in self._conversations.idle_sessions(now - self._config.conversations_days * DAY_S):
                try:
                    self._conversations.delete_session(session_id)
                except StoreError:
                    continue
                self.removed["conversation"] += 1
                log.info("janitor: deleted conversation %s (idle over %g days)", session_id,
                         self._config.conversations_days)  # fmt: skip
        protected = self._busy_jobs() | {job.job_id for job in self._jobs.unfinished()}
        folders = self._job_folders()
        skip = {f.path for f in folders if f.job_id in protected or f.status not in ENDED}
        skip.add(self._data_dir / "voices")  # a voice's files are its model: the API deletes them, nobody else
        used, temporary = scan(self._data_dir, skip)
        removals += select_jobs(
            folders, now, results_max_age_s=self._config.job_results_days * DAY_S,
            temp_max_age_s=self._config.temp_max_age_s, protected=protected,
        )  # fmt: skip
        inside = tuple(r.path for r in removals)  # a temporary file in a folder that goes anyway is not counted twice
        temporary_removals = select_temporary(temporary, now, self._config.temp_max_age_s)
        removals += [r for r in temporary_removals if not any(r.path.is_relative_to(p) for p in inside)]
        chosen = {r.path for r in removals}
        left = used - sum(r.size for r in removals)
        over, left = select_over_quota(folders, left, self.quota_bytes, protected=protected, chosen=chosen)
        removals += over
        for removal in removals:
            remove(removal.path)
            self.removed[removal.kind] += 1
            log.info("janitor: removed %s (%s, %d bytes): %s", removal.path, removal.kind, removal.size, removal.why)
        self.data_bytes = left
        was_over, self.over_quota = self.over_quota, 0 < self.quota_bytes < left
        if self.over_quota and not was_over:
            log.warning("janitor: %s", self.problem())
        elif was_over and not self.over_quota:
            log.info("janitor: the data directory is under its quota again")
        return removals

    def _job_folders(self) -> list[JobFolder]:
        jobs_dir = self._data_dir / "jobs"
        if not jobs_dir.is_dir():
            return []
        folders = []
        for path in jobs_dir.iterdir():
            if not path.is_dir() or is_temporary(path.name):
                continue
            size, mtime = _measure(path)
            try:
                job = self._jobs.get(path.name)
            except StoreError:
                folders.append(JobFolder(path.name, path, size, mtime))
                continue
            ended_at = job.updated_at if job.status in ENDED else None
            folders.append(JobFolder(path.name, path, size, mtime, job.status, ended_at))
        return folders

    async def forever(self) -> None:
        """Run now and then every `interval_s`; a failed run is logged and the next one tries again."""
        while True:
            try:
                self.run()
            except (OSError, StoreError) as err:
                log.error("janitor run failed: %s", err)
            await asyncio.sleep(self._config.interval_s)
