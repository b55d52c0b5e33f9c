"""LLM benchmark through the public API: time to first token, tokens/s, KV reuse, and factual accuracy.

By default it starts its own appliance (in a temporary folder, on a free port, with the models from
var/models) and stops it afterwards; `--url` measures one that is already running instead. Everything goes
through `POST /chat` with `stream: true`, as a client would see it.

    .venv/bin/python bench/llm.py --runs 5 --out bench/results/llm.json

The very first turn evaluates the whole prompt (cold). Then, per run, a new session answers an opening
question (the prompt frame's KV state is shared, so only the session's own words are evaluated), then two
follow-ups in the same session (its KV state is kept: only the new words are evaluated). Then each of the
20 questions in bench/data/factual_questions.json is asked in a fresh session; none of them appears among
the prompt's examples. The JSON goes to stdout (and --out); the last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_appliance, stop_appliance  # noqa: E402 - the bench reuses the test harness
from tests.sse import events  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "factual_questions.json"
# Each run opens a new session on a different topic, then asks two follow-ups in it.
OPENERS = (
    "Tell me something interesting about the Moon.",
    "Tell me something interesting about whales.",
    "Tell me something interesting about volcanoes.",
    "Tell me something interesting about bees.",
    "Tell me something interesting about the desert.",
    "Tell me something interesting about chess.",
    "Tell me something interesting about rain.",
)
FOLLOW_UPS = ("Why is that?", "Thank you. What else should I know?")


def streamed_turn(http: httpx.Client, text: str, session_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text, "stream": True}
    if session_id:
        body["session_id"] = session_id
    started = time.perf_counter()
    first_token: float | None = None
    with http.stream("POST", "/chat", json=body) as response:
        response.raise_for_status()
        for kind, data in events(response):
            if kind == "token" and first_token is None:
                first_token = time.perf_counter() - started
            elif kind == "error":
                raise RuntimeError(f"{data['code']}: {data['message']}")
            elif kind == "done":
                total = time.perf_counter() - started
                timings = data["timings"]
                ttft = first_token if first_token is not None else total
                generating = max(total - ttft, 1e-6)
                return {
                    "session_id": data["session_id"],
                    "reply": data["reply"],
                    "ttft_s": ttft,
                    "total_s": total,
                    "generated_tokens": timings["generated_tokens"],
                    "tokens_per_s": max(timings["generated_tokens"] - 1, 0) / generating,
                    "prompt_tokens": timings["prompt_tokens"],
                    "prefilled_tokens": timings["prefilled_tokens"],
                }
    raise RuntimeError("the stream ended without done")


def median(rows: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(row[key] for row in rows), 4)


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = ("ttft_s", "total_s", "tokens_per_s", "generated_tokens", "prompt_tokens", "prefilled_tokens")
    return {f"{key}_p50": median(rows, key) for key in keys}


def run(url: str, runs: int, token: str = "") -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
        health = http.get("/health").json()
        llm = next(p for p in health["programs"] if p["name"] == "llm")
        # The appliance's first turn evaluates the whole prompt frame; after that the frame's KV state is
        # shared by every new session, and a session's own state by its later turns.
        cold = streamed_turn(http, "Hello!", None)
        first: list[dict[str, Any]] = []
        later: list[dict[str, Any]] = []
        for run_index in range(runs):
            turn = streamed_turn(http, OPENERS[run_index % len(OPENERS)], None)
            first.append(turn)
            for text in FOLLOW_UPS:
                later.append(streamed_turn(http, text, turn["session_id"]))
        questions = json.loads(QUESTIONS.read_text())
        answers = []
        for item in questions:
            turn = streamed_turn(http, item["q"], None)
            correct = any(answer in turn["reply"].lower() for answer in item["answers"])
            answers.append({"q": item["q"], "reply": turn["reply"], "correct": correct, "ttft_s": turn["ttft_s"]})
    return {
        "benchmark": "llm",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "processor": _cpu_name(), "python": platform.python_version()},
        "backend": llm["backend"],
        "model": llm["model"],
        "runs": runs,
        "cold_turn": {key: round(cold[key], 4) for key in ("ttft_s", "total_s", "prompt_tokens", "prefilled_tokens")},
        "first_turn": summarise(first),
        "later_turn": summarise(later),
        "kv_reuse": {
            "cold_prompt_tokens": cold["prompt_tokens"],
            "cold_prefilled": cold["prefilled_tokens"],
            "first_turn_prefilled_p50": median(first, "prefilled_tokens"),
            "later_turn_prompt_p50": median(later, "prompt_tokens"),
            "later_turn_prefilled_p50": median(later, "prefilled_tokens"),
            "ttft_ratio_later_over_first": round(median(later, "ttft_s") / median(first, "ttft_s"), 3),
        },
        "accuracy": {
            "questions": len(answers),
            "correct": sum(a["correct"] for a in answers),
            "ratio": round(sum(a["correct"] for a in answers) / len(answers), 3),
            "answers": answers,
        },
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="measure a running appliance instead of starting one")
    parser.add_argument("--token", default="", help="a paired device's token for --url (POST /api/pair)")
    parser.add_argument("--runs", type=int, default=5, help="conversations to time (default 5)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    appliance = None if args.url else start_appliance()
    try:
        if appliance is None:
            result = run(args.url, args.runs, args.token)
        else:
            result = run(appliance.url, args.runs, appliance.token)
    finally:
        if appliance is not None:
            stop_appliance(appliance)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    first, later, acc = result["first_turn"], result["later_turn"], result["accuracy"]
    print(
        f"cold_ttft_ms={result['cold_turn']['ttft_s'] * 1000:.0f} "
        f"first_ttft_p50_ms={first['ttft_s_p50'] * 1000:.0f} later_ttft_p50_ms={later['ttft_s_p50'] * 1000:.0f} "
        f"tokens_per_s_p50={later['tokens_per_s_p50']:.1f} "
        f"later_prefilled_p50={later['prefilled_tokens_p50']:.0f}/{later['prompt_tokens_p50']:.0f} "
        f"accuracy={acc['correct']}/{acc['questions']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
