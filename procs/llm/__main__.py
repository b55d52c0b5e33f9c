"""`python -m procs.llm`: the LLM worker program, run by supervisord."""

from __future__ import annotations

import sys

from appliance.models.store import ModelStore
from appliance.program import start_program
from procs.common.worker import run_worker
from procs.llm.service import LlmService


def main() -> int:
    config = start_program("llm")
    service = LlmService(config.llm, ModelStore(config.paths.models_dir), retry_s=config.supervision.fallback_retry_s)
    return run_worker(config, "llm", service)


if __name__ == "__main__":
    sys.exit(main())
