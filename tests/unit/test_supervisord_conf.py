"""The supervisord configuration as Mynah renders it, parsed by supervisord's own option parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from appliance.config import load_config
from appliance.supervision import conf

PROGRAMS = {"coordinator", "llm", "stt", "stt-batch", "tts", "trainer", "lipsync", "gateway"}


def parsed(tmp_path: Path, *, syslog: bool) -> dict[str, bool]:
    config_file = tmp_path / "mynah.toml"
    config_file.write_text("[paths]\nruntime_dir = 'run'\n", encoding="utf-8")
    for folder in ("run", "log"):
        (tmp_path / folder).mkdir()
    target = tmp_path / "supervisord.conf"
    target.write_text(conf.render(load_config(config_file), syslog=syslog), encoding="utf-8")
    options = ServerOptions()
    options.configfile = str(target)
    options.process_config(do_usage=False)
    return {group.name: group.process_configs[0].stdout_syslog for group in options.process_group_configs}


@pytest.mark.parametrize("syslog", [False, True])
def test_every_program_is_there_and_its_output_reaches_syslog_only_as_a_service(tmp_path: Path, syslog: bool) -> None:
    groups = parsed(tmp_path, syslog=syslog)
    assert set(groups) >= PROGRAMS
    assert all(groups[name] is syslog for name in PROGRAMS)
    assert groups["events"] is False  # the event listener's stdout is supervisord's protocol, never a log
