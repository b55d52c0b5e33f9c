"""Speech-to-text benchmark: end of speech -> final transcript through the running appliance, per profile.

For each profile (base, tiny.en) it starts an appliance with that profile, streams synthesized sentences
over `WS /api/transcribe/live` in real time (as a microphone would), and measures, from the TRUE end of
speech in each clip (known from the synthesized waveform):
  - final_s: true end -> the final transcript's arrival at the client (what the user waits for)
  - endpoint_s: true end -> the server's end-of-speech detection (the VAD's share)
  - decode_s: the decode that produced the final (0 when the speculative decode had already finished)
  - WER of the finals, and how often the speculative final was used.
Then the offline figures of bench/stt_offline.py (real-time factor on 5 s and 30 s clips, per-voice WER clean
and at 15 dB SNR, the effect of the enhance options) for the same profiles.

    .venv/bin/python bench/stt.py --out bench/results/stt.json [--profiles base tiny.en] [--sentences 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_appliance, stop_appliance  # noqa: E402 - the bench reuses the test harness
from tests.live import SAMPLE_RATE, end_of_speech_latency, stream_audio  # noqa: E402
from tests.speech import SENTENCES, VOICES, corpus_wer, pad, synthesize  # noqa: E402

TARGETS = {"base": {"final_p50_s": 1.2, "wer_clean": 0.04}, "tiny.en": {"final_p50_s": 0.8}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 4)


def live_profile(profile: str, sentences: int) -> dict[str, Any]:
    appliance = start_appliance(f'[stt]\nprofile = "{profile}"\nlive_profile = "{profile}"\n')
    rows: list[dict[str, Any]] = []
    try:
        for index, text in enumerate(SENTENCES[:sentences]):
            voice = VOICES[index % len(VOICES)]
            clip = pad(synthesize(text, voice), 0.8, 1.2)
            result = asyncio.run(stream_audio(appliance.url, clip.samples, settle_s=2.0, token=appliance.token))
            finals = result.of("final")
            ends = [v for v in result.of("vad") if v["kind"] == "end"]
            latency = end_of_speech_latency(result, clip.speech_end_s)
            true_end_at = result.started + clip.speech_end_s
            rows.append({
                "voice": voice,
                "text": text,
                "final": finals[0]["text"] if finals else "",
                "final_s": latency,
                "endpoint_s": (ends[0]["at"] - true_end_at) if ends else None,
                "end_sample_error_s": (ends[0]["sample"] / SAMPLE_RATE - clip.speech_end_s) if ends else None,
                "decode_s": finals[0]["decode_s"] if finals else None,
                "speculative": bool(finals and finals[0]["speculative"]),
                "partials": len(result.of("partial")),
                "first_partial_s": (result.arrival(result.of("partial")[0]) - result.started - clip.speech_start_s)
                if result.of("partial") else None,
            })  # fmt: skip
    finally:
        stop_appliance(appliance)
    finals = [r["final_s"] for r in rows if r["final_s"] is not None]
    endpoints = [r["endpoint_s"] for r in rows if r["endpoint_s"] is not None]
    decodes = [r["decode_s"] for r in rows if r["decode_s"] is not None]
    return {
        "utterances": len(rows),
        "finals": len(finals),
        "final_p50_s": percentile(finals, 0.5),
        "final_p95_s": percentile(finals, 0.95),
        "endpoint_p50_s": percentile(endpoints, 0.5),
        "decode_p50_s": percentile(decodes, 0.5),
        "speculative_share": round(sum(r["speculative"] for r in rows) / len(rows), 3),
        "end_sample_error_p50_ms": round(1000 * statistics.median(abs(r["end_sample_error_s"]) for r in rows
                                                                   if r["end_sample_error_s"] is not None), 1),
        "wer": round(corpus_wer((r["text"], r["final"]) for r in rows), 4),
        "rows": rows,
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["base", "tiny.en"])
    parser.add_argument("--sentences", type=int, default=12, help="utterances streamed per profile")
    parser.add_argument("--no-offline", action="store_true", help="skip the offline RTF/WER part")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result: dict[str, Any] = {"benchmark": "stt", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "targets": TARGETS}
    result["live"] = {profile: live_profile(profile, args.sentences) for profile in args.profiles}
    if not args.no_offline:
        from bench.stt_offline import run as offline  # the same machine, right after

        result["offline"] = offline(args.profiles)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    summary = " ".join(
        f"{p}: final_p50_ms={r['final_p50_s'] * 1000:.0f} final_p95_ms={r['final_p95_s'] * 1000:.0f} wer={r['wer']:.3f}"
        for p, r in result["live"].items()
    )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
