"""`mynah backup` and `mynah restore`: the data directory as one verified tar.gz.

A backup copies SQLite databases through SQLite's online backup API (a consistent snapshot even while the
coordinator writes; never a file copy of a live database and its WAL) and every other file as it is, then
records each file's size and sha256 in `mynah-backup.json` inside the archive. A restore checks the archive
against that manifest, unpacks it beside the data directory, checks it again, and only then swaps it in: a
failure at any point leaves the data directory as it was. The previous data is kept beside it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ipc.errors import CodedError

MANIFEST = "mynah-backup.json"
PREFIX = "data"  # every data file lives under data/ in the archive
SQLITE_MAGIC = b"SQLite format 3\x00"
# SQLite's companions: their content is inside the snapshot the backup API makes.
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal")
CHUNK = 1 << 20


class BackupError(CodedError):
    """A backup or restore failure: backup-*, restore-* codes."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _snapshot_sqlite(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file: no WAL beside it
        finally:
            dst.close()
    finally:
        src.close()


def default_name(now: dt.datetime) -> Path:
    return Path(f"mynah-backup-{now:%Y%m%d-%H%M%S}.tar.gz")


def backup(data_dir: Path, out: Path, now: dt.datetime) -> dict[str, dict[str, object]]:
    """Write the archive to `out` (atomically); return what it holds: {relative path: {size, sha256}}."""
    if not data_dir.is_dir():
        raise BackupError("backup-no-data", f"no data directory at {data_dir}: nothing to back up")
    out = out.resolve()
    if out.is_relative_to(data_dir.resolve()):
        raise BackupError("backup-inside-data", f"{out} is inside the data directory it would back up")
    files: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix=".mynah-backup-", dir=out.parent) as scratch:
        staging = Path(scratch) / PREFIX
        for path in sorted(data_dir.rglob("*")):
            rel = path.relative_to(data_dir)
            target = staging / rel
            if path.is_symlink() or path.name.endswith(SKIPPED_SUFFIXES) or not (path.is_file() or path.is_dir()):
                continue
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if _is_sqlite(path):
                _snapshot_sqlite(path, target)
            else:
                shutil.copy2(path, target)
            os.chmod(target, path.stat().st_mode & 0o777)  # keys stay 0600
            files[rel.as_posix()] = {"size": target.stat().st_size, "sha256": _sha256(target)}
        manifest: dict[str, object] = {"schema": 1, "created_at": now.isoformat(timespec="seconds"), "files": files}
        (Path(scratch) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
        partial = Path(scratch) / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(Path(scratch) / MANIFEST, arcname=MANIFEST)
            staging.mkdir(exist_ok=True)
            archive.add(staging, arcname=PREFIX)
        os.replace(partial, out)
    return files


def _read_manifest(archive: tarfile.TarFile) -> dict[str, dict[str, object]]:
    try:
        member = archive.extractfile(MANIFEST)
        if member is None:
            raise KeyError(MANIFEST)
        raw = json.loads(member.read())
        files = raw["files"]
        if raw.get("schema") != 1 or not isinstance(files, dict):
            raise ValueError("unknown manifest schema")
    except (KeyError, ValueError, TypeError) as err:
        raise BackupError("restore-not-a-backup", f"not a Mynah backup (no valid {MANIFEST}): {err}") from err
    return files


def _check_members(archive: tarfile.TarFile, files: dict[str, dict[str, object]]) -> None:
    seen = set()
    for member in archive.getmembers():
        name = PurePosixPath(member.name)
        if member.name == MANIFEST:
            continue
        if name.is_absolute() or ".." in name.parts or name.parts[0] != PREFIX:
            raise BackupError("restore-unsafe", f"refusing an archive member outside {PREFIX}/: {member.name}")
        if not (member.isfile() or member.isdir()):
            raise BackupError("restore-unsafe", f"refusing a link or device in the archive: {member.name}")
        if member.isfile():
            rel = PurePosixPath(*name.parts[1:]).as_posix()
            if rel not in files:
                raise BackupError("restore-corrupt", f"{member.name} is not in the backup's manifest")
            seen.add(rel)
    missing = sorted(set(files) - seen)
    if missing:
        raise BackupError("restore-corrupt", f"the archive lacks {len(missing)} file(s) of its manifest: {missing[:3]}")


def _verify_tree(root: Path, files: dict[str, dict[str, object]]) -> None:
    for rel, stamp in files.items():
        path = root / rel
        if not path.is_file() or path.stat().st_size != stamp.get("size") or _sha256(path) != stamp.get("sha256"):
            raise BackupError("restore-corrupt", f"{rel} does not match its sha256 in the backup's manifest")


def restore(archive_path: Path, data_dir: Path, now: dt.datetime, progress: Callable[[str], None]) -> Path | None:
    """Replace `data_dir` with the archive's data; return where the previous data was kept (None if none)."""
    try:
        archive = tarfile.open(archive_path, "r:gz")  # noqa: SIM115 -- closed by the `with archive:` below
    except (OSError, tarfile.TarError) as err:
        raise BackupError("restore-not-a-backup", f"cannot read {archive_path}: {err}") from err
    parent = data_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    unpacked = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=parent))
    try:
        with archive:
            files = _read_manifest(archive)
            _check_members(archive, files)
            try:
                archive.extractall(unpacked, filter="data")
            except (OSError, tarfile.TarError) as err:
                raise BackupError("restore-corrupt", f"{archive_path} did not unpack: {err}") from err
        restored = unpacked / PREFIX
        restored.mkdir(exist_ok=True)
        _verify_tree(restored, files)
        progress(f"verified {len(files)} file(s) against the backup's sha256 manifest")
        kept = None
        if data_dir.exists():
            kept = parent / f"{data_dir.name}.before-restore-{now:%Y%m%d-%H%M%S}"
            os.replace(data_dir, kept)
        try:
            os.replace(restored, data_dir)
        except OSError:
            if kept is not None:
                os.replace(kept, data_dir)  # put the old data back: never a half-restored data dir
            raise
        return kept
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
