"""`python -m procs.stt [--batch]`: the live STT worker (`stt`), or the batch one (`stt-batch`).

The batch program lowers its own CPU priority: when a file and a live utterance compete for the two cores,
the kernel gives the live decode the CPU first.
"""

from __future__ import annotations

import argparse
import os
import sys

from appliance.models.store import ModelStore
from appliance.program import start_program
from procs.common.worker import run_worker
from procs.stt.service import SttService

BATCH_NICENESS = 15


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m procs.stt", description=__doc__)
    parser.add_argument("--batch", action="store_true", help="serve files (stt-batch) instead of live streams")
    args = parser.parse_args()
    program = "stt-batch" if args.batch else "stt"
    config = start_program(program)
    if args.batch:
        os.nice(BATCH_NICENESS)
    return run_worker(config, program, SttService(config.stt, ModelStore(config.paths.models_dir)))


if __name__ == "__main__":
    sys.exit(main())
