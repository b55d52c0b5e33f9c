"""Storage faults against the running appliance: the data directory's disk full (a small tmpfs filled to the
brim), and a model file that fails its sha256. Each time: a clear error code reaches the client within 5 s, nothing
already stored is lost, the appliance recovers without a person once the cause is gone, the next turn works, and
no temporary file or shared-memory segment is left behind.

A real full disk, not a patched one: the data directory is a tmpfs mount (root only; elsewhere the disk tests
skip and say why). The model test runs on its own models folder (links to var/models, the voice copied), so the
corrupted file is never one other tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODELS_DIR, Appliance, start_appliance
from tests.faults import client, first_problem, leftovers, shm_segments
from tests.speech import Clip, pad, synthesize
from tests.voice_client import VoiceClient

pytestmark = pytest.mark.integration

DATA_MIB = 64  # the face's default avatar rig takes ~12 MiB of data/avatars; the rest is the database's
SEED = "What colour is the sky?"
REFUSED = "Is water wet?"
LONG_QUESTION = "Tell me a very long story about a dragon and a knight."
FOLLOW_UP = "What is the capital of France?"
ERROR_WITHIN_S = 5.0
RECOVERY_S = 120.0
# The gateway notes a device's last request at most once a minute (appliance/store/devices.py): a disk full for
# longer must not turn that bookkeeping into failed requests.
FULL_FOR_S = 65.0
VOICE_MODEL = "piper-joe-medium"
VOICE_FILE = "en_US-joe-medium.onnx"


# --- an appliance of our own ------------------------------------------------------------------------------------


def mount_tmpfs(folder: Path, mib: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    argv = ["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "tmpfs", str(folder)]
    mounted = subprocess.run(argv, capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"a small disk for the data directory needs a tmpfs mount, refused here: {mounted.stderr.strip()}")


@pytest.fixture(scope="module")
def small_disk() -> Iterator[Appliance]:
    home = Path(tempfile.mkdtemp(prefix="mynah-it-"))
    data_dir = home / "data"
    try:
        mount_tmpfs(data_dir, DATA_MIB)
        running = start_appliance(home=home)
        try:
            yield running
        finally:
            running.mynah("down", check=False)
    finally:
        subprocess.run(["umount", str(data_dir)], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def own_models() -> Iterator[Appliance]:
    """An appliance whose models folder links to var/models, but for the TTS voice: copied, so it can be broken.
    Its one test runs first in the module, so it is gone before the small disk's appliance starts."""
    home = Path(tempfile.mkdtemp(prefix="mynah-it-"))
    models = home / "models"
    models.mkdir()
    try:
        for entry in MODELS_DIR.iterdir():
            if entry.name == VOICE_MODEL:
                (models / entry.name).mkdir()
                for file in entry.iterdir():
                    shutil.copy2(file, models / entry.name / file.name)  # mtime kept: the manifest's hash stays good
            elif entry.is_dir():
                (models / entry.name).symlink_to(entry.resolve())
            else:
                shutil.copy2(entry, models / entry.name)  # the manifest: the store rewrites it as it hashes
        running = start_appliance(home=home, models_dir=models)
        try:
            yield running
        finally:
            running.mynah("down", check=False)
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- looking at it ----------------------------------------------------------------------------------------------


def lines_of(appliance: Appliance, session_id: str) -> list[tuple[str, str]]:
    return [(line["role"], line["text"]) for line in appliance.history(session_id)]


def programs(appliance: Appliance) -> dict[str, tuple[int, int]]:
    """Each program's pid and restart count: unchanged means nobody restarted anything."""
    return {p["name"]: (p["pid"], p["restarts"]) for p in appliance.status()["programs"]}


def integrity(data_dir: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'mynah.db'}?mode=ro", uri=True, timeout=10)) as db:
        return ", ".join(str(row[0]) for row in db.execute("PRAGMA integrity_check"))


def health(appliance: Appliance) -> dict[str, Any]:
    with appliance.client() as http:
        body: dict[str, Any] = http.get("/health").json()
    return body


def chat(appliance: Appliance, text: str, session_id: str | None = None) -> tuple[Any, float]:
    """POST /chat: the response and how long it took."""
    started = time.monotonic()
    with appliance.client() as http:
        response = http.post("/chat", json={"text": text, "session_id": session_id})
    return response, time.monotonic() - started


