"""glibc's malloc set for a steady heap (procs/common/heap.py), checked in a fresh interpreter with mallinfo2."""

import subprocess
import sys

import pytest

CHECK = """
import ctypes, ctypes.util, sys
from procs.common.heap import MIB, map_large_blocks, steady_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "steady":
    assert steady_heap(mmap_threshold=4 * MIB)
if sys.argv[1] == "mapped":
    assert map_large_blocks()
mapped = []
for size in eval(sys.argv[2]):
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    mapped.append(libc.mallinfo2().hblks - before)
    libc.free(block)
print(mapped)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize(("mode", "mapped"), [("defaults", "[1, 1]"), ("steady", "[0, 1]")])
def test_blocks_under_the_threshold_come_from_the_heap_and_larger_ones_are_mapped(mode: str, mapped: str) -> None:
    """glibc's default maps a first 3 MiB block (its threshold starts at 128 KiB); set to 4 MiB, the heap serves
    it and only the 6 MiB block is mapped."""
    assert blocks_mapped(mode, "(3 * MIB, 6 * MIB)") == mapped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize(("mode", "mapped"), [("defaults", "[1, 0, 0]"), ("mapped", "[1, 1, 1]")])
def test_a_frame_sized_block_stays_mapped_after_the_first_is_freed(mode: str, mapped: str) -> None:
    """A 512 px RGB frame (786,432 bytes), three times: by default freeing the first raises glibc's threshold
    above it and the next come from the heap; with map_large_blocks() every one is mapped, and unmapped whole."""
    assert blocks_mapped(mode, "(786_432,) * 3") == mapped


def blocks_mapped(mode: str, sizes: str) -> str:
    """How many new mappings each block of `sizes` made, in a fresh interpreter set up by `mode`."""
    args = [sys.executable, "-c", CHECK, mode, sizes]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()
