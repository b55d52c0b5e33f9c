"""`mynah backup` / `mynah restore`: a consistent SQLite snapshot, a verified archive, an all-or-nothing swap."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from appliance.cli import backup as backups
from appliance.cli import service
from appliance.config import MynahConfig, PathsConfig

NOW = dt.datetime(2026, 6, 1, 12, 30, 0)


def _data(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    data = tmp_path / "data"
    (data / "voices" / "v1").mkdir(parents=True)
    (data / "voices" / "v1" / "sample.wav").write_bytes(b"RIFF" + bytes(range(256)) * 40)
    (data / "certs").mkdir()
    (data / "certs" / "server.key").write_text("secret")
    (data / "certs" / "server.key").chmod(0o600)
    live = sqlite3.connect(data / "mynah.db", isolation_level=None)
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("CREATE TABLE turns (id INTEGER PRIMARY KEY, text TEXT)")
    live.executemany("INSERT INTO turns (text) VALUES (?)", [(f"line {i}",) for i in range(500)])
    return data, live  # left open, its WAL not checkpointed: a live database


def test_backup_snapshots_a_live_database_and_restore_brings_everything_back(tmp_path: Path) -> None:
    data, live = _data(tmp_path)
    assert (data / "mynah.db-wal").stat().st_size > 0  # the rows are still in the WAL
    archive = tmp_path / "b.tar.gz"
    files = backups.backup(data, archive, NOW)
    assert set(files) == {"mynah.db", "voices/v1/sample.wav", "certs/server.key"}  # no -wal, no -shm
    live.execute("INSERT INTO turns (text) VALUES ('after the backup')")
    live.close()
    (data / "voices" / "v1" / "sample.wav").write_bytes(b"changed")

    kept = backups.restore(archive, data, NOW, progress=lambda line: None)
    with sqlite3.connect(data / "mynah.db") as restored:
        assert restored.execute("SELECT count(*) FROM turns").fetchone()[0] == 500
        assert restored.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (data / "voices" / "v1" / "sample.wav").read_bytes().startswith(b"RIFF")
    assert (data / "certs" / "server.key").stat().st_mode & 0o777 == 0o600
    assert kept == tmp_path / "data.before-restore-20260601-123000"
    assert (kept / "voices" / "v1" / "sample.wav").read_bytes() == b"changed"
    assert not list(tmp_path.glob(".data.restore-*"))  # the unpacking folder is gone


def _rewrite(archive: Path, change: dict[str, bytes]) -> Path:
    """A copy of `archive` with some members' contents replaced (or added)."""
    out = archive.with_name("tampered.tar.gz")
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            body = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name in change:
                body = change.pop(member.name)
                member.size = len(body)
            dst.addfile(member, io.BytesIO(body) if body is not None else None)
        for name, body in change.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            dst.addfile(info, io.BytesIO(body))
    return out


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"data/voices/v1/sample.wav": b"bit rot"}, "restore-corrupt"),
        ({"data/extra.txt": b"not in the manifest"}, "restore-corrupt"),
        ({"../escape.txt": b"x"}, "restore-unsafe"),
        ({"mynah-backup.json": b"{}"}, "restore-not-a-backup"),
    ],
)
def test_a_bad_archive_is_refused_and_the_data_is_left_alone(
    tmp_path: Path, change: dict[str, bytes], code: str
) -> None:
    data, live = _data(tmp_path)
    archive = tmp_path / "b.tar.gz"
    backups.backup(data, archive, NOW)
    live.close()
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    with pytest.raises(backups.BackupError) as caught:
        backups.restore(_rewrite(archive, dict(change)), data, NOW, progress=lambda line: None)
    assert caught.value.code == code
    after = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert after == sorted([*before, "tampered.tar.gz"])


def test_not_an_archive_and_no_data(tmp_path: Path) -> None:
    (tmp_path / "junk.tar.gz").write_bytes(b"no")
    with pytest.raises(backups.BackupError, match="cannot read"):
        backups.restore(tmp_path / "junk.tar.gz", tmp_path / "data", NOW, progress=print)
    with pytest.raises(backups.BackupError) as caught:
        backups.backup(tmp_path / "missing", tmp_path / "b.tar.gz", NOW)
    assert caught.value.code == "backup-no-data"


def test_the_manifest_is_in_the_archive(tmp_path: Path) -> None:
    data, live = _data(tmp_path)
    live.close()
    backups.backup(data, tmp_path / "b.tar.gz", NOW)
    with tarfile.open(tmp_path / "b.tar.gz") as archive:
        manifest = json.loads(archive.extractfile("mynah-backup.json").read())  # type: ignore[union-attr]
    assert manifest["schema"] == 1 and len(manifest["files"]["mynah.db"]["sha256"]) == 64


def test_restore_refuses_while_the_appliance_runs_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, live = _data(tmp_path)
    live.close()
    archive = tmp_path / "b.tar.gz"
    backups.backup(data, archive, NOW)
    config = MynahConfig(paths=PathsConfig(data_dir=data, models_dir=tmp_path / "m", runtime_dir=tmp_path / "r",
                                           log_dir=tmp_path / "l"))  # fmt: skip
    running = [True]
    monkeypatch.setattr(service.lifecycle, "is_running", lambda config: running[0])
    monkeypatch.setattr(service.lifecycle, "down", lambda config: running.__setitem__(0, False) or True)
    args = argparse.Namespace(command="restore", archive=archive, force=False)
    assert service.run(config, args) == 1
    assert "Mynah is running" in capsys.readouterr().err
    assert not list(tmp_path.glob("data.before-restore-*"))
    assert service.run(config, argparse.Namespace(command="restore", archive=archive, force=True)) == 0
    assert running == [False]
    assert "Mynah stopped" in capsys.readouterr().out
