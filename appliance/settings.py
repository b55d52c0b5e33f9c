"""Settings a user changes from the web UI: a small overlay on mynah.toml, `<data_dir>/settings.json`.

Only the keys listed in SETTINGS may be set; each names the programs that read it, which are restarted to apply
a change. `load_config` merges the overlay over the file before validating, so every program sees the same
values, and a bad overlay is reported like a bad configuration file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETTINGS_FILE = "settings.json"
LANGUAGES = ("en", "auto", "de", "es", "fr", "it", "nl", "pt", "pl", "ja", "zh")


@dataclass(frozen=True, slots=True)
class Setting:
    key: str  # dotted path into mynah.toml
    label: str
    kind: str  # "choice" | "int" | "float" | "text"
    programs: tuple[str, ...]  # restarted to apply a change (those not running read it when they start)
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "llm.backend",
        "Language model",
        "choice",
        ("coordinator", "llm"),
        ("auto", "embedded", "ollama"),
        help="auto: Ollama when it answers, else the embedded demo model",
    ),
    Setting(
        "llm.ollama.model",
        "Ollama model",
        "text",
        ("coordinator", "llm"),
        help="e.g. llama3.1:8b on a 16 GB card, llama3.2:3b on a smaller one",
    ),
    Setting(
        "llm.reply.max_sentences", "Reply length (sentences)", "int", ("coordinator", "llm"), minimum=1, maximum=10
    ),
    Setting("llm.reply.max_tokens", "Reply length (tokens)", "int", ("coordinator", "llm"), minimum=16, maximum=512),
    Setting(
        "stt.language",
        "Language",
        "choice",
        ("coordinator", "stt", "stt-batch"),
        LANGUAGES,
        help="what the user speaks; auto: detected per utterance",
    ),
    Setting(
        "stt.live_profile",
        "Speech recognition",
        "choice",
        ("coordinator", "stt"),
        ("auto", "tiny.en", "base", "gpu"),
        help="auto: tiny.en for English on a CPU, else the profile set",
    ),
    Setting(
        "tts.backend",
        "Voice engine",
        "choice",
        ("coordinator", "tts"),
        ("piper", "gpt-sovits"),
        help="gpt-sovits speaks in cloned voices (GPU); piper is the embedded CPU voice",
    ),
    Setting("tts.speed", "Speaking rate", "float", ("tts",), minimum=0.5, maximum=2.0),
    Setting(
        "lipsync.backend",
        "Face renderer",
        "choice",
        ("coordinator", "lipsync"),
        ("realtime", "sadtalker"),
        help="sadtalker renders generated videos on a GPU; live turns keep the real-time renderer",
    ),
    Setting(
        "lipsync.avatar",
        "Active avatar",
        "text",
        ("lipsync",),
        help="set from the Avatar page: the portrait the face is drawn from",
    ),
    Setting(
        "gateway.video_quality",
        "Video quality",
        "choice",
        (),
        ("low", "standard", "high"),
        help="JPEG quality of the streamed face (WebSocket); applies to the next conversation",
    ),
)
BY_KEY = {setting.key: setting for setting in SETTINGS}


class SettingsError(Exception):
    def __init__(self, message: str, code: str = "settings-invalid") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def settings_path(data_dir: Path) -> Path:
    return data_dir / SETTINGS_FILE


def read_settings(data_dir: Path) -> dict[str, Any]:
    """The stored overlay, {dotted key: value}; {} when there is none."""
    path = settings_path(data_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise SettingsError(f"{path}: not readable settings: {err}") from err
    if not isinstance(raw, dict) or any(key not in BY_KEY for key in raw):
        unknown = sorted(set(raw) - set(BY_KEY)) if isinstance(raw, dict) else raw
        raise SettingsError(f"{path}: unknown settings {unknown}")
    return raw


def checked(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes, each checked against its Setting; None removes a key (back to mynah.toml's value)."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        setting = BY_KEY.get(key)
        if setting is None:
            raise SettingsError(f"'{key}' is not a setting; settable: {', '.join(BY_KEY)}", "setting-unknown")
        out[key] = None if value is None else _checked_value(setting, value)
    return out


def _checked_value(setting: Setting, value: Any) -> Any:
    if setting.kind == "choice":
        if value not in setting.choices:
            raise SettingsError(f"{setting.key} is one of {', '.join(setting.choices)}")
        return value
    if setting.kind == "text":
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise SettingsError(f"{setting.key} is a non-empty text of at most 500 characters")
        return value.strip()
    number_types = (int,) if setting.kind == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types):
        raise SettingsError(f"{setting.key} is a {'whole ' if setting.kind == 'int' else ''}number")
    low, high = setting.minimum, setting.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{setting.key} is between {low:g} and {high:g}")
    return value


def merged(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(stored)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def write_settings(data_dir: Path, values: Mapping[str, Any]) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    path = settings_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(dict(sorted(values.items())), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def overlay(raw: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """`raw` (a parsed mynah.toml) with each dotted key set; `raw` itself is left as it was."""
    out: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def lookup(values: Mapping[str, Any], key: str) -> Any:
    """A dotted key's value in a nested mapping (a config's model_dump)."""
    node: Any = values
    for part in key.split("."):
        node = node[part]
    return node


def programs_to_restart(changed: Mapping[str, Any]) -> list[str]:
    """The programs that read the changed keys, the coordinator first (it plans what the others load)."""
    names = {program for key in changed for program in BY_KEY[key].programs}
    return sorted(names, key=lambda name: (name != "coordinator", name))
