"""`python -m appliance.gateway.apidoc [FILE]`: the API reference (docs/api.md), rendered from the gateway's
OpenAPI document. Deterministic: the same gateway gives the same page, and a test fails when docs/api.md lags.

OpenAPI does not describe the WebSockets, so they are listed by hand (WEBSOCKETS); a test checks the list
against the routes. Example bodies come from the schema's own examples, else EXAMPLE_BODIES, else its defaults."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.gateway.auth import LOOPBACK_PATHS, PUBLIC_PATHS, PUBLIC_PREFIXES, is_open
from appliance.gateway.errors import STATUS_BY_CODE
from appliance.gateway.openapi import emit, openapi_document

Schema = dict[str, Any]  # a JSON (Schema) object as FastAPI writes it
BASE_URL = "http://127.0.0.1:8765"
METHODS = ("get", "post", "put", "patch", "delete")
REF_PREFIX = "#/components/schemas/"
# FastAPI's own 422 body; the gateway never sends it: every validation error is the envelope (errors.py).
NOT_SENT = frozenset({"HTTPValidationError", "ValidationError"})
ERROR_SCHEMA = "ApiErrorOut"
AUTH_CODES = "auth-required, auth-invalid, device-revoked"

# Sections in reading order: (tag, heading, what is there). A tag not listed comes last, under its own name.
TAGS: tuple[tuple[str, str, str], ...] = (
    ("chat", "Chat", "Text turns: a message in, the reply out, whole or as server-sent events."),
    ("voice", "Voice calls", "Live calls over WebRTC. The WebSocket transport is under WebSocket endpoints."),
    ("speech", "Speech", "Audio files to text, and text to speech."),
    (
        "voices",
        "Voices and jobs",
        "Stored voices, training one from a sample, and the jobs that train voices and render long videos.",
    ),
    ("avatars", "Avatars", "Portraits prepared as avatars, the active avatar, and videos of an avatar speaking."),
    ("sessions", "Conversations", "Sessions (conversations) and what was said in them."),
    ("devices", "Devices", "Pairing a device, and revoking one."),
    ("settings", "Settings", "What the web UI may set, and changing it."),
    ("health", "Health and status", "For monitors and the status page."),
)

# Example bodies for the main operations, whose schemas carry no examples. A value "@name" in a multipart form is
# a file (curl's -F syntax). tests/unit/test_api_docs.py validates each against its request schema.
EXAMPLE_BODIES: dict[tuple[str, str], dict[str, object]] = {
    ("post", "/chat"): {"text": "What is the capital of France?"},
    ("post", "/api/speak"): {"text": "Hello! I am Mynah.", "format": "wav"},
    ("post", "/api/pair"): {"code": "123456", "device_name": "laptop"},
    ("put", "/api/settings"): {"values": {"tts.speed": 1.1}},
    ("post", "/api/webrtc/offer"): {"sdp": "<the SDP offer, after ICE gathering>", "type": "offer"},
    ("post", "/api/transcribe"): {"file": "@question.wav"},
    ("post", "/train-voice"): {"file": "@me.m4a", "name": "Me", "language": "en", "consent": "yes"},
    ("post", "/api/avatars"): {"image": "@portrait.jpg"},
    ("post", "/generate-avatar"): {"text": "Hello! I am Mynah.", "resolution": 512},
}
# Where curl writes a success body that is not text (-o), by media type, most wanted first.
OUTPUT_FILES = (
    ("audio/wav", "speech.wav"),
    ("video/mp4", "video.mp4"),
    ("image/png", "avatar.png"),
    ("audio/L16", "speech.pcm"),
)


@dataclass(frozen=True)
class WebSocketEndpoint:
    path: str
    summary: str
    query: tuple[tuple[str, str], ...]  # (name, meaning)
    doc: str  # the page that describes the protocol, relative to docs/


WEBSOCKETS = (
    WebSocketEndpoint(
        "/voice-chat",
        "Talk to the avatar: 16 kHz mono PCM16 up, with playback reports; JSON events, 48 kHz speech and JPEG "
        "frames (each with its sample index) down.",
        (
            ("session_id", "resume that conversation"),
            ("voice", "a voice id; default: the active voice"),
            ("avatar", "an avatar id; default: the active avatar"),
            ("language", "a Whisper language code"),
            ("idle", "`0`: no idle-loop frames"),
            ("pipeline", "`sequential`: for measurement only"),
        ),
        "voice-chat.md",
    ),
    WebSocketEndpoint(
        "/api/transcribe/live",
        'Live transcription: 16 kHz mono PCM16 up, `{"type": "end"}` to finish; JSON events `vad`, '
        "`partial`, `final`, `error`, `closed` down.",
        (("language", "a Whisper language code; default: the configured one"),),
        "stt.md",
    ),
)


def ref_name(schema: Schema) -> str | None:
    ref = schema.get("$ref")
    return ref.removeprefix(REF_PREFIX) if isinstance(ref, str) else None


def resolve(doc: Schema, schema: Schema) -> Schema:
    name = ref_name(schema)
    found: Schema = doc["components"]["schemas"][name] if name else schema
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def type_of(schema: Schema) -> str:
    name = ref_name(schema)
    if name:
        return f"[{name}](#{anchor(name)})"
    if "anyOf" in schema:
        kinds = [type_of(s) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in schema["anyOf"])
        return " or ".join(kinds) + (" or null" if nullable else "")
    kind = schema.get("type")
    if kind == "string" and "contentMediaType" in schema:
        return "file"
    if kind == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(type_of(s) for s in schema["prefixItems"]) + "]"
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of string to {type_of(schema['additionalProperties'])}"
    return str(kind) if kind else "any"


def constraints(schema: Schema) -> str:
    said = []
    if "const" in schema:
        said.append(f"always `{json.dumps(schema['const'])}`")
    if "enum" in schema:
        said.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    if "default" in schema:
        said.append(f"default `{json.dumps(schema['default'])}`")
    for key, words in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minLength", "length >="),
        ("maxLength", "length <="),
        ("pattern", "matches"),
    ):
        if key in schema:
            said.append(f"{words} `{schema[key]}`")
    for option in schema.get("anyOf", ()):
        if option.get("type") != "null" and constraints(option):
            said.append(constraints(option))
    return "; ".join(said)


def field_table(schema: Schema) -> list[str]:
    required = set(schema.get("required", ()))
    lines = ["| field | type | required | description | constraints |", "|---|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        lines.append(
            f"| `{name}` | {cell(type_of(prop))} | {'yes' if name in required else 'no'} | "
            f"{cell(prop.get('description', ''))} | {cell(constraints(prop))} |"
        )
    return lines


def example_value(schema: Schema) -> object:
    for key in ("examples", "example", "default"):
        if key in schema:
            return schema[key][0] if key == "examples" else schema[key]
    if "anyOf" in schema:
        return example_value(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    placeholders: dict[str, object] = {
        "string": "string",
        "integer": 0,
        "number": 0.0,
        "boolean": False,
        "array": [],
        "object": {},
    }
    return placeholders.get(str(schema.get("type")))


def example_body(doc: Schema, method: str, path: str, media: Schema) -> dict[str, object]:
    """The operation's example: the media type's own, else the schema's, else EXAMPLE_BODIES, else built from
    the schema (its required fields and those with examples, from their examples or defaults)."""
    if "example" in media:
        return dict(media["example"])
    schema = resolve(doc, media.get("schema", {}))
    if "examples" in schema:
        return dict(schema["examples"][0])
    if (method, path) in EXAMPLE_BODIES:
        return EXAMPLE_BODIES[(method, path)]
    required = set(schema.get("required", ()))
    return {
        name: example_value(prop)
        for name, prop in schema.get("properties", {}).items()
        if name in required or "examples" in prop or "example" in prop
    }


def request_media(operation: Schema) -> tuple[str, Schema] | None:
    content = operation.get("requestBody", {}).get("content", {})
    return next(iter(content.items()), None)


def needs_token(path: str) -> bool:
    return not is_open(path, None) and path not in LOOPBACK_PATHS


def curl(doc: Schema, method: str, path: str, operation: Schema) -> str:
    """One curl command for the operation, against the box itself, wrapped when it is long."""
    url = BASE_URL + re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), path)
    query = [
        f"{p['name']}={example_value(p.get('schema', {}))}"
        for p in operation.get("parameters", ())
        if p["in"] == "query" and p.get("required")
    ]
    if query:
        url += "?" + "&".join(query)
    success = [r for status, r in sorted(operation["responses"].items()) if status.startswith("2")]
    types = [media_type for r in success for media_type in r.get("content", {})]
    media = request_media(operation)
    head = ["curl", "-sN" if "text/event-stream" in types else "-s"]
    if method != "get" and not (method == "post" and media):
        head += ["-X", method.upper()]
    parts = [" ".join([*head, shlex.quote(url)])]
    if needs_token(path):
        parts.append('-H "Authorization: Bearer $TOKEN"')  # double quotes: the shell fills in $TOKEN
    if media:
        body = example_body(doc, method, path, media[1])
        if media[0] == "multipart/form-data":
            parts += [f"-F {shlex.quote(f'{name}={value}')}" for name, value in body.items()]
        else:
            parts += [f"-H {shlex.quote('content-type: ' + media[0])}", f"-d {shlex.quote(json.dumps(body))}"]
    out = next((name for prefix, name in OUTPUT_FILES if any(t.startswith(prefix) for t in types)), None)
    if out:
        parts.append(f"-o {out}")
    line = " ".join(parts)
    return line if len(line) <= 110 else " \\\n    ".join(parts)


def mark_codes(text: str) -> str:
    """Error codes in a description as code: `llm-not-ready`, not llm-not-ready (paths are left alone)."""

    def mark(match: re.Match[str]) -> str:
        word = match.group(1)
        return f"`{word}`" if "-" in word or word in STATUS_BY_CODE else word

    return re.sub(r"(?<![\w/`-])([a-z0-9]+(?:-[a-z0-9]+)*)(?![\w/`-])", mark, text)


def describe_response(status: str, response: Schema) -> str:
    """One row: the status, what the body is, and when (or, for an error, its codes)."""
    content: dict[str, Schema] = response.get("content", {})
    names = {ref_name(media.get("schema", {})) for media in content.values()}
    if names & NOT_SENT:  # FastAPI's validation body: the gateway answers the envelope instead
        return f"| {status} | [error](#errors) | `invalid-request` |"
    if ERROR_SCHEMA in names or (int(status) >= 400 and not content):  # every error is the envelope
        return f"| {status} | [error](#errors) | {mark_codes(cell(response['description']))} |"
    bodies = []
    for media_type, media in content.items():
        name = ref_name(media.get("schema", {}))
        if name:
            bodies.append(f"[{name}](#{anchor(name)})")
        elif media.get("schema") != {} or len(content) == 1:  # FastAPI adds an empty JSON beside a stream
            bodies.append(f"`{media_type}`")
    said = "" if response["description"] == "Successful Response" else cell(response["description"])
    return f"| {status} | {', '.join(bodies) or 'nothing'} | {said} |"


def render_operation(doc: Schema, method: str, path: str, operation: Schema) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", operation.get("summary", "")]
    if operation.get("description"):
        lines += ["", operation["description"]]
    bearer = "`Authorization: Bearer <token>`"
    if is_open(path, None):
        auth = "none: open to anyone"
    else:
        auth = bearer if needs_token(path) else f"none from the box itself; from elsewhere {bearer}"
    lines += ["", f"Auth: {auth}."]
    parameters = operation.get("parameters", ())
    if parameters:
        lines += ["", "| parameter | in | type | required | description | constraints |", "|---|---|---|---|---|---|"]
        for p in parameters:
            schema = p.get("schema", {})
            required = "yes" if p.get("required") else "no"
            lines.append(
                f"| `{p['name']}` | {p['in']} | {cell(type_of(schema))} | {required} | "
                f"{cell(p.get('description', ''))} | {cell(constraints(schema))} |"
            )
    media = request_media(operation)
    if media:
        schema = resolve(doc, media[1].get("schema", {}))
        required = "required" if operation["requestBody"].get("required") else "optional"
        lines += ["", f"Request body ({required}): `{media[0]}`", "", *field_table(schema)]
    responses = operation["responses"]
    lines += ["", "| status | body | when, or the error codes |", "|---|---|---|"]
    if needs_token(path) and "401" not in responses:
        responses = {
            **responses,
            "401": {
                "description": AUTH_CODES,
                "content": {"application/json": {"schema": {"$ref": REF_PREFIX + ERROR_SCHEMA}}},
            },
        }
    lines += [describe_response(status, responses[status]) for status in sorted(responses)]
    lines += ["", "```sh", curl(doc, method, path, operation), "```", ""]
    return lines


def operations(doc: Schema) -> list[tuple[str, str, str, Schema]]:
    """(tag, method, path, operation), in the order of TAGS, then by path and method."""
    order = {tag: index for index, (tag, _, _) in enumerate(TAGS)}
    found = [
        (op.get("tags", ["other"])[0], method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    return sorted(found, key=lambda t: (order.get(t[0], len(order)), t[0], t[2], METHODS.index(t[1])))


def response_schemas(doc: Schema) -> list[str]:
    """The component schemas a response uses, directly or inside another, except the error envelope."""
    seen: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, dict):
            name = ref_name(node)
            if name and name not in seen:
                seen.add(name)
                visit(doc["components"]["schemas"][name])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for item in doc["paths"].values():
        for op in item.values():
            visit(op.get("responses", {}))
            media = request_media(op)
            if media:  # what a request body's fields point to; the body itself is described in place
                visit(resolve(doc, media[1].get("schema", {})))
    return sorted(seen - NOT_SENT - {ERROR_SCHEMA})


HEADER = """\
# API reference

