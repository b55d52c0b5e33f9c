"""Which prompt format should the embedded LLM use? Accuracy and speed of each, measured.

Loads the model through EmbeddedBackend (the code path the appliance runs), asks the 20 questions of
bench/data/factual_questions.json in fresh sessions with each format, greedy, and reports per format:
accuracy (an accepted keyword appears in the answer), the median time to the first spoken piece, the
median decode rate, the cold first-token time (nothing cached yet) and five follow-up questions that
need the previous answer (France, then "And of Italy?", first). Writes everything to
bench/results/llm_prompt_formats.json (or --out) and prints the summary.

    .venv/bin/python bench/llm_prompt_formats.py [--models-dir var/models | --model FILE.gguf]
"""

import argparse
import asyncio
import json
import platform
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from appliance.config import EmbeddedLlmConfig, ReplyConfig  # noqa: E402  (after the path fix above)
from appliance.models import ModelStore  # noqa: E402
from procs.llm.backends.base import Exchange, Finished, Piece, Prompt  # noqa: E402
from procs.llm.backends.embedded import EmbeddedBackend  # noqa: E402
from procs.llm.prompting import PromptFormat  # noqa: E402

QUESTIONS = ROOT / "bench" / "data" / "factual_questions.json"
FORMATS: tuple[PromptFormat, ...] = ("fewshot", "chatml")
# A question, a follow-up that only makes sense after its answer, and the keyword the follow-up needs.
# The first is the project's acceptance check.
FOLLOW_UPS = (
    ("What is the capital of France?", "And of Italy?", "rome"),
    ("What is the capital of Spain?", "And of Portugal?", "lisbon"),
    ("What is the capital of Russia?", "And of China?", "beijing"),
    ("Who wrote Hamlet?", "And Oliver Twist?", "dickens"),
    ("What is the capital of Egypt?", "And of Greece?", "athens"),
)


def is_correct(answer: str, accepted: list[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", answer, re.IGNORECASE) for word in accepted)


async def ask(backend: EmbeddedBackend, prompt: Prompt) -> dict[str, Any]:
    start = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    finished: Finished | None = None
    async for item in backend.stream(prompt):
        if isinstance(item, Piece):
            first = first if first is not None else time.perf_counter() - start
            pieces.append(item.text)
        else:
            finished = item
    total = time.perf_counter() - start
    assert finished is not None
    decode = (finished.generated_tokens - 1) / (total - first) if first and finished.generated_tokens > 1 else None
    return {
        "answer": "".join(pieces),
        "first_piece_s": first,
        "total_s": total,
        "decode_tokens_per_s": decode,
        "prompt_tokens": finished.prompt_tokens,
        "prefilled_tokens": finished.prefilled_tokens,
        "generated_tokens": finished.generated_tokens,
        "stop_reason": finished.stop_reason,
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


async def measure(model: Path, prompt_format: PromptFormat, questions: list[dict[str, Any]]) -> dict[str, Any]:
    reply = ReplyConfig()
    backend = EmbeddedBackend(EmbeddedLlmConfig(prompt_format=prompt_format, temperature=0.0), reply, model)
    await backend.load()
    try:
        rows = []
        for index, item in enumerate(questions):
            prompt = Prompt(f"{prompt_format}-{index}", (), item["q"], reply.max_tokens)
            row = await ask(backend, prompt)
            row |= {"q": item["q"], "correct": is_correct(row["answer"], item["answers"])}
            rows.append(row)
        follow_ups = []
        for index, (first_q, follow_q, accepted) in enumerate(FOLLOW_UPS):
            first = await ask(backend, Prompt(f"follow-up-{index}", (), first_q, reply.max_tokens))
            history = (Exchange("user", first_q), Exchange("assistant", first["answer"]))
            follow = await ask(backend, Prompt(f"follow-up-{index}", history, follow_q, reply.max_tokens))
            follow_ups.append({"turns": [first_q, first["answer"], follow_q, follow["answer"]],
                               "correct": is_correct(follow["answer"], [accepted]),
                               "prompt_tokens": follow["prompt_tokens"],
                               "prefilled_tokens": follow["prefilled_tokens"]})  # fmt: skip
    finally:
        await backend.unload()
    return {
        "accuracy": sum(r["correct"] for r in rows) / len(rows),
        "correct": sum(r["correct"] for r in rows),
        "questions": len(rows),
        "median_first_piece_s": _median([r["first_piece_s"] for r in rows[1:]]),
        "cold_first_piece_s": rows[0]["first_piece_s"],
        "median_decode_tokens_per_s": _median([r["decode_tokens_per_s"] for r in rows]),
        "median_prompt_tokens": _median([r["prompt_tokens"] for r in rows]),
        "median_prefilled_tokens": _median([r["prefilled_tokens"] for r in rows[1:]]),
        "follow_up_correct": sum(f["correct"] for f in follow_ups),
        "follow_ups": len(follow_ups),
        "italy_after_france": follow_ups[0]["turns"][3],
        "median_follow_up_prefilled_tokens": _median([f["prefilled_tokens"] for f in follow_ups]),
        "median_follow_up_prompt_tokens": _median([f["prompt_tokens"] for f in follow_ups]),
        "answers": rows,
        "follow_up_answers": follow_ups,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT / "var" / "models")
    parser.add_argument("--model", type=Path, help="a GGUF file to use instead of the store's model")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "llm_prompt_formats.json")
    args = parser.parse_args()
    model = args.model or ModelStore(args.models_dir).resolve(EmbeddedLlmConfig().model)
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
        "model": model.name,
        "formats": {},
    }
    for prompt_format in FORMATS:
        results["formats"][prompt_format] = asyncio.run(measure(model, prompt_format, questions))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    summary = {name: {k: v for k, v in r.items() if "answers" not in k} for name, r in results["formats"].items()}
    print(json.dumps(summary, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
