"""Configuration: validated once, unknown keys refused, relative paths anchored at the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "mynah.toml"
    path.write_text('[gateway]\nport = 9000\n[llm]\nbackend = "embedded"\n')
    config = load_config(path)
    assert config.gateway.port == 9000
    assert config.llm.backend == "embedded"
    assert config.paths.runtime_dir == tmp_path / "run"
    assert config.source == path


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("[gateway]\nprot = 1\n", "config-invalid", "prot"),
        ('[llm]\nbackend = "gpt5"\n', "config-invalid", "backend"),
        ("[gateway\n", "config-invalid", "TOML"),
        ("[supervision]\nhang_timeout_s = 0.1\n", "config-invalid", "hang_timeout_s"),
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path: Path, text: str, code: str, words: str) -> None:
    path = tmp_path / "mynah.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.code == code
    assert words in str(caught.value)


def test_a_missing_file_names_the_command_that_makes_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")
    assert caught.value.code == "config-missing"
    assert "install.sh" in str(caught.value)
