"""glibc's malloc set for a steady heap (procs/common/heap.py), checked in a fresh interpreter with mallinfo2."""

import subprocess
import sys

import pytest

CHECK = """
import ctypes, ctypes.util, sys
from procs.common.heap import MIB, steady_heap

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
mapped = []
for size in (3 * MIB, 6 * MIB):
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
    run = subprocess.run([sys.executable, "-c", CHECK, mode], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == mapped
