"""supervisord's event-listener protocol, spoken by our listener over real pipes and a real socket."""

from __future__ import annotations

import io
from pathlib import Path

import zmq

from appliance.supervision.listener import serve, to_message
from ipc.codec import decode
from ipc.messages import ProcessStateChanged


def _event(event: str, payload: str) -> str:
    header = f"ver:3.0 server:supervisor serial:1 pool:events poolserial:1 eventname:{event} len:{len(payload)}\n"
    return header + payload


def test_state_events_become_messages() -> None:
    exited = to_message(
        {"eventname": "PROCESS_STATE_EXITED"}, "processname:llm groupname:llm from_state:RUNNING expected:0 pid:42"
    )
    assert exited == ProcessStateChanged("llm", "RUNNING", "EXITED", 42, expected=False)
    assert to_message({"eventname": "TICK_5"}, "when:1") is None


def test_the_listener_answers_supervisord_and_forwards_each_event(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/c.sock"
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(endpoint)
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(endpoint)
    stdin = io.StringIO(
        _event("PROCESS_STATE_STARTING", "processname:llm groupname:llm from_state:STOPPED tries:0")
        + _event("PROCESS_STATE_RUNNING", "processname:llm groupname:llm from_state:STARTING pid:7")
    )
    stdout = io.StringIO()
    serve(stdin, stdout, dealer)
    assert stdout.getvalue() == "READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"
    got = []
    for _ in range(2):
        assert router.poll(2000)
        got.append(decode(router.recv_multipart()[1:]).message)
    assert got == [
        ProcessStateChanged("llm", "STOPPED", "STARTING", 0, True),
        ProcessStateChanged("llm", "STARTING", "RUNNING", 7, True),
    ]
    dealer.close(0)
    router.close(0)
    ctx.term()
