"""TTS benchmark: time to first audio for a first clause, real-time factor of a 5 s answer, and the voice adaptation.

Per backend, in-process (the engine's own cost) and, for the embedded voice, through a running appliance (what a
client gets from `POST /api/speak` with `format: pcm`: the request, the coordinator, the tts worker and the
ring included). GPT-SoVITS is measured only when `--gpt-sovits-url` names a running api_v2 server with
`--gpt-sovits-reference` (a 3-10 s clip on that server and its transcript).

The adaptation part trains nothing: it measures Piper's voice and a one-minute sample (another synthesizer's
voice, as the tests use), adapts Piper toward it (procs/tts/adapt.py) and reports the median F0 and spectral
centroid of all three, and the adapter's own real-time factor.

    .venv/bin/python bench/tts.py --runs 7 --out bench/results/tts.json
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
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.models.store import ModelStore  # noqa: E402 - the bench runs from a checkout
from procs.tts.adapt import VoiceAdapter, measure_voice, median_f0, spectral_centroid  # noqa: E402
from procs.tts.backends.base import OUTPUT_RATE, TtsBackend, VoiceSettings  # noqa: E402
from procs.tts.backends.piper import PiperBackend  # noqa: E402
from tests.conftest import MODELS_DIR, start_appliance, stop_appliance  # noqa: E402
from tests.speech import SAMPLE_RATE, SENTENCES, synthesize  # noqa: E402

FIRST_CLAUSES = (  # up to eight words, as the splitter sends a reply's first clause
    "Sure, this is the plan for tomorrow.",
    "Paris is the capital of France.",
    "Good morning! How can I help?",
)
FIVE_SECONDS = (
    "We leave the house at eight in the morning and drive to the lake, then walk along the shore until lunch."
)
PIPER_VOICE = "piper-joe-medium"
STEADY = VoiceSettings(variation=0.0, timing_variation=0.0)
SAMPLE_VOICES = ("espeak", "espeak-high", "festival")  # tests/speech.py: two low voices and a higher one


def first_audio_and_rtf(backend: TtsBackend, runs: int) -> dict[str, Any]:
    """Median time to the first chunk of each first clause, and the RTF of the ~5 s answer."""
    firsts: list[float] = []
    for _ in range(runs):
        for clause in FIRST_CLAUSES:
            started = time.perf_counter()
            chunks = backend.synthesize(clause)
            next(chunks)
            firsts.append(time.perf_counter() - started)
            chunks.close()
    rtfs: list[float] = []
    durations: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        samples = sum(len(chunk.samples) for chunk in backend.synthesize(FIVE_SECONDS))
        elapsed = time.perf_counter() - started
        durations.append(samples / OUTPUT_RATE)
        rtfs.append(elapsed / durations[-1])
    return {
        "first_audio_ms_median": round(statistics.median(firsts) * 1000, 1),
        "first_audio_ms_max": round(max(firsts) * 1000, 1),
        "answer_audio_s": round(statistics.median(durations), 2),
        "answer_synthesis_s_median": round(statistics.median(durations) * statistics.median(rtfs), 3),
        "rtf_median": round(statistics.median(rtfs), 4),
    }


def through_the_appliance(url: str, runs: int, token: str) -> dict[str, Any]:
    """First PCM byte and whole answer through POST /api/speak (format pcm), as a client sees them."""
    firsts: list[float] = []
    totals: list[float] = []
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(runs):
            for clause in FIRST_CLAUSES:
                started = time.perf_counter()
                with client.stream("POST", "/api/speak", json={"text": clause, "format": "pcm"}) as response:
                    response.raise_for_status()
                    for _chunk in response.iter_bytes():
                        firsts.append(time.perf_counter() - started)
                        break
            started = time.perf_counter()
            response = client.post("/api/speak", json={"text": FIVE_SECONDS, "format": "pcm"})
            response.raise_for_status()
            totals.append((time.perf_counter() - started) / (len(response.content) / 2 / OUTPUT_RATE))
    return {"first_audio_ms_median": round(statistics.median(firsts) * 1000, 1),
            "first_audio_ms_max": round(max(firsts) * 1000, 1),
            "rtf_median": round(statistics.median(totals), 4)}  # fmt: skip


def adaptation(piper: PiperBackend, voice: str) -> dict[str, Any]:
    """Piper adapted toward a minute of `voice`: where its F0 and centroid land, and what the adapter costs."""
    # As the trainer does (procs/trainer/voice_job.py): Piper reads the sample's words, without random variation.
    sample = np.concatenate([synthesize(s, voice).samples for s in SENTENCES[:16]])
    own = np.concatenate([c.samples for c in piper.synthesize(" ".join(SENTENCES[:16]), voice=STEADY)])
    adapter = VoiceAdapter(measure_voice(own, OUTPUT_RATE), measure_voice(sample, SAMPLE_RATE))
    adapted_piper = piper.with_transform(adapter.apply)
    check = " ".join(SENTENCES[16::2])  # other words than the sample's
    plain = np.concatenate([c.samples for c in piper.synthesize(check, voice=STEADY)])
    started = time.perf_counter()
    adapted = np.concatenate([c.samples for c in adapted_piper.synthesize(check, voice=STEADY)])
    adapted_s = time.perf_counter() - started
    f0 = {"builtin": median_f0(plain, OUTPUT_RATE), "sample": median_f0(sample, SAMPLE_RATE),
          "adapted": median_f0(adapted, OUTPUT_RATE)}  # fmt: skip
    centroid = {"builtin": spectral_centroid(plain, OUTPUT_RATE), "sample": spectral_centroid(sample, SAMPLE_RATE),
                "adapted": spectral_centroid(adapted, OUTPUT_RATE)}  # fmt: skip
    firsts = []
    for clause in FIRST_CLAUSES:
        started = time.perf_counter()
        next(adapted_piper.synthesize(clause))
        firsts.append(time.perf_counter() - started)
    return {
        "median_f0_hz": {k: round(v, 1) for k, v in f0.items()},
        "spectral_centroid_hz": {k: round(v, 1) for k, v in centroid.items()},
        "f0_fraction_moved": round((f0["adapted"] - f0["builtin"]) / (f0["sample"] - f0["builtin"]), 3),
        "centroid_moved_toward_sample": abs(centroid["adapted"] - centroid["sample"])
        < abs(centroid["builtin"] - centroid["sample"]),
        "adapted_rtf": round(adapted_s / (len(adapted) / OUTPUT_RATE), 4),
        "adapted_first_audio_ms_median": round(statistics.median(firsts) * 1000, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--no-appliance", action="store_true", help="skip the end-to-end part")
    parser.add_argument("--gpt-sovits-url", help="a running GPT-SoVITS api_v2 server to measure too")
    parser.add_argument("--gpt-sovits-reference", nargs=2, metavar=("CLIP", "TEXT"),
                        help="a 3-10 s reference clip on that server and its transcript")  # fmt: skip
    args = parser.parse_args()
    piper = PiperBackend(ModelStore(MODELS_DIR).resolve(PIPER_VOICE), threads=1)
    piper.load()
    report: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "runs": args.runs,
        "backends": {"piper (in-process, 1 thread)": first_audio_and_rtf(piper, args.runs)},
    }
    if args.gpt_sovits_url and args.gpt_sovits_reference:
        from procs.tts.backends.gpt_sovits import GptSovitsBackend, ReferenceClip

        clip, text = args.gpt_sovits_reference
        gpt = GptSovitsBackend(args.gpt_sovits_url, reference=ReferenceClip(Path(clip), text, "en"))
        gpt.load()
        report["backends"]["gpt-sovits (api_v2)"] = first_audio_and_rtf(gpt, args.runs)
    else:
        report["backends"]["gpt-sovits (api_v2)"] = "not measured: no --gpt-sovits-url (needs a GPU box)"
    report["adaptation"] = {voice: adaptation(piper, voice) for voice in SAMPLE_VOICES}
    if not args.no_appliance:
        appliance = start_appliance()
        try:
            report["backends"]["piper (appliance, POST /api/speak pcm)"] = through_the_appliance(
                appliance.url, args.runs, appliance.token
            )
        finally:
            stop_appliance(appliance)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    piper_numbers = report["backends"]["piper (in-process, 1 thread)"]
    moved = ", ".join(f"{v} {a['f0_fraction_moved']:.0%}" for v, a in report["adaptation"].items())
    print(f"piper: first audio {piper_numbers['first_audio_ms_median']} ms, RTF {piper_numbers['rtf_median']}; "
          f"adaptation moved F0 of the way to: {moved}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
