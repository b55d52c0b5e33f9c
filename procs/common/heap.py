"""A steady heap for a worker whose allocations come and go in large, varying sizes (glibc's mallopt).

Piper's synthesis, run without onnxruntime's arena (procs/tts/backends/piper.py says why), allocates tensors of
a few hundred KiB to several MiB per sentence and frees them. glibc's defaults serve them from the heap once the
first large free has raised its dynamic mmap threshold, and return memory to the system only from the heap's
top, so the worker's RSS swings with what each sentence leaves behind and drifts upward over hours (a 30-minute
soak: 323 -> 375 MiB from minute 5). Fixed settings take the drift away: blocks over `mmap_threshold` are mapped
and unmapped whole, the rest reuse freed heap, which is not trimmed, and two arenas serve every thread.

Measured (/tmp script, not kept: 120-200 sentences of 3-40 words through PiperBackend, two settings side by side
on the 2-core VM, RSS every 10 sentences): defaults 257-348 MiB, never settling, against 1 MiB 249-251 MiB flat
at 1.30x the time (each large tensor faults its pages in again); 8 MiB 326-362 MiB at 1.13x the defaults' time;
32 MiB 0.76x the time but climbing to 686 MiB; 4 MiB 281-293 MiB at 0.95x the time of 1 MiB beside it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MIB = 1 << 20


def steady_heap(mmap_threshold: int = 4 * MIB, trim_threshold: int = 512 * MIB, arenas: int = 2) -> bool:
    """Set glibc's malloc for a steady RSS (call before the allocations it should govern); False where the C
    library has no mallopt (musl) or refuses a setting, which leaves its defaults."""
    return _mallopt((M_MMAP_THRESHOLD, mmap_threshold), (M_TRIM_THRESHOLD, trim_threshold), (M_ARENA_MAX, arenas))


def map_large_blocks(threshold: int = 128 * 1024) -> bool:
    """Serve every block of `threshold` bytes or more from its own mapping, for good (glibc's default 128 KiB,
    but fixed: by default the first such block freed raises the threshold to its size, up to 32 MiB, and from
    then on blocks of that size come from the heap, whose holes are not given back)."""
    return _mallopt((M_MMAP_THRESHOLD, threshold))


def _mallopt(*settings: tuple[int, int]) -> bool:
    libc_name = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(libc_name), "mallopt", None) if libc_name else None
    if mallopt is None:
        log.info("no glibc mallopt here: the heap keeps the C library's defaults")
        return False
    done = all(mallopt(ctypes.c_int(option), ctypes.c_int(value)) == 1 for option, value in settings)
    if not done:
        log.warning("glibc refused a malloc setting: the heap keeps some of its defaults")
    return done
