"""Fixed-slot shared-memory rings for PCM audio and RGB frames.

One owner creates a segment and writes into it; other processes attach by name and read the slot a
RingSlotRef (sent over ZeroMQ) points at. Writes never block: the oldest slot is overwritten, and each
slot's sequence number lets a slow reader notice that rather than return half-new bytes.

Layout (little-endian):
  header  magic[8] version:u32 slots:u32 slot_bytes:u32 owner_pid:u32 next_seq:u64, padded to HEADER_SIZE
  slot i  seq:u64 pts:i64 length:u32 pad[4], then slot_bytes of data padded to 8
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from ipc.errors import IpcError, RingOverwritten
from ipc.messages import RingSlotRef
from ipc.paths import SEGMENT_ROOT, segment_name, segment_prefix

T = TypeVar("T")

log = logging.getLogger(__name__)

MAGIC = b"MYNAHRNG"
LAYOUT_VERSION = 1
HEADER_SIZE = 64  # room to grow the header without moving the slots
WRITING = 0  # a slot's seq while its data is being replaced; real sequence numbers start at 1

_HEADER = struct.Struct("<8sIIIIQ")
_SEQ = struct.Struct("<Q")
_NEXT_SEQ_OFFSET = _HEADER.size - _SEQ.size
_SLOT_HEADER = struct.Struct("<QqI4x")
SLOT_HEADER_SIZE = _SLOT_HEADER.size
_U32_MAX = 2**32 - 1
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


# --- pure layout arithmetic ---------------------------------------------------------------------------------


def slot_stride(slot_bytes: int) -> int:
    """Bytes from one slot header to the next; data is padded so every slot header stays 8-aligned."""
    return SLOT_HEADER_SIZE + (slot_bytes + 7) // 8 * 8


def slot_offset(index: int, slot_bytes: int) -> int:
    """Offset of slot `index`'s header from the start of the segment."""
    return HEADER_SIZE + index * slot_stride(slot_bytes)


def segment_size(slots: int, slot_bytes: int) -> int:
    return HEADER_SIZE + slots * slot_stride(slot_bytes)


def slot_for_seq(seq: int, slots: int) -> int:
    """The slot that write number `seq` (1-based) lands in."""
    if seq < 1:
        raise ValueError(f"sequence numbers start at 1, got {seq}")
    return (seq - 1) % slots


@dataclass(frozen=True, slots=True)
class RingHeader:
    """The segment header, less the magic and version that parse_header checks."""

    slots: int
    slot_bytes: int
    owner_pid: int
    next_seq: int


def pack_header(header: RingHeader) -> bytes:
    return _HEADER.pack(
        MAGIC, LAYOUT_VERSION, header.slots, header.slot_bytes, header.owner_pid, header.next_seq
    ).ljust(HEADER_SIZE, b"\0")


def parse_header(raw: bytes | bytearray | memoryview) -> RingHeader:
    """Decode a segment header; ValueError says why it is not one of ours (or not this layout version)."""
    if len(raw) < HEADER_SIZE:
        raise ValueError(f"{len(raw)} bytes is shorter than a ring header")
    magic, version, slots, slot_bytes, owner_pid, next_seq = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ValueError(f"bad magic {magic!r}")
    if version != LAYOUT_VERSION:
        raise ValueError(f"layout version {version} is not {LAYOUT_VERSION}")
    if slots < 1 or slot_bytes < 1:
        raise ValueError(f"empty geometry: {slots} slots of {slot_bytes} bytes")
    return RingHeader(slots, slot_bytes, owner_pid, next_seq)


# --- the ring -----------------------------------------------------------------------------------------------


