"""A ring owner killed with SIGKILL leaves its segment; its next life reclaims it and a sweep clears the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from ipc.errors import RingOverwritten
from ipc.messages import RingSlotRef
from ipc.paths import SEGMENT_ROOT, segment_name, segment_prefix
from ipc.rings import FrameRing, parse_header, slot_for_seq, sweep_stale_segments

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Owner:
    proc: subprocess.Popen[str]
    refs: list[RingSlotRef]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)  # reaped: a zombie would still look alive to a sweep


def start_owner(runtime_dir: Path, label: str, *, stream: bool = False) -> Owner:
    argv = [sys.executable, "-m", "tests.helpers.ring_owner", str(runtime_dir), "cam", "video", label]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [*argv, *(["--stream"] if stream else [])],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    refs: list[RingSlotRef] = []
    for line in proc.stdout:
        if line.strip() == "ready":
            return Owner(proc, refs)
        refs.append(msgspec.json.decode(line, type=RingSlotRef))
    raise AssertionError(f"ring owner exited with {proc.wait()} before it was ready")


def segments(runtime_dir: Path) -> list[str]:
    return sorted(p.name for p in SEGMENT_ROOT.iterdir() if p.name.startswith(segment_prefix(runtime_dir)))


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    sweep_stale_segments(tmp_path, force=True)


@pytest.fixture
def owners() -> Iterator[list[Owner]]:
    started: list[Owner] = []
    yield started
    for owner in started:
        if owner.proc.poll() is None:
            owner.kill()


def test_a_restarted_owner_reclaims_its_segment_and_a_sweep_clears_it(runtime_dir: Path, owners: list[Owner]) -> None:
    name = segment_name(runtime_dir, "cam", "video")
    first = start_owner(runtime_dir, "first")
    owners.append(first)
    with FrameRing.attach(name) as reader:
        assert reader.read(first.refs[-1]) == b"first frame 2"
    first.kill()
    assert segments(runtime_dir) == [name]  # a dead owner's leftover
    assert parse_header((SEGMENT_ROOT / name).read_bytes()).owner_pid == first.proc.pid

    second = start_owner(runtime_dir, "second")
    owners.append(second)
    assert segments(runtime_dir) == [name]
    assert parse_header((SEGMENT_ROOT / name).read_bytes()).owner_pid == second.proc.pid
    with FrameRing.attach(name) as reader:
        assert reader.owner_pid == second.proc.pid
        assert [reader.read(ref) for ref in second.refs] == [f"second frame {i}".encode() for i in range(3)]
    assert sweep_stale_segments(runtime_dir) == []  # its owner is alive

    second.kill()
    assert sweep_stale_segments(runtime_dir) == [name]
    assert segments(runtime_dir) == []


def test_a_clean_exit_unlinks_the_segment(runtime_dir: Path, owners: list[Owner]) -> None:
    owner = start_owner(runtime_dir, "clean")
    owners.append(owner)
    assert segments(runtime_dir) == [segment_name(runtime_dir, "cam", "video")]
    assert owner.proc.stdin is not None
    owner.proc.stdin.close()
    assert owner.proc.wait(timeout=10) == 0
    assert segments(runtime_dir) == []


def test_a_reader_racing_a_writer_in_another_process_never_sees_a_torn_slot(
    runtime_dir: Path, owners: list[Owner]
) -> None:
    owner = start_owner(runtime_dir, "stream", stream=True)
    owners.append(owner)
    good = overwritten = 0
    with FrameRing.attach(segment_name(runtime_dir, "cam", "video")) as reader:
        out = bytearray(reader.slot_bytes)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            # Chase the newest slot (read its seq from the header): the writer is often mid-copy there.
            newest = parse_header((SEGMENT_ROOT / reader.name).read_bytes()).next_seq - 1
            for seq in (newest, newest - 1):
                if seq < 4:
                    continue
                ref = RingSlotRef(reader.name, slot_for_seq(seq, reader.slots), seq, seq, reader.slot_bytes)
                try:
                    reader.read_into(ref, out)
                except RingOverwritten:
                    overwritten += 1
                    continue
                assert out == bytes([seq % 256]) * reader.slot_bytes
                good += 1
    assert good > 0
    assert owner.proc.poll() is None
    print(f"consistent reads {good}, detected overwrites {overwritten}")
