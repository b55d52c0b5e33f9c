"""Structured logs: one JSON object per line with the session and turn when known, and back to text."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from appliance.logs import log_context, pretty, setup_logging


def _capture(fmt: str) -> tuple[io.StringIO, logging.Logger]:
    stream = io.StringIO()
    setup_logging("coordinator", fmt, "INFO", stream=stream)
    return stream, logging.getLogger("appliance.test")


def test_json_lines_carry_program_and_context() -> None:
    stream, log = _capture("json")
    log.info("plain %s", "line")
    with log_context(session_id="s1", turn_id="t1"):
        log.warning("in a turn")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it broke")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert first["message"] == "plain line" and first["level"] == "INFO" and first["program"] == "coordinator"
    assert first["logger"] == "appliance.test" and "session_id" not in first and first["time"].endswith("Z")
    assert second["session_id"] == "s1" and second["turn_id"] == "t1"
    assert "ValueError: boom" in third["exc"]


def test_context_is_per_task() -> None:
    stream, log = _capture("json")

    async def turn(n: int) -> None:
        with log_context(session_id=f"s{n}", turn_id=f"t{n}"):
            await asyncio.sleep(0.01 * (2 - n))
            log.info("turn %s", n)

    async def both() -> None:
        await asyncio.gather(turn(1), turn(2))
        log.info("after")

    asyncio.run(both())
    lines = {line["message"]: line for line in map(json.loads, stream.getvalue().splitlines())}
    assert lines["turn 1"]["turn_id"] == "t1" and lines["turn 2"]["turn_id"] == "t2"
    assert "turn_id" not in lines["after"]


def test_text_format_and_pretty_agree() -> None:
    stream, log = _capture("text")
    with log_context(turn_id="t9"):
        log.info("hello")
    text = stream.getvalue().strip()
    assert "INFO coordinator[" in text and "appliance.test: hello [turn_id=t9]" in text
    stream, log = _capture("json")
    with log_context(turn_id="t9"):
        log.info("hello")
    assert pretty(stream.getvalue()).split(" ", 1)[1] == text.split(" ", 1)[1]


def test_pretty_keeps_other_lines() -> None:
    assert pretty("llama_model_load: done\n") == "llama_model_load: done"
    assert pretty("{not json") == "{not json"
    assert pretty('{"a": 1}') == '{"a": 1}'


def teardown_module() -> None:
    logging.getLogger().handlers.clear()
