"""What the coordinator counts for GET /metrics: stage latencies, turn outcomes, and each program's resources.

Latencies come from the timings the stages already report (a chat turn's TurnTimings, a transcript's
SttTimings, SpeakDone, AnimateDone, VideoRendered); the histograms are plain bucket counts here, rendered in
Prometheus text by the gateway (appliance/gateway/metrics.py). Resources are read when asked: RSS and CPU
seconds per program (its process and its children, through psutil) and VRAM per program (NVML, when a GPU is
there). Counters start at zero with the coordinator; Prometheus reads a restart as a counter reset.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Callable, Mapping

import psutil

from appliance.coordinator.gpu import MIB, GpuSnapshot, GpuUnavailable, NvmlMeter
from appliance.coordinator.programs import ProgramTable
from ipc.messages import (
    AnimateDone,
    FinalTranscript,
    Message,
    MetricsReport,
    ProgramUsage,
    SpeakDone,
    StageLatency,
    TranscriptResult,
    TurnTimings,
    VideoRendered,
)

log = logging.getLogger(__name__)

# Seconds; from a first token (tens of ms) to a long render (minutes).
LATENCY_BOUNDS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class LatencyHistogram:
    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS) -> None:
        self.bounds = bounds
        self._buckets = [0] * len(bounds)  # not cumulative: the first bound each value fits under
        self.count = 0
        self.sum_s = 0.0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        index = bisect.bisect_left(self.bounds, seconds)
        if index < len(self.bounds):
            self._buckets[index] += 1
        self.count += 1
        self.sum_s += seconds

    def cumulative(self) -> tuple[int, ...]:
        total, out = 0, []
        for n in self._buckets:
            total += n
            out.append(total)
        return tuple(out)


class TurnMetrics:
    """Stage latencies and turn outcomes, fed by the routers as turns end."""

    def __init__(self) -> None:
        self._stages: dict[str, LatencyHistogram] = {}
        self.outcomes: Counter[str] = Counter()

    def observe(self, stage: str, seconds: float) -> None:
        self._stages.setdefault(stage, LatencyHistogram()).observe(seconds)

    def chat_turn(self, outcome: str, timings: TurnTimings | None = None) -> None:
        """A chat turn ended: `ok`, `cancelled`, `client-gone`, or `failed`; timings when it was answered."""
        self.outcomes[outcome] += 1
        if timings is not None:
            self.observe("chat_queue", timings.queue_s)
            self.observe("llm_first_token", timings.first_token_s)
            self.observe("chat_total", timings.total_s)

    def worker_reply(self, message: Message) -> None:
        """The latencies a worker's reply carries (any other message is ignored)."""
        match message:
            case TranscriptResult():
                self.observe("stt_file_decode", message.timings.decode_s)
                self.observe("stt_file_total", message.timings.total_s)
            case FinalTranscript():
                self.observe("stt_final_decode", message.decode_s)
                self.observe("stt_end_to_final", message.at - message.end_detected_at)
            case SpeakDone() if not message.cancelled and message.first_audio_s > 0:
                self.observe("tts_first_audio", message.first_audio_s)
            case AnimateDone() if not message.cancelled and message.frames:
                self.observe("lipsync_first_frame", message.first_frame_s)
            case VideoRendered():
                self.observe("video_render", message.render_s)

    def stages(self) -> tuple[StageLatency, ...]:
        return tuple(
            StageLatency(name, h.bounds, h.cumulative(), h.count, h.sum_s) for name, h in sorted(self._stages.items())
        )


def process_usage(pid: int) -> tuple[int, float]:
    """RSS bytes and CPU seconds (user + system) of a process and its children; (0, 0.0) when it is gone."""
    if pid <= 0:
        return 0, 0.0
    rss, cpu = 0, 0.0
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0.0
    for process in family:
        try:
            with process.oneshot():
                times = process.cpu_times()
                rss += process.memory_info().rss
                cpu += times.user + times.system
        except psutil.Error:
            continue  # a child that ended between the listing and the reading
    return rss, cpu


def family_pids(pid: int) -> set[int]:
    if pid <= 0:
        return set()
    try:
        return {pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))}
    except psutil.Error:
        return {pid}


class GpuReader:
    """NVML opened once, on first use; a box without a GPU (or NVML) says so once and is never asked again."""

    def __init__(self, index: int, open_meter: Callable[[int], NvmlMeter] = NvmlMeter) -> None:
        self._index = index
        self._open = open_meter
        self._meter: NvmlMeter | None = None
        self._absent = False

    def snapshot(self) -> GpuSnapshot | None:
        if self._absent:
            return None
        try:
            if self._meter is None:
                self._meter = self._open(self._index)
            return self._meter.snapshot()
        except GpuUnavailable as err:
            log.info("no GPU metrics: %s", err)
            self._absent = True
            return None
        except Exception as err:  # NVML errors after a good start (driver reset): report no GPU this time
            log.warning("reading the GPU failed: %s", err)
            return None

    def close(self) -> None:
        if self._meter is not None:
            self._meter.close()


def build_report(
    programs: ProgramTable,
    turns: TurnMetrics,
    gpu: GpuSnapshot | None,
    *,
    usage: Callable[[int], tuple[int, float]] = process_usage,
    family: Callable[[int], set[int]] = family_pids,
    data_bytes: int = -1,
    data_quota_bytes: int = 0,
    janitor_removed: Mapping[str, int] | None = None,
) -> MetricsReport:
    rows = []
    attributed = 0.0
    for name in programs.names():
        record = programs[name]
        running = record.state == "RUNNING" and record.pid > 0
        rss, cpu = usage(record.pid) if running else (0, 0.0)
        vram_mib = 0.0
        if gpu is not None and running:
            vram_mib = sum(gpu.processes.get(pid, 0.0) for pid in family(record.pid))
            attributed += vram_mib
        rows.append(
            ProgramUsage(
                name=name, state=record.state, ready=record.ready and record.state == "RUNNING", pid=record.pid,
                backend=record.backend, model=record.model, restarts=record.restarts, drops=dict(record.drops),
                rss_bytes=rss, cpu_s=cpu, vram_bytes=int(vram_mib * MIB),
            )
        )  # fmt: skip
    return MetricsReport(
        programs=tuple(rows),
        stages=turns.stages(),
        turns=dict(turns.outcomes),
        gpu_total_bytes=int(gpu.total_mib * MIB) if gpu else 0,
        gpu_used_bytes=int(gpu.used_mib * MIB) if gpu else 0,
        gpu_unattributed_bytes=int(max(0.0, gpu.used_mib - attributed) * MIB) if gpu else 0,
        data_bytes=data_bytes,
        data_quota_bytes=data_quota_bytes,
        janitor_removed=dict(janitor_removed or {}),
    )