<!-- Generated from the gateway's OpenAPI document: `python -m appliance.gateway.apidoc docs/api.md`.
Change the routes, not this file; tests/unit/test_api_docs.py fails when it lags. -->

{title} {version}: the HTTP API the gateway serves at `{base}`. On the LAN (`[gateway] host = "0.0.0.0"`) it is
served over HTTPS at `https://<box>:8765` (README.md, "Using it"). The same document is served live at `/docs`
and `/openapi.json`, and the web UI uses this API too.

## Authentication

Every route needs a device token, `Authorization: Bearer <token>`, except these, open to anyone:
{public}, and everything under {prefixes}.
{loopback} is open without a token to clients on the box itself only.

Get a token by pairing: `POST /api/pair` with the one-time code `mynah up` prints (`mynah devices pair-code`
shows a fresh one), or `mynah devices add NAME` on the box, as the user Mynah runs as.
`installer/install.sh --dev --up` saves one for the box in `var/local-token`; the examples below read it from
`$TOKEN`:

```sh
export TOKEN=$(cat var/local-token)
```

A missing, unknown or revoked token is answered 401 with
{auth_codes}. WebSockets take the token in their first message instead (below).
`[security] require_token = false` opens every route (a trusted bench only).

## Errors

Every error is JSON, the same envelope on every route, with an HTTP status chosen by its code:

