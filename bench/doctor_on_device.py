"""`mynah doctor`'s checks on a lent GPU box that has none of Mynah's runtime installed: only the doctor's own
imports (pydantic, httpx, psutil, cryptography) are needed. Prints the report and writes it as JSON.

    python bench/doctor_on_device.py OUT.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.cli.doctor import as_json, default_probes, diagnose, report
from appliance.config import MynahConfig, PathsConfig


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="mynah-doctor-"))
    paths = PathsConfig(data_dir=home / "data", models_dir=home / "models", runtime_dir=home / "run", log_dir=home)
    config = MynahConfig(paths=paths)
    findings = diagnose(config, default_probes(config))
    print(report(findings))
    Path(sys.argv[1]).write_text(json.dumps(as_json(findings), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
