"""docker/ kept in step with the installer, the systemd unit and the code (docs/docker.md).

The Dockerfile installs through installer/install.sh (no package list of its own) and starts what the unit starts;
compose mounts the volumes where the installer's layout puts them, publishes the gateway's port, reserves the GPU
and gives /dev/shm room for the rings; the mounted configuration is the installer's, with the GPU stack chosen, and
the real loader takes it; the health check asks an open route. Every expected value is read from the installer,
the unit template or the code, never written here a second time. No Docker is needed.
"""

from __future__ import annotations

import json
import re
import shlex
import ssl
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
import yaml

from appliance.config import GatewayConfig, LipsyncConfig, OllamaConfig, load_config
from appliance.gateway.app import create_app
from appliance.gateway.auth import is_open
from appliance.security.certs import ALL_INTERFACES, cert_paths, ensure_certificates
from appliance.supervision.unit import UnitSettings, render_unit
from ipc.rings import segment_size

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
# The keys docker/mynah.gpu.toml sets differently from installer/mynah.system.toml, and why.
OVERRIDDEN = {
    "gateway.host",  # every address of the container, so that the published port reaches the gateway
    "llm.backend",  # the Ollama service, with the embedded model as fallback
    "llm.ollama.host",  # the compose service, not this machine
}


