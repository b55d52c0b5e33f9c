"""Lip-sync renderer benchmark: frames per second and real-time factor at 512 and 1024 px on ONE core, and the
time from a speech chunk's arrival to its first frame in the frame ring.

    .venv/bin/python bench/lipsync.py [--frames 300] [--runs 5] [--core 0] [--out var/bench/lipsync.json]

The process pins itself to one core and every library to one thread (OpenBLAS, OpenCV). The speech is the
embedded Piper voice with its phoneme timing, so the mouth does what it does in a turn (interior painting, seam
joins, blinks, head motion). The 1024 px avatar is the default one scaled up: its face is four times the area.
"First frame" is measured in-process on the live path: a 200 ms chunk (the tts worker's ring slot) is added to
a turn's plan, the first frame is rendered and written into a real shared-memory frame ring; the bus adds about
0.1-0.3 ms per message on this box (tests/integration/test_lipsync_live.py prints the whole path's figure).
Reports medians (and p95 for the latency) of repeated runs; the last line is machine-readable.
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.config import load_config  # noqa: E402
from appliance.models.store import ModelStore  # noqa: E402
from ipc.rings import FrameRing  # noqa: E402
from procs.lipsync.animate import FramePlan, SpeechPlan  # noqa: E402
from procs.lipsync.avatar import DEFAULT_AVATAR, prepare_avatar  # noqa: E402
from procs.lipsync.face import FaceFinder  # noqa: E402
from procs.lipsync.render import FULL_GAP, Renderer  # noqa: E402
from procs.lipsync.rig import build_rig  # noqa: E402
from procs.lipsync.visemes import FPS, FRAME_SAMPLES, Span  # noqa: E402
from procs.tts.backends.base import VoiceSettings  # noqa: E402
from procs.tts.backends.piper import PiperBackend  # noqa: E402

TEXT = (
    "Good morning! Maybe we could plan a picnic by the river this weekend. The weather should be warm, "
    "so bring a big blanket, some fresh bread, apples and a bottle of lemonade for everyone."
)
CHUNK_SAMPLES = 9600  # the tts worker's ring slot: 200 ms


def speech(models: ModelStore) -> tuple[np.ndarray, list[Span]]:
    piper = PiperBackend(models.resolve("piper-joe-medium"))
    piper.load()
    samples, spans, offset = [], [], 0
    for chunk in piper.synthesize(TEXT, voice=VoiceSettings(variation=0.0, timing_variation=0.0)):
        spans += [Span(p.phoneme, offset + p.start_sample, offset + p.end_sample) for p in chunk.phonemes]
        samples.append(chunk.samples)
        offset += len(chunk.samples)
    pcm = (np.clip(np.concatenate(samples), -1, 1) * 32767).astype(np.int16)
    return pcm, spans


def plans(renderer: Renderer, pcm: np.ndarray, spans: list[Span], frames: int) -> list[FramePlan]:
    plan = SpeechPlan(face_height=renderer.rig.face_height, loop_start=0, rest_opening=None)
    plan.add_spans(spans)
    plan.add_audio(0, pcm)
    steps = plan.ready(final=True)
    return [steps[k % len(steps)] for k in range(frames)]


def render_fps(renderer: Renderer, steps: list[FramePlan], runs: int) -> list[float]:
    width, height = renderer.size
    out = np.empty((height, width, 3), np.uint8)
    slot = np.empty_like(out)  # a ring slot: the frame is copied once more on its way out
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        for step in steps:
            renderer.render(out, step.shape, step.pose, step.blink)
            np.copyto(slot, out)
        rates.append(len(steps) / (time.perf_counter() - started))
    return rates


def first_frame_ms(
    renderer: Renderer, pcm: np.ndarray, spans: list[Span], ring: FrameRing, repeats: int
) -> list[float]:
    """A turn's first 200 ms chunk arrives: plan it, render the first frame, write it into the ring."""
    width, height = renderer.size
    rest = renderer.rig.rest_gap / (FULL_GAP * renderer.rig.mouth_width)
    latencies = []
    for k in range(repeats):
        out = np.empty((height, width, 3), np.uint8)
        started = time.perf_counter()
        plan = SpeechPlan(face_height=renderer.rig.face_height, loop_start=k * 7, rest_opening=rest)
        plan.add_spans([s for s in spans if s.start_sample < CHUNK_SAMPLES * 2])
        plan.add_audio(0, pcm[:CHUNK_SAMPLES])
        first = plan.ready()[0]
        renderer.render(out, first.shape, first.pose, first.blink)
        ring.write(out.data, pts=first.sample_index)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "var" / "mynah.toml")
    parser.add_argument("--frames", type=int, default=300, help="frames per run (default 300: 10 s of video)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--core", type=int, default=0, help="the one CPU core to run on")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "lipsync.json")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    cv2.setNumThreads(1)
    config = load_config(args.config)
    models = ModelStore(config.paths.models_dir)
    finder = FaceFinder(models.resolve("mediapipe-face"))
    pcm, spans = speech(models)
    results: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, pinned to core {args.core}",
        "speech_s": round(len(pcm) / 48000, 2),
        "frames_per_run": args.frames,
        "runs": args.runs,
    }
    original = cv2.imread(str(DEFAULT_AVATAR))
    with tempfile.TemporaryDirectory() as runtime:
        ring = FrameRing.create(Path(runtime), "bench", "frames", slots=8, slot_bytes=1024 * 1024 * 3)
        try:
            for side in (512, 1024):
                image = cv2.resize(original, (side, side), interpolation=cv2.INTER_CUBIC)
                if original.shape[0] == side:
                    image = original
                ok, png = cv2.imencode(".png", image)
                assert ok
                avatar = prepare_avatar(png.tobytes(), finder, max_resolution=1024, max_bytes=64 << 20)
                started = time.perf_counter()
                rig = build_rig(avatar.image, avatar.mesh)
                rig_s = time.perf_counter() - started
                renderer = Renderer(rig)
                steps = plans(renderer, pcm, spans, args.frames)
                rates = render_fps(renderer, steps, args.runs)
                latencies = first_frame_ms(renderer, pcm, spans, ring, 30)
                head = rig.head
                fps = statistics.median(rates)
                results[str(side)] = {
                    "fps_median": round(fps, 1),
                    "fps_runs": [round(r, 1) for r in rates],
                    "real_time_factor": round(FPS / fps, 3),  # seconds of rendering per second of video
                    "first_frame_ms_median": round(statistics.median(latencies), 2),
                    "first_frame_ms_p95": round(percentile(latencies, 0.95), 2),
                    "head_box_px": [head.x1 - head.x0, head.y1 - head.y0],
                    "head_box_share": round((head.x1 - head.x0) * (head.y1 - head.y0) / side**2, 3),
                    "rig_build_s": round(rig_s, 2),
                    "frame_samples": FRAME_SAMPLES,
                }
                print(f"{side}x{side}: {fps:.0f} fps (runs {', '.join(f'{r:.0f}' for r in rates)}), real-time factor "
                      f"{FPS / fps:.3f}; first frame {statistics.median(latencies):.1f} ms median, "
                      f"{percentile(latencies, 0.95):.1f} ms p95; rig built in {rig_s:.1f} s", flush=True)  # fmt: skip
        finally:
            ring.unlink()
            ring.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    r512, r1024 = results["512"], results["1024"]
    assert isinstance(r512, dict)
    assert isinstance(r1024, dict)
    print(f"wrote {args.out}")
    print(f"fps_512={r512['fps_median']} fps_1024={r1024['fps_median']} "
          f"first_frame_ms={r512['first_frame_ms_median']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
