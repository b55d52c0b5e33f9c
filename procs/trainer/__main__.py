"""`python -m procs.trainer`: the trainer program (voice training): batch work, done in idle-class threads."""

from __future__ import annotations

import sys

from appliance.models.store import ModelStore
from appliance.program import start_program
from procs.common.worker import run_worker
from procs.trainer.service import TrainerService


def main() -> int:
    config = start_program("trainer")
    return run_worker(config, "trainer", TrainerService(config, ModelStore(config.paths.models_dir)))


if __name__ == "__main__":
    sys.exit(main())
