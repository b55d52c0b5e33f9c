"""The service-keeping commands: `mynah doctor`, `mynah backup`, `mynah restore`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from appliance.cli import backup as backups
from appliance.cli import doctor, lifecycle
from appliance.config import MynahConfig

COMMANDS = frozenset({"doctor", "backup", "restore"})


def add_commands(commands: Any) -> None:  # argparse's subparsers action has no public type
    dr = commands.add_parser("doctor", help="check the GPU, CUDA, memory, disks, ports, certificates and Ollama")
    dr.add_argument("--json", action="store_true", help="machine-readable output")
    bk = commands.add_parser("backup", help="archive the data directory (tar.gz with a sha256 manifest)")
    bk.add_argument("--out", type=Path, help="the archive to write (default ./mynah-backup-DATE-TIME.tar.gz)")
    rs = commands.add_parser("restore", help="replace the data directory with a backup's, once verified")
    rs.add_argument("archive", type=Path)
    rs.add_argument("--force", action="store_true", help="stop the running appliance first (mynah down)")


def _doctor(config: MynahConfig, as_json: bool) -> int:
    findings = doctor.diagnose(config, doctor.default_probes(config))
    print(json.dumps(doctor.as_json(findings), indent=2) if as_json else doctor.report(findings))
    return 1 if any(f.status == "fail" for f in findings) else 0


def _restore(config: MynahConfig, archive: Path, force: bool) -> int:
    if lifecycle.is_running(config):
        if not force:
            print("mynah: Mynah is running; stop it first (mynah down, or systemctl stop mynah), or say --force "
                  "to have restore stop it (restore-appliance-running)", file=sys.stderr)  # fmt: skip
            return 1
        lifecycle.down(config)
        print("Mynah stopped")
    kept = backups.restore(archive, config.paths.data_dir, dt.datetime.now(), progress=print)
    print(f"restored {config.paths.data_dir} from {archive}")
    if kept is not None:
        print(f"the previous data is kept at {kept}; remove it when satisfied")
    print("start Mynah again: mynah up (or systemctl start mynah)")
    return 0


def run(config: MynahConfig, args: argparse.Namespace) -> int:
    try:
        match args.command:
            case "doctor":
                return _doctor(config, args.json)
            case "backup":
                now = dt.datetime.now()
                out = args.out or backups.default_name(now)
                files = backups.backup(config.paths.data_dir, out, now)
                print(f"backed up {len(files)} file(s) of {config.paths.data_dir} to {out}")
                return 0
            case "restore":
                return _restore(config, args.archive, args.force)
    except backups.BackupError as err:
        print(f"mynah: {err.message} ({err.code})", file=sys.stderr)
        return 1
    return 2
