"""`python -m procs.lipsync`: the lipsync program (the face): avatars, live frames and generated videos."""

from __future__ import annotations

import sys

from appliance.models.store import ModelStore
from appliance.program import start_program
from procs.common.worker import run_worker
from procs.lipsync.service import LipsyncService


def main() -> int:
    config = start_program("lipsync")
    return run_worker(config, "lipsync", LipsyncService(config, ModelStore(config.paths.models_dir)))


if __name__ == "__main__":
    sys.exit(main())