```json
{{"code": "session-not-found", "message": "no session 'f00'"}}
```

{envelope}

The codes, their statuses and what to do about each are in [errors.md](errors.md). A request the gateway cannot
parse or validate is 422 `invalid-request` (400 `invalid-json` for a body that is not JSON), even where the
OpenAPI document shows FastAPI's own validation body. A body over `gateway.max_body_bytes` is 413
`request-too-large`. In a stream already started (server-sent events, a WebSocket), an error arrives as an
`error` event with the same `code` and `message`.

## Operations

| operation | summary |
|---|---|
{index}
| [WebSocket endpoints](#websocket-endpoints) | {websockets} |
"""

WEBSOCKET_INTRO = """\
## WebSocket endpoints

OpenAPI does not describe WebSockets. Each takes the device token as its first message, the text
`{{"type": "auth", "token": "<token>"}}` (browsers cannot set headers on a WebSocket); without it, or with a bad
one, the server sends an `error` event and closes with code 4401. Then the client sends binary frames of 16 kHz
mono PCM16 little-endian audio, and the server answers with JSON events. On the box the URL is
`{base}<path>`; over HTTPS, `wss://<box>:8765<path>`.
"""


def render(doc: Schema) -> str:
    ops = operations(doc)
    index = [f"| [`{m.upper()} {p}`](#{anchor(f'{m} {p}')}) | {cell(op.get('summary', ''))} |" for _, m, p, op in ops]
    lines = [
        HEADER.format(
            title=doc["info"]["title"],
            version=doc["info"]["version"],
            base=BASE_URL,
            public=", ".join(f"`{p}`" for p in sorted(PUBLIC_PATHS)),
            prefixes=", ".join(f"`{p}`" for p in PUBLIC_PREFIXES),
            loopback=", ".join(f"`{p}`" for p in sorted(LOOPBACK_PATHS)),
            auth_codes=mark_codes(AUTH_CODES),
            envelope="\n".join(field_table(doc["components"]["schemas"][ERROR_SCHEMA])),
            index="\n".join(index),
            websockets=", ".join(f"`{ws.path}`" for ws in WEBSOCKETS),
        )
    ]
    headings = {tag: (heading, intro) for tag, heading, intro in TAGS}
    tag = None
    for op_tag, method, path, op in ops:
        if op_tag != tag:
            tag = op_tag
            heading, intro = headings.get(tag, (tag, ""))
            lines += [f"## {heading}", "", *([intro, ""] if intro else [])]
        lines += render_operation(doc, method, path, op)
    lines += [WEBSOCKET_INTRO.format(base=BASE_URL.replace("http", "ws", 1))]
    for ws in WEBSOCKETS:
        lines += [f"### `WS {ws.path}`", "", ws.summary, "", "| query parameter | meaning |", "|---|---|"]
        lines += [f"| `{name}` | {cell(meaning)} |" for name, meaning in ws.query]
        lines += ["", f"The protocol, its events and its close codes: [{ws.doc}]({ws.doc}).", ""]
    lines += ["## Schemas", "", "What the responses above return, and what their fields hold.", ""]
    for name in response_schemas(doc):
        schema = doc["components"]["schemas"][name]
        lines += [f"### {name}", "", *([schema["description"], ""] if "description" in schema else [])]
        lines += [*field_table(schema), ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.gateway.apidoc", description=__doc__)
    parser.add_argument("out", nargs="?", type=Path, help="write it here, e.g. docs/api.md (default: standard output)")
    args = parser.parse_args(argv)
    emit(render(openapi_document()), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
