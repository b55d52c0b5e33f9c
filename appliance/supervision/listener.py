"""supervisord event listener: forwards PROCESS_STATE events to the coordinator over the control bus.

supervisord speaks to an event listener on stdin/stdout: we write READY, read one header line and a
payload of `len` bytes, then answer RESULT. Logging goes to stderr only; stdout is the protocol channel.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import zmq

from appliance.program import start_program
from ipc.codec import encode
from ipc.messages import ProcessStateChanged
from ipc.paths import control_endpoint

log = logging.getLogger(__name__)


def parse_tokens(line: str) -> dict[str, str]:
    """'a:1 b:2' -> {'a': '1', 'b': '2'} (supervisord's header and payload-header format)."""
    return dict(token.split(":", 1) for token in line.split() if ":" in token)


def to_message(headers: dict[str, str], payload: str) -> ProcessStateChanged | None:
    event = headers.get("eventname", "")
    if not event.startswith("PROCESS_STATE_"):
        return None
    first_line = payload.split("\n", 1)[0]
    fields = parse_tokens(first_line)
    return ProcessStateChanged(
        program=fields.get("processname", ""),
        from_state=fields.get("from_state", ""),
        to_state=event.removeprefix("PROCESS_STATE_"),
        pid=int(fields.get("pid", "0") or 0),
        expected=fields.get("expected", "1") != "0",
    )


def serve(stdin: TextIO, stdout: TextIO, sock: zmq.Socket[bytes]) -> None:
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return  # supervisord closed our stdin: it is shutting down
        headers = parse_tokens(header_line)
        payload = stdin.read(int(headers.get("len", "0")))
        message = to_message(headers, payload)
        if message is not None:
            try:
                sock.send_multipart(encode(message), flags=zmq.NOBLOCK)
            except zmq.Again:
                log.warning("coordinator queue full: dropped %s -> %s", message.program, message.to_state)
        stdout.write("RESULT 2\nOK")
        stdout.flush()


def main() -> int:
    config = start_program("events", log_stream=sys.stderr)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.IDENTITY, b"events")
    sock.connect(control_endpoint(config.paths.runtime_dir))
    try:
        serve(sys.stdin, sys.stdout, sock)
    finally:
        sock.close()
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
