"""`python -m procs.stt [--batch]`: the live STT worker (`stt`), or the batch one (`stt-batch`).

The batch program decodes in the kernel's idle scheduling class (procs/common/priority.py): a file never slows
a live utterance.
"""

from __future__ import annotations

import argparse
import sys

from appliance.models.store import ModelStore
from appliance.program import start_program
from procs.common.worker import run_worker
from procs.stt.service import SttService


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m procs.stt", description=__doc__)
    parser.add_argument("--batch", action="store_true", help="serve files (stt-batch) instead of live streams")
    args = parser.parse_args()
    program = "stt-batch" if args.batch else "stt"
    config = start_program(program)
    models = ModelStore(config.paths.models_dir)
    service = SttService(config.stt, models, batch=args.batch, retry_s=config.supervision.fallback_retry_s)
    return run_worker(config, program, service)


if __name__ == "__main__":
    sys.exit(main())
