"""The voice and job stores on a real SQLite file: registration is all or nothing, events keep their order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.store.db import StoreError, connect
from appliance.store.jobs import JobStore
from appliance.store.voices import VoiceFiles, VoiceStore, check_voice_name

FILES = VoiceFiles(
    kind="approximated", reference_path="reference.wav", reference_text="Hello there.", dataset_list="dataset.list",
    clips=5, adaptation_path="adaptation.json", measures={"f0": 120.0},
)  # fmt: skip


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "mynah.db")


def job_folder(tmp_path: Path, name: str = "job") -> Path:
    folder = tmp_path / "jobs" / name / "voice"
    folder.mkdir(parents=True)
    (folder / "reference.wav").write_bytes(b"RIFF")
    return folder


def register(store: VoiceStore, tmp_path: Path, name: str = "Ada", job: str = "job") -> str:
    source = job_folder(tmp_path, job)
    voice = store.register(name=name, language="en", consent="yes", consent_at=1.0, files=FILES, source=source,
                           job_id=job)  # fmt: skip
    return voice.voice_id


def test_a_registered_voice_owns_its_folder_and_absolute_file_paths(conn: sqlite3.Connection, tmp_path: Path) -> None:
    store = VoiceStore(conn, tmp_path / "voices")
    voice_id = register(store, tmp_path)
    voice = store.get(voice_id)
    assert voice.folder == tmp_path / "voices" / voice_id and (voice.folder / "reference.wav").is_file()
    assert voice.files["reference_path"] == str(voice.folder / "reference.wav")
    assert voice.files["gpt_weights"] == "" and voice.measures == {"f0": 120.0}
    assert not (tmp_path / "jobs" / "job" / "voice").exists()


def test_a_taken_name_moves_the_folder_back_and_stores_no_row(conn: sqlite3.Connection, tmp_path: Path) -> None:
    store = VoiceStore(conn, tmp_path / "voices")
    register(store, tmp_path, "Ada", "first")
    with pytest.raises(StoreError) as caught:
        register(store, tmp_path, "ada", "second")
    assert caught.value.code == "voice-name-taken"
    assert (tmp_path / "jobs" / "second" / "voice" / "reference.wav").is_file()
    assert len(store.list()) == 1 and len(list((tmp_path / "voices").iterdir())) == 1


def test_deleting_the_active_voice_clears_it_and_removes_the_files(conn: sqlite3.Connection, tmp_path: Path) -> None:
    store = VoiceStore(conn, tmp_path / "voices")
    voice_id = register(store, tmp_path)
    store.activate(voice_id)
    assert store.active() == voice_id
    store.delete(voice_id)
    assert store.active() is None and store.list() == []
    assert list((tmp_path / "voices").iterdir()) == []
    with pytest.raises(StoreError, match="no voice"):
        store.activate(voice_id)


@pytest.mark.parametrize("name", ["", "   ", "../x", "a/b", "a\\b", ".hidden", "x" * 65, "tab\there", "nul\x00"])
def test_names_that_could_act_as_paths_are_refused(name: str) -> None:
    with pytest.raises(StoreError) as caught:
        check_voice_name(name)
    assert caught.value.code == "voice-name-invalid"


def test_good_names_are_kept_trimmed() -> None:
    assert check_voice_name("  Grandma Rose (2026) ") == "Grandma Rose (2026)"
    assert check_voice_name("Zoë") == "Zoë"


def test_job_events_are_numbered_and_a_job_ends_once(conn: sqlite3.Connection) -> None:
    jobs = JobStore(conn)
    job = jobs.create("train-voice", {"name": "Ada"})
    assert job.status == "queued" and job.params == {"name": "Ada"}
    assert jobs.progress(job.job_id, "slice", 0.2, "cutting")
    assert jobs.progress(job.job_id, "transcribe", 0.1, "a late, smaller number")  # progress never goes back
    assert jobs.get(job.job_id).progress == 0.2
    assert jobs.finish(job.job_id, "voice-1", "registered")
    assert not jobs.fail(job.job_id, "cancelled", "too late")
    record = jobs.get(job.job_id)
    assert (record.status, record.voice_id, record.error_code) == ("done", "voice-1", "")
    assert [e.seq for e in jobs.events(job.job_id)] == [0, 1, 2, 3]
    assert [e.kind for e in jobs.events(job.job_id, after=1)] == ["progress", "done"]


def test_a_cancelled_job_is_cancelled_not_failed(conn: sqlite3.Connection) -> None:
    jobs = JobStore(conn)
    job = jobs.create("train-voice", {})
    assert jobs.fail(job.job_id, "cancelled", "by the user")
    assert jobs.get(job.job_id).status == "cancelled"
    assert jobs.unfinished() == []
    with pytest.raises(StoreError) as caught:
        jobs.get("nope")
    assert caught.value.code == "job-not-found"
