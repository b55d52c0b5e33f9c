"""Speech, face and STT work logs under its turn (a live stream's id) or job, as chat turns do."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Sequence
from typing import Any

from appliance.config import MynahConfig
from appliance.coordinator.programs import ProgramTable
from appliance.coordinator.speech_in import SpeechInRouter
from appliance.coordinator.streams import TurnStreams
from appliance.logs import log_context, setup_logging
from ipc.errors import PeerUnreachable
from ipc.messages import AudioStreamOpen, Message, SpeechPiece, SynthesisOpen
from procs.tts.service import _Stream, _task_for
from procs.tts.splitter import SpeechSplitter


class _Server:
    """Reaches the workers; every client is gone."""

    def __init__(self, workers: Sequence[bytes]) -> None:
        self._workers = set(workers)

    async def send(self, peer: bytes, message: Message, request_id: str = "", payload: Any = ()) -> None:
        if peer not in self._workers:
            raise PeerUnreachable(f"{peer!r} is gone")

    async def answer(self, peer: bytes, message: Message, request_id: str) -> bool:
        return False


def _capture() -> io.StringIO:
    stream = io.StringIO()
    setup_logging("coordinator", "json", "INFO", stream=stream)
    return stream


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_live_streams_lines_carry_its_stream_id_as_turn_id() -> None:
    lines = _capture()
    router = SpeechInRouter(MynahConfig(), _Server([]), ProgramTable(["stt"]))  # type: ignore[arg-type]
    asyncio.run(router.open_stream(b"gone", "r1", AudioStreamOpen("live-1")))
    gone = [r for r in _records(lines) if "went away" in r["message"]]
    assert gone and gone[0]["turn_id"] == "live-1" and "job_id" not in gone[0]


def test_a_speech_streams_lines_carry_its_turn_id() -> None:
    lines = _capture()
    programs = ProgramTable(["tts"])
    programs.sync("tts", "RUNNING", 4242, 1.0)
    programs.ready("tts", 4242, "piper", "voice", 0.0)
    streams = TurnStreams(MynahConfig(), _Server([b"tts"]), programs, "tts", "speech synthesis")  # type: ignore[arg-type]

    async def scenario() -> None:
        await streams.open(b"gone", "r1", "turn-7", SynthesisOpen("turn-7", None))
        for _ in range(20):  # the attaching task opens it on the worker
            await asyncio.sleep(0)
        await streams.worker_event("turn-7", SpeechPiece("turn-7", 0, "hi", 0, 10, (), 0.1, 0.0))

    asyncio.run(scenario())
    gone = [r for r in _records(lines) if "went away" in r["message"]]
    assert gone and gone[0]["turn_id"] == "turn-7"


def test_a_tts_task_logs_under_its_own_streams_turn() -> None:
    lines = _capture()
    log = logging.getLogger("procs.tts.test")

    async def reply(message: Message) -> None:
        return None

    async def work() -> None:
        log.info("speaking")

    async def scenario() -> None:
        stream = _Stream(SynthesisOpen("turn-2", None), reply, SpeechSplitter(4, 200), 0.0)
        with log_context(turn_id="turn-1"):  # the message that freed the synthesis thread was another stream's
            task = _task_for(stream, work())
        await task

    asyncio.run(scenario())
    assert [r["turn_id"] for r in _records(lines) if r["message"] == "speaking"] == ["turn-2"]


def test_a_job_id_is_its_own_field() -> None:
    lines = _capture()
    with log_context(job_id="file:r9"):
        logging.getLogger("appliance.test").info("transcribing")
    (record,) = _records(lines)
    assert record["job_id"] == "file:r9" and "turn_id" not in record


def teardown_module() -> None:
    logging.getLogger().handlers.clear()
