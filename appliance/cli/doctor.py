"""`mynah doctor`: is this box fit to run Mynah? Each finding is ok, warn or fail, and says how to fix it.

The probes that touch the machine (nvidia-smi, CUDA libraries, memory, disks, ports, HTTP) are injected, so
the verdicts are tested without a GPU; `default_probes()` are the real ones.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import datetime as dt
import importlib.metadata
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import httpx
import psutil

from appliance.config import MynahConfig

Status = Literal["ok", "warn", "fail"]
GIB = 1 << 30
# CUDA 12 (what CTranslate2 4.x and torch's cu12 wheels are built for) needs at least this Linux driver.
MIN_DRIVER = (525, 60)
CERT_WARN_DAYS = 30


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""  # the command (or step) that fixes it; empty when ok


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: str
    total_mib: int
    free_mib: int


@dataclass(frozen=True)
class Probes:
    gpus: Callable[[], list[Gpu] | None]  # None: no NVIDIA driver (nvidia-smi absent)
    cuda_libraries: Callable[[], dict[str, str]]  # "cublas", "cudnn", "torch-cuda", "torch-cudnn" -> version
    memory: Callable[[], tuple[int, int]]  # (available, total) bytes
    disk_free: Callable[[Path], int]
    port_free: Callable[[str, int], bool]
    appliance_running: Callable[[], bool]
    http_ok: Callable[[str], bool]
    now: Callable[[], dt.datetime]
    cert_expiry: Callable[[Path], dt.datetime]


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_gpu(gpus: list[Gpu] | None) -> list[Finding]:
    if gpus is None:
        return [
            Finding(
                "gpu",
                "warn",
                "no NVIDIA GPU: the embedded CPU models will be used",
                "for the seed stack, install the NVIDIA driver (apt install nvidia-driver), then reboot",
            )
        ]
    if not gpus:
        return [
            Finding(
                "gpu",
                "fail",
                "nvidia-smi is installed but sees no GPU (driver not loaded?)",
                "run `nvidia-smi` to see why; `sudo modprobe nvidia` or reboot after a driver update",
            )
        ]
    found = []
    for index, gpu in enumerate(gpus):
        name = f"gpu{index}"
        if _version(gpu.driver)[:2] < MIN_DRIVER:
            found.append(
                Finding(
                    name,
                    "fail",
                    f"{gpu.name}: driver {gpu.driver} is older than CUDA 12 needs ({MIN_DRIVER[0]}.{MIN_DRIVER[1]}+)",
                    "install a newer NVIDIA driver (apt install nvidia-driver), then reboot",
                )
            )
        elif gpu.free_mib < 2048:
            found.append(
                Finding(
                    name,
                    "warn",
                    f"{gpu.name}: only {gpu.free_mib} MiB of {gpu.total_mib} MiB VRAM free",
                    "see what holds it: nvidia-smi; stop it, or `ollama stop MODEL`",
                )
            )
        else:
            found.append(
                Finding(
                    name, "ok", f"{gpu.name}, driver {gpu.driver}, {gpu.free_mib} MiB of {gpu.total_mib} MiB VRAM free"
                )
            )
    return found


def check_cuda(probes: Probes) -> list[Finding]:
    """faster-whisper (CTranslate2 4.x) needs cuBLAS for CUDA 12 and cuDNN 9; torch brings its own."""
    libs = probes.cuda_libraries()
    fix = "install them into Mynah's environment: pip install nvidia-cublas-cu12 'nvidia-cudnn-cu12==9.*'"
    found = []
    cublas, cudnn = libs.get("cublas"), libs.get("cudnn")
    if cublas is None or _version(cublas)[:1] != (12,):
        found.append(
            Finding(
                "cuda",
                "fail",
                f"CUDA 12 cuBLAS not found (found: {cublas or 'none'}): faster-whisper (CTranslate2 4.x) "
                "cannot run on the GPU without it",
                fix,
            )
        )
    else:
        found.append(Finding("cuda", "ok", f"cuBLAS {cublas} (CUDA 12)"))
    if cudnn is None or _version(cudnn)[:1] != (9,):
        found.append(Finding("cudnn", "fail", f"cuDNN 9 not found (found: {cudnn or 'none'})", fix))
    else:
        found.append(Finding("cudnn", "ok", f"cuDNN {cudnn}"))
    if "torch-cuda" in libs:
        torch_cuda = libs["torch-cuda"]
        status: Status = "ok" if _version(torch_cuda)[:1] == (12,) else "warn"
        found.append(
            Finding(
                "torch",
                status,
                f"torch built for CUDA {torch_cuda}, cuDNN {libs.get('torch-cudnn', '?')}",
                "" if status == "ok" else "install a torch wheel built for CUDA 12 (cu12x)",
            )
        )
    return found


def check_memory(probes: Probes) -> Finding:
    available, total = probes.memory()
    text = f"{available / GIB:.1f} GiB of {total / GIB:.1f} GiB RAM available"
    if available < 1.5 * GIB:
        return Finding("ram", "warn", text, "close what uses memory (see `top`); the embedded models need ~1.5 GiB")
    return Finding("ram", "ok", text)


def check_disks(config: MynahConfig, probes: Probes) -> list[Finding]:
    found = []
    for name, path in (("disk-data", config.paths.data_dir), ("disk-models", config.paths.models_dir)):
        existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
        free = probes.disk_free(existing)
        text = f"{free / GIB:.1f} GiB free for {path}"
        fix = f"free space on {existing} (du -sh {existing}/*), or move [paths] to a bigger disk"
        if free < GIB:
            found.append(Finding(name, "fail", text, fix))
        elif free < 5 * GIB:
            found.append(Finding(name, "warn", text, fix))
        else:
            found.append(Finding(name, "ok", text))
    return found


def check_port(config: MynahConfig, probes: Probes) -> Finding:
    host, port = config.gateway.host, config.gateway.port
    if probes.port_free(host, port):
        return Finding("port", "ok", f"{host}:{port} is free")
    if probes.appliance_running():
        return Finding("port", "ok", f"{host}:{port} is Mynah's own (it is running)")
    return Finding(
        "port",
        "fail",
        f"{host}:{port} is taken by another program",
        f"see which: ss -ltnp 'sport = :{port}'; stop it, or set [gateway] port in the configuration",
    )


def check_certificates(config: MynahConfig, probes: Probes) -> list[Finding]:
    folder = config.paths.data_dir / "certs"
    certs = [folder / name for name in ("ca.pem", "server.pem") if (folder / name).exists()]
    if not certs:
        return [Finding("certs", "ok", f"no certificates in {folder} (HTTPS not set up; localhost needs none)")]
    found = []
    now = probes.now()
    for path in certs:
        try:
            expiry = probes.cert_expiry(path)
        except (OSError, ValueError) as err:
            found.append(Finding(f"cert-{path.stem}", "fail", f"{path}: unreadable: {err}", "mynah certs --renew"))
            continue
        days = (expiry - now).days
        if expiry <= now:
            found.append(
                Finding(f"cert-{path.stem}", "fail", f"{path} expired on {expiry:%Y-%m-%d}", "mynah certs --renew")
            )
        elif days < CERT_WARN_DAYS:
            found.append(Finding(f"cert-{path.stem}", "warn", f"{path} expires in {days} days", "mynah certs --renew"))
        else:
            found.append(Finding(f"cert-{path.stem}", "ok", f"{path} valid until {expiry:%Y-%m-%d}"))
    return found


def check_ollama(config: MynahConfig, probes: Probes) -> Finding:
    backend, host = config.llm.backend, config.llm.ollama.host
    if backend == "embedded":
        return Finding("ollama", "ok", "not used ([llm] backend = embedded)")
    if probes.http_ok(f"{host.rstrip('/')}/api/version"):
        return Finding("ollama", "ok", f"Ollama answers at {host}")
    fix = f"start Ollama (systemctl start ollama, or `ollama serve`), then `ollama pull {config.llm.ollama.model}`"
    if backend == "ollama":
        return Finding("ollama", "fail", f"Ollama does not answer at {host} and [llm] backend = ollama", fix)
    return Finding("ollama", "warn", f"Ollama does not answer at {host}: the embedded model will answer", fix)


def diagnose(config: MynahConfig, probes: Probes) -> list[Finding]:
    gpus = probes.gpus()
    findings = check_gpu(gpus)
    if gpus:  # the CUDA libraries matter only where there is a GPU to use them
        findings += check_cuda(probes)
    findings.append(check_memory(probes))
    findings += check_disks(config, probes)
    findings.append(check_port(config, probes))
    findings += check_certificates(config, probes)
    findings.append(check_ollama(config, probes))
    return findings


def report(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        lines.append(f"{finding.status:4}  {finding.check:12} {finding.detail}")
        if finding.fix:
            lines.append(f"{'':18} fix: {finding.fix}")
    fails = sum(f.status == "fail" for f in findings)
    warns = sum(f.status == "warn" for f in findings)
    lines.append(f"\n{fails} failure(s), {warns} warning(s)")
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> dict[str, object]:
    worst: Status = "fail" if any(f.status == "fail" for f in findings) else "ok"
    if worst == "ok" and any(f.status == "warn" for f in findings):
        worst = "warn"
    return {"status": worst, "findings": [asdict(f) for f in findings]}


# The real probes.


def _nvidia_gpus() -> list[Gpu] | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    query = "--query-gpu=name,driver_version,memory.total,memory.free"
    try:
        out = subprocess.run(
            [smi, query, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 4 and fields[2].isdigit() and fields[3].isdigit():
            gpus.append(Gpu(fields[0], fields[1], int(fields[2]), int(fields[3])))
    return gpus


def _cuda_libraries() -> dict[str, str]:
    found: dict[str, str] = {}
    for key, package, library in (("cublas", "nvidia-cublas-cu12", "cublas"), ("cudnn", "nvidia-cudnn-cu12", "cudnn")):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[key] = importlib.metadata.version(package)
            continue
        name = ctypes.util.find_library(library)  # e.g. libcublas.so.12, libcudnn.so.9 from the system
        if name and ".so." in name:
            found[key] = name.rsplit(".so.", 1)[1]
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]  # optional: only on a GPU box with torch
    except ImportError:
        return found
    if torch.version.cuda:
        found["torch-cuda"] = str(torch.version.cuda)
        found["torch-cudnn"] = str(torch.backends.cudnn.version())
    return found


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _cert_expiry(path: Path) -> dt.datetime:
    from cryptography import x509  # the security extra's dependency; only needed when certificates exist

    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


def default_probes(config: MynahConfig) -> Probes:
    from appliance.cli.lifecycle import is_running

    def memory() -> tuple[int, int]:
        vm = psutil.virtual_memory()
        return vm.available, vm.total

    return Probes(
        gpus=_nvidia_gpus,
        cuda_libraries=_cuda_libraries,
        memory=memory,
        disk_free=lambda path: shutil.disk_usage(path).free,
        port_free=_port_free,
        appliance_running=lambda: is_running(config),
        http_ok=_http_ok,
        now=lambda: dt.datetime.now(dt.UTC),
        cert_expiry=_cert_expiry,
    )
