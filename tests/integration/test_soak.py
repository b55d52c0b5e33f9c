"""bench/soak.py's short form: three sessions talking for a minute and a half lose no turn, meet no error, and
leave shared memory as it was; the long form (30 minutes, by hand) also bounds every program's RSS growth (its
RSS less the shared-memory pages it touched, which the soak counts once, as shared memory)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
def test_three_sessions_talk_without_losing_a_turn(tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("soak")
    argv = [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "1.5", "--sessions", "3",
            "--settle-min", "0.5", "--window-min", "0.5", "--sample-s", "5", "--out", str(out)]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=540, check=False, cwd=ROOT)
    print(result.stdout[-2500:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = re.search(r"turns_done=(\d+) turns_lost=(\d+) errors=(\d+) max_rss_growth_pct=(\S+) "
                      r"max_own_rss_growth_pct=(\S+) shm_growth_bytes=(-?\d+)", result.stdout)  # fmt: skip
    assert found, result.stdout[-2000:]
    done, lost, errors, _, _, shm = (float(g) for g in found.groups())
    assert done >= 9, "three sessions answered fewer than three turns each in 90 s"
    assert lost == 0 and errors == 0, result.stdout[-2000:]
    assert shm == 0, "shared memory grew while the sessions talked"
    assert (out / "soak.png").stat().st_size > 10_000
    # Each program's own memory was read beside its RSS: less than it, by the shared-memory pages it touched.
    last = json.loads((out / "soak.json").read_text())["samples"][-1]
    assert set(last["own"]) == set(last["rss"]) >= {"gateway", "coordinator", "llm", "tts", "stt", "lipsync"}
    assert all(0 < last["own"][name] <= last["rss"][name] for name in last["own"])
    assert last["own"]["gateway"] < last["rss"]["gateway"]  # it maps the face's and the speech's rings