def turn_end(voice: VoiceClient, turn_no: int) -> dict[str, Any] | None:
    return next((e for e in voice.of("turn_end") if e["turn"] == turn_no), None)


def wait_until(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.5)
    return found


async def voice_turn(appliance: Appliance, session_id: str, clip: Clip) -> dict[str, Any]:
    """One spoken turn heard to its end: its turn_end."""
    async with client(appliance, session_id=session_id) as voice:
        assert voice.session["resumed"], voice.session
        voice.say(clip.samples, clip.speech_end_s)
        end: dict[str, Any] = await voice.turn_heard(voice.session["turns"] + 1)
        return end


async def refused_voice_turn(appliance: Appliance, session_id: str, clip: Clip) -> tuple[float, dict[str, Any]]:
    """A spoken turn that should fail: the first problem, and its delay from the transcript that made the turn."""
    async with client(appliance, session_id=session_id) as voice:
        voice.say(clip.samples, clip.speech_end_s)
        final = await voice.wait_for(lambda: next((e for e in voice.of("final") if e["text"].strip()), None), 90)
        since = voice.arrival(final)
        at, problem = await voice.wait_for(lambda: first_problem(voice, since), 60)
        return at - since, problem


# --- a model file that fails its hash -----------------------------------------------------------------------------


def refusing(appliance: Appliance, name: str) -> dict[str, Any] | None:
    """The program, once it is down for a model that failed its hash."""
    program = appliance.program(name)
    return program if program["state"] != "RUNNING" and "model-hash-mismatch" in program["detail"] else None


def corrupt(path: Path) -> None:
    """Flip 64 bytes in the middle: same size, another sha256 (and a new mtime, as any write gives it)."""
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        chunk = handle.read(64)
        handle.seek(-len(chunk), os.SEEK_CUR)
        handle.write(bytes(b ^ 0xFF for b in chunk))


@pytest.mark.timeout(900)
def test_a_voice_model_that_fails_its_hash_is_refused_reported_and_recovered(own_models: Appliance) -> None:
    voice_file = own_models.home / "models" / VOICE_MODEL / VOICE_FILE
    pristine = MODELS_DIR / VOICE_MODEL / VOICE_FILE
    question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)
    follow_up = pad(synthesize(FOLLOW_UP, "piper"), 0.4, 0.2)
    seeded, _ = chat(own_models, SEED)
    assert seeded.status_code == 200, seeded.text
    session_id = seeded.json()["session_id"]
    kept = lines_of(own_models, session_id)
    shm_before, temp_before = shm_segments(own_models), leftovers(own_models)
    before = own_models.program("tts")
    failures: list[str] = []  # the checks below are independent: report every one that fails, not the first

    corrupt(voice_file)
    try:
        # Its next life loads the voice again and must refuse it (a crash, or a settings change, restarts it).
        os.kill(before["pid"], signal.SIGKILL)
        refused = wait_until(lambda: refusing(own_models, "tts"), RECOVERY_S, "the tts worker refusing its voice")
        print(f"tts refused its voice: {refused['state']}: {refused['detail'][:300]}")
        assert str(voice_file) in refused["detail"] and f"mynah models fetch {VOICE_MODEL}" in refused["detail"]
        body = health(own_models)
        print(f"/health: {body['status']}: {body['summary']['problem'][:300]}")
        assert body["status"] == "degraded", body
        assert "tts" in body["summary"]["problem"] and "model-hash-mismatch" in body["summary"]["problem"], body

        async def turn_without_a_voice() -> tuple[float, dict[str, Any], dict[str, Any]]:
            async with client(own_models, session_id=session_id) as voice:
                turn_no = voice.session["turns"] + 1
                voice.say(question.samples, question.speech_end_s)
                began = voice.arrival(await voice.wait_for(lambda: next(iter(voice.of("turn")), None), 90))
                at, problem = await voice.wait_for(lambda: first_problem(voice, began), 120)
                end = await voice.wait_for(lambda: turn_end(voice, turn_no), 120)
                return at - began, problem, end

        delay, problem, end = asyncio.run(turn_without_a_voice())
        print(f"a turn without the voice: {problem} {delay:.2f} s after it began; it ended {end}")
        assert problem.get("code"), problem
        if delay >= ERROR_WITHIN_S:
            failures.append(f"the client heard there was no voice {delay:.1f} s after the turn began: {problem}")
        if end["status"] == "done":
            assert end["reply"].strip() and end["samples"] == 0, end  # text only
    finally:
        shutil.copy2(pristine, voice_file)
    restored_at = time.monotonic()

    try:
        wait_until(lambda: own_models.program("tts")["ready"] and health(own_models)["status"] == "ok", RECOVERY_S,
                   "the tts worker recovering by itself once its voice was restored")  # fmt: skip
    except AssertionError as err:
        failures.append(f"{err}: {own_models.program('tts')}")
    else:
        print(f"tts ready again {time.monotonic() - restored_at:.1f} s after its voice was restored")
        again = asyncio.run(voice_turn(own_models, session_id, follow_up))
        if not (again["status"] == "done" and again["samples"] > 0 and "paris" in again["reply"].lower()):
            failures.append(f"the next turn after recovery: {again}")
    lines = lines_of(own_models, session_id)
    assert lines[: len(kept)] == kept, lines
    assert lines[len(kept)][0] == "user" and "dragon" in lines[len(kept)][1].lower(), lines  # the voiceless turn
    if end["status"] == "done":  # its answer, delivered as text, is kept
        assert lines[len(kept) + 1] == ("assistant", end["reply"]), lines
    leaked = shm_segments(own_models) - shm_before
    assert not leaked, f"shared memory left behind: {sorted(leaked)}"
    left = leftovers(own_models) - temp_before
    assert not left, f"temporary files left behind: {sorted(map(str, left))}"
    assert not failures, "\n".join(failures)


