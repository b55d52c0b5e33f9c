"""`mynah models measure`: what each installed model costs on this box, recorded in `<data_dir>/footprints.json`.

Each model is loaded in a fresh subprocess (`python -m appliance.models.measure <kind> <path>`), the way its
worker loads it; the parent reads the child's RSS with psutil once the child says it is loaded (the footprint is
the whole process: interpreter, libraries and model, which is what stopping its program frees), and the child's
share of the card through NVML when there is a GPU (else VRAM is left to the defaults). The child then exits.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from appliance.coordinator.gpu import GpuUnavailable, NvmlMeter
from appliance.models.footprints import ModelFootprint
from appliance.models.store import ModelError, ModelStore

MIB = 1 << 20
LOAD_TIMEOUT_S = 300.0
LOADED = "loaded"
SOURCE = "measured: `mynah models measure` on this box (RSS of a process that loaded only this model)"


@dataclass(frozen=True, slots=True)
class Measured:
    name: str
    footprint: ModelFootprint | None  # None: skipped
    note: str


def measure_models(store: ModelStore, names: list[str], progress: Callable[[str], None]) -> list[Measured]:
    """Measure `names` (empty: every installed embedded model); what cannot be measured is skipped with a note."""
    if not names:
        names = [entry.name for entry in store.catalog() if entry.embedded]
    try:
        meter: NvmlMeter | None = NvmlMeter()
    except GpuUnavailable as err:
        meter = None
        progress(f"VRAM: skipped ({err})")
    results = []
    try:
        for name in names:
            results.append(_measure_one(store, name, meter))
            progress(f"{name}: {results[-1].note}")
    finally:
        if meter is not None:
            meter.close()
    return results


def _measure_one(store: ModelStore, name: str, meter: NvmlMeter | None) -> Measured:
    try:
        entry = store.entry(name)
        path = store.resolve(name)
    except ModelError as err:
        return Measured(name, None, f"skipped: {err.message}")
    if entry.kind not in LOADERS:
        return Measured(name, None, f"skipped: no loader for {entry.kind} models")
    argv = [sys.executable, "-m", "appliance.models.measure", entry.kind, str(path)]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None  # a pipe
    assert child.stdin is not None  # a pipe
    try:
        line = child.stdout.readline().strip()
        if line != LOADED:
            child.wait(LOAD_TIMEOUT_S)
            why = (child.stderr.read() if child.stderr else "").strip().splitlines()[-1:] or ["it exited"]
            return Measured(name, None, f"skipped: the model did not load ({why[0]})")
        ram_mib = psutil.Process(child.pid).memory_info().rss / MIB
        fields: dict[str, object] = {"ram_mib": round(ram_mib), "source": SOURCE}
        if meter is not None:
            fields["vram_mib"] = round(meter.snapshot().processes.get(child.pid, 0.0))
    finally:
        if child.poll() is None:
            child.stdin.close()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    footprint = ModelFootprint.model_validate(fields)
    vram = f", {footprint.vram_mib:.0f} MiB VRAM" if "vram_mib" in fields else ""
    return Measured(name, footprint, f"{footprint.ram_mib:.0f} MiB RAM{vram}")


# --- the child ----------------------------------------------------------------------------------------------


def _gguf(path: Path) -> object:
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=2048, n_threads=1, verbose=False)


def _ctranslate2(path: Path) -> object:
    from faster_whisper import WhisperModel

    return WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1)


def _onnx(path: Path) -> object:
    import onnxruntime  # type: ignore[import-untyped, unused-ignore]  # ships no type information

    onnx = path if path.suffix == ".onnx" else next(path.glob("*.onnx"))
    return onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])


def _tflite(path: Path) -> object:
    import cv2

    return [cv2.dnn.readNetFromTFLite(str(net)) for net in sorted(path.glob("*.tflite"))]


LOADERS: dict[str, Callable[[Path], object]] = {"gguf": _gguf, "ctranslate2": _ctranslate2, "onnx": _onnx,
                                                 "tflite": _tflite}  # fmt: skip


def _child(kind: str, path: Path) -> None:
    model = LOADERS[kind](path)
    print(LOADED, flush=True)
    sys.stdin.read()  # hold the model until the parent has measured and closes our stdin
    del model


if __name__ == "__main__":
    _child(sys.argv[1], Path(sys.argv[2]))
