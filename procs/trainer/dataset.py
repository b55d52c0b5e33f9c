"""The training set as GPT-SoVITS reads it: its `.list` file, and the choice of a reference clip.

A `.list` line is `wav_path|speaker_name|LANG|text` in UTF-8 (GPT-SoVITS's prepare_datasets/1-get-text.py splits
each line on "|" into exactly four fields and reads the file as UTF-8). LANG is upper case: EN, ZH, JA, KO, YUE.
Its feature steps name every clip's outputs after the wav's base name, so base names must be unique.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipc.errors import CodedError

LANGUAGES = ("EN", "ZH", "JA", "KO", "YUE")
_FROM_WHISPER = {"en": "EN", "zh": "ZH", "ja": "JA", "ko": "KO", "yue": "YUE"}
# What 1-get-text.py's language_v1_to_language_v2 also accepts, read back as the canonical code.
_ALIASES = {"jp": "JA", "en": "EN", "zh": "ZH", "ja": "JA", "ko": "KO", "yue": "YUE"}

# GPT-SoVITS's TTS.set_ref_audio refuses a reference under 48000 or over 160000 samples at 16 kHz: 3-10 s.
# The margin keeps a clip that is 3.000 s here from rounding to 47999 samples after its resampling.
REFERENCE_MIN_S = 3.0 + 0.05
REFERENCE_MAX_S = 10.0 - 0.05
REFERENCE_BEST_S = (4.0, 8.0)  # long enough to carry the voice, short enough to transcribe reliably
_SENTENCE_END = frozenset(".!?。！？…")
_CLOSERS = "\"'”’)]}」』»"


class DatasetError(CodedError):
    """The voice sample cannot make a training set. Codes: `voice-sample-too-few-clips`, `voice-no-reference`,
    `voice-dataset-invalid` (a `.list` line or entry GPT-SoVITS would misread)."""


@dataclass(frozen=True, slots=True)
class ListEntry:
    wav_path: Path
    speaker: str
    lang: str  # one of LANGUAGES
    text: str


def gpt_sovits_language(code: str) -> str:
    """GPT-SoVITS's LANG for a Whisper language code (en, zh, ja, ko, yue); ValueError for any other."""
    lang = _FROM_WHISPER.get(code.strip().lower())
    if lang is None:
        raise ValueError(f"GPT-SoVITS cannot train on language {code!r} (it supports {', '.join(_FROM_WHISPER)})")
    return lang


def clean_text(text: str) -> str:
    """A transcript made one safe `.list` field: "|", line breaks and other control or separator characters become
    spaces, runs of spaces one, and the ends are stripped."""
    chars = [" " if ch == "|" or unicodedata.category(ch)[0] in "CZ" else ch for ch in text]
    return re.sub(r" {2,}", " ", "".join(chars)).strip()


def _check_field(value: str, what: str, number: int) -> None:
    """Refuse an empty field, "|", and control characters (a line break would split the line; a tab would split
    the tab-separated 2-name2text.txt that 1-get-text.py writes from the text)."""
    breaks = "|" in value or any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value)
    if breaks or not value.strip():
        raise DatasetError(
            "voice-dataset-invalid",
            f"entry {number}: {what} {value!r} is empty or holds '|' or a line break (see clean_text)",
        )


def write_list(path: Path, entries: Iterable[ListEntry]) -> None:
    """Write the `.list` (atomically). Refuses an entry GPT-SoVITS would misread: pass transcripts through
    `clean_text` first."""
    lines = []
    names: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        _check_field(str(entry.wav_path), "wav path", number)
        _check_field(entry.speaker, "speaker", number)
        _check_field(entry.text, "text", number)
        if entry.lang not in LANGUAGES:
            raise DatasetError("voice-dataset-invalid", f"entry {number}: language {entry.lang!r} not in {LANGUAGES}")
        if entry.wav_path.name in names:
            raise DatasetError("voice-dataset-invalid", f"entry {number}: a second clip named {entry.wav_path.name}")
        names.add(entry.wav_path.name)
        lines.append(f"{entry.wav_path}|{entry.speaker}|{entry.lang}|{entry.text}\n")
    if not lines:
        raise DatasetError("voice-sample-too-few-clips", "no clips to write")
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(lines), encoding="utf-8")
    os.replace(partial, path)


def read_list(path: Path) -> list[ListEntry]:
    """The entries of a `.list`, blank lines skipped; DatasetError on a line that is not four fields."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 4:
            raise DatasetError("voice-dataset-invalid", f"{path}:{number}: {len(fields)} fields, not 4")
        wav, speaker, lang, text = fields
        canonical = _ALIASES.get(lang.lower())
        if canonical is None:
            raise DatasetError("voice-dataset-invalid", f"{path}:{number}: unknown language {lang!r}")
        entries.append(ListEntry(Path(wav), speaker, canonical, text))
    return entries


@dataclass(frozen=True, slots=True)
class Candidate:
    """A clip that might serve as the voice's reference."""

    path: Path
    duration_s: float
    text: str  # its transcript, the reference's prompt text
    speech_fraction: float = 1.0  # the share of it that is speech (ClipSpan.speech_fraction)


def _ends_sentence(text: str) -> bool:
    stripped = text.rstrip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in _SENTENCE_END


def _has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def choose_reference(candidates: Sequence[Candidate]) -> Candidate:
    """The best reference: a 3-10 s clip with a transcript, preferring (in order) one that ends a sentence, one of
    4-8 s, more speech, a length nearer 6 s, then the lowest path (so the choice is deterministic)."""
    usable = [c for c in candidates if REFERENCE_MIN_S <= c.duration_s <= REFERENCE_MAX_S and _has_words(c.text)]
    if not usable:
        raise DatasetError(
            "voice-no-reference",
            f"none of {len(candidates)} clips is 3-10 s long with a transcript to use as the voice's reference",
        )
    low, high = REFERENCE_BEST_S
    middle = (low + high) / 2

    def rank(c: Candidate) -> tuple[bool, float, float, float, str]:
        outside = max(0.0, low - c.duration_s, c.duration_s - high)
        return (
            not _ends_sentence(c.text),
            round(outside, 2),
            -round(c.speech_fraction, 2),
            round(abs(c.duration_s - middle), 3),
            str(c.path),
        )

    return min(usable, key=rank)


def require_enough(durations_s: Sequence[float], *, min_clips: int = 4, min_total_s: float = 20.0) -> None:
    """DatasetError `voice-sample-too-few-clips` unless the clips are enough to fine-tune on. The defaults are
    Mynah's floor for a ~1 minute sample, not GPT-SoVITS's (which repeats a small set until it has 100 items)."""
    total = sum(durations_s)
    if len(durations_s) < min_clips or total < min_total_s:
        raise DatasetError(
            "voice-sample-too-few-clips",
            f"the sample gave {len(durations_s)} usable clips ({total:.1f} s of speech); training needs at least "
            f"{min_clips} clips and {min_total_s:.0f} s: record more speech with short pauses between sentences",
        )
