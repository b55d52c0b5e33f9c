"""`python -m appliance.gateway`: the gateway program, run by supervisord."""

from __future__ import annotations

import sys

import uvicorn

from appliance.config import ConfigError, load_config
from appliance.gateway.app import create_app
from appliance.logs import setup_logging


def main() -> int:
    setup_logging("gateway")
    try:
        config = load_config()
    except ConfigError as err:
        print(f"mynah gateway: {err} ({err.code})", file=sys.stderr)
        return 2
    app = create_app(config)
    uvicorn.run(app, host=config.gateway.host, port=config.gateway.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
