"""`python -m procs.tts`: the text-to-speech worker program, run by supervisord."""

from __future__ import annotations

import sys

from appliance.models.store import ModelStore
from appliance.program import start_program
from procs.common.heap import steady_heap
from procs.common.worker import run_worker
from procs.tts.service import TtsService


def main() -> int:
    config = start_program("tts")
    steady_heap()  # before the voice loads: its tensors are what the settings govern
    models = ModelStore(config.paths.models_dir)
    service = TtsService(config.tts, config.paths, models, retry_s=config.supervision.fallback_retry_s)
    return run_worker(config, "tts", service)


if __name__ == "__main__":
    sys.exit(main())
