"""`mynah doctor`'s verdicts, with every probe injected: no GPU, GPU setups good and bad, ports, certs, Ollama."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from appliance.cli import doctor
from appliance.cli.doctor import Finding, Gpu, Probes
from appliance.config import MynahConfig, PathsConfig

GIB = 1 << 30
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _config(tmp_path: Path, backend: str = "auto") -> MynahConfig:
    paths = PathsConfig(data_dir=tmp_path / "data", models_dir=tmp_path / "models", runtime_dir=tmp_path / "run",
                        log_dir=tmp_path / "log")  # fmt: skip
    config = MynahConfig(paths=paths)
    return config.model_copy(update={"llm": config.llm.model_copy(update={"backend": backend})})


def _probes(**changes: object) -> Probes:
    probes = Probes(
        gpus=lambda: None,
        cuda_libraries=lambda: {},
        memory=lambda: (8 * GIB, 16 * GIB),
        disk_free=lambda path: 100 * GIB,
        port_free=lambda host, port: True,
        appliance_running=lambda: False,
        http_ok=lambda url: False,
        now=lambda: NOW,
        cert_expiry=lambda path: NOW + dt.timedelta(days=300),
    )
    return dataclasses.replace(probes, **changes)  # type: ignore[arg-type]


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_a_cpu_only_box_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    findings = doctor.diagnose(_config(tmp_path), _probes())
    found = _by_check(findings)
    assert found["gpu"].status == "warn"
    assert found["gpu"].detail == "no NVIDIA GPU: the embedded CPU models will be used"
    assert "cuda" not in found  # no GPU: CUDA libraries are not asked about
    assert found["ollama"].status == "warn" and "ollama serve" in found["ollama"].fix
    assert not any(f.status == "fail" for f in findings)
    assert doctor.as_json(findings)["status"] == "warn"


def test_a_good_gpu_box_passes(tmp_path: Path) -> None:
    probes = _probes(gpus=lambda: [Gpu("NVIDIA H100", "550.54.15", 81559, 80000)],
                     cuda_libraries=lambda: {"cublas": "12.4.5.8", "cudnn": "9.1.0.70", "torch-cuda": "12.4",
                                             "torch-cudnn": "90100"},
                     http_ok=lambda url: url == "http://127.0.0.1:11434/api/version")  # fmt: skip
    findings = doctor.diagnose(_config(tmp_path), probes)
    assert [f.status for f in findings] == ["ok"] * len(findings), doctor.report(findings)
    assert doctor.as_json(findings)["status"] == "ok"


def test_old_driver_missing_cudnn_little_vram_and_a_cuda11_torch_are_each_named_with_a_fix(tmp_path: Path) -> None:
    probes = _probes(gpus=lambda: [Gpu("Tesla T4", "470.82.01", 15360, 15000), Gpu("RTX 4090", "550.1", 24564, 900)],
                     cuda_libraries=lambda: {"cublas": "11.11.3", "cudnn": "8.9.2", "torch-cuda": "11.8"})  # fmt: skip
    found = _by_check(doctor.diagnose(_config(tmp_path), probes))
    assert found["gpu0"].status == "fail" and "470.82.01" in found["gpu0"].detail and "driver" in found["gpu0"].fix
    assert found["gpu1"].status == "warn" and "900 MiB" in found["gpu1"].detail
    assert found["cuda"].status == "fail" and "nvidia-cublas-cu12" in found["cuda"].fix
    assert found["cudnn"].status == "fail" and "nvidia-cudnn-cu12==9" in found["cudnn"].fix
    assert found["torch"].status == "warn"


def test_nvidia_smi_that_sees_no_gpu_fails(tmp_path: Path) -> None:
    found = _by_check(doctor.diagnose(_config(tmp_path), _probes(gpus=lambda: [])))
    assert found["gpu"].status == "fail" and "nvidia-smi" in found["gpu"].fix


def test_memory_and_disks(tmp_path: Path) -> None:
    probes = _probes(memory=lambda: (GIB, 4 * GIB), disk_free=lambda path: GIB // 2)
    found = _by_check(doctor.diagnose(_config(tmp_path), probes))
    assert found["ram"].status == "warn"
    assert found["disk-data"].status == "fail" and found["disk-models"].status == "fail"
    assert "du -sh" in found["disk-data"].fix


def test_a_taken_port_fails_unless_it_is_ours(tmp_path: Path) -> None:
    taken = _by_check(doctor.diagnose(_config(tmp_path), _probes(port_free=lambda h, p: False)))
    assert taken["port"].status == "fail" and "ss -ltnp" in taken["port"].fix
    ours = _by_check(doctor.diagnose(_config(tmp_path), _probes(port_free=lambda h, p: False,
                                                                 appliance_running=lambda: True)))  # fmt: skip
    assert ours["port"].status == "ok" and "Mynah's own" in ours["port"].detail


def test_certificates_expired_expiring_and_valid(tmp_path: Path) -> None:
    certs = tmp_path / "data" / "certs"
    certs.mkdir(parents=True)
    (certs / "ca.pem").write_text("ca")
    (certs / "server.pem").write_text("server")
    expiry = {"ca.pem": NOW + dt.timedelta(days=3000), "server.pem": NOW - dt.timedelta(days=1)}
    found = _by_check(doctor.diagnose(_config(tmp_path), _probes(cert_expiry=lambda path: expiry[path.name])))
    assert found["cert-ca"].status == "ok"
    assert found["cert-server"].status == "fail" and found["cert-server"].fix == "mynah certs --renew"
    expiry["server.pem"] = NOW + dt.timedelta(days=10)
    found = _by_check(doctor.diagnose(_config(tmp_path), _probes(cert_expiry=lambda path: expiry[path.name])))
    assert found["cert-server"].status == "warn"


def test_ollama_is_required_only_when_configured(tmp_path: Path) -> None:
    assert _by_check(doctor.diagnose(_config(tmp_path, "ollama"), _probes()))["ollama"].status == "fail"
    assert _by_check(doctor.diagnose(_config(tmp_path, "embedded"), _probes()))["ollama"].status == "ok"


def test_report_lists_each_fix_and_counts(tmp_path: Path) -> None:
    text = doctor.report(doctor.diagnose(_config(tmp_path), _probes(gpus=lambda: [])))
    assert "fix: run `nvidia-smi`" in text
    assert text.endswith("1 failure(s), 1 warning(s)")  # the GPU fails; Ollama warns
