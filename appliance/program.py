"""The common start of every program that supervisord runs: logging, then the validated configuration."""

from __future__ import annotations

import sys
from typing import TextIO

from appliance.config import ConfigError, MynahConfig, load_config
from appliance.logs import setup_logging

EXIT_BAD_CONFIG = 2


def start_program(name: str, log_stream: TextIO | None = None) -> MynahConfig:
    """Load the configuration and set up logging for `name` as it says (to stdout unless `log_stream` is
    given: the event listener's stdout belongs to supervisord), or exit 2 saying what is wrong with it."""
    setup_logging(name, stream=log_stream)
    try:
        config = load_config()
    except ConfigError as err:
        print(f"mynah {name}: {err.message} ({err.code})", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from err
    setup_logging(name, config.logging.format, config.logging.level, stream=log_stream)
    return config
