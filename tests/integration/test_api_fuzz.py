"""The gateway's OpenAPI, fuzzed with schemathesis against the running appliance: whatever a client sends, no
answer is a server error, and every refusal is a 4xx with a JSON {code, message} (docs/errors.md)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from appliance.gateway.openapi import openapi_document
from tests.conftest import Appliance

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

pytestmark = pytest.mark.integration

# Left out: routes whose valid requests start long work or change the appliance under the other tests' feet
# (training, rendering, restarting programs, revoking this device, WebRTC peers). Their refusals are tested in
# their own modules.
NOT_FUZZED = (
    r"^/(train-voice|generate-avatar|api/webrtc/offer|api/settings|api/avatars/\{avatar_id\}/activate"
    r"|api/devices/\{device_id\}|api/voices/\{voice_id\}(/activate)?|api/sessions/\{session_id\}"
    r"|api/jobs/\{job_id\}/cancel)$"
)
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path_regex=NOT_FUZZED)


@pytest.fixture(scope="module")
def target(appliance: Appliance) -> dict[str, Any]:
    return {"base_url": appliance.url, "headers": appliance.headers, "timeout": 60}


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_crashes_the_api_and_every_refusal_has_a_code(case: Any, target: dict[str, Any]) -> None:
    response = case.call(base_url=target["base_url"], headers=target["headers"], timeout=target["timeout"])
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.content[:300]!r}"
    assert response.status_code < 500 or response.status_code == 503, where
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("code"), str) and body["code"] and isinstance(body.get("message"), str), where
