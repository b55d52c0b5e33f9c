"""FrameRing properties: a fresh ref always reads back what was written; a ref `slots` writes old never does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipc.errors import RingOverwritten
from ipc.rings import FrameRing, sweep_stale_segments

SLOT_BYTES = 64
PTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FRAMES = st.lists(st.tuples(st.binary(max_size=SLOT_BYTES), PTS), min_size=1, max_size=40)


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("rings-property")
    yield path
    sweep_stale_segments(path, force=True)


@settings(max_examples=200, deadline=None)
@given(slots=st.integers(min_value=1, max_value=8), frames=FRAMES)
def test_every_fresh_ref_reads_back_what_was_written(
    runtime_dir: Path, slots: int, frames: list[tuple[bytes, int]]
) -> None:
    with FrameRing.create(runtime_dir, "prop", "fresh", slots=slots, slot_bytes=SLOT_BYTES) as ring:
        out = bytearray(SLOT_BYTES)
        for seq, (data, pts) in enumerate(frames, start=1):
            ref = ring.write(data, pts)
            assert (ref.seq, ref.pts, ref.length, ref.slot) == (seq, pts, len(data), (seq - 1) % slots)
            assert ring.read(ref) == data
            assert ring.read_into(ref, out) == len(data)
            assert out[: len(data)] == data


@settings(max_examples=200, deadline=None)
@given(slots=st.integers(min_value=1, max_value=8), frames=FRAMES)
def test_a_ref_older_than_slots_writes_is_overwritten(
    runtime_dir: Path, slots: int, frames: list[tuple[bytes, int]]
) -> None:
    with FrameRing.create(runtime_dir, "prop", "stale", slots=slots, slot_bytes=SLOT_BYTES) as ring:
        refs = [ring.write(data, pts) for data, pts in frames]
        with FrameRing.attach(ring.name) as reader:
            for age, (ref, (data, _)) in enumerate(zip(reversed(refs), reversed(frames), strict=True)):
                if age < slots:
                    assert reader.read(ref) == data
                else:
                    with pytest.raises(RingOverwritten):
                        reader.read(ref)
