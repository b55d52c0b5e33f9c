"""`python -m appliance.gateway.openapi [FILE]`: the gateway's OpenAPI document, from which the web UI's
TypeScript client is generated (webui/: `npm run api`). Builds the app without starting it: touches no disk."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.config import MynahConfig
from appliance.gateway.app import create_app


def openapi_document() -> dict[str, object]:
    return create_app(MynahConfig()).openapi()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.gateway.openapi", description=__doc__)
    parser.add_argument("out", nargs="?", type=Path, help="write it here (default: standard output)")
    args = parser.parse_args(argv)
    emit(json.dumps(openapi_document(), indent=1, sort_keys=True) + "\n", args.out)
    return 0


def emit(text: str, out: Path | None) -> None:
    """A generated document to `out`, or to standard output."""
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
