"""End-to-end latency of live voice chat: from the TRUE end of the user's speech to what the user gets back.

It drives turns through the running appliance as a real client does, over both transports: `ws` is
WS /voice-chat (tests/voice_client.py: the microphone in real time, 20 ms at a time; the reply played at its
real rate, with playback reports), `webrtc` is POST /api/webrtc/offer (tests/webrtc_client.py, aiortc on both
ends; the appliance the bench starts offers loopback candidates only). The next question comes only once the
answer has been heard. The questions are short ones with short answers, spoken by a synthesizer
(tests/speech.py), so where each clip's speech truly ends is known on the stream's clock; the replies are capped
(`[llm.reply] max_tokens` / `max_sentences`, set on the appliance the bench starts). Measured per turn, at the
client, from the true end of speech:
  - final:       the final transcript's arrival (the `final` event)
  - first_token: the reply's first text (the first `reply` event: the LLM's first token)
  - first_audio: the first chunk of the reply's speech (webrtc: the audio frame holding its first sample)
  - first_frame: the first video frame of the talking face (webrtc: the first video frame at or after that
                 sample on the tracks' shared clock, where the face replaces the idle loop)
  - end:         the turn's end (`turn_end`: transcript, reply, speech and video all done): the whole turn
and reported as p50/p95 per transport, per pipeline and (with `--sessions N`) per session, whose worst p50 shows
whether a session was starved. Sessions start at staggered random offsets (`--stagger`, `--seed`) and pause a
random while between turns (`--gap`).

`--sequential` also runs the same models with each stage waiting for the whole output of the previous one
(`pipeline=sequential`, a WS /voice-chat option: the reply complete before synthesis, all speech synthesized
before it goes to the face and the client), and reports the ratio of the first-audio medians.

This machine is shared, so what is compared is measured interleaved: each speaker asks every question once per
lane (ws streamed, ws sequential, webrtc streamed), the lanes' order turning from question to question, on one
call at a time (a new call, resuming the same conversation, when the lane changes). `--runs N` is turns per
session and lane.

By default it starts its own appliance (in a temporary folder, on a free port, models from var/models) with the
reply cap, and stops it afterwards; `--url` measures one that is already running instead (its own cap applies).
A turn that fails, is cut or times out is counted (by code) and left out of the percentiles; the run goes on.
Without tests/webrtc_client.py (or aiortc), `--transport webrtc` and `both` stop with a message before anything
starts. Writes latency.json and latency.png to `--out` (default var/bench/latency-<timestamp>/). The last line
is machine-readable; its p50s pool the streamed turns of every session and transport, its ratio compares the
transports that ran both pipelines:

    first_audio_p50_ms=N first_frame_p50_ms=N sequential_first_audio_ratio=X

    .venv/bin/python bench/latency.py --runs 6 --sequential
    .venv/bin/python bench/latency.py --sessions 3 --runs 4 [--transport ws]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import os
import platform
import random
import ssl
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_appliance, stop_appliance  # noqa: E402 - the bench reuses the test harness
from tests.speech import Clip, corpus_wer, pad, synthesize  # noqa: E402
from tests.voice_client import SessionRefused, VoiceClient  # noqa: E402

STAGES = ("final", "first_token", "first_audio", "first_frame", "end")
STAGE_NAMES = {
    "final": "final transcript",
    "first_token": "first LLM token",
    "first_audio": "first TTS audio",
    "first_frame": "first video frame",
    "end": "whole turn (turn_end)",
}
PIPELINES = ("streamed", "sequential")
TRANSPORTS = ("ws", "webrtc")
# On this 2-core CPU (the targets): one session, and three at once.
TARGETS_MS = {"first_audio_p50": 2000, "first_frame_p50": 2100, "first_audio_p50_3_sessions": 3000}
# Questions a person asks a voice assistant; the embedded model answers each in one or two spoken sentences of
# 5-17 words (a longer answer is where streaming pays: its first clause is spoken while the rest is written).
# A session asks them in turn (the same one for both pipelines of a pair).
QUESTIONS = (
    "What is a volcano?",
    "What is the capital of France?",
    "Tell me about dogs.",
    "How many days are in a week?",
    "How does rain form?",
    "What is the capital of Italy?",
    "What is a computer?",
    "How many legs does a spider have?",
    "Tell me about the moon.",
    "What do bees make?",
    "Why is the sky blue?",
    "What animal says moo?",
)
LEAD_S = 0.5  # silence before each question
TAIL_S = 0.2  # and after it (the client then sends silence on its own)
SETTLE_S = 0.5  # after connecting, before speaking


# --- what one turn gives ----------------------------------------------------------------------------------------


@dataclass
class Arrivals:
    """One turn as the client saw it: monotonic arrival times (None: never came) and how it ended."""

    speech_end_at: float
    turn_no: int
    status: str = "timeout"  # done | interrupted | failed | timeout | closed | error
    code: str = ""
    final_at: float | None = None
    first_token_at: float | None = None
    first_audio_at: float | None = None
    first_frame_at: float | None = None
    end_at: float | None = None
    played_at: float | None = None  # the simulated speaker reached the reply's end
    transcript: str = ""
    reply: str = ""
    reply_audio_s: float = 0.0
    frames: int = 0
    dropped_frames: int = 0
    trace: dict[str, float] = field(default_factory=dict)  # the server's, from its *detected* end of speech
    error_events: list[str] = field(default_factory=list)

    def stage_ms(self) -> dict[str, float | None]:
        arrivals = {
            "final": self.final_at,
            "first_token": self.first_token_at,
            "first_audio": self.first_audio_at,
            "first_frame": self.first_frame_at,
            "end": self.end_at,
            "played": self.played_at,
        }
        return {k: None if t is None else round((t - self.speech_end_at) * 1000, 1) for k, t in arrivals.items()}


@dataclass
class Said:
    speech_end_at: float  # monotonic: when the utterance's speech truly ends on the stream's clock
    turn_no: int  # the turn it should start
    mark: int  # events before it


class Connection(Protocol):
    """One live voice call: speak an utterance, wait for the turn it starts, give its arrival times."""

    session_id: str
    pipeline: str
    broken: bool

    def say(self, clip: Clip) -> Said: ...

    async def wait_turn(self, said: Said, within: float) -> Arrivals: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    name: str
    pipelines: tuple[str, ...]  # the pipelines it can ask for

    async def connect(self, session_id: str | None, pipeline: str) -> Connection: ...


class ConnectFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


# --- the WebSocket transport (WS /voice-chat) -----------------------------------------------------------------


class WsConnection:
    def __init__(self, client: VoiceClient, pipeline: str) -> None:
        self.client = client
        self.pipeline = pipeline
        self.session_id = str(client.session["session_id"])
        self.next_turn = int(client.session.get("turns", 0)) + 1
        self.broken = False

    def say(self, clip: Clip) -> Said:
        mark = len(self.client.events)
        spoken = self.client.say(clip.samples, clip.speech_end_s)
        return Said(spoken.speech_end_at, self.next_turn, mark)

    async def wait_turn(self, said: Said, within: float) -> Arrivals:
        client, turn_no = self.client, said.turn_no

        def heard() -> dict[str, Any] | None:  # as VoiceClient.turn_heard, or the call closed
            if client.closed is not None:
                return {"status": "closed", "code": str(client.closed.get("reason", ""))}
            end = turn_event(client.events, "turn_end", turn_no)
            if end is None or end["status"] != "done" or end["samples"] == 0:
                return end
            turn = client.turns.get(turn_no)
            return end if turn is not None and (turn.finished_at or turn.stopped_at) else None

        result = await wait_heard(self, client.wait_for, client.events, heard, said, within)
        media = client.turns.get(turn_no)
        if media is not None:
            if media.audio:
                result.first_audio_at = min(arrival for _, _, arrival in media.audio)
            if media.frames:
                result.first_frame_at = min(arrival for _, arrival, _ in media.frames)
            result.frames = len(media.frames)
            result.played_at = media.finished_at or None
        await settle(self, client.wait_for, client.events, turn_no)
        return result

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close(), 15)


class WsTransport:
    name = "ws"
    pipelines: tuple[str, ...] = PIPELINES

    def __init__(self, url: str, token: str, ca: Path | None) -> None:
        self.url, self.token, self.ca = url, token, ca

    async def connect(self, session_id: str | None, pipeline: str) -> Connection:
        client = VoiceClient(
            self.url, self.token, ca=self.ca, session_id=session_id, idle=False, extra={"pipeline": pipeline}
        )
        try:
            await asyncio.wait_for(client.__aenter__(), 60)
        except SessionRefused as err:
            raise ConnectFailed(str(err.event.get("code", "session-refused")), str(err)) from err
        except (OSError, TimeoutError) as err:
            raise ConnectFailed("connect-failed", f"{type(err).__name__}: {err}") from err
        return WsConnection(client, pipeline)


# --- the WebRTC transport (POST /api/webrtc/offer) --------------------------------------------------------------


class WebRtcConnection:
    """tests/webrtc_client.py: the reply's audio and video are real-time tracks. A turn's first audio is the
    frame holding the first sample of its speech (the `playout` event's pts); its first frame is the first video
    frame at or after that moment on the shared clock (the face replaces the idle loop there)."""

    pipeline = "streamed"

    def __init__(self, client: Any) -> None:
        self.client = client
        self.session_id = str(client.session["session_id"])
        self.next_turn = int(client.session.get("turns", 0)) + 1
        self.broken = False

    def say(self, clip: Clip) -> Said:
        mark = len(self.client.events)
        spoken = self.client.say(clip.samples, clip.speech_end_s)
        return Said(float(spoken.speech_end_at), self.next_turn, mark)

    async def wait_turn(self, said: Said, within: float) -> Arrivals:
        client, turn_no = self.client, said.turn_no

        def heard() -> dict[str, Any] | None:  # as WebRtcClient.turn_heard, or the call closed
            if client.closed is not None:
                return {"status": "closed", "code": str(client.closed.get("reason", ""))}
            end = turn_event(client.events, "turn_end", turn_no)
            if end is None or end["status"] != "done" or end["samples"] == 0:
                return end
            sync = turn_event(client.events, "av_sync", turn_no)
            if sync is None or not client.audio:
                return None
            last_pts, _, pcm = client.audio[-1]
            return end if last_pts + len(pcm) >= sync["end_pts"] else None

        result = await wait_heard(self, client.wait_for, client.events, heard, said, within)
        playout = turn_event(client.events, "playout", turn_no)
        if playout is not None:
            start = int(playout["pts"])
            result.first_audio_at = min((t for pts, t, pcm in client.audio if pts + len(pcm) > start), default=None)
            result.first_frame_at = min(
                (v.arrival for v in client.video if v.pts * 48_000 // 90_000 >= start), default=None
            )
        sync = turn_event(client.events, "av_sync", turn_no)
        if sync is not None:
            end_pts = int(sync["end_pts"])
            result.frames = int(sync.get("frames", 0))
            result.played_at = min((t for pts, t, pcm in client.audio if pts + len(pcm) >= end_pts), default=None)
        await settle(self, client.wait_for, client.events, turn_no)
        return result

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close(), 15)


class WebRtcTransport:
    name = "webrtc"
    # The offer has no pipeline option: pipeline=sequential is WS /voice-chat's.
    pipelines: tuple[str, ...] = PIPELINES[:1]

    def __init__(self, url: str, token: str, ca: Path | None) -> None:
        self.url, self.token, self.ca = url, token, ca

    async def connect(self, session_id: str | None, pipeline: str) -> Connection:
        webrtc = importlib.import_module("tests.webrtc_client")  # only when asked for: it needs aiortc
        if pipeline != "streamed":
            raise ConnectFailed("unsupported", "the WebRTC offer has no pipeline option")
        client = webrtc.WebRtcClient(self.url, self.token, ca=self.ca, session_id=session_id)
        try:
            await asyncio.wait_for(client.__aenter__(), 60)
        except webrtc.OfferRefused as err:
            raise ConnectFailed(str(err.body.get("code") or f"http-{err.status}"), str(err)) from err
        except (OSError, TimeoutError, httpx.HTTPError) as err:
            raise ConnectFailed("connect-failed", f"{type(err).__name__}: {err}") from err
        return WebRtcConnection(client)


# --- what both transports share ----------------------------------------------------------------------------------


class _Live(Protocol):
    next_turn: int
    broken: bool


def turn_event(events: list[tuple[float, dict[str, Any]]], kind: str, turn_no: int) -> dict[str, Any] | None:
    return next((e for _, e in events if e["type"] == kind and e.get("turn") == turn_no), None)


async def wait_heard(
    live: _Live, wait_for: Any, events: list[tuple[float, dict[str, Any]]], heard: Any, said: Said, within: float
) -> Arrivals:
    """Until the turn was heard (or failed, or the call closed), then what its events say."""
    result = Arrivals(said.speech_end_at, said.turn_no)
    try:
        outcome: dict[str, Any] = await wait_for(heard, within)
        result.status, result.code = str(outcome["status"]), str(outcome.get("code") or "")
    except TimeoutError:
        result.status, result.code = "timeout", "timeout"
    if result.status in ("timeout", "closed"):
        live.broken = True
    after = events[said.mark :]
    final = next(((t, e) for t, e in after if e["type"] == "final" and str(e.get("text", "")).strip()), None)
    if final is not None:
        result.final_at, result.transcript = final[0], str(final[1]["text"]).strip()
    started = next((e for _, e in after if e["type"] == "turn" and e.get("turn") == said.turn_no), None)
    if started is not None:
        turn_id = started.get("turn_id")
        result.first_token_at = next(
            (t for t, e in after if e["type"] == "reply" and e.get("turn_id") == turn_id), None
        )
    ended = next(((t, e) for t, e in after if e["type"] == "turn_end" and e.get("turn") == said.turn_no), None)
    if ended is not None:
        at, end = ended
        result.end_at, result.reply = at, str(end.get("reply", ""))
        result.trace = {k: float(v) for k, v in (end.get("trace") or {}).items()}
        result.reply_audio_s = round(int(end.get("samples", 0)) / 48_000, 2)
        result.dropped_frames = int(end.get("dropped_frames", 0))
    result.error_events = [str(e.get("code", "")) for _, e in after if e["type"] == "error"]
    return result


async def settle(live: _Live, wait_for: Any, events: list[tuple[float, dict[str, Any]]], turn_no: int) -> None:
    """The next turn's number; and when the utterance started another turn too (a transcript split in two), that
    turn's end, so the next question does not cut into it."""
    started = [int(e["turn"]) for _, e in events if e["type"] == "turn"]
    live.next_turn = max([turn_no, *started]) + 1
    if not live.broken:
        with contextlib.suppress(TimeoutError):
            await wait_for(lambda: all(turn_event(events, "turn_end", n) for n in started), 30)


def make_transport(name: str, url: str, token: str, ca: Path | None) -> Transport:
    return WsTransport(url, token, ca) if name == "ws" else WebRtcTransport(url, token, ca)


def webrtc_missing() -> str | None:
    """Why the webrtc transport cannot run here, or None."""
    if not (ROOT / "tests" / "webrtc_client.py").exists():
        return "the webrtc transport needs tests/webrtc_client.py, which is not in this checkout: use --transport ws"
    try:
        importlib.import_module("tests.webrtc_client")
    except ImportError as err:
        return f"the webrtc transport cannot start: tests/webrtc_client.py: {err}"
    return None


# --- sessions -------------------------------------------------------------------------------------------------


@dataclass
class Planned:
    question: str
    transport: str
    pipeline: str
    gap_s: float  # the pause after this turn


async def converse(
    transports: dict[str, Transport],
    session: int,
    plan: list[Planned],
    offset_s: float,
    clips: dict[str, Clip],
    within: float,
    t0: float,
) -> list[dict[str, Any]]:
    """One speaker: after `offset_s`, the planned turns one after another, on one call at a time; a new call,
    resuming the same conversation, when the turn's transport or pipeline differs or the call broke. Never
    raises: a turn that fails is a row with its code."""
    await asyncio.sleep(offset_s)
    rows: list[dict[str, Any]] = []
    connection: Connection | None = None
    lane: tuple[str, str] = ("", "")
    session_id: str | None = None
    for index, planned in enumerate(plan):
        row: dict[str, Any] = {
            "transport": planned.transport,
            "session": session,
            "index": index,
            "pipeline": planned.pipeline,
            "question": planned.question,
            "started_s": round(time.monotonic() - t0, 2),
        }
        try:
            if connection is not None and (lane != (planned.transport, planned.pipeline) or connection.broken):
                await connection.close()
                connection = None
            if connection is None:
                lane = (planned.transport, planned.pipeline)
                connection = await connect(transports[planned.transport], session_id, planned.pipeline)
                session_id = connection.session_id
                await asyncio.sleep(SETTLE_S)
            said = connection.say(clips[planned.question])
            arrivals = await connection.wait_turn(said, within)
            row.update(turn_row(arrivals))
        except ConnectFailed as err:
            row.update({"status": "error", "code": err.code, "detail": str(err)})
        except Exception as err:  # one turn's failure is a result, never the end of the run
            row.update({"status": "error", "code": type(err).__name__, "detail": str(err)[:300]})
            if connection is not None:
                connection.broken = True
        rows.append(row)
        print(progress(row), flush=True)
        await asyncio.sleep(planned.gap_s)
    if connection is not None:
        await connection.close()
    return rows


async def connect(transport: Transport, session_id: str | None, pipeline: str) -> Connection:
    try:
        return await transport.connect(session_id, pipeline)
    except ConnectFailed:
        if session_id is None:
            raise
        return await transport.connect(None, pipeline)  # the conversation cannot be resumed: a new one


def turn_row(arrivals: Arrivals) -> dict[str, Any]:
    row = asdict(arrivals)
    for key in (
        "speech_end_at",
        "final_at",
        "first_token_at",
        "first_audio_at",
        "first_frame_at",
        "end_at",
        "played_at",
    ):
        row.pop(key)
    row["ms"] = arrivals.stage_ms()
    row["_window"] = (arrivals.speech_end_at, arrivals.end_at or arrivals.speech_end_at)  # for the CPU figures
    if arrivals.status != "done":
        row["code"] = arrivals.code or arrivals.status
    return row


def progress(row: dict[str, Any]) -> str:
    who = "warm-up" if row["session"] < 0 else f"s{row['session'] + 1}"
    head = f"  [{row['transport']} {who} #{row['index'] + 1} {row['pipeline']:<10}]"
    if row.get("status") != "done":
        return f"{head} {row.get('status')}: {row.get('code')} {row.get('detail', '')}".rstrip()
    ms = row["ms"]
    stages = " ".join(f"{k}={_fmt(ms.get(k))}" for k in STAGES)
    return f"{head} {stages}  heard {row['transcript']!r} -> {row['reply'][:60]!r}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


# --- where the CPU went ------------------------------------------------------------------------------------


class CpuSampler:
    """Every 0.25 s: the CPU seconds used so far by each appliance program, by this client and by the whole
    machine. A turn's figures are the mean cores each used from its true end of speech to its turn_end; "other"
    is the rest of the machine (other work on a shared box)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self.processes[name] = psutil.Process(pid)
        self.me = psutil.Process()
        self.samples: list[tuple[float, dict[str, float]]] = []

    def sample(self) -> None:
        values: dict[str, float] = {}
        for name, process in self.processes.items():
            with contextlib.suppress(psutil.Error):
                used = process.cpu_times()
                values[name] = used.user + used.system
        mine = self.me.cpu_times()
        values["client"] = mine.user + mine.system
        machine = psutil.cpu_times()
        values["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        self.samples.append((time.monotonic(), values))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.25)

    def cores(self, start: float, end: float) -> dict[str, float]:
        before = [s for s in self.samples if s[0] <= start]
        after = [s for s in self.samples if s[0] >= end]
        if not before or not after or after[0][0] - before[-1][0] < 0.2:
            return {}
        (t0, v0), (t1, v1) = before[-1], after[0]
        rates = {k: (v1[k] - v0[k]) / (t1 - t0) for k in v1 if k in v0}
        rates["other"] = rates.get("machine", 0.0) - sum(v for k, v in rates.items() if k != "machine")
        return {k: round(max(v, 0.0), 3) for k, v in rates.items()}


def cpu_table(rows: list[dict[str, Any]]) -> list[str]:
    """Mean cores per lane, over its finished turns (end of speech -> turn_end)."""
    measured = [r for r in rows if r.get("status") == "done" and r.get("cpu_cores")]
    if not measured:
        return []
    shown = ["gateway", "coordinator", "llm", "stt", "tts", "lipsync", "client", "other", "machine"]
    lines = [
        "",
        "CPU, cores used from the end of speech to turn_end (mean over turns; machine = all of it):",
        f"{'lane':<20}" + "".join(f"{k:>12}" for k in shown),
    ]
    for lane in lanes(measured):
        mine = [r["cpu_cores"] for r in measured if f"{r['transport']} {r['pipeline']}" == lane]
        lines.append(f"{lane:<20}" + "".join(f"{statistics.mean(c.get(k, 0.0) for c in mine):>12.2f}" for k in shown))
    return lines


# --- figures ----------------------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    return round(float(np.percentile(values, share * 100)), 1)


def stage_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r.get("status") == "done"]
    out: dict[str, Any] = {
        "turns": len(rows),
        "done": len(done),
        "errors": dict(Counter(str(r.get("code")) for r in rows if r.get("status") != "done")),
    }
    for stage in (*STAGES, "played"):
        values = [r["ms"][stage] for r in done if r["ms"].get(stage) is not None]
        out[stage] = (
            {"p50_ms": percentile(values, 0.5), "p95_ms": percentile(values, 0.95), "n": len(values)}
            if values
            else {"p50_ms": None, "p95_ms": None, "n": 0}
        )
    return out


def median_of(rows: list[dict[str, Any]], stage: str) -> float:
    values = [r["ms"][stage] for r in rows if r.get("status") == "done" and r["ms"].get(stage) is not None]
    return float(statistics.median(values)) if values else math.nan


def summarize(
    rows: list[dict[str, Any]], transports: list[str], sessions: int, sequential: bool, offsets: list[float]
) -> dict[str, Any]:
    pipelines = PIPELINES if sequential else PIPELINES[:1]
    summary: dict[str, Any] = {}
    for name in transports:
        mine = [r for r in rows if r["transport"] == name]
        ran = [p for p in pipelines if any(r["pipeline"] == p for r in mine)] or ["streamed"]
        per_pipeline = {p: stage_stats([r for r in mine if r["pipeline"] == p]) for p in ran}
        per_session = []
        for session in range(sessions):
            theirs = [r for r in mine if r["session"] == session and r["pipeline"] == "streamed"]
            stats = stage_stats(theirs)
            per_session.append(
                {
                    "session": session + 1,
                    "offset_s": round(offsets[session], 2),
                    "turns": stats["turns"],
                    "done": stats["done"],
                    "errors": stats["errors"],
                    "first_audio": stats["first_audio"],
                    "first_frame": stats["first_frame"],
                    "end": stats["end"],
                }
            )
        measured = [s for s in per_session if s["first_audio"]["p50_ms"] is not None]
        worst = max(measured, key=lambda s: s["first_audio"]["p50_ms"]) if measured else None
        entry: dict[str, Any] = {
            "pipelines": per_pipeline,
            "sessions": per_session,
            "worst_session": None
            if worst is None
            else {
                "session": worst["session"],
                "first_audio_p50_ms": worst["first_audio"]["p50_ms"],
                "done": worst["done"],
                "turns": worst["turns"],
            },
        }
        if "sequential" in ran:
            entry["sequential_first_audio_ratio"] = ratio(mine)
        summary[name] = entry
    return summary


def ratio(rows: list[dict[str, Any]]) -> float:
    streamed = median_of([r for r in rows if r["pipeline"] == "streamed"], "first_audio")
    sequential = median_of([r for r in rows if r["pipeline"] == "sequential"], "first_audio")
    return round(sequential / streamed, 3) if streamed and not math.isnan(streamed) else math.nan


def targets(sessions: int, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, per transport, on its streamed turns. With several sessions, a session is starved
    when it finished fewer than half its turns or its own first-audio p50 misses the target."""
    checks: list[dict[str, Any]] = []
    for name, entry in summary.items():
        streamed = entry["pipelines"]["streamed"]
        wanted = [("first_audio", TARGETS_MS["first_audio_p50"]), ("first_frame", TARGETS_MS["first_frame_p50"])]
        if sessions > 1:
            wanted = [("first_audio", TARGETS_MS["first_audio_p50_3_sessions"])]
        for stage, limit in wanted:
            value = streamed[stage]["p50_ms"]
            checks.append(
                {
                    "transport": name,
                    "what": f"{stage} p50 ms",
                    "value": value,
                    "target": limit,
                    "met": value is not None and value < limit,
                }
            )
        if sessions > 1:
            limit = TARGETS_MS["first_audio_p50_3_sessions"]
            starved = [
                s["session"]
                for s in entry["sessions"]
                if s["done"] < max(1, s["turns"] // 2) or (s["first_audio"]["p50_ms"] or math.inf) >= limit
            ]
            worst = entry["worst_session"]
            checks.append(
                {
                    "transport": name,
                    "what": "worst session's first_audio p50 ms (no session starved)",
                    "value": None if worst is None else worst["first_audio_p50_ms"],
                    "target": limit,
                    "starved_sessions": starved,
                    "met": not starved,
                }
            )
    return checks


# --- output -----------------------------------------------------------------------------------------------------


def tables(summary: dict[str, Any], sessions: int, sequential: bool) -> list[str]:
    lines: list[str] = []
    for name, entry in summary.items():
        pipelines = list(entry["pipelines"])
        lines.append("")
        lines.append(f"transport {name}: ms from the true end of speech (client arrival times)")
        header = f"{'stage':<24}" + "".join(f"{p + ' p50':>16}{'p95':>8}{'n':>4}" for p in pipelines)
        lines.append(header)
        for stage in STAGES:
            cells = "".join(
                f"{_fmt(entry['pipelines'][p][stage]['p50_ms']):>16}"
                f"{_fmt(entry['pipelines'][p][stage]['p95_ms']):>8}"
                f"{entry['pipelines'][p][stage]['n']:>4}"
                for p in pipelines
            )
            lines.append(f"{STAGE_NAMES[stage]:<24}{cells}")
        done = "".join(
            f"{str(entry['pipelines'][p]['done']) + '/' + str(entry['pipelines'][p]['turns']):>16}{'':>12}"
            for p in pipelines
        )
        lines.append(f"{'turns done/run':<24}{done}")
        for p in pipelines:
            if entry["pipelines"][p]["errors"]:
                lines.append(f"  {p} errors: {entry['pipelines'][p]['errors']}")
        if "sequential_first_audio_ratio" in entry:
            lines.append(f"sequential/streamed first audio (medians): {entry['sequential_first_audio_ratio']:.2f}")
        elif sequential:
            lines.append("sequential: not run on this transport (pipeline=sequential is WS /voice-chat's)")
        if sessions > 1:
            lines.append("")
            lines.append(
                f"{'session':<9}{'start s':>8}{'done':>7}{'first_audio p50':>17}{'p95':>7}"
                f"{'first_frame p50':>17}{'p95':>7}{'whole p50':>11}  errors"
            )
            for s in entry["sessions"]:
                lines.append(
                    f"{s['session']:<9}{s['offset_s']:>8.2f}{str(s['done']) + '/' + str(s['turns']):>7}"
                    f"{_fmt(s['first_audio']['p50_ms']):>17}{_fmt(s['first_audio']['p95_ms']):>7}"
                    f"{_fmt(s['first_frame']['p50_ms']):>17}{_fmt(s['first_frame']['p95_ms']):>7}"
                    f"{_fmt(s['end']['p50_ms']):>11}  {s['errors'] or '-'}"
                )
            worst = entry["worst_session"]
            if worst is not None:
                lines.append(
                    f"worst session: {worst['session']}, first audio p50 {_fmt(worst['first_audio_p50_ms'])}"
                    f" ms, {worst['done']}/{worst['turns']} turns done"
                )
    return lines


def chart(
    path: Path, rows: list[dict[str, Any]], summary: dict[str, Any], title: str, sessions: int, sequential: bool
) -> None:
    """Per transport: each stage's p50 bar with its p95 whisker and every turn as a dot (streamed and, with
    --sequential, sequential side by side); and first audio per session (or per turn, with one session)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    colors = {"streamed": "#1f77b4", "sequential": "#ff7f0e"}
    names = list(summary)
    fig, axes = plt.subplots(
        len(names), 2, figsize=(14, 5.2 * len(names)), squeeze=False, gridspec_kw={"width_ratios": [3, 2]}
    )
    for row_axes, name in zip(axes, names, strict=True):
        left, right = row_axes
        pipelines = list(summary[name]["pipelines"])
        mine = [r for r in rows if r["transport"] == name and r.get("status") == "done"]
        width = 0.8 / len(pipelines)
        for k, pipeline in enumerate(pipelines):
            stats = summary[name]["pipelines"][pipeline]
            xs = [i + (k - (len(pipelines) - 1) / 2) * width for i in range(len(STAGES))]
            p50 = [stats[s]["p50_ms"] or 0 for s in STAGES]
            p95 = [stats[s]["p95_ms"] or 0 for s in STAGES]
            left.bar(xs, p50, width * 0.9, color=colors[pipeline], alpha=0.75, label=f"{pipeline} p50")
            left.errorbar(
                xs,
                p50,
                yerr=[[0] * len(xs), [b - a for a, b in zip(p50, p95, strict=True)]],
                fmt="none",
                ecolor="black",
                capsize=4,
                label="p95" if k == 0 else None,
            )
            for x, stage in zip(xs, STAGES, strict=True):
                values = [r["ms"][stage] for r in mine if r["pipeline"] == pipeline and r["ms"].get(stage) is not None]
                left.scatter([x] * len(values), values, s=10, color="black", alpha=0.5, zorder=3)
            for x, value in zip(xs, p50, strict=True):
                if value:
                    left.annotate(
                        f"{value:.0f}",
                        (x, value),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        xytext=(0, 3),
                        textcoords="offset points",
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
                        zorder=4,
                    )
        audio_target = TARGETS_MS["first_audio_p50"] if sessions == 1 else TARGETS_MS["first_audio_p50_3_sessions"]
        targets_label = f"target p50: first audio {audio_target} ms" + (
            f", first frame {TARGETS_MS['first_frame_p50']} ms" if sessions == 1 else ""
        )
        left.hlines(audio_target, 1.6, 2.4, colors="red", linestyles="--", label=targets_label)
        if sessions == 1:
            left.hlines(TARGETS_MS["first_frame_p50"], 2.6, 3.4, colors="red", linestyles="--")
        labels = []
        for stage in STAGES:  # a stage some finished turns lack (no frame arrived before the turn was heard)
            counts = {p: summary[name]["pipelines"][p] for p in pipelines}
            short = [f"{c[stage]['n']}/{c['done']}" for c in counts.values() if c[stage]["n"] < c["done"]]
            labels.append(
                STAGE_NAMES[stage].replace(" (turn_end)", "") + (f"\n(n={', '.join(short)})" if short else "")
            )
        left.set_xticks(range(len(STAGES)), labels)
        left.set_ylabel("ms after the true end of speech")
        left.set_title(f"{name}: per stage, p50 bar, p95 whisker, dots = turns")
        left.legend(fontsize=8, loc="upper left")
        left.grid(axis="y", alpha=0.3)
        if sessions > 1:
            for session in range(sessions):
                values = [
                    r["ms"]["first_audio"]
                    for r in mine
                    if r["session"] == session
                    and r["pipeline"] == "streamed"
                    and r["ms"].get("first_audio") is not None
                ]
                if values:
                    right.boxplot([values], positions=[session + 1], widths=0.5, showfliers=False)
                    right.scatter([session + 1] * len(values), values, s=14, color=colors["streamed"], zorder=3)
            right.axhline(audio_target, color="red", linestyle="--", label=f"target p50 {audio_target} ms")
            right.set_xticks(range(1, sessions + 1), [f"session {s + 1}" for s in range(sessions)])
            right.set_title(f"{name}: first audio per session (streamed)")
        else:
            for pipeline in pipelines:
                points = [
                    (r["index"] + 1, r["ms"]["first_audio"])
                    for r in mine
                    if r["pipeline"] == pipeline and r["ms"].get("first_audio") is not None
                ]
                if points:
                    right.plot(*zip(*points, strict=True), "o-", color=colors[pipeline], label=pipeline)
            right.axhline(audio_target, color="red", linestyle="--", label=f"target p50 {audio_target} ms")
            right.set_xlabel("turn (in the order spoken)")
            right.xaxis.set_major_locator(MaxNLocator(integer=True))
            right.set_xlim(0.5, max([r["index"] + 1 for r in mine], default=1) + 0.5)
            right.set_title(f"{name}: first audio per turn")
        right.set_ylabel("ms after the true end of speech")
        right.set_ylim(bottom=0)
        right.legend(fontsize=8)
        right.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def server_traces(done: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The appliance's own trace medians per lane: seconds from the end of speech it detected."""
    out: dict[str, dict[str, float]] = {}
    for lane in lanes(done):
        mine = [r["trace"] for r in done if f"{r['transport']} {r['pipeline']}" == lane]
        medians = {s: round(statistics.median(v), 4) for s in STAGES if (v := [t[s] for t in mine if s in t])}
        if medians:
            out[lane] = medians
    return out


def lanes(rows: list[dict[str, Any]]) -> list[str]:
    """The transports and pipelines the rows ran, in the order first run."""
    return list(dict.fromkeys(f"{r['transport']} {r['pipeline']}" for r in rows))


def llm_info(url: str, token: str, ca: Path | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
        with httpx.Client(base_url=url, timeout=10, headers=headers, verify=verify) as http:
            programs = http.get("/health").json().get("programs", [])
        llm: dict[str, Any] = next((p for p in programs if p.get("name") == "llm"), {})
        return {"backend": llm.get("backend"), "model": llm.get("model")}
    except (httpx.HTTPError, ValueError, AttributeError):
        return {}


# --- the run ----------------------------------------------------------------------------------------------------


def plans(args: argparse.Namespace, names: list[str], rng: random.Random) -> list[list[Planned]]:
    """Per session, its turns: each question once per lane (a transport and a pipeline it can ask for), the
    lanes' order turning from one question to the next, so every lane sees the same load and conversation."""
    can = {"ws": WsTransport.pipelines, "webrtc": WebRtcTransport.pipelines}
    ways = [(name, p) for name in names for p in can[name] if args.sequential or p == "streamed"]
    out = []
    for session in range(args.sessions):
        plan = []
        for run in range(args.runs):
            question = QUESTIONS[(run + 3 * session) % len(QUESTIONS)]
            turn = (run + session) % len(ways)
            for transport, pipeline in ways[turn:] + ways[:turn]:
                plan.append(Planned(question, transport, pipeline, round(rng.uniform(*args.gap), 2)))
        out.append(plan)
    return out


async def measure(
    transports: dict[str, Transport],
    args: argparse.Namespace,
    clips: dict[str, Clip],
    offsets: list[float],
    session_plans: list[list[Planned]],
    sampler: CpuSampler | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sampling = asyncio.create_task(sampler.run()) if sampler is not None else None
    try:
        return await speak_all(transports, args, clips, offsets, session_plans)
    finally:
        if sampling is not None:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling


async def speak_all(
    transports: dict[str, Transport],
    args: argparse.Namespace,
    clips: dict[str, Clip],
    offsets: list[float],
    session_plans: list[list[Planned]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    warmup: list[dict[str, Any]] = []
    if args.warmup:
        print(f"{args.warmup} warm-up turn(s) per transport, not counted", flush=True)
        plan = [
            Planned(QUESTIONS[-1 - k % 2], name, "streamed", 1.0) for name in transports for k in range(args.warmup)
        ]
        warmup = await converse(transports, -1, plan, 0.0, clips, args.timeout, time.monotonic())
    print(f"{args.sessions} session(s), starting at {', '.join(f'{o:.2f}' for o in offsets)} s", flush=True)
    t0 = time.monotonic()
    speakers = [
        converse(transports, s, session_plans[s], offsets[s], clips, args.timeout, t0) for s in range(args.sessions)
    ]
    found = await asyncio.gather(*speakers)
    return [row for session_rows in found for row in session_rows], warmup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="measure a running appliance instead of starting one")
    parser.add_argument("--token", default="", help="a paired device's token for --url (POST /api/pair)")
    parser.add_argument("--ca", type=Path, help="the appliance's CA certificate, for an https --url")
    parser.add_argument(
        "--transport",
        choices=("ws", "webrtc", "both"),
        default="both",
        help="the client: ws (WS /voice-chat), webrtc (POST /api/webrtc/offer), or both, turn by turn (default both)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=8,
        help="turns per session and lane (a transport and pipeline) (default 8)",
    )
    parser.add_argument("--sessions", type=int, default=1, help="speakers talking at once (default 1)")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="also run pipeline=sequential turns, interleaved, and report the first-audio ratio",
    )
    parser.add_argument(
        "--stagger", type=float, default=4.0, help="sessions start at random offsets in [0, STAGGER) s (default 4)"
    )
    parser.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(0.5, 2.0),
        metavar=("MIN", "MAX"),
        help="random pause after each turn, in s (default 0.5 2.0)",
    )
    parser.add_argument("--seed", type=int, default=1, help="for the offsets and pauses (default 1)")
    parser.add_argument(
        "--voice",
        choices=("piper", "espeak", "festival"),
        default="piper",
        help="the synthesizer that speaks the questions (default piper)",
    )
    parser.add_argument("--max-tokens", type=int, default=40, help="reply cap on the bench's appliance (default 40)")
    parser.add_argument("--max-sentences", type=int, default=2, help="reply cap on the bench's appliance (default 2)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted turns first, per transport (default 1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=90.0,
        help="a turn not heard to its end this many seconds after its question was queued is a timeout (default 90)",
    )
    parser.add_argument(
        "--out", type=Path, help="folder for latency.json and latency.png (default var/bench/latency-<timestamp>/)"
    )
    parser.add_argument(
        "--config",
        default="",
        help="more TOML for the bench's appliance, e.g. '[llm.embedded]\\nn_threads = 1' (for side-by-side runs)",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.sessions < 1:
        parser.error("--runs and --sessions must be at least 1")
    names = ["ws", "webrtc"] if args.transport == "both" else [args.transport]
    if "webrtc" in names and (why := webrtc_missing()) is not None:
        parser.error(why)
    out_dir: Path = args.out or ROOT / "var" / "bench" / f"latency-{time.strftime('%Y%m%d-%H%M%S')}"
    rng = random.Random(args.seed)
    offsets = sorted(rng.uniform(0, args.stagger) for _ in range(args.sessions)) if args.sessions > 1 else [0.0]
    session_plans = plans(args, names, rng)
    questions = sorted({p.question for plan in session_plans for p in plan} | set(QUESTIONS[-2:]))
    clips = {q: pad(synthesize(q, args.voice), LEAD_S, TAIL_S) for q in questions}

    cap = f"max_tokens = {args.max_tokens}\nmax_sentences = {args.max_sentences}\n"
    # As the WebRTC tests do: ICE offers and accepts only loopback candidates, and no STUN server is used.
    loopback = '[webrtc]\nhost_addresses = ["127.0.0.1"]\n' if "webrtc" in names else ""
    extra = args.config.replace("\\n", "\n")
    appliance = None if args.url else start_appliance(f"[llm.reply]\n{cap}{loopback}{extra}\n")
    try:
        url, token, ca = (
            (args.url, args.token, args.ca) if appliance is None else (appliance.url, appliance.token, appliance.ca)
        )
        llm = llm_info(url, token, ca)
        transports = {n: make_transport(n, url, token, ca) for n in names}
        load_before = os.getloadavg()
        started = time.monotonic()
        sampler = None
        if appliance is not None:
            sampler = CpuSampler({p["name"]: p["pid"] for p in appliance.status().get("programs", []) if p.get("pid")})
        rows, warmup = asyncio.run(measure(transports, args, clips, offsets, session_plans, sampler))
        elapsed = time.monotonic() - started
        load_after = os.getloadavg()
    finally:
        if appliance is not None:
            stop_appliance(appliance)

    for row in rows + warmup:
        window = row.pop("_window", None)
        if sampler is not None and window is not None:
            row["cpu_cores"] = sampler.cores(*window)
    summary = summarize(rows, names, args.sessions, args.sequential, offsets)
    checks = targets(args.sessions, summary)
    cap_text = (
        f"replies capped at max_tokens={args.max_tokens}, max_sentences={args.max_sentences}"
        if appliance is not None
        else "replies capped as the running appliance is configured"
    )
    done = [r for r in rows if r.get("status") == "done"]
    result: dict[str, Any] = {
        "benchmark": "latency",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "appliance": "started by the bench" if appliance is not None else args.url,
        "llm": llm,
        "reply_cap": {"max_tokens": args.max_tokens, "max_sentences": args.max_sentences}
        if appliance is not None
        else "the running appliance's",
        "settings": {
            "transports": names,
            "runs": args.runs,
            "sessions": args.sessions,
            "sequential": args.sequential,
            "seed": args.seed,
            "stagger_s": args.stagger,
            "gap_s": list(args.gap),
            "voice": args.voice,
            "warmup": args.warmup,
            "timeout_s": args.timeout,
            "offsets_s": [round(o, 2) for o in offsets],
        },
        "measured_from": "the true end of speech in each clip, on the client's stream clock; times are arrivals "
        "at the client",
        "wall_s": round(elapsed, 1),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "targets_ms": TARGETS_MS,
        "checks": checks,
        "summary": summary,
        "transcript_wer": round(corpus_wer((r["question"], r["transcript"]) for r in done), 4) if done else None,
        "reply_words_p50": statistics.median(len(r["reply"].split()) for r in done) if done else None,
        "reply_audio_s_p50": round(statistics.median(r["reply_audio_s"] for r in done), 2) if done else None,
        "server_trace_p50_s": server_traces(done),
        "turns": rows,
        "warmup": warmup,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latency.json").write_text(json.dumps(finite(result), indent=2) + "\n", encoding="utf-8")
    title = (
        f"Mynah voice chat latency from the true end of speech: {args.sessions} session(s) x {args.runs} turns"
        f" x {len(lanes(rows))} lanes, {cap_text}; {os.cpu_count()}-core "
        f"{platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    busy = [r["cpu_cores"] for r in rows if r.get("cpu_cores")]
    if busy:
        machine = statistics.mean(c.get("machine", 0) for c in busy)
        other = statistics.mean(c.get("other", 0) for c in busy)
        title += (
            f"\nduring the turns the machine used {machine:.2f} cores on average, of which other work "
            f"(not the appliance, not this client) {other:.2f}"
        )
    chart_note = ""
    try:
        chart(out_dir / "latency.png", rows, summary, title, args.sessions, args.sequential)
    except Exception as err:  # the figures are in the JSON whatever happens to the picture
        chart_note = f" (no chart: {type(err).__name__}: {err})"

    print("")
    print(
        f"latency: {args.sessions} session(s) x {args.runs} turns x lanes ({', '.join(lanes(rows))}), "
        f"voice {args.voice}, {cap_text}; {len(done)}/{len(rows)} turns done in {elapsed:.0f} s; "
        f"transcript WER {result['transcript_wer']}, reply p50 {result['reply_words_p50']} words / "
        f"{result['reply_audio_s_p50']} s of speech"
    )
    print(f"machine: {os.cpu_count()} cores, 1-min load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    for line in tables(summary, args.sessions, args.sequential) + cpu_table(rows):
        print(line)
    for lane, trace in result["server_trace_p50_s"].items():
        stages = ", ".join(f"{stage} {seconds * 1000:.0f}" for stage, seconds in trace.items())
        print(f"server trace p50, {lane} (ms from its detected end of speech): {stages}")
    print("")
    for check in checks:
        starved = f", starved sessions: {check['starved_sessions'] or 'none'}" if "starved_sessions" in check else ""
        print(
            f"target ({check['transport']}, {args.sessions} session(s)): {check['what']} {_fmt(check['value'])} < "
            f"{check['target']}{starved}: {'met' if check['met'] else 'NOT met'}"
        )
    print(f"wrote {out_dir / 'latency.json'} and {out_dir / 'latency.png'}{chart_note}")
    streamed = [r for r in rows if r["pipeline"] == "streamed"]
    audio, frame = median_of(streamed, "first_audio"), median_of(streamed, "first_frame")
    # Streamed against sequential on the transports that ran both (WebRTC has no sequential pipeline).
    both_ways = {r["transport"] for r in rows if r["pipeline"] == "sequential"}
    seq_ratio = ratio([r for r in rows if r["transport"] in both_ways]) if args.sequential else math.nan
    print(
        f"first_audio_p50_ms={_int(audio)} first_frame_p50_ms={_int(frame)} "
        f"sequential_first_audio_ratio={seq_ratio:.2f}"
    )
    return 0 if done else 1


def finite(value: Any) -> Any:
    """`value` with NaN as null: the JSON stays standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _int(value: float) -> str:
    return "nan" if math.isnan(value) else str(round(value))


if __name__ == "__main__":
    sys.exit(main())
