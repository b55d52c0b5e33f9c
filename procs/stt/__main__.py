"""`python -m procs.stt [--batch]`: the live STT worker (`stt`), or the batch one (`stt-batch`).

The batch program puts itself in the kernel's idle scheduling class (SCHED_IDLE, before any thread exists,
so every decoder thread inherits it): it runs only on CPU time nothing else wants, so a file never slows a
live utterance. Where SCHED_IDLE is not available it falls back to the lowest nice level.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from appliance.models.store import ModelStore
from appliance.program import start_program
from procs.common.worker import run_worker
from procs.stt.service import SttService

BATCH_NICENESS = 19


def yield_to_live_work() -> str:
    """Give this process the lowest CPU priority the kernel offers; return what was applied."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(BATCH_NICENESS)
        return f"nice {BATCH_NICENESS}"
    return "SCHED_IDLE"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m procs.stt", description=__doc__)
    parser.add_argument("--batch", action="store_true", help="serve files (stt-batch) instead of live streams")
    args = parser.parse_args()
    program = "stt-batch" if args.batch else "stt"
    config = start_program(program)
    if args.batch:
        logging.getLogger(__name__).info("batch work yields to live work: %s", yield_to_live_work())
    return run_worker(config, program, SttService(config.stt, ModelStore(config.paths.models_dir)))


if __name__ == "__main__":
    sys.exit(main())
