"""`mynah up` and `mynah down`: start supervisord with every program, wait until ready; stop it all."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from appliance.cli.probe import health
from appliance.config import MynahConfig
from appliance.models.store import ModelError, ModelStore
from appliance.security.certs import ALL_INTERFACES, tls_enabled
from appliance.supervision import conf
from appliance.supervision.rpc import SupervisorClient, SupervisorUnavailable
from ipc.errors import CodedError
from ipc.messages import HealthReport
from ipc.rings import sweep_stale_segments

# supervisord gave up restarting: the program will not come back by itself. (An EXITED program whose
# model cannot load says so itself, through its detail.)
GIVEN_UP = frozenset({"FATAL"})


class LifecycleError(CodedError):
    """`mynah up` or `down` could not do what was asked."""


def url(config: MynahConfig) -> str:
    host = config.gateway.host
    if host in ALL_INTERFACES:  # every address: name the box as the LAN knows it (mDNS)
        host = f"{socket.gethostname().split('.')[0]}.local"
    return f"{'https' if tls_enabled(config) else 'http'}://{host}:{config.gateway.port}"


def is_running(config: MynahConfig) -> bool:
    try:
        SupervisorClient(config.paths.runtime_dir).pid()
    except SupervisorUnavailable:
        return False
    return True


def _prepare(config: MynahConfig, *, syslog: bool = False) -> Path:
    for folder in (config.paths.runtime_dir, config.paths.log_dir, config.paths.data_dir):
        folder.mkdir(parents=True, exist_ok=True)
    os.chmod(config.paths.runtime_dir, 0o700)
    removed = sweep_stale_segments(config.paths.runtime_dir, force=True)
    if removed:
        print(f"removed {len(removed)} stale shared-memory segment(s) left by an earlier run")
    for stale in config.paths.runtime_dir.glob("*.sock"):
        stale.unlink(missing_ok=True)
    return conf.write(config, syslog=syslog)


def _check_models(config: MynahConfig) -> None:
    if config.llm.backend == "ollama":
        return
    try:
        ModelStore(config.paths.models_dir).resolve(config.llm.embedded.model)
    except ModelError as err:
        if config.llm.backend == "embedded":
            raise LifecycleError(err.code, err.message) from err
        print(f"warning: {err.message} (needed unless Ollama answers)", file=sys.stderr)


def supervisord_path() -> str:
    beside = Path(sys.executable).with_name("supervisord")
    found = str(beside) if beside.exists() else shutil.which("supervisord")
    if not found:
        raise LifecycleError("supervisord-missing", "supervisord is not installed: run installer/install.sh --dev")
    return found


def up(config: MynahConfig, *, foreground: bool = False, wait: bool = True) -> HealthReport | None:
    if is_running(config):
        print(f"Mynah is already running at {url(config)}")
        return health(config) if wait else None
    _check_models(config)
    # Under systemd (foreground) the programs' JSON log lines also go to journald, tagged with their names.
    conf_path = _prepare(config, syslog=foreground)
    argv = [supervisord_path(), "-c", str(conf_path)]
    if foreground:
        os.execv(argv[0], [*argv, "--nodaemon"])  # systemd supervises supervisord itself
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LifecycleError("supervisord-failed", f"supervisord did not start: {result.stderr.strip()}")
    print(f"supervisord started; logs in {config.paths.log_dir}")
    return wait_ready(config) if wait else None


def wait_ready(config: MynahConfig) -> HealthReport:
    """Wait until every program reports ready; fail early if one gives up."""
    deadline = time.monotonic() + config.supervision.ready_timeout_s
    announced: set[str] = set()
    while True:
        report = health(config, deadline_s=1.0)
        if report is not None:
            for program in report.programs:
                if program.ready and program.name not in announced:
                    announced.add(program.name)
                    model = f" ({program.backend}: {program.model})" if program.model else ""
                    print(f"  {program.name} ready{model}")
            if report.status == "ok":
                return report
            if all(p.ready for p in report.programs):  # up, but degraded: a fallback backend serves
                for problem in report.problems:
                    print(f"  degraded: {problem}")
                return report
            for program in report.programs:
                failed = not program.ready and program.detail and not program.detail.startswith("hung")
                if program.state in GIVEN_UP or failed:
                    why = program.detail or f"it is {program.state}"
                    raise LifecycleError(
                        "program-failed", f"{program.name} did not start: {why}; see `mynah logs {program.name}`"
                    )
        if time.monotonic() > deadline:
            waiting = sorted({p.name for p in report.programs if not p.ready}) if report else ["coordinator"]
            raise LifecycleError(
                "ready-timeout",
                f"not ready after {config.supervision.ready_timeout_s:g} s: {', '.join(waiting)}; see `mynah logs`",
            )
        time.sleep(0.25)


def down(config: MynahConfig, timeout_s: float = 30.0) -> bool:
    """Stop supervisord and every program; return False if nothing was running."""
    client = SupervisorClient(config.paths.runtime_dir)
    try:
        pid = client.pid()
        client.shutdown()
    except SupervisorUnavailable:
        sweep_stale_segments(config.paths.runtime_dir, force=True)
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise LifecycleError("shutdown-timeout", f"supervisord (pid {pid}) did not exit within {timeout_s:g} s")
    sweep_stale_segments(config.paths.runtime_dir, force=True)
    with contextlib.suppress(FileNotFoundError):
        (config.paths.runtime_dir / "supervisor.sock").unlink()
    return True
