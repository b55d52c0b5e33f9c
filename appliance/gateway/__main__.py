"""`python -m appliance.gateway`: the gateway program, run by supervisord."""

from __future__ import annotations

import sys

import uvicorn

from appliance.gateway.app import create_app
from appliance.program import start_program


def main() -> int:
    config = start_program("gateway")
    app = create_app(config)
    uvicorn.run(app, host=config.gateway.host, port=config.gateway.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
