"""`python -m appliance.gateway`: the gateway program, run by supervisord."""

from __future__ import annotations

import sys

import uvicorn

from appliance.gateway.app import create_app
from appliance.program import start_program
from appliance.security.certs import ensure_certificates, tls_enabled
from procs.common.heap import map_large_blocks


def main() -> int:
    # The gateway's large blocks (uploads, speech, frames a client is sent) come and go: mapped, they go back
    # to the system whole when freed instead of leaving holes in the heap (a soak's gateway grew from those).
    map_large_blocks()
    config = start_program("gateway")
    app = create_app(config)
    # log_config=None: uvicorn's own lines go through our handler (JSON like every program's), not its own.
    certfile = keyfile = None
    if tls_enabled(config):  # beyond localhost: HTTPS, with the local CA's certificate (made or renewed here)
        certs = ensure_certificates(config)
        certfile, keyfile = str(certs.server_cert), str(certs.server_key)
    uvicorn.run(
        app, host=config.gateway.host, port=config.gateway.port, log_level="info", access_log=False, log_config=None,
        ssl_certfile=certfile, ssl_keyfile=keyfile,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