def _bash(script: str, *args: str) -> str:
    return subprocess.run(["bash", "-c", script, "bash", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=60).stdout  # fmt: skip


@pytest.fixture(scope="module")
def layout() -> dict[str, str]:
    """The installer's own paths for an install to / (installer/system.sh, sourced as install.sh sources it)."""
    names = "SERVICE_USER APP SVENV CONFIG STATE DATA MODELS LOGDIR RUNDIR"
    out = _bash(f'PREFIX=/ SERVICE_USER=mynah; . installer/system.sh; for v in {names}; do echo "$v=${{!v}}"; done')
    return dict(line.split("=", 1) for line in out.splitlines())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """The final stage's instructions, (KEYWORD, arguments), continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _one(instructions: list[tuple[str, str]], keyword: str) -> str:
    found = [args for kw, args in instructions if kw == keyword]
    assert len(found) == 1, f"{keyword}: {found}"
    return found[0]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """target -> (source, mode) from compose's short volume syntax."""
    found = {}
    for spec in service["volumes"]:
        source, target, *mode = spec.split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


def test_the_image_is_installed_by_the_installer_not_by_a_package_list_of_its_own(
    dockerfile: list[tuple[str, str]], tmp_path: Path
) -> None:
    runs = [args for kw, args in dockerfile if kw == "RUN"]
    install = [args for args in runs if "installer/install.sh" in args]
    assert len(install) == 1, runs
    words = shlex.split(install[0])
    flags = words[words.index(next(w for w in words if w.endswith("installer/install.sh"))) + 1 :]
    flags = flags[: flags.index("&&")] if "&&" in flags else flags
    assert "--container" in flags
    assert not any(re.search(r"\bpip3? install\b|-m pip\b", args) for args in runs), "pip is the installer's job"
    # Not one of the packages the installer asks apt for may be listed here too.
    installers = set(re.findall(r"missing\+=\(([\w.+-]+)\)", (ROOT / "installer" / "install.sh").read_text()))
    apt = {w for args in runs if "apt-get install" in args for w in args.split() if not w.startswith("-")}
    assert installers and not installers & apt, installers & apt

    # The Dockerfile's own installer command, as a dry run into a scratch prefix: what it would do to the image.
    prefix = tmp_path / "prefix"
    result = subprocess.run(["bash", str(ROOT / "installer" / "install.sh"), *flags, "--dry-run", "--prefix",
                             str(prefix), "--python", sys.executable], capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Dry run: nothing was changed." in out and not prefix.exists()
    assert re.search(r"dependencies \[[\w,]*\bgpu\b[\w,]*\]", out), out  # NVML, for the residency planner
    for step in ("embedded models", "certificates", "systemd unit"):
        assert re.search(rf"^  skipped +{step}", out, re.M), out
    assert re.search(r"would create +configuration", out), out


def test_the_image_runs_what_the_systemd_unit_runs(dockerfile: list[tuple[str, str]], layout: dict[str, str]) -> None:
    unit = render_unit(UnitSettings(
        layout["SERVICE_USER"], layout["SERVICE_USER"], Path(layout["APP"]), Path(layout["SVENV"]),
        Path(layout["CONFIG"]), Path(layout["STATE"]),
        (Path(layout["STATE"]), Path(layout["LOGDIR"]), Path(layout["RUNDIR"])),
    ))  # fmt: skip
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert " ".join(json.loads(_one(dockerfile, "CMD"))) == settings["ExecStart"]
    assert _one(dockerfile, "USER") == settings["User"]
    assert _one(dockerfile, "WORKDIR") == settings["WorkingDirectory"]
    env = dict(re.findall(r"(\w+)=(\S+)", _one(dockerfile, "ENV")))
    for line in re.findall(r"^Environment=(.*)$", unit, re.M):  # MYNAH_CONFIG, HOME
        name, value = line.split("=", 1)
        assert env[name] == value, (name, env)
    assert env["PATH"].startswith(f"{layout['SVENV']}/bin:")
    entrypoint = Path(json.loads(_one(dockerfile, "ENTRYPOINT"))[-1])  # the installer copies the checkout to APP
    assert (ROOT / entrypoint.relative_to(layout["APP"])).is_file()
    assert set(json.loads(_one(dockerfile, "VOLUME"))) == {layout["MODELS"], layout["DATA"]}
    assert _one(dockerfile, "EXPOSE") == str(GatewayConfig().port)
    # CUDA 12 with cuDNN 9 (what `mynah doctor` checks for), pinned to a release, not a moving tag.
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d\d\.\d\d", _one(dockerfile, "FROM"))


def test_the_health_check_asks_the_gateway_an_open_route(
    dockerfile: list[tuple[str, str]], layout: dict[str, str]
) -> None:
    command = json.loads(_one(dockerfile, "HEALTHCHECK").split("CMD", 1)[1])
    assert command[:-2] == json.loads(_one(dockerfile, "ENTRYPOINT")) and command[-2] == "healthcheck"
    path = command[-1]
    assert is_open(path, "172.17.0.1"), f"{path} needs a token from a client beyond loopback"
    app = create_app(load_config(DOCKER / "mynah.gpu.toml", settings={}))
    assert "get" in app.openapi()["paths"].get(path, {}), f"the gateway has no GET {path}"


class _Health(BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, Any]] = (200, {})

    def do_GET(self) -> None:
        code, body = self.answer if self.path == "/health" else (404, {})
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=["http", "https"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ThreadingHTTPServer, Path]]:
    """A stand-in gateway on loopback and a configuration naming it; over HTTPS with the appliance's own CA."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    tls = request.param == "https"
    config = tmp_path / "mynah.toml"
    config.write_text(f'[paths]\ndata_dir = "data"\nruntime_dir = "run"\n[gateway]\nhost = "127.0.0.1"\n'
                      f'port = {server.server_address[1]}\n[security]\ntls = "{"on" if tls else "off"}"\n')  # fmt: skip
    if tls:
        certs = ensure_certificates(load_config(config, settings={}))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.server_cert, certs.server_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, config
    server.shutdown()
    server.server_close()


def _probe(config: Path) -> subprocess.CompletedProcess[str]:
    env = {"MYNAH_CONFIG": str(config), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), "healthcheck", "/health"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)  # fmt: skip


def test_the_health_probe_asks_the_gateway_the_configuration_names(
    gateway: tuple[ThreadingHTTPServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, config = gateway
    summary = {"ready": 7, "total": 9, "restarts_last_hour": 0, "problem": "stt is EXITED: model-unknown"}
    monkeypatch.setattr(_Health, "answer", (200, {"status": "degraded", "summary": summary}))
    result = _probe(config)
    assert result.returncode == 0 and "degraded (7/9 ready) stt is EXITED" in result.stdout, result
    monkeypatch.setattr(_Health, "answer", (503, {"status": "down"}))
    result = _probe(config)
    assert result.returncode == 1 and "answered 503" in result.stderr, result
    server.shutdown()
    server.server_close()
    result = _probe(config)
    assert result.returncode == 1 and "unhealthy" in result.stderr, result


def test_compose_runs_the_image_with_the_gpu_its_volumes_and_the_port(
    compose: dict[str, Any], layout: dict[str, str]
) -> None:
    services = compose["services"]
    mynah, ollama = services["mynah"], services["ollama"]
    assert (DOCKER / mynah["build"]["context"]).resolve() == ROOT
    assert (ROOT / mynah["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    for service in (mynah, ollama):
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), service
    mounts = _mounts(mynah)
    for path in (layout["MODELS"], layout["DATA"]):
        assert mounts[path][0] in compose["volumes"], f"{path} is not on a named volume: {mounts}"
    config_source, mode = mounts[layout["CONFIG"]]
    assert (DOCKER / config_source).resolve() == DOCKER / "mynah.gpu.toml" and mode == "ro"
    port = load_config(DOCKER / "mynah.gpu.toml", settings={}).gateway.port
    assert port == GatewayConfig().port and f"{port}:{port}" in mynah["ports"]
    assert all(source in compose["volumes"] for source, _ in _mounts(ollama).values())
    assert ollama["image"].startswith("ollama/ollama:") and not ollama["image"].endswith(":latest")
    timeout = re.search(r"^TimeoutStopSec=(\d+)$", (ROOT / "systemd" / "mynah.service.in").read_text(), re.M)
    assert timeout and mynah["stop_grace_period"] == f"{timeout[1]}s"


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * 1024 ** "_kmg".index(unit or "_")


def test_dev_shm_holds_every_shared_memory_ring(compose: dict[str, Any]) -> None:
    from appliance.gateway import mic
    from procs.lipsync import service as lipsync
    from procs.tts import service as tts

    sources = [p for top in ("appliance", "procs") for p in (ROOT / top).rglob("*.py")]
    owners = [p.relative_to(ROOT) for p in sources if "FrameRing.create(" in p.read_text()]
    assert len(owners) == 3, f"a new shared-memory ring ({owners}): count it here, and in compose's shm_size"
    side = max(get_args(LipsyncConfig.model_fields["max_resolution"].annotation))
    needed = (segment_size(lipsync.RING_SLOTS, side * side * 3) + segment_size(tts.RING_SLOTS, tts.SLOT_BYTES)
              + segment_size(mic.SLOTS, mic.SLOT_BYTES))  # fmt: skip
    assert _bytes(compose["services"]["mynah"]["shm_size"]) >= 2 * needed  # room for a restarted owner's new one


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def test_the_mounted_configuration_is_the_installers_with_the_gpu_stack_chosen(
    compose: dict[str, Any], layout: dict[str, str], tmp_path: Path
) -> None:
    rendered = tmp_path / "mynah.toml"  # by the installer's own write_config
    _bash('PREFIX=/ SERVICE_USER=mynah ROOT=$PWD; . installer/system.sh; SYSTEM_WIDE=0 CONFIG=$1; write_config',
          str(rendered))  # fmt: skip
    system = _flat(tomllib.loads(rendered.read_text()))
    gpu = _flat(tomllib.loads((DOCKER / "mynah.gpu.toml").read_text()))
    assert system.keys() <= gpu.keys(), system.keys() - gpu.keys()
    assert {key for key in system if system[key] != gpu[key]} == OVERRIDDEN

    config = load_config(DOCKER / "mynah.gpu.toml", settings={})
    paths = config.paths
    assert [str(paths.data_dir), str(paths.models_dir), str(paths.runtime_dir), str(paths.log_dir)] == [
        layout["DATA"], layout["MODELS"], layout["RUNDIR"], layout["LOGDIR"]
    ]  # fmt: skip
    assert config.gateway.host in ALL_INTERFACES
    ollama = urlsplit(config.llm.ollama.host)
    assert ollama.hostname in compose["services"] and ollama.port == urlsplit(OllamaConfig().host).port
    assert config.stt.active_profile().device == "cuda" and config.stt.active_profile(live=True).device == "cuda"
    assert cert_paths(config).folder.is_relative_to(config.paths.data_dir)  # made in the data volume


def test_the_build_context_leaves_local_state_out_and_keeps_every_tracked_file() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]  # fmt: skip
    assert {".git", ".venv", "var", "webui/node_modules"} <= set(patterns)  # var/ holds tokens, keys, models

    def ignored(path: str) -> bool:  # .dockerignore's rules, as far as these patterns use them
        return any(fnmatch(path, p) or path.startswith(p + "/")
                   or (p.startswith("**/") and any(fnmatch(part, p[3:]) for part in path.split("/")))
                   for p in patterns)  # fmt: skip

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    left_out = [name for name in tracked.decode().split("\0") if name and ignored(name)]
    assert not left_out, f"the image would lack tracked files: {left_out[:10]}"


def test_the_entrypoint_fetches_the_embedded_models_before_up_and_only_then(
    dockerfile: list[tuple[str, str]], tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "mynah"  # stands in for the image's mynah: records each call
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >>{calls}\n')
    fake.chmod(0o755)
    cmd = json.loads(_one(dockerfile, "CMD"))
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "MYNAH_CONFIG": "/elsewhere.toml"}

    def entrypoint(*command: str) -> list[str]:
        calls.unlink(missing_ok=True)
        subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), *command], env=env, check=True, timeout=30)
        return calls.read_text().splitlines()

    config = cmd[cmd.index("--config") + 1]
    assert entrypoint("mynah", *cmd[1:]) == [f"--config {config} models fetch embedded", " ".join(cmd[1:])]
    assert entrypoint("mynah", "status") == ["status"]
    assert entrypoint("mynah", "up") == ["--config /elsewhere.toml models fetch embedded", "up"]