# --- a full disk --------------------------------------------------------------------------------------------------


def fill_to_the_brim(data_dir: Path) -> Path:
    """A ballast file taking every free byte of the data directory's disk.

    The database's write-ahead log is emptied first (a checkpoint, as SQLite makes by itself every 1000 pages): a
    log grown by earlier writes has room inside it, and SQLite would go on writing there without new space. A disk
    fills at any moment, this one included."""
    with contextlib.closing(sqlite3.connect(data_dir / "mynah.db", timeout=10)) as db:
        deadline = time.monotonic() + 10
        while db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:  # 1: busy, a reader or writer is in
            assert time.monotonic() < deadline, "the database stayed busy: no checkpoint"
            time.sleep(0.05)
    ballast = data_dir / "ballast.bin"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            block = b"\xa5" * size
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
    finally:
        os.close(fd)
    assert os.statvfs(data_dir).f_bavail == 0, os.statvfs(data_dir)
    with pytest.raises(OSError, match=os.strerror(errno.ENOSPC)):
        (data_dir / "probe").write_bytes(b"x" * 4096)
    (data_dir / "probe").unlink(missing_ok=True)
    return ballast


@pytest.mark.timeout(900)
def test_a_full_data_disk_refuses_turns_with_disk_full_and_loses_nothing(small_disk: Appliance) -> None:
    data_dir = small_disk.home / "data"
    refused_question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)
    follow_up = pad(synthesize(FOLLOW_UP, "piper"), 0.4, 0.2)
    seeded, _ = chat(small_disk, SEED)
    assert seeded.status_code == 200, seeded.text
    session_id = seeded.json()["session_id"]
    spoken = asyncio.run(voice_turn(small_disk, session_id, follow_up))
    assert spoken["status"] == "done", spoken
    kept = lines_of(small_disk, session_id)
    assert [role for role, _ in kept] == ["user", "assistant"] * 2, kept
    running, shm_before, temp_before = programs(small_disk), shm_segments(small_disk), leftovers(small_disk)

    ballast = fill_to_the_brim(data_dir)
    filled_at = time.monotonic()
    try:
        refused, took = chat(small_disk, REFUSED, session_id)
        print(f"text chat on a full disk: {refused.status_code} {refused.text[:200]} after {took:.2f} s")
        assert refused.status_code == 507 and refused.json()["code"] == "disk-full", refused.text
        assert took < ERROR_WITHIN_S, f"the refusal took {took:.1f} s"

        delay, problem = asyncio.run(refused_voice_turn(small_disk, session_id, refused_question))
        print(f"voice turn on a full disk: {problem} {delay:.2f} s after its transcript")
        assert problem.get("code") == "disk-full", problem
        assert delay < ERROR_WITHIN_S, f"the client heard of the full disk {delay:.1f} s after its turn began"

        # Reading goes on while the disk stays full, past the device bookkeeping's next write.
        while time.monotonic() - filled_at < FULL_FOR_S:
            assert lines_of(small_disk, session_id) == kept
            time.sleep(5)
        assert lines_of(small_disk, session_id) == kept
        assert health(small_disk)["status"] in ("ok", "degraded")
        assert integrity(data_dir) == "ok"
    finally:
        ballast.unlink()

    answered, _ = chat(small_disk, REFUSED, session_id)
    assert answered.status_code == 200 and answered.json()["reply"], answered.text
    again = asyncio.run(voice_turn(small_disk, session_id, follow_up))
    assert again["status"] == "done" and "paris" in again["reply"].lower(), again
    lines = lines_of(small_disk, session_id)
    assert lines[: len(kept)] == kept, lines
    # The refused turns stored nothing, not half a turn: the two new turns are the two answered after.
    assert [role for role, _ in lines[len(kept) :]] == ["user", "assistant"] * 2, lines
    assert lines[len(kept)] == ("user", REFUSED), lines
    assert not any("dragon" in text.lower() for _, text in lines), lines
    assert integrity(data_dir) == "ok"
    assert programs(small_disk) == running, "a program was restarted"
    leaked = shm_segments(small_disk) - shm_before
    assert not leaked, f"shared memory left behind: {sorted(leaked)}"
    left = leftovers(small_disk) - temp_before
    assert not left, f"temporary files left behind: {sorted(map(str, left))}"


