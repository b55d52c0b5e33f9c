"""GPU footprints as the card reports them (NVML): load, unload in-process, and restart-to-free, with the
coordinator's accounting (appliance/coordinator/gpu.py) checked against the card.

    python bench/gpu_footprint.py [--out gpu_footprint.json]        # on a box with an NVIDIA GPU and PyTorch

Each "program" is a child process that loads a PyTorch model of a known size onto the card (fp16 linear layers:
stand-ins, since the seed stack's engines are not installable on an offline box) and runs one forward pass, as
a worker does after loading. The parent reads NVML after each step and compares, per program, what NVML says the
process holds with what PyTorch says it reserved; the difference is the CUDA context and libraries' overhead.
Then one program frees its model in-process (del + torch.cuda.empty_cache()), which leaves that overhead held,
and then it exits, as supervisord's restart would make it, which returns everything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.coordinator.gpu import GpuSnapshot, NvmlMeter  # noqa: E402

PROGRAMS = {"stt": 1536, "llm": 5120, "lipsync": 768}  # MiB of fp16 weights each stand-in loads
LAYER = 4096  # a 4096x4096 fp16 layer is 32 MiB
SETTLE_S = 0.5


def child(size_mib: int) -> None:
    """A stand-in program: load, report, then obey 'unload' and 'exit' on stdin."""
    import torch

    layers = max(1, size_mib // 32)
    model = torch.nn.Sequential(*[torch.nn.Linear(LAYER, LAYER, bias=False) for _ in range(layers)])
    model = model.half().cuda()
    with torch.no_grad():
        model(torch.randn(64, LAYER, device="cuda", dtype=torch.half))
    torch.cuda.synchronize()

    def report(state: str) -> None:
        print(json.dumps({"state": state, "pid": os.getpid(),
                          "allocated_mib": torch.cuda.memory_allocated() / (1 << 20),
                          "reserved_mib": torch.cuda.memory_reserved() / (1 << 20)}), flush=True)  # fmt: skip

    report("loaded")
    for line in sys.stdin:
        if line.strip() == "unload":
            del model
            import gc

            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.synchronize()
            report("unloaded")
        elif line.strip() == "exit":
            return


def snap(meter: NvmlMeter, pids: dict[str, int]) -> dict[str, object]:
    time.sleep(SETTLE_S)
    s: GpuSnapshot = meter.snapshot()
    return {"used_mib": round(s.used_mib, 1), "by_program": {k: round(v, 1) for k, v in s.by_program(pids).items()},
            "unattributed_mib": round(s.unattributed_mib(pids), 1)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("gpu_footprint.json"))
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return 0
    meter = NvmlMeter(0)
    first = meter.snapshot()
    result: dict[str, object] = {"gpu": first.name, "total_mib": round(first.total_mib), "steps": {}}
    steps: dict[str, object] = {}
    steps["idle"] = snap(meter, {})
    children: dict[str, subprocess.Popen[str]] = {}
    reports: dict[str, dict[str, float]] = {}
    for name, size in PROGRAMS.items():
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, __file__, "--child", str(size)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert process.stdout is not None
        reports[name] = json.loads(process.stdout.readline())
        reports[name]["load_s"] = round(time.monotonic() - started, 2)
        children[name] = process
    pids = {name: process.pid for name, process in children.items()}
    loaded = snap(meter, pids)
    steps["loaded"] = loaded
    by_program = loaded["by_program"]
    assert isinstance(by_program, dict)
    result["programs"] = {
        name: {"weights_mib": PROGRAMS[name], "torch_reserved_mib": round(reports[name]["reserved_mib"], 1),
               "nvml_mib": by_program[name],
               "overhead_mib": round(by_program[name] - reports[name]["reserved_mib"], 1),
               "load_s": reports[name]["load_s"]}
        for name in PROGRAMS
    }  # fmt: skip
    llm = children["llm"]
    assert llm.stdin is not None
    assert llm.stdout is not None
    llm.stdin.write("unload\n")
    llm.stdin.flush()
    unloaded = json.loads(llm.stdout.readline())
    steps["llm_unloaded_in_process"] = snap(meter, pids) | {"torch_reserved_mib": round(unloaded["reserved_mib"], 1)}
    llm.stdin.write("exit\n")
    llm.stdin.flush()
    llm.wait(30)
    steps["llm_exited"] = snap(meter, {k: v for k, v in pids.items() if k != "llm"})
    for process in children.values():
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.write("exit\n")
            process.stdin.flush()
            process.wait(30)
    steps["all_exited"] = snap(meter, {})
    meter.close()
    result["steps"] = steps
    idle_used = float(steps["idle"]["used_mib"])  # type: ignore[index]
    loaded_used = float(loaded["used_mib"])  # type: ignore[arg-type]
    accounted = sum(float(v) for v in by_program.values())
    result["check"] = {
        "card_growth_mib": round(loaded_used - idle_used, 1),
        "accounted_mib": round(accounted, 1),
        "accounting_error_mib": round(loaded_used - idle_used - accounted, 1),
        "left_after_in_process_unload_mib": steps["llm_unloaded_in_process"]["by_program"]["llm"],  # type: ignore[index]
        "freed_by_exit_mib": round(float(steps["llm_unloaded_in_process"]["used_mib"])  # type: ignore[index]
                                   - float(steps["llm_exited"]["used_mib"]), 1),  # type: ignore[index]
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
