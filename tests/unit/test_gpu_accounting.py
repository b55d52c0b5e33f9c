"""The coordinator's GPU accounting from an NVML snapshot: per program by pid, and what nobody of ours holds.
The figures are the ones bench/gpu_footprint.py read on an H100 (docs/architecture.md, "GPU footprints")."""

from __future__ import annotations

import contextlib

import pytest

from appliance.coordinator.gpu import GpuSnapshot, GpuUnavailable, NvmlMeter

LOADED = GpuSnapshot(0, "NVIDIA H100 80GB HBM3", 81559.0, 9784.0, {101: 2156.0, 102: 5740.0, 103: 1388.0, 999: 20.0})


def test_each_program_is_its_processes_memory_and_the_rest_is_unattributed() -> None:
    pids = {"stt": 101, "llm": 102, "lipsync": 103, "tts": 104}
    assert LOADED.by_program(pids) == {"stt": 2156.0, "llm": 5740.0, "lipsync": 1388.0, "tts": 0.0}
    # 9784 in use: 9284 ours, 20 another process's, 480 the driver's own.
    assert LOADED.unattributed_mib(pids) == pytest.approx(500.0)
    assert LOADED.free_mib == pytest.approx(81559.0 - 9784.0)


def test_a_program_that_exited_no_longer_counts() -> None:
    after = GpuSnapshot(0, "gpu", 81559.0, 4038.4, {101: 2156.0, 103: 1388.0})
    assert after.by_program({"stt": 101, "llm": 102, "lipsync": 103})["llm"] == 0.0


def test_no_gpu_is_a_clear_error_not_a_crash() -> None:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except Exception:  # no driver here: the meter must say so with GpuUnavailable
        with pytest.raises(GpuUnavailable, match=r"GPU|NVML"):
            NvmlMeter(0)
        return
    with contextlib.closing(NvmlMeter(0)) as meter:  # a box with a GPU: the snapshot is the card's
        assert meter.snapshot().total_mib > 0
