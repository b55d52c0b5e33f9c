"""Encode messages as one msgpack header frame plus raw payload frames, and back.

Header layout (a msgpack array): [protocol version, request id, payload frame count, tagged message].
The version is checked before the message body is decoded, so a peer of another version gets a clear
ProtocolError rather than a confusing field error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ipc.errors import ProtocolError
from ipc.messages import PROTOCOL_VERSION, AnyMessage, Message

Buffer = bytes | bytearray | memoryview


class _Header(msgspec.Struct, array_like=True, frozen=True):
    version: int
    request_id: str
    payload_frames: int
    body: msgspec.Raw


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded message with the id that correlates it to a request, and its raw payload frames."""

    request_id: str
    message: Message
    payload: tuple[memoryview, ...] = ()


_encoder = msgspec.msgpack.Encoder()
_header_decoder = msgspec.msgpack.Decoder(_Header)
_body_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(AnyMessage)


def encode(message: Message, request_id: str = "", payload: Sequence[Buffer] = ()) -> list[Buffer]:
    header = _encoder.encode((PROTOCOL_VERSION, request_id, len(payload), msgspec.Raw(_encoder.encode(message))))
    return [header, *payload]


def decode(frames: Sequence[Buffer]) -> Packet:
    if not frames:
        raise ProtocolError("empty multipart message")
    try:
        header = _header_decoder.decode(frames[0])
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as err:  # msgspec lets a bad str out
        raise ProtocolError(f"malformed header: {err}") from err
    if header.version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {header.version} is not {PROTOCOL_VERSION}", code="ipc-version")
    if header.payload_frames != len(frames) - 1:
        raise ProtocolError(f"header announces {header.payload_frames} payload frames, got {len(frames) - 1}")
    try:
        message = _body_decoder.decode(header.body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as err:
        raise ProtocolError(f"malformed message: {err}") from err
    payload = tuple(memoryview(f) for f in frames[1:])
    return Packet(header.request_id, message, payload)
