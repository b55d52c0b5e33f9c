"""`python -m appliance.coordinator`: the coordinator program, run by supervisord."""

from __future__ import annotations

import asyncio
import sys

from appliance.coordinator.service import Coordinator
from appliance.program import start_program


def main() -> int:
    config = start_program("coordinator")
    return asyncio.run(Coordinator(config).run())


if __name__ == "__main__":
    sys.exit(main())
