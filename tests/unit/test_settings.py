"""The web UI's settings overlay (appliance/settings.py) and how load_config applies it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config
from appliance.settings import (
    BY_KEY,
    SettingsError,
    checked,
    merged,
    programs_to_restart,
    read_settings,
    settings_path,
    write_settings,
)


def config_file(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "mynah.toml"
    path.write_text(f'[paths]\ndata_dir = "data"\n{body}')
    return path


def test_stored_settings_lie_over_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[llm.reply]\nmax_sentences = 3\n")
    write_settings(tmp_path / "data", {"llm.reply.max_sentences": 1, "stt.language": "de"})
    config = load_config(path)
    assert config.llm.reply.max_sentences == 1
    assert config.stt.language == "de"
    assert config.llm.reply.max_tokens == 80  # untouched keys keep the file's (or the default) value
    assert config.paths.data_dir == (tmp_path / "data").resolve()  # paths still resolve against the file


def test_settings_given_are_checked_without_touching_disk(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    assert load_config(path, settings={"tts.speed": 1.5}).tts.speed == 1.5
    assert not settings_path(tmp_path / "data").exists()


def test_a_bad_stored_overlay_is_a_configuration_error_naming_the_file(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    (tmp_path / "data").mkdir()
    settings_path(tmp_path / "data").write_text(json.dumps({"llm.backend": "gpt-5"}))
    with pytest.raises(ConfigError, match=r"settings\.json"):
        load_config(path)
    settings_path(tmp_path / "data").write_text(json.dumps({"paths.data_dir": "/"}))
    with pytest.raises(ConfigError, match="unknown settings"):
        load_config(path)
    settings_path(tmp_path / "data").write_text("{not json")
    with pytest.raises(ConfigError, match="not readable"):
        load_config(path)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"paths.data_dir": "/tmp"}, "setting-unknown"),
        ({"llm.backend": "gpt-5"}, "settings-invalid"),
        ({"llm.reply.max_sentences": 0}, "settings-invalid"),
        ({"llm.reply.max_sentences": 2.5}, "settings-invalid"),
        ({"llm.reply.max_sentences": True}, "settings-invalid"),
        ({"tts.speed": "fast"}, "settings-invalid"),
        ({"llm.ollama.model": "  "}, "settings-invalid"),
    ],
)
def test_bad_changes_are_refused_with_a_code(changes: dict[str, object], code: str) -> None:
    with pytest.raises(SettingsError) as refused:
        checked(changes)
    assert refused.value.code == code


def test_null_puts_a_key_back_and_the_file_is_replaced_whole(tmp_path: Path) -> None:
    stored = {"tts.speed": 1.2, "stt.language": "fr"}
    values = merged(stored, checked({"tts.speed": None, "llm.ollama.model": " llama3.2:3b "}))
    assert values == {"stt.language": "fr", "llm.ollama.model": "llama3.2:3b"}
    write_settings(tmp_path, values)
    assert read_settings(tmp_path) == values
    assert not list(tmp_path.glob("*.partial"))


def test_the_coordinator_restarts_first_and_only_the_readers_restart() -> None:
    assert programs_to_restart({"tts.speed": 1.1}) == ["tts"]
    assert programs_to_restart({"stt.language": "de", "tts.backend": "piper"}) == [
        "coordinator", "stt", "stt-batch", "tts"]  # fmt: skip
    assert programs_to_restart({"gateway.video_quality": "high"}) == []  # read per conversation


def test_every_setting_names_a_real_configuration_key(tmp_path: Path) -> None:
    dumped = load_config(config_file(tmp_path)).model_dump()
    for key in BY_KEY:
        node = dumped
        for part in key.split("."):
            assert part in node, f"{key} is not in the configuration"
            node = node[part]
