"""docs/api.md is the gateway's API as it is: regenerated from the OpenAPI document and compared, every operation
in it, every example body valid against the schema the gateway validates it with, and the hand-kept WebSocket
list the same as the routes."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from pydantic import BaseModel
from starlette.routing import WebSocketRoute

import appliance.gateway.routes
from appliance.gateway import apidoc, schemas
from appliance.gateway.openapi import openapi_document
from appliance.gateway.routes import devices

DOCS = Path(__file__).resolve().parents[2] / "docs"
API_MD = DOCS / "api.md"
REGENERATE = "python -m appliance.gateway.apidoc docs/api.md"
# The pydantic models the gateway validates JSON bodies with, by their OpenAPI name.
MODELS = {
    name: model
    for module in (schemas, devices)
    for name, model in vars(module).items()
    if isinstance(model, type) and issubclass(model, BaseModel)
}


@pytest.fixture(scope="module")
def doc() -> apidoc.Schema:
    return openapi_document()


def with_bodies(doc: apidoc.Schema) -> list[tuple[str, str, str, apidoc.Schema]]:
    """(method, path, media type, media) of every operation that takes a body."""
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            media = apidoc.request_media(op)
            if media:
                found.append((method, path, *media))
    return found


def test_docs_api_md_is_current(doc: apidoc.Schema) -> None:
    committed = API_MD.read_text(encoding="utf-8") if API_MD.exists() else ""
    assert committed == apidoc.render(doc), f"docs/api.md is stale: run `{REGENERATE}`"


def test_every_operation_and_websocket_is_in_it(doc: apidoc.Schema) -> None:
    text = API_MD.read_text(encoding="utf-8")
    missing = [
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method in item
        if method in apidoc.METHODS and f"### `{method.upper()} {path}`" not in text
    ]
    missing += [f"WS {ws.path}" for ws in apidoc.WEBSOCKETS if f"### `WS {ws.path}`" not in text]
    assert not missing, f"not in docs/api.md: {missing}; run `{REGENERATE}`"


def test_the_hand_written_examples_belong_to_operations_with_bodies(doc: apidoc.Schema) -> None:
    operations = {(method, path) for method, path, _, _ in with_bodies(doc)}
    assert set(apidoc.EXAMPLE_BODIES) <= operations, set(apidoc.EXAMPLE_BODIES) - operations


def test_example_bodies_validate_against_their_request_schemas(doc: apidoc.Schema) -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="comes with the dev extra (schemathesis)")
    checked = []
    for method, path, media_type, media in with_bodies(doc):
        body = apidoc.example_body(doc, method, path, media)
        # The schema as published, with its references resolved in the document (multipart forms included).
        validator = jsonschema_rs.validator_for({**media["schema"], "components": doc["components"]})
        errors = [error.message for error in validator.iter_errors(body)]
        assert not errors, f"{method.upper()} {path}: {body} does not fit its schema: {errors}"
        if media_type == "application/json":  # and as the gateway itself reads it
            name = apidoc.ref_name(media["schema"])
            assert name in MODELS, f"{method.upper()} {path}: no model named {name} in the modules searched"
            MODELS[name].model_validate(body)
        checked.append((method, path))
    assert set(apidoc.EXAMPLE_BODIES) <= set(checked)


def test_the_websocket_list_is_the_gateways() -> None:
    routed = set()
    for module_info in pkgutil.iter_modules(appliance.gateway.routes.__path__):
        module = importlib.import_module(f"appliance.gateway.routes.{module_info.name}")
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", ()):
            if isinstance(route, WebSocketRoute):
                routed.add(route.path)
    assert {ws.path for ws in apidoc.WEBSOCKETS} == routed, "update apidoc.WEBSOCKETS, then " + REGENERATE
    for ws in apidoc.WEBSOCKETS:
        assert (DOCS / ws.doc).is_file(), ws.doc


def test_examples_carry_the_token_only_where_one_is_needed(doc: apidoc.Schema) -> None:
    chat = apidoc.curl(doc, "post", "/chat", doc["paths"]["/chat"]["post"])
    health = apidoc.curl(doc, "get", "/health", doc["paths"]["/health"]["get"])
    assert '-H "Authorization: Bearer $TOKEN"' in chat
    assert "Authorization" not in health
    assert '-d \'{"text": "What is the capital of France?"}\'' in chat