# os.open + mmap, not multiprocessing.shared_memory: on 3.11 every attacher unlinks it at exit (gh-82300).
class FrameRing:
    """A fixed-slot ring in one POSIX shared-memory segment: one writing owner, any number of readers."""

    def __init__(self, name: str, mapping: mmap.mmap, header: RingHeader, *, owner: bool, inode: int) -> None:
        self._name = name
        self._mm = mapping
        self._view = memoryview(mapping)
        self._slots = header.slots
        self._slot_bytes = header.slot_bytes
        self._next_seq = header.next_seq
        self._owner = owner
        self._inode = inode  # unlink() must not remove a newer owner's segment that reused our name

    @classmethod
    def create(cls, runtime_dir: Path, program: str, ring: str, *, slots: int, slot_bytes: int) -> FrameRing:
        """Create the segment as its single owner, reclaiming whatever a previous life left under the name."""
        if not 1 <= slots <= _U32_MAX or not 1 <= slot_bytes <= _U32_MAX:
            raise ValueError(f"slots and slot_bytes must be in 1..{_U32_MAX}, got {slots}, {slot_bytes}")
        name = segment_name(runtime_dir, program, ring)
        path = SEGMENT_ROOT / name
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            os.unlink(path)
            log.info("removed segment %s left by a previous owner", name)
            fd = os.open(path, flags, 0o600)
        try:
            size = segment_size(slots, slot_bytes)
            os.ftruncate(fd, size)
            mapping = mmap.mmap(fd, size)
            inode = os.fstat(fd).st_ino
        except BaseException:
            os.unlink(path)
            raise
        finally:
            os.close(fd)
        header = RingHeader(slots, slot_bytes, os.getpid(), 1)
        raw = pack_header(header)
        # Magic goes in last, so a reader that attaches mid-creation sees "not ours" rather than garbage.
        mapping[len(MAGIC) : HEADER_SIZE] = raw[len(MAGIC) :]
        mapping[: len(MAGIC)] = MAGIC
        return cls(name, mapping, header, owner=True, inode=inode)

    @classmethod
    def attach(cls, name: str) -> FrameRing:
        """Map an existing segment read-only; never unlinks it (only the owner does)."""
        path = SEGMENT_ROOT / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as err:
            raise IpcError(f"no shared-memory ring {name}", code="ring-missing") from err
        try:
            stat = os.fstat(fd)
            try:
                header = parse_header(os.pread(fd, HEADER_SIZE, 0))
            except ValueError as err:
                raise IpcError(f"{name} is not a ring of this layout: {err}", code="ring-layout") from err
            size = segment_size(header.slots, header.slot_bytes)
            if stat.st_size != size:
                raise IpcError(f"{name} is {stat.st_size} bytes, its header implies {size}", code="ring-layout")
            mapping = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        return cls(name, mapping, header, owner=False, inode=stat.st_ino)

    @property
    def name(self) -> str:
        return self._name

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def slot_bytes(self) -> int:
        return self._slot_bytes

    @property
    def is_owner(self) -> bool:
        return self._owner

    @property
    def owner_pid(self) -> int:
        return parse_header(self._view[:HEADER_SIZE]).owner_pid

    def write(self, data: bytes | bytearray | memoryview, pts: int) -> RingSlotRef:
        """Copy `data` into the oldest slot and return a reference to it; never waits on readers."""
        if not self._owner:
            raise IpcError(f"{self._name} is attached read-only", code="ring-not-owner")
        src = memoryview(data).cast("B")
        length = src.nbytes
        if length > self._slot_bytes:
            raise ValueError(f"{length} bytes do not fit a {self._slot_bytes}-byte slot of {self._name}")
        if not _I64_MIN <= pts <= _I64_MAX:
            raise ValueError(f"pts {pts} does not fit in 64 bits")
        seq = self._next_seq
        slot = slot_for_seq(seq, self._slots)
        head = slot_offset(slot, self._slot_bytes)
        start = head + SLOT_HEADER_SIZE
        # Seqlock: a reader that sees WRITING, or any seq but the one it holds, knows the data moved on.
        # Python has no fences: this relies on stores staying in order (x86-64 TSO; weaker on ARM).
        _SLOT_HEADER.pack_into(self._mm, head, WRITING, pts, length)
        self._view[start : start + length] = src
        _SEQ.pack_into(self._mm, head, seq)
        self._next_seq = seq + 1
        _SEQ.pack_into(self._mm, _NEXT_SEQ_OFFSET, self._next_seq)
        return RingSlotRef(ring=self._name, slot=slot, seq=seq, pts=pts, length=length)

    def read(self, ref: RingSlotRef) -> bytes:
        """Copy out the slot `ref` names; RingOverwritten if it was reused before or during the copy."""
        start = self._check(ref)
        data = bytes(self._view[start : start + ref.length])
        self._check(ref)
        return data

    def read_into(self, ref: RingSlotRef, out: bytearray | memoryview) -> int:
        """Like read(), into a caller's buffer (no allocation per frame); returns the byte count."""
        dest = memoryview(out).cast("B")
        if dest.nbytes < ref.length:
            raise ValueError(f"buffer of {dest.nbytes} bytes is smaller than the {ref.length}-byte slot")
        start = self._check(ref)
        dest[: ref.length] = self._view[start : start + ref.length]
        self._check(ref)
        return ref.length

    def _check(self, ref: RingSlotRef) -> int:
        """Validate `ref` against this ring and the slot's current seq; return the slot's data offset."""
        if ref.ring != self._name:
            raise ValueError(f"reference to ring {ref.ring} used on {self._name}")
        if not 0 <= ref.slot < self._slots or not 0 <= ref.length <= self._slot_bytes:
            raise ValueError(f"slot {ref.slot} of {ref.length} bytes is outside {self._name}")
        head = slot_offset(ref.slot, self._slot_bytes)
        (found,) = _SEQ.unpack_from(self._mm, head)
        if found != ref.seq:
            raise RingOverwritten(f"ring {self._name} slot {ref.slot}: expected seq {ref.seq}, found {found}")
        return head + SLOT_HEADER_SIZE

    def close(self) -> None:
        """Unmap; idempotent. The segment itself stays until its owner unlinks it."""
        if self._mm.closed:
            return
        self._view.release()
        self._mm.close()

    def unlink(self) -> None:
        """Remove the segment's name (owner only); existing mappings stay valid until closed."""
        if not self._owner:
            raise IpcError(f"only the owner of {self._name} may unlink it", code="ring-not-owner")
        path = SEGMENT_ROOT / self._name
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == self._inode:
                os.unlink(path)

    def __enter__(self) -> FrameRing:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close; the owner also unlinks, since a clean exit leaves nothing for a sweep to find."""
        self.close()
        if self._owner:
            self.unlink()


# --- stale segments -----------------------------------------------------------------------------------------


class RingReader:
    """Reads slots of other processes' rings, attaching to each ring on first use.

    A restarted owner has a new segment under the old name: a failed read drops the stale mapping and attaches
    again once before giving up. Returns None (and counts it) for a slot that cannot be read.
    """

    def __init__(self) -> None:
        self._rings: dict[str, FrameRing] = {}
        self.failures = 0

    def read(self, ref: RingSlotRef) -> bytes | None:
        return self._copy(ref, lambda ring: ring.read(ref))

    def read_into(self, ref: RingSlotRef, out: bytearray | memoryview) -> int | None:
        """Like read(), into the caller's buffer (no allocation per frame): the byte count, or None."""
        return self._copy(ref, lambda ring: ring.read_into(ref, out))

    def _copy(self, ref: RingSlotRef, copy: Callable[[FrameRing], T]) -> T | None:
        for attempt in range(2):
            try:
                ring = self._rings.get(ref.ring)
                if ring is None:
                    ring = self._rings[ref.ring] = FrameRing.attach(ref.ring)
                return copy(ring)
            except IpcError as err:
                stale = self._rings.pop(ref.ring, None)
                if stale is not None:
                    stale.close()
                if attempt:
                    self.failures += 1
                    log.warning("could not read %s slot %s: %s (%s)", ref.ring, ref.slot, err, err.code)
        return None

    def close(self) -> None:
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()


def _pid_alive(pid: int) -> bool:
    """Whether a process exists (a zombie counts: its parent has not reaped it yet)."""
    if pid <= 0:
        return False  # os.kill(0, ...) would signal our own process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, but belongs to another user
    return True


def sweep_stale_segments(runtime_dir: Path, *, force: bool = False) -> list[str]:
    """Unlink this appliance's segments whose owner is dead (or all of them with force); return their names.

    A reused pid makes a dead owner's segment look alive; its next owner still reclaims it on create().
    """
    prefix = segment_prefix(runtime_dir)
    removed: list[str] = []
    for entry in sorted(os.scandir(SEGMENT_ROOT), key=lambda e: e.name):
        if not entry.name.startswith(prefix):
            continue
        if not force:
            try:
                with open(entry.path, "rb") as segment:
                    owner = parse_header(segment.read(HEADER_SIZE)).owner_pid
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as err:
                log.info("segment %s has no readable ring header (%s)", entry.name, err)
                owner = 0
            if _pid_alive(owner):
                continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        log.info("removed stale segment %s", entry.name)
        removed.append(entry.name)
    return removed
