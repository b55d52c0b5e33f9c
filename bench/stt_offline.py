"""Offline speech-to-text figures through the backend directly (no appliance, no VAD, no streaming).

For each profile (base, tiny.en) with the shipped decoding settings (SttConfig(): language, beam size):
  - load time, and the real-time factor (decode time / audio time) on a 5 s and a 30 s clip, medians of runs
  - per-utterance decode time over the sentence set (p50/p95, all voices, clean)
  - corpus WER per voice, clean and with white noise at 15 dB SNR over the speech (tests/speech.py)
  - the enhance options (procs/stt/enhance.py: none, normalize, denoise, denoise+normalize) on WER at 15 dB SNR

The speech is synthesized locally (espeak-ng, Festival, Piper) and cached; nothing is downloaded.

    .venv/bin/python bench/stt_offline.py --out /tmp/stt_offline.json [--profiles base tiny.en] [--sentences 24]

bench/stt.py calls `run()` for the offline half of its report. The JSON goes to stdout (and --out); the last
line is a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.config import SttConfig, SttEnhanceConfig  # noqa: E402 - after the path set-up above
from appliance.models.store import ModelStore  # noqa: E402
from procs.stt.backends.base import SAMPLE_RATE, Audio  # noqa: E402
from procs.stt.backends.faster_whisper import FasterWhisperBackend  # noqa: E402
from tests.speech import MODELS_DIR, SENTENCES, VOICES, Clip, corpus_wer, noisy, pad, synthesize  # noqa: E402

SNR_DB = 15.0
RTF_VOICE = "piper"  # the most natural voice for the timing clips
ENHANCE_VARIANTS = {
    "none": SttEnhanceConfig(normalize=False, denoise=False),
    "normalize": SttEnhanceConfig(normalize=True, denoise=False),
    "denoise": SttEnhanceConfig(normalize=False, denoise=True),
    "denoise+normalize": SttEnhanceConfig(normalize=True, denoise=True),
}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def utterance(text: str, voice: str) -> Clip:
    return pad(synthesize(text, voice), 0.3, 0.5)  # about the pre-roll and hangover the VAD segmenter keeps


def timing_clip(seconds: float) -> Audio:
    """Whole sentences with short pauses, then silence up to exactly `seconds`."""
    pieces: list[Audio] = []
    total = index = 0
    limit = round(seconds * SAMPLE_RATE)
    while True:
        piece = pad(synthesize(SENTENCES[index % len(SENTENCES)], RTF_VOICE), 0.2, 0.2).samples
        if pieces and total + len(piece) > limit:
            break
        pieces.append(piece[: limit - total])
        total += len(pieces[-1])
        index += 1
    samples = np.zeros(limit, np.float32)
    samples[:total] = np.concatenate(pieces)
    return samples


def real_time_factor(backend: FasterWhisperBackend, seconds: float, runs: int) -> dict[str, float]:
    audio = timing_clip(seconds)
    backend.transcribe(audio)  # warm: first-call allocations are not what a live turn pays
    times = [timed(lambda: backend.transcribe(audio))[0] for _ in range(runs)]
    median = statistics.median(times)
    return {"audio_s": seconds, "runs": runs, "decode_median_s": round(median, 3), "rtf": round(median / seconds, 3)}


Scored = tuple[dict[str, Any], list[float], list[dict[str, str]]]


def score(backend: FasterWhisperBackend, clips: dict[str, list[Clip]], prepare: Callable[[Clip, int], Audio]) -> Scored:
    """Per-voice and overall corpus WER of `prepare(clip, index)`, the decode times, and the mistakes."""
    per_voice: dict[str, float] = {}
    pairs_all: list[tuple[str, str]] = []
    times: list[float] = []
    mistakes: list[dict[str, str]] = []
    for voice, voice_clips in clips.items():
        pairs = []
        for index, clip in enumerate(voice_clips):
            audio = prepare(clip, index)
            started = time.perf_counter()
            transcript = backend.transcribe(audio)
            times.append(time.perf_counter() - started)
            pairs.append((clip.text, transcript.text))
            if corpus_wer([pairs[-1]]) > 0:
                mistakes.append({"voice": voice, "reference": clip.text, "heard": transcript.text})
        per_voice[voice] = round(corpus_wer(pairs), 4)
        pairs_all += pairs
    return {"overall": round(corpus_wer(pairs_all), 4), **per_voice}, times, mistakes


def profile_figures(name: str, sentences: Sequence[str], voices: Sequence[str], runs: int, snr_db: float,
                    beam_size: int | None) -> dict[str, Any]:  # fmt: skip
    config = SttConfig(profile=name) if beam_size is None else SttConfig(profile=name, beam_size=beam_size)
    profile = config.active_profile()
    backend = FasterWhisperBackend(profile, ModelStore(MODELS_DIR).resolve(profile.model), language=config.language,
                                   beam_size=config.beam_size)  # fmt: skip
    load_s, _ = timed(backend.load)
    rtf = {f"{seconds:g}s": real_time_factor(backend, seconds, runs) for seconds in (5.0, 30.0)}  # warms it up too
    clips = {voice: [utterance(text, voice) for text in sentences] for voice in voices}

    def with_noise(clip: Clip, index: int) -> Audio:
        return noisy(clip, snr_db, seed=index).samples

    clean, clean_times, clean_mistakes = score(backend, clips, lambda clip, _: clip.samples)
    noisy_wer, _, noisy_mistakes = score(backend, clips, with_noise)
    from procs.stt.enhance import enhance  # the other half of the STT stage; imported only when measured

    enhanced: dict[str, Any] = {"none": {"wer": noisy_wer, "enhance_ms_per_audio_s": 0.0}}  # the noisy row above
    for variant, settings in ENHANCE_VARIANTS.items():
        if variant == "none":
            continue
        cost: list[float] = []

        def cleaned(clip: Clip, index: int, settings: SttEnhanceConfig = settings, cost: list[float] = cost) -> Audio:
            audio = with_noise(clip, index)
            started = time.perf_counter()
            result = enhance(audio, settings)
            cost.append(time.perf_counter() - started)
            return result

        wer, _, _ = score(backend, clips, cleaned)
        enhanced[variant] = {"wer": wer, "enhance_ms_per_audio_s": round(1000 * sum(cost) / _audio_s(clips), 2)}
    return {
        "model": profile.model, "device": profile.device, "compute_type": profile.compute_type,
        "cpu_threads": profile.cpu_threads, "beam_size": config.beam_size, "language": config.language,
        "load_s": round(load_s, 3),
        "rtf": rtf,
        "utterance_decode_s": {"n": len(clean_times), "p50": round(percentile(clean_times, 0.5), 3),
                               "p95": round(percentile(clean_times, 0.95), 3),
                               "mean_audio_s": round(_audio_s(clips) / len(clean_times), 3)},
        "wer_clean": clean, f"wer_snr{snr_db:g}db": noisy_wer, f"enhance_at_snr{snr_db:g}db": enhanced,
        "mistakes_clean": clean_mistakes, f"mistakes_snr{snr_db:g}db": noisy_mistakes,
    }  # fmt: skip


def _audio_s(clips: dict[str, list[Clip]]) -> float:
    return sum(clip.duration_s for voice_clips in clips.values() for clip in voice_clips)


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return {
        "cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
        "faster_whisper": metadata.version("faster-whisper"), "ctranslate2": metadata.version("ctranslate2"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],  # others' work skews timings
    }  # fmt: skip


def run(profiles: Sequence[str] = ("base", "tiny.en"), *, sentences: int = len(SENTENCES),
        voices: Sequence[str] = VOICES, runs: int = 5, snr_db: float = SNR_DB,
        beam_size: int | None = None) -> dict[str, Any]:  # fmt: skip
    """The offline figures for `profiles`, as one JSON-ready dict; `beam_size` overrides the configured one."""
    texts = SENTENCES[:sentences]
    result: dict[str, Any] = {
        "benchmark": "stt_offline", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(),
        "corpus": {"sentences": len(texts), "voices": list(voices), "snr_db": snr_db, "noise": "white"},
        "profiles": {name: profile_figures(name, texts, voices, runs, snr_db, beam_size) for name in profiles},
    }  # fmt: skip
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def summary(result: dict[str, Any]) -> str:
    snr = f"{result['corpus']['snr_db']:g}db"
    parts = []
    for name, p in result["profiles"].items():
        parts.append(
            f"{name} (beam {p['beam_size']}): rtf5s={p['rtf']['5s']['rtf']} rtf30s={p['rtf']['30s']['rtf']} "
            f"utt_p50={p['utterance_decode_s']['p50']}s p95={p['utterance_decode_s']['p95']}s "
            f"wer_clean={p['wer_clean']['overall']:.3f} wer_{snr}={p[f'wer_snr{snr}']['overall']:.3f} "
            + " ".join(f"{v}={e['wer']['overall']:.3f}" for v, e in p[f"enhance_at_snr{snr}"].items() if v != "none")
        )
    return " | ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["base", "tiny.en"])
    parser.add_argument("--sentences", type=int, default=len(SENTENCES), help="how many of the sentence set")
    parser.add_argument("--voices", nargs="+", default=list(VOICES), choices=VOICES)
    parser.add_argument("--runs", type=int, default=5, help="decodes per real-time-factor median")
    parser.add_argument("--snr-db", type=float, default=SNR_DB)
    parser.add_argument("--beam-size", type=int, help="instead of the configured stt.beam_size")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(
        args.profiles,
        sentences=args.sentences,
        voices=args.voices,
        runs=args.runs,
        snr_db=args.snr_db,
        beam_size=args.beam_size,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
