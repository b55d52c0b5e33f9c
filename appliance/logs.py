"""Logging for every program: stdlib logging to stderr; supervisord and journald own the files."""

from __future__ import annotations

import logging
import os


def setup_logging(program: str) -> None:
    level = os.environ.get("MYNAH_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {program}[%(process)d] %(name)s: %(message)s",
    )
