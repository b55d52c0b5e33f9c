"""`python -m procs.llm`: the LLM worker program, run by supervisord."""

from __future__ import annotations

import sys

from appliance.config import ConfigError, load_config
from appliance.logs import setup_logging
from appliance.models.store import ModelStore
from procs.common.worker import run_worker
from procs.llm.service import LlmService


def main() -> int:
    setup_logging("llm")
    try:
        config = load_config()
    except ConfigError as err:
        print(f"mynah llm: {err} ({err.code})", file=sys.stderr)
        return 2
    service = LlmService(config.llm, ModelStore(config.paths.models_dir))
    return run_worker(config, "llm", service)


if __name__ == "__main__":
    sys.exit(main())
