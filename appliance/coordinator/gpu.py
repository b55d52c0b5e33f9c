"""What the GPU holds, as the card reports it (NVML), and whose it is.

The coordinator plans residency from each program's footprint (DESIGN.md section 5). Footprints are what NVML
says each process uses on the card, summed per program by pid; whatever the card reports in use beyond the sum
is `unattributed` (the driver's own reservations, processes outside Mynah). Imports only the standard library
and `pynvml` (the `gpu` extra, nvidia-ml-py), so it also runs on a bare GPU box (bench/gpu_footprint.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20


class GpuUnavailable(Exception):
    """No NVIDIA driver, no card at that index, or NVML not installed (`pip install mynah[gpu]`)."""


@dataclass(frozen=True, slots=True)
class GpuSnapshot:
    index: int
    name: str
    total_mib: float
    used_mib: float  # what the card reports in use, all processes and the driver together
    processes: Mapping[int, float]  # pid -> MiB that process holds on the card

    @property
    def free_mib(self) -> float:
        return self.total_mib - self.used_mib

    def by_program(self, pids: Mapping[str, int]) -> dict[str, float]:
        """MiB per program, for the programs whose pid holds memory on the card (0 for the others)."""
        return {program: self.processes.get(pid, 0.0) for program, pid in pids.items()}

    def unattributed_mib(self, pids: Mapping[str, int]) -> float:
        """In use on the card but not held by any of these programs."""
        mine = {pid for pid in pids.values()}
        return self.used_mib - sum(used for pid, used in self.processes.items() if pid in mine)


class NvmlMeter:
    """One card's memory through NVML. Open it once; `snapshot()` is cheap (a few driver calls)."""

    def __init__(self, index: int = 0) -> None:
        try:
            import pynvml
        except ImportError as err:
            raise GpuUnavailable("NVML is not installed: pip install 'mynah[gpu]' (nvidia-ml-py)") from err
        self._nvml: Any = pynvml
        try:
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as err:
            raise GpuUnavailable(f"no NVIDIA GPU {index}: {err}") from err
        self.index = index

    def snapshot(self) -> GpuSnapshot:
        nvml, handle = self._nvml, self._handle
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        processes: dict[int, float] = {}
        for query in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
            with contextlib.suppress(nvml.NVMLError):
                for process in query(handle):
                    used = process.usedGpuMemory or 0  # None where the driver does not say (some vGPUs)
                    processes[process.pid] = processes.get(process.pid, 0.0) + used / MIB
        name = nvml.nvmlDeviceGetName(handle)
        return GpuSnapshot(
            self.index, name.decode() if isinstance(name, bytes) else str(name), memory.total / MIB,
            memory.used / MIB, processes,
        )  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


@contextlib.contextmanager
def nvml_meter(index: int = 0) -> Iterator[NvmlMeter]:
    meter = NvmlMeter(index)
    try:
        yield meter
    finally:
        meter.close()
