"""Codec properties: every message survives the wire unchanged; garbage is a ProtocolError and nothing else."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipc.codec import decode, encode
from ipc.errors import ProtocolError
from ipc.messages import (
    PROTOCOL_VERSION,
    ChatLine,
    ChatRequest,
    GenerateRequest,
    HealthReport,
    Message,
    Ping,
    ProgramStatus,
    RingSlotRef,
    TokenChunk,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
NATURAL = st.integers(min_value=0, max_value=2**63 - 1)
FLOAT = st.floats(allow_nan=False)
TEXT = st.text(max_size=50)

CHAT_REQUEST = st.builds(ChatRequest, text=TEXT, session_id=st.none() | TEXT)
TOKEN_CHUNK = st.builds(TokenChunk, turn_id=TEXT, text=TEXT)
CHAT_LINE = st.builds(ChatLine, role=st.sampled_from(["user", "assistant"]), text=TEXT)
GENERATE_REQUEST = st.builds(
    GenerateRequest,
    turn_id=TEXT,
    session_id=TEXT,
    history=st.lists(CHAT_LINE, max_size=6).map(tuple),
    user_text=TEXT,
    max_tokens=NATURAL,
)
RING_SLOT_REF = st.builds(RingSlotRef, ring=TEXT, slot=NATURAL, seq=NATURAL, pts=INT64, length=NATURAL)
PROGRAM_STATUS = st.builds(
    ProgramStatus,
    name=TEXT,
    state=TEXT,
    ready=st.booleans(),
    pid=NATURAL,
    uptime_s=FLOAT,
    restarts=NATURAL,
    backend=TEXT,
    model=TEXT,
    drops=st.dictionaries(TEXT, NATURAL, max_size=4),
    detail=TEXT,
)
HEALTH_REPORT = st.builds(HealthReport, status=TEXT, programs=st.lists(PROGRAM_STATUS, max_size=4).map(tuple))
PING = st.builds(Ping, seq=INT64, payload_frames=NATURAL)
MESSAGES = st.one_of(CHAT_REQUEST, TOKEN_CHUNK, GENERATE_REQUEST, RING_SLOT_REF, HEALTH_REPORT, PING)
PAYLOAD = st.lists(st.binary(max_size=256) | st.binary(max_size=256).map(bytearray), max_size=4)


@settings(max_examples=200)
@given(message=MESSAGES, request_id=TEXT, payload=PAYLOAD)
def test_every_message_round_trips_with_its_payload_frames(
    message: Message, request_id: str, payload: list[bytes | bytearray]
) -> None:
    frames = encode(message, request_id, payload)
    assert len(frames) == 1 + len(payload)
    # ZeroMQ hands frames back as bytes whatever buffer type went in.
    packet = decode([bytes(frame) for frame in frames])
    assert type(packet.message) is type(message)
    assert packet.message == message
    assert packet.request_id == request_id
    assert [bytes(p) for p in packet.payload] == [bytes(p) for p in payload]


@settings(max_examples=200)
@given(header=st.binary(max_size=200), payload=st.lists(st.binary(max_size=16), max_size=3))
def test_random_bytes_as_a_header_are_a_protocol_error(header: bytes, payload: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        decode([header, *payload])


@settings(max_examples=200)
@given(body=st.binary(max_size=200))
def test_a_well_formed_header_around_a_random_body_is_a_protocol_error(body: bytes) -> None:
    header = msgspec.msgpack.encode((PROTOCOL_VERSION, "req", 0, msgspec.Raw(body)))
    with pytest.raises(ProtocolError):
        decode([header])


@settings(max_examples=200)
@given(message=MESSAGES, version=INT64.filter(lambda v: v != PROTOCOL_VERSION))
def test_another_protocol_version_is_refused_with_ipc_version(message: Message, version: int) -> None:
    header = msgspec.msgpack.encode((version, "", 0, msgspec.Raw(msgspec.msgpack.encode(message))))
    with pytest.raises(ProtocolError) as caught:
        decode([header])
    assert caught.value.code == "ipc-version"


def test_no_frames_at_all_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode([])
