"""`python -m appliance.coordinator`: the coordinator program, run by supervisord."""

from __future__ import annotations

import asyncio
import sys

from appliance.config import ConfigError, load_config
from appliance.coordinator.service import Coordinator
from appliance.logs import setup_logging


def main() -> int:
    setup_logging("coordinator")
    try:
        config = load_config()
    except ConfigError as err:
        print(f"mynah coordinator: {err} ({err.code})", file=sys.stderr)
        return 2
    return asyncio.run(Coordinator(config).run())


if __name__ == "__main__":
    sys.exit(main())
