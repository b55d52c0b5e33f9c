"""The common start of every program that supervisord runs: logging, then the validated configuration."""

from __future__ import annotations

import sys

from appliance.config import ConfigError, MynahConfig, load_config
from appliance.logs import setup_logging

EXIT_BAD_CONFIG = 2


def start_program(name: str) -> MynahConfig:
    """Set up logging for `name` and load the configuration, or exit 2 saying what is wrong with it."""
    setup_logging(name)
    try:
        return load_config()
    except ConfigError as err:
        print(f"mynah {name}: {err.message} ({err.code})", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from err
