"""FrameRing: layout arithmetic, the seqlock contract, reclaiming a previous life's segment and sweeping."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipc.errors import IpcError, RingOverwritten
from ipc.messages import RingSlotRef
from ipc.paths import SEGMENT_ROOT, segment_name, segment_prefix
from ipc.rings import (
    HEADER_SIZE,
    SLOT_HEADER_SIZE,
    FrameRing,
    RingHeader,
    RingReader,
    pack_header,
    parse_header,
    segment_size,
    slot_for_seq,
    slot_offset,
    slot_stride,
    sweep_stale_segments,
)


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    sweep_stale_segments(tmp_path, force=True)


@pytest.fixture
def ring(runtime_dir: Path) -> Iterator[FrameRing]:
    with FrameRing.create(runtime_dir, "test", "audio", slots=4, slot_bytes=16) as owned:
        yield owned


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped (a zombie would still count as alive)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- layout arithmetic ---------------------------------------------------------------------------------------


def test_slot_stride_pads_data_to_8_bytes() -> None:
    assert slot_stride(16) == SLOT_HEADER_SIZE + 16
    assert slot_stride(17) == SLOT_HEADER_SIZE + 24
    assert slot_stride(1) == SLOT_HEADER_SIZE + 8
    assert SLOT_HEADER_SIZE % 8 == 0


def test_slot_offsets_follow_the_header_and_stay_aligned() -> None:
    assert slot_offset(0, 100) == HEADER_SIZE
    assert slot_offset(3, 100) == HEADER_SIZE + 3 * slot_stride(100)
    assert all(slot_offset(i, 13) % 8 == 0 for i in range(10))
    assert segment_size(5, 100) == slot_offset(5, 100)


def test_slot_for_seq_starts_at_slot_zero_and_wraps() -> None:
    assert [slot_for_seq(seq, 3) for seq in range(1, 8)] == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="start at 1"):
        slot_for_seq(0, 3)


def test_header_round_trips_and_rejects_foreign_bytes() -> None:
    header = RingHeader(slots=8, slot_bytes=4096, owner_pid=1234, next_seq=99)
    raw = pack_header(header)
    assert len(raw) == HEADER_SIZE
    assert parse_header(raw) == header
    with pytest.raises(ValueError, match="magic"):
        parse_header(b"X" * HEADER_SIZE)
    with pytest.raises(ValueError, match="shorter"):
        parse_header(raw[:10])
    with pytest.raises(ValueError, match="layout version"):
        parse_header(raw[:8] + b"\x63\0\0\0" + raw[12:])


# --- reading and writing ------------------------------------------------------------------------------------


def test_write_then_read_round_trips_through_an_attached_reader(ring: FrameRing) -> None:
    ref = ring.write(b"hello", pts=42)
    assert ref == RingSlotRef(ring=ring.name, slot=0, seq=1, pts=42, length=5)
    with FrameRing.attach(ring.name) as reader:
        assert (reader.slots, reader.slot_bytes, reader.is_owner) == (4, 16, False)
        assert reader.owner_pid == os.getpid()
        assert reader.read(ref) == b"hello"
        out = bytearray(16)
        assert reader.read_into(ref, out) == 5
        assert out[:5] == b"hello"


def test_write_accepts_any_contiguous_buffer(ring: FrameRing) -> None:
    samples = memoryview(bytearray(range(16))).cast("h")
    ref = ring.write(samples, pts=0)
    assert ref.length == 16
    assert ring.read(ref) == bytes(range(16))
    assert ring.read(ring.write(b"", pts=-5)) == b""


def test_writes_wrap_around_and_overwrite_the_oldest_slot(ring: FrameRing) -> None:
    refs = [ring.write(f"frame {i}".encode(), pts=i) for i in range(10)]
    assert [r.slot for r in refs] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert [r.seq for r in refs] == list(range(1, 11))
    for ref in refs[-4:]:
        assert ring.read(ref) == f"frame {ref.pts}".encode()


def test_a_reader_holding_an_overwritten_slot_gets_ring_overwritten(ring: FrameRing) -> None:
    stale = ring.write(b"old", pts=1)
    for i in range(ring.slots):
        ring.write(b"new", pts=2 + i)
    with FrameRing.attach(ring.name) as reader, pytest.raises(RingOverwritten) as caught:
        reader.read(stale)
    assert caught.value.code == "ring-overwritten"
    assert f"slot {stale.slot}" in caught.value.message
    assert "expected seq 1, found 5" in caught.value.message
    with pytest.raises(RingOverwritten):
        ring.read_into(stale, bytearray(16))


def test_oversize_write_is_refused_before_touching_the_ring(ring: FrameRing) -> None:
    with pytest.raises(ValueError, match="17 bytes"):
        ring.write(b"x" * 17, pts=0)
    assert ring.write(b"x" * 16, pts=0).seq == 1


def test_read_into_a_small_buffer_and_a_foreign_ref_are_errors(ring: FrameRing) -> None:
    ref = ring.write(b"abcdef", pts=0)
    with pytest.raises(ValueError, match="smaller"):
        ring.read_into(ref, bytearray(3))
    with pytest.raises(ValueError, match="reference to ring"):
        ring.read(RingSlotRef(ring="other", slot=0, seq=1, pts=0, length=6))
    with pytest.raises(ValueError, match="outside"):
        ring.read(RingSlotRef(ring=ring.name, slot=9, seq=1, pts=0, length=6))


def test_readers_cannot_write_or_unlink(ring: FrameRing) -> None:
    with FrameRing.attach(ring.name) as reader:
        with pytest.raises(IpcError) as caught:
            reader.write(b"x", pts=0)
        assert caught.value.code == "ring-not-owner"
        with pytest.raises(IpcError):
            reader.unlink()
    assert (SEGMENT_ROOT / ring.name).exists()


# --- naming, attach, reclaim --------------------------------------------------------------------------------


def test_attach_to_a_missing_segment_says_ring_missing(runtime_dir: Path) -> None:
    with pytest.raises(IpcError) as caught:
        FrameRing.attach(segment_name(runtime_dir, "nobody", "nothing"))
    assert caught.value.code == "ring-missing"


def test_attach_to_a_foreign_segment_says_ring_layout(runtime_dir: Path) -> None:
    name = segment_name(runtime_dir, "test", "foreign")
    (SEGMENT_ROOT / name).write_bytes(b"not a ring" * 20)
    with pytest.raises(IpcError) as caught:
        FrameRing.attach(name)
    assert caught.value.code == "ring-layout"


def test_attach_to_a_truncated_segment_says_ring_layout(runtime_dir: Path) -> None:
    name = segment_name(runtime_dir, "test", "short")
    (SEGMENT_ROOT / name).write_bytes(pack_header(RingHeader(4, 64, os.getpid(), 1)))
    with pytest.raises(IpcError) as caught:
        FrameRing.attach(name)
    assert caught.value.code == "ring-layout"


def test_create_reclaims_a_previous_lifes_segment(runtime_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = FrameRing.create(runtime_dir, "test", "video", slots=2, slot_bytes=8)
    old_ref = old.write(b"old life", pts=0)
    caplog.set_level(logging.INFO, logger="ipc.rings")
    with FrameRing.create(runtime_dir, "test", "video", slots=3, slot_bytes=32) as new:
        assert new.name == old.name
        assert "left by a previous owner" in caplog.text
        with FrameRing.attach(new.name) as reader:
            assert (reader.slots, reader.slot_bytes) == (3, 32)
            with pytest.raises(RingOverwritten):
                reader.read(old_ref)
        # The old owner unlinking late must not take the new owner's segment with it.
        old.unlink()
        old.close()
        assert (SEGMENT_ROOT / new.name).exists()
    assert not (SEGMENT_ROOT / new.name).exists()


def test_create_validates_geometry_and_names(runtime_dir: Path) -> None:
    with pytest.raises(ValueError, match="slots"):
        FrameRing.create(runtime_dir, "test", "audio", slots=0, slot_bytes=8)
    with pytest.raises(ValueError, match="names"):
        FrameRing.create(runtime_dir, "te/st", "audio", slots=1, slot_bytes=8)


def test_close_is_idempotent_and_leaves_the_segment(runtime_dir: Path) -> None:
    ring = FrameRing.create(runtime_dir, "test", "audio", slots=1, slot_bytes=8)
    ring.close()
    ring.close()
    assert (SEGMENT_ROOT / ring.name).exists()
    ring.unlink()
    assert not (SEGMENT_ROOT / ring.name).exists()


# --- sweeping -----------------------------------------------------------------------------------------------


def test_sweep_removes_dead_owners_and_foreign_headers_and_keeps_live_ones(
    runtime_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    dead = segment_name(runtime_dir, "gone", "audio")
    (SEGMENT_ROOT / dead).write_bytes(pack_header(RingHeader(1, 8, dead_pid(), 1)).ljust(segment_size(1, 8)))
    junk = segment_name(runtime_dir, "junk", "audio")
    (SEGMENT_ROOT / junk).write_bytes(b"\x01\x02")
    other_dir = tmp_path_factory.mktemp("other-appliance")
    with (
        FrameRing.create(runtime_dir, "live", "audio", slots=1, slot_bytes=8) as live,
        FrameRing.create(other_dir, "gone", "audio", slots=1, slot_bytes=8) as elsewhere,
    ):
        assert sorted(sweep_stale_segments(runtime_dir)) == sorted([dead, junk])
        assert (SEGMENT_ROOT / live.name).exists()
        assert (SEGMENT_ROOT / elsewhere.name).exists()
        assert sweep_stale_segments(runtime_dir) == []
        assert sweep_stale_segments(runtime_dir, force=True) == [live.name]
        assert (SEGMENT_ROOT / elsewhere.name).exists()
    assert not [p for p in SEGMENT_ROOT.iterdir() if p.name.startswith(segment_prefix(runtime_dir))]


def test_a_slot_caught_mid_write_reads_as_overwritten(ring: FrameRing) -> None:
    ref = ring.write(b"complete", pts=0)
    # Another process's view of the same slot while the owner is between "mark" and "publish".
    with open(SEGMENT_ROOT / ring.name, "r+b") as segment:
        segment.seek(slot_offset(ref.slot, ring.slot_bytes))
        segment.write(bytes(8))
    with pytest.raises(RingOverwritten, match="expected seq 1, found 0"):
        ring.read(ref)


def test_ring_reader_copies_into_a_callers_buffer_and_follows_a_restarted_owner(runtime_dir: Path) -> None:
    """RingReader.read_into: the byte count, the bytes in the caller's buffer; None for an overwritten slot; and
    a ring made again under the same name (its owner restarted) is attached again, as read() does."""
    reader = RingReader()
    out = bytearray(16)
    try:
        with FrameRing.create(runtime_dir, "test", "frames", slots=2, slot_bytes=16) as first:
            assert reader.read_into(first.write(b"first", pts=0), out) == 5
            assert out[:5] == b"first"
            stale = first.write(b"old", pts=1)
            first.write(b"x", pts=2)
            first.write(b"y", pts=3)  # two slots: `stale`'s is reused
            assert reader.read_into(stale, out) is None
            assert out[:5] == b"first"
        with FrameRing.create(runtime_dir, "test", "frames", slots=2, slot_bytes=16) as again:
            ref = again.write(b"again", pts=0)
            assert reader.read_into(ref, out) == 5
            assert out[:5] == b"again"
            assert reader.read(ref) == b"again"
    finally:
        reader.close()
