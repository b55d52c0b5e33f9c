"""A conversation survives a restart of every process."""

from __future__ import annotations

import pytest

from tests.conftest import start_appliance, stop_appliance

pytestmark = pytest.mark.integration


def test_a_conversation_survives_mynah_down_and_up() -> None:
    appliance = start_appliance()
    try:
        with appliance.client() as http:
            first = http.post("/chat", json={"text": "What is the capital of France?"}).json()
            session = first["session_id"]
            before = http.get(f"/api/sessions/{session}/history").json()
        appliance.mynah("down")
        assert appliance.status()["status"] == "down"
        appliance.mynah("up")
        with appliance.client() as http:
            assert http.get(f"/api/sessions/{session}/history").json() == before
            follow = http.post("/chat", json={"text": "And of Italy?", "session_id": session})
            assert follow.status_code == 200
            assert "rome" in follow.json()["reply"].lower()
            after = http.get(f"/api/sessions/{session}/history").json()["lines"]
        assert len(after) == 4
    finally:
        stop_appliance(appliance)
