"""The API the web UI stands on, against the running appliance (conftest's `appliance`, one per module): the status
page's data, settings that are stored and applied by restarting the programs that read them, and the avatar
gallery."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Appliance

pytestmark = pytest.mark.integration

AVATAR = ROOT / "assets" / "avatar.png"


def pids(http: httpx.Client) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in http.get("/health").json()["programs"]}


def wait_restarted(http: httpx.Client, before: dict[str, int], programs: list[str], timeout_s: float = 120) -> None:
    """Until each program runs under a new pid and the appliance is ok again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            health = http.get("/health").json()
        except httpx.HTTPError:
            health = {}
        now = {p["name"]: p for p in health.get("programs", [])}
        if health.get("status") == "ok" and all(
            name in now and now[name]["pid"] != before[name] and now[name]["ready"] for name in programs
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"{programs} were not restarted and ready in {timeout_s} s: {health}")


def setting(out: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in out["settings"] if s["key"] == key)
    return found


def test_status_gathers_programs_resources_turns_and_errors(appliance: Appliance) -> None:
    with appliance.client() as http:
        assert http.post("/chat", json={"text": "Hello there."}).status_code == 200
        assert http.post("/chat", json={"text": "   "}).json()["code"] == "empty-text"
        status = http.get("/api/status").json()
    programs = {p["name"]: p for p in status["programs"]}
    assert status["status"] == "ok" and programs["llm"]["ready"] and programs["llm"]["backend"] == "embedded"
    assert programs["llm"]["rss_bytes"] > 50 * 2**20 and programs["llm"]["cpu_s"] > 0
    resources = status["resources"]
    assert 0 < resources["ram_used_bytes"] < resources["ram_total_bytes"]
    assert 0 < resources["ram_budget_bytes"] <= resources["ram_total_bytes"] and resources["cpu_cores"] >= 1
    turn = status["turns"][0]
    assert turn["status"] == "done" and turn["stages"]["first_token_s"] > 0
    assert status["errors"][0]["code"] == "empty-text" and status["errors"][0]["status"] == 422


def test_a_setting_is_stored_applied_by_a_restart_and_reset(appliance: Appliance) -> None:
    with appliance.client() as http:
        before = http.get("/api/settings").json()
        assert setting(before, "llm.reply.max_sentences")["value"] == 3
        assert setting(before, "llm.backend")["unavailable"]["ollama"].startswith("Ollama does not answer")
        # Refusals change nothing.
        bad = http.put("/api/settings", json={"values": {"llm.reply.max_sentences": 99}})
        assert bad.status_code == 422 and bad.json()["code"] == "settings-invalid"
        unknown = http.put("/api/settings", json={"values": {"paths.data_dir": "/"}})
        assert unknown.status_code == 422 and unknown.json()["code"] == "setting-unknown"
        assert not (appliance.home / "data" / "settings.json").exists()

        old = pids(http)
        changed = http.put("/api/settings", json={"values": {"llm.reply.max_sentences": 1}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["restarting"] == ["coordinator", "llm"]
        wait_restarted(http, old, ["coordinator", "llm"])
        assert pids(http)["tts"] == old["tts"]  # only the readers restart
        after = http.get("/api/settings").json()
        assert setting(after, "llm.reply.max_sentences")["value"] == 1
        assert setting(after, "llm.reply.max_sentences")["overridden"]
        reply = http.post("/chat", json={"text": "Tell me about the moon and the stars and the sea."}).json()["reply"]
        assert len(re.findall(r"[.!?](\s|$)", reply)) <= 1, reply  # the running LLM applies it

        old = pids(http)
        reset = http.put("/api/settings", json={"values": {"llm.reply.max_sentences": None}})
        assert reset.status_code == 200
        wait_restarted(http, old, ["coordinator", "llm"])
        again = setting(http.get("/api/settings").json(), "llm.reply.max_sentences")
        assert again["value"] == 3 and not again["overridden"]


def test_the_avatar_gallery_lists_shows_and_activates(appliance: Appliance) -> None:
    with appliance.client() as http:
        prepared = http.post("/api/avatars", files={"image": ("me.png", AVATAR.read_bytes(), "image/png")}).json()
        avatar_id = prepared["avatar_id"]
        listed = http.get("/api/avatars").json()
        assert avatar_id in [a["avatar_id"] for a in listed["avatars"]] and listed["active_avatar_id"] is None
        image = http.get(f"/api/avatars/{avatar_id}/image")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        described = http.get(f"/api/avatars/{avatar_id}").json()
        assert described["lips"] == prepared["lips"] and described["cached"]
        assert http.get("/api/avatars/0123456789abcdef-512/image").json()["code"] == "avatar-not-found"
        assert http.get("/api/avatars/..%2Fmynah.db/image").status_code in (404, 422)

        # Another portrait becomes the default: the face renderer is restarted on it.
        mirrored = http.post("/api/avatars", files={"image": ("m.png", _mirrored(AVATAR.read_bytes()), "image/png")})
        other = mirrored.json()["avatar_id"]
        old = pids(http)
        chosen = http.post(f"/api/avatars/{other}/activate").json()
        assert chosen["active_avatar_id"] == other
        wait_restarted(http, old, ["lipsync"])
        assert http.get("/api/avatars/default").json()["avatar_id"] == other  # the same avatar, not a copy
        default_image = http.get("/api/avatars/default/image")
        assert default_image.content == http.get(f"/api/avatars/{other}/image").content
        assert len(http.get("/api/avatars").json()["avatars"]) == 2

        old = pids(http)
        assert http.post("/api/avatars/default/activate").json()["active_avatar_id"] is None
        wait_restarted(http, old, ["lipsync"])


def _mirrored(png: bytes) -> bytes:
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    ok, out = cv2.imencode(".png", image[:, ::-1])
    assert ok
    return bytes(out.tobytes())


def test_the_web_ui_is_served_to_a_browser_without_a_token(appliance: Appliance) -> None:
    with appliance.client(authenticated=False) as http:
        page = http.get("/")
        assert page.status_code in (200, 503)
        if page.status_code == 200:
            script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
            assert script, page.text
            assert http.get(script.group(1)).status_code == 200
        assert http.get("/api/status").status_code == 401
