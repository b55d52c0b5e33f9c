"""Batch work yields the CPU to live work, thread by thread.

A batch program's working threads run in the kernel's idle scheduling class (SCHED_IDLE; nice 19 where that is
refused): they get only CPU time nothing else wants, so a file or a training job never slows a live turn. The
program's main thread, which runs the event loop and its heartbeats, keeps the normal class: under full load
from live work a batch program still answers, so the coordinator never mistakes it for hung. Linux schedules
threads, not processes, and a thread inherits the class of the thread that creates it, so the libraries' own
thread pools (CTranslate2, onnxruntime) are idle too when they are created from an idle thread.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

BATCH_NICENESS = 19


def yield_this_thread() -> str:
    """Put the calling thread (Linux: pid 0 is the calling thread) in the idle class; return what was applied."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, BATCH_NICENESS)
        return f"nice {BATCH_NICENESS}"
    return "SCHED_IDLE"


def worker_threads(name: str, *, batch: bool) -> ThreadPoolExecutor:
    """One thread for a program's heavy work: in the idle class when the program does batch work."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=yield_this_thread if batch else None)
