"""Soak: sessions holding spoken conversations for a long while, watching what wears: turns lost, errors, latency
over time, every program's memory, and shared memory.

`--sessions N` speakers (default 3) talk at once over WS /voice-chat (tests/voice_client.py: the microphone in
real time, the reply played at its real rate), each asking bench/latency.py's questions one after another, with
a short pause, for `--minutes` (default 30). A call that breaks is reopened on the same conversation. Every
`--sample-s` seconds (default 10) it reads each program's RSS (GET /api/status) and the size of the appliance's
shared-memory segments (/dev/shm/mynah-<runtime tag>-*).

Reported (soak.json, soak.png and a summary on stdout):
  - turns asked, done, and lost (asked but never ended: an answer that did not come within `--turn-timeout-s`),
    and errors by code;
  - first audio and whole-turn latency p50/p95 per window of `--window-min` minutes (default 5);
  - each program's RSS from minute `--settle-min` (default 5) to the end: its growth along a robust trend line
    (Theil-Sen: a program whose RSS swings with each request does not read as growing or shrinking from where
    the swing stands in the last minute), in % of the line's value at the start, and the largest;
  - on this machine, each program's own memory too (RSS less the shared-memory pages it touched; `own_rss`) and
    its growth, measured the same way;
  - shared memory over time.
The last line is machine-readable:

    turns_done=N turns_lost=N errors=N max_rss_growth_pct=X max_own_rss_growth_pct=X shm_growth_bytes=N

By default it starts its own appliance (a temporary folder, a free port, models from var/models) and keeps its
logs in the output folder (logs/); `--url` and `--token` soak one that is already running (its shared memory is
then every mynah-* segment).

    .venv/bin/python bench/soak.py --minutes 30
    .venv/bin/python bench/soak.py --minutes 2 --settle-min 0.5 --window-min 0.5   # the short form the tests run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.latency import (  # noqa: E402 - the soak drives turns exactly as the latency bench does
    LEAD_S,
    QUESTIONS,
    SETTLE_S,
    TAIL_S,
    ConnectFailed,
    Connection,
    WsTransport,
    percentile,
    turn_row,
)
from ipc.paths import segment_prefix  # noqa: E402
from tests.conftest import start_appliance, stop_appliance  # noqa: E402
from tests.speech import Clip, pad, synthesize  # noqa: E402

SHM = Path("/dev/shm")  # noqa: S108 - POSIX shared memory, not a temporary file
REPLY_CAP = "max_tokens = 40\nmax_sentences = 2\n"


@dataclass
class Sample:
    at_min: float
    rss: dict[str, int]
    shm_bytes: int
    shm_segments: int
    # RSS less the shared-memory pages the program has touched (an appliance on this machine only, else empty)
    own: dict[str, int] = field(default_factory=dict)


@dataclass
class Soak:
    t0: float
    deadline: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def minutes(self) -> float:
        return (time.monotonic() - self.t0) / 60


def own_rss(pid: int) -> int | None:
    """A process's and its children's RSS less their shared-memory pages (/proc's RssAnon + RssFile): what the
    program itself holds. The rings' pages are shared memory, counted once under `shm_bytes`; a reader's RSS counts
    whichever of their pages it happens to have touched, so its RSS moves with the traffic, not with a leak (the
    gateway's by 24 MiB, the frames it read of the face's ring, from one sample to the next)."""
    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for process in family:
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{process.pid}/status").read_text().splitlines())
        except (OSError, ValueError):
            continue
        total += sum(int(fields.get(key, "0 kB").split()[0]) * 1024 for key in ("RssAnon", "RssFile"))
    return total


def shm_use(prefix: str) -> tuple[int, int]:
    sizes = [p.stat().st_size for p in SHM.iterdir() if p.name.startswith(prefix)] if SHM.is_dir() else []
    return sum(sizes), len(sizes)


async def sample_forever(soak: Soak, http: httpx.AsyncClient, prefix: str, every_s: float, *, local: bool) -> None:
    while True:
        rss: dict[str, int] = {}
        own: dict[str, int] = {}
        try:
            status = (await http.get("/api/status")).json()
            programs = [p for p in status.get("programs", []) if p.get("rss_bytes")]
            rss = {p["name"]: int(p["rss_bytes"]) for p in programs}
            if local:
                own = {p["name"]: found for p in programs if p.get("pid") and (found := own_rss(int(p["pid"])))}
        except (httpx.HTTPError, ValueError) as err:
            print(f"status unreadable at {soak.minutes():.1f} min: {err}", flush=True)
        used, count = shm_use(prefix)
        soak.samples.append(Sample(round(soak.minutes(), 3), rss, used, count, own))
        await asyncio.sleep(every_s)


async def speaker(soak: Soak, transport: WsTransport, session: int, clips: list[Clip], gap_s: float,
                  timeout_s: float) -> None:  # fmt: skip
    """Ask question after question until the deadline; a broken call is reopened on the same conversation."""
    connection: Connection | None = None
    session_id: str | None = None
    asked = session  # speakers start at different questions
    while time.monotonic() < soak.deadline:
        clip = clips[asked % len(clips)]
        asked += 1
        row: dict[str, Any] = {"session": session, "at_min": round(soak.minutes(), 3), "question": clip.text}
        try:
            if connection is None or connection.broken:
                if connection is not None:
                    await connection.close()
                connection = await transport.connect(session_id, "streamed")
                session_id = connection.session_id
                await asyncio.sleep(SETTLE_S)
            said = connection.say(clip)
            row.update(turn_row(await connection.wait_turn(said, timeout_s)))
        except ConnectFailed as err:
            row.update({"status": "error", "code": err.code})
            await asyncio.sleep(2.0)
        except Exception as err:  # a turn's failure is a result; the soak goes on
            row.update({"status": "error", "code": type(err).__name__, "detail": str(err)[:200]})
            if connection is not None:
                connection.broken = True
        soak.rows.append(row)
        await asyncio.sleep(gap_s)
    if connection is not None:
        await connection.close()


def windows(rows: list[dict[str, Any]], width_min: float) -> list[dict[str, Any]]:
    out = []
    last = max((r["at_min"] for r in rows), default=0.0)
    start = 0.0
    while start <= last:
        mine = [r for r in rows if start <= r["at_min"] < start + width_min]
        done = [r for r in mine if r.get("status") == "done"]
        row: dict[str, Any] = {"from_min": round(start, 2), "turns": len(mine), "done": len(done)}
        for stage in ("first_audio", "end"):
            values = [r["ms"][stage] for r in done if r.get("ms", {}).get(stage) is not None]
            row[stage] = {"p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95)} if values else None
        out.append(row)
        start += width_min
    return out


def rss_growth(samples: list[Sample], settle_min: float, measure: str = "rss") -> dict[str, float]:
    """Per program: % growth of its RSS (`measure`: "rss", or "own" for RSS less shared-memory pages) from minute
    `settle_min` to the end, along its trend line (trend_growth)."""
    read = [(s.at_min, getattr(s, measure)) for s in samples if s.at_min >= settle_min]
    growth = {}
    for name in sorted({n for _, values in read for n in values}):
        found = trend_growth([(at, float(values[name])) for at, values in read if name in values])
        if found is not None:
            growth[name] = round(found, 2)
    return growth


def trend_growth(points: list[tuple[float, float]], most: int = 1000) -> float | None:
    """The rise of the Theil-Sen line through `points` (its slope the median of the slopes between every two
    points; at most `most`, evenly thinned) from the first point's time to the last, in % of its value at the
    first. The stt's RSS swings by 60-80 MiB with each utterance, so medians over the first and the last minute
    measured its "growth" anywhere from -15% to +19% in 30-minute runs whose floor and peaks stayed level; the
    line reads 0.1-0.7% for it, and 4.4-5.9% for a gateway that grew a steady 0.33 MiB a minute."""
    if len(points) < 2:
        return None
    chosen = np.asarray(points, float)[np.linspace(0, len(points) - 1, min(len(points), most)).round().astype(int)]
    t, y = chosen[:, 0], chosen[:, 1]
    i, j = np.triu_indices(len(t), 1)
    apart = t[j] > t[i]
    if not apart.any():
        return None
    slope = float(np.median((y[j] - y[i])[apart] / (t[j] - t[i])[apart]))
    at_start = float(np.median(y - slope * t)) + slope * t[0]
    return float(100.0 * slope * (t[-1] - t[0]) / at_start) if at_start > 0 else None


def chart(path: Path, soak: Soak, table: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, rss, shm) = plt.subplots(3, 1, figsize=(12, 12), sharex=True)
    done = [r for r in soak.rows if r.get("status") == "done"]
    lat.scatter([r["at_min"] for r in done], [r["ms"]["first_audio"] for r in done], s=8, label="first audio")
    lat.scatter([r["at_min"] for r in done], [r["ms"]["end"] for r in done], s=8, label="whole turn")
    failed = [r for r in soak.rows if r.get("status") != "done"]
    if failed:
        lat.scatter([r["at_min"] for r in failed], [0] * len(failed), marker="x", color="red", label="failed/lost")
    lat.set_ylabel("ms from the end of speech")
    lat.legend()
    lat.set_title(title)
    # A program's own memory where it was measured (the bound's subject), else its RSS with shared pages.
    measure = "own" if any(s.own for s in soak.samples) else "rss"
    names = sorted({n for s in soak.samples for n in getattr(s, measure)})
    for name in names:
        points = [(s.at_min, v[name] / 2**20) for s in soak.samples if name in (v := getattr(s, measure))]
        rss.plot([p[0] for p in points], [p[1] for p in points], label=name)
    rss.set_ylabel("RSS less shared memory (MiB)" if measure == "own" else "RSS (MiB)")
    rss.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    shm.plot([s.at_min for s in soak.samples], [s.shm_bytes / 2**20 for s in soak.samples])
    shm.set_ylabel("shared memory (MiB)")
    shm.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


async def run(args: argparse.Namespace, url: str, token: str, prefix: str, *, local: bool) -> Soak:
    clips = [pad(synthesize(q, "piper"), LEAD_S, TAIL_S) for q in QUESTIONS]
    t0 = time.monotonic()
    soak = Soak(t0, t0 + args.minutes * 60)
    transport = WsTransport(url, token, None)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http:
        sampler = asyncio.create_task(sample_forever(soak, http, prefix, args.sample_s, local=local))
        speakers = [
            asyncio.create_task(speaker(soak, transport, i, clips, args.gap_s, args.turn_timeout_s))
            for i in range(args.sessions)
        ]
        reporter = asyncio.create_task(report_progress(soak))
        await asyncio.gather(*speakers)
        for task in (sampler, reporter):
            task.cancel()
    return soak


async def report_progress(soak: Soak) -> None:
    while True:
        await asyncio.sleep(60)
        done = sum(1 for r in soak.rows if r.get("status") == "done")
        print(f"{soak.minutes():5.1f} min: {len(soak.rows)} turns, {done} done", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--gap-s", type=float, default=1.0, help="pause between a reply and the next question")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--settle-min", type=float, default=5.0, help="RSS growth is measured from here")
    parser.add_argument("--window-min", type=float, default=5.0)
    parser.add_argument("--turn-timeout-s", type=float, default=90.0)
    parser.add_argument("--url", help="soak a running appliance instead of starting one")
    parser.add_argument("--token", default=os.environ.get("MYNAH_TOKEN", ""))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.url and not args.token:
        parser.error("--url needs --token (or $MYNAH_TOKEN)")
    out = args.out or ROOT / "var" / "bench" / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    appliance = None if args.url else start_appliance(f"[llm.reply]\n{REPLY_CAP}")
    try:
        url, token = (args.url, args.token) if appliance is None else (appliance.url, appliance.token)
        prefix = "mynah-" if appliance is None else segment_prefix(appliance.home / "run")
        local = appliance is not None or httpx.URL(url).host in ("127.0.0.1", "localhost", "::1")
        soak = asyncio.run(run(args, url, token, prefix, local=local))
    finally:
        if appliance is not None:
            # Its logs outlive it: a slow turn is explained there (the llm logs every long prefill).
            if (appliance.home / "log").is_dir():
                shutil.copytree(appliance.home / "log", out / "logs", dirs_exist_ok=True)
            stop_appliance(appliance)
    rows = soak.rows
    done = [r for r in rows if r.get("status") == "done"]
    lost = [r for r in rows if r.get("code") in ("timeout", "TimeoutError")]
    errors = Counter(str(r.get("code")) for r in rows if r.get("status") != "done")
    growth = rss_growth(soak.samples, args.settle_min)
    own_growth = rss_growth(soak.samples, args.settle_min, "own")
    settled = [s for s in soak.samples if s.at_min >= args.settle_min] or soak.samples
    shm_growth = (settled[-1].shm_bytes - settled[0].shm_bytes) if settled else 0
    table = windows(rows, args.window_min)
    summary = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
        "minutes": args.minutes, "sessions": args.sessions,
        "turns": len(rows), "done": len(done), "lost": len(lost), "errors": dict(errors),
        "windows": table, "rss_growth_pct": growth, "own_rss_growth_pct": own_growth, "shm_growth_bytes": shm_growth,
        "shm_bytes_last": soak.samples[-1].shm_bytes if soak.samples else 0,
    }  # fmt: skip
    (out / "soak.json").write_text(json.dumps({"summary": summary, "rows": rows,
                                               "samples": [s.__dict__ for s in soak.samples]}, indent=1))  # fmt: skip
    chart(out / "soak.png", soak, table, f"soak: {args.sessions} sessions, {args.minutes:g} min")
    print(f"\n{len(rows)} turns, {len(done)} done, {len(lost)} lost; errors {dict(errors) or 'none'}")
    for w in table:
        fa, end = w["first_audio"] or {}, w["end"] or {}
        print(f"  from {w['from_min']:5.1f} min: {w['done']}/{w['turns']} done, first audio p50 "
              f"{fa.get('p50_ms')} ms p95 {fa.get('p95_ms')} ms, whole turn p50 {end.get('p50_ms')} ms")  # fmt: skip
    print("  RSS growth from minute", args.settle_min, "(%):", growth)
    print("  RSS less shared-memory pages, growth from minute", args.settle_min, "(%):", own_growth or "not measured")
    print(f"  shared memory: {summary['shm_bytes_last']} bytes at the end, {shm_growth:+d} since settling")
    print(f"  written to {out}")
    worst = max(growth.values(), default=0.0)
    worst_own = max(own_growth.values(), default=0.0)
    print(f"turns_done={len(done)} turns_lost={len(lost)} errors={sum(errors.values())} "
          f"max_rss_growth_pct={worst} max_own_rss_growth_pct={worst_own} shm_growth_bytes={shm_growth}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