@pytest.mark.timeout(600)
def test_a_disk_that_fills_during_a_voice_turn_fails_it_with_disk_full(small_disk: Appliance) -> None:
    """The turn was stored when it began; its answer cannot be. The client must hear so, not wait forever."""
    data_dir = small_disk.home / "data"
    question = pad(synthesize(LONG_QUESTION, "piper"), 0.4, 0.2)
    follow_up = pad(synthesize(FOLLOW_UP, "piper"), 0.4, 0.2)
    seeded, _ = chat(small_disk, SEED)
    assert seeded.status_code == 200, seeded.text
    session_id = seeded.json()["session_id"]
    kept = lines_of(small_disk, session_id)
    running, temp_before = programs(small_disk), leftovers(small_disk)
    ballast = data_dir / "ballast.bin"

    async def talk() -> tuple[float, dict[str, Any]]:
        async with client(small_disk, session_id=session_id) as voice:
            voice.say(question.samples, question.speech_end_s)
            turn_no = voice.session["turns"] + 1
            await voice.wait_for(lambda: voice.of("turn"), 90)  # stored: the turn and the user's words
            await asyncio.to_thread(fill_to_the_brim, data_dir)
            filled_at = time.monotonic()
            assert turn_end(voice, turn_no) is None, "the answer was stored before the disk was full: too late"
            try:
                at, problem = await voice.wait_for(lambda: first_problem(voice, filled_at), 60)
            except TimeoutError as err:
                raise AssertionError(f"the disk filled mid-turn and the client heard nothing: {err}") from None
            # The store write that fails is the answer's, when the model has finished it.
            last_reply = max((voice.arrival(e) for e in voice.of("reply")), default=filled_at)
            return at - max(filled_at, last_reply), problem

    try:
        delay, problem = asyncio.run(talk())
    finally:
        ballast.unlink(missing_ok=True)
    print(f"disk full mid-turn: {problem} {delay:.2f} s after the answer's last words")
    assert problem.get("code") == "disk-full", problem
    assert delay < ERROR_WITHIN_S, f"the client heard of the full disk {delay:.1f} s after the answer was made"

    again = asyncio.run(voice_turn(small_disk, session_id, follow_up))
    assert again["status"] == "done" and "paris" in again["reply"].lower(), again
    lines = lines_of(small_disk, session_id)
    assert lines[: len(kept)] == kept, lines
    assert lines[len(kept)][0] == "user" and "dragon" in lines[len(kept)][1].lower(), lines  # what the user said
    assert integrity(data_dir) == "ok"
    assert programs(small_disk) == running, "a program was restarted"
    left = leftovers(small_disk) - temp_before
    assert not left, f"temporary files left behind: {sorted(map(str, left))}"
