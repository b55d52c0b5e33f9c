"""installer/install.sh --system into a temporary prefix: install, again (nothing changes), --dry-run (nothing
changes), uninstall (data kept), uninstall --purge (nothing left). No root and no systemd needed.

To stay fast it installs from a frozen copy of this checkout and reuses this checkout's virtual environment
(--site-packages-from) and model store (--models-from), which the developer set-up made.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODELS_DIR, ROOT, require_model

pytestmark = pytest.mark.integration


def _listing(prefix: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under `prefix`: mode, mtime and content hash (bytecode caches aside)."""
    found = {}
    for path in sorted(prefix.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
        found[path.relative_to(prefix).as_posix()] = (stat.st_mode, stat.st_mtime_ns, digest)
    return found


def _frozen_checkout(target: Path) -> Path:
    """The checkout's files (as git sees them) copied, so edits made meanwhile cannot change the source."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, names):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            (target / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            (target / os.fsdecode(name)).write_bytes(source.read_bytes())
            (target / os.fsdecode(name)).chmod(source.stat().st_mode & 0o777)
    return target


def test_system_install_is_idempotent_and_uninstall_is_exact(tmp_path: Path) -> None:
    require_model()
    source = _frozen_checkout(tmp_path / "src")
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    fast = ["--site-packages-from", str(Path(sys.prefix)), "--models-from", str(MODELS_DIR)]

    def installer(*args: str) -> str:
        result = subprocess.run(["bash", str(source / "installer" / "install.sh"), *args, "--prefix", str(prefix)],
                                capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    dry = installer("--system", "--dry-run", *fast)
    assert "would create   systemd unit" in dry and "Dry run: nothing was changed." in dry
    assert _listing(prefix) == {}

    first = installer("--system", *fast)
    assert "created        systemd unit" in first
    mynah = prefix / "opt" / "mynah" / "venv" / "bin" / "mynah"
    config = prefix / "etc" / "mynah" / "mynah.toml"
    unit = (prefix / "etc" / "systemd" / "system" / "mynah.service").read_text()
    assert f"ExecStart={mynah} --config {config} up --foreground" in unit
    assert f'data_dir = "{prefix}/var/lib/mynah/data"' in config.read_text()
    models = subprocess.run([str(mynah), "--config", str(config), "models", "list"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "smollm2-135m-instruct" in models and " ok " in models
    installed = _listing(prefix)

    second = installer("--system", *fast)
    steps = [line for line in second.splitlines() if line.startswith("  ") and not line.startswith("      ")]
    assert steps and all(line.split()[0] in ("unchanged", "skipped") for line in steps), second
    assert _listing(prefix) == installed

    installer("uninstall", "--dry-run")
    assert _listing(prefix) == installed

    (prefix / "var" / "lib" / "mynah" / "data" / "mine.txt").write_text("a user's data")
    installer("uninstall")
    left = _listing(prefix)
    assert "var/lib/mynah/data/mine.txt" in left and "etc/mynah/mynah.toml" in left
    assert "var/lib/mynah/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf" in left
    assert not any(name.startswith(("opt/", "run/", "etc/systemd")) for name in left), sorted(left)
    assert "etc/mynah/install-manifest" not in left

    installer("--system", *fast)
    installer("uninstall", "--purge", "--yes")
    # What a first install into an empty prefix made, a purge removes; parents a reinstall found kept remain.
    assert all((prefix / name).is_dir() for name in _listing(prefix)), sorted(_listing(prefix))
    assert not [p for p in prefix.rglob("*") if p.is_file()]
