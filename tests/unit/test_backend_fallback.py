"""BackendChain (procs/common/fallback.py): the preferred backend, the next one while it cannot be used, and back.

The backends here are plain strings made by a scripted `make`: what is under test is the chain's own rule
(which one is current, what it says while degraded, when it retries and switches), not any engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ipc.errors import CodedError
from procs.common.fallback import BackendChain


class Engines:
    """`make(name)` gives "<name>#<n>", or raises while `name` is listed in `down`."""

    def __init__(self, *down: str) -> None:
        self.down = set(down)
        self.made: list[str] = []
        self.released: list[tuple[str, str]] = []

    async def make(self, name: str) -> str:
        if name in self.down:
            raise CodedError(f"{name}-unreachable", f"{name} is not answering")
        self.made.append(name)
        return f"{name}#{len(self.made)}"

    async def release(self, old: str, new: str) -> None:
        self.released.append((old, new))


async def until(check: Callable[[], bool], within_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the chain did not get there"
        await asyncio.sleep(0.005)


def test_the_preferred_backend_when_it_loads_and_nothing_degraded() -> None:
    async def run() -> None:
        engines = Engines()
        chain = BackendChain(["ollama", "embedded"], engines.make, retry_s=0.01)
        assert await chain.load() == "ollama#1"
        assert (chain.name, chain.degraded) == ("ollama", "")
        await asyncio.sleep(0.05)
        assert engines.made == ["ollama"], "nothing is retried when nothing is missing"
        await chain.close()

    asyncio.run(run())


def test_a_preferred_backend_that_does_not_load_falls_back_says_why_and_comes_back() -> None:
    async def run() -> None:
        engines = Engines("gpt-sovits")
        chain = BackendChain(["gpt-sovits", "piper"], engines.make, retry_s=0.01, on_switch=engines.release)
        assert await chain.load() == "piper#1"
        assert chain.name == "piper"
        assert chain.degraded == (
            "gpt-sovits unavailable (gpt-sovits-unreachable: gpt-sovits is not answering); using piper until it is back"
        )
        await asyncio.sleep(0.05)
        assert chain.current == "piper#1" and chain.degraded, "still down: still degraded"
        engines.down.clear()  # its server is started
        await until(lambda: chain.name == "gpt-sovits")
        assert (chain.current, chain.degraded) == ("gpt-sovits#2", "")
        assert engines.released == [("piper#1", "gpt-sovits#2")]
        await chain.close()

    asyncio.run(run())


def test_a_backend_that_fails_in_use_is_replaced_by_the_next_until_it_is_back() -> None:
    async def run() -> None:
        engines = Engines()
        chain = BackendChain(["ollama", "embedded"], engines.make, retry_s=0.01, on_switch=engines.release)
        await chain.load()
        engines.down.add("ollama")
        chain.failed(CodedError("llm-stream-failed", "the stream broke off"))
        chain.failed(CodedError("llm-unreachable", "a second failure while falling back changes nothing"))
        await until(lambda: chain.name == "embedded")
        assert chain.degraded.startswith("ollama failed (llm-stream-failed: the stream broke off); using embedded")
        engines.down.clear()
        await until(lambda: chain.name == "ollama")
        assert chain.degraded == ""
        assert engines.released == [("ollama#1", "embedded#2"), ("embedded#2", "ollama#3")]
        await chain.close()

    asyncio.run(run())


def test_the_last_backend_has_nothing_to_fall_back_to() -> None:
    async def run() -> None:
        engines = Engines()
        chain = BackendChain(["piper"], engines.make, retry_s=0.01)
        await chain.load()
        chain.failed(CodedError("tts-failed", "one bad piece"))
        await asyncio.sleep(0.03)
        assert (chain.current, chain.degraded, engines.made) == ("piper#1", "", ["piper"])

    asyncio.run(run())


def test_when_no_backend_loads_every_reason_is_given() -> None:
    async def run() -> None:
        chain = BackendChain(["gpt-sovits", "piper"], Engines("gpt-sovits", "piper").make, retry_s=0.01)
        with pytest.raises(CodedError) as raised:
            await chain.load()
        assert raised.value.code == "gpt-sovits-unreachable"
        assert "gpt-sovits: gpt-sovits is not answering; piper: piper is not answering" in raised.value.message
        assert not chain.loaded

    asyncio.run(run())


def test_each_worker_falls_back_to_its_embedded_backend() -> None:
    from appliance.config import LlmConfig, SttConfig, TtsConfig
    from procs.llm.backends import backend_chain as llm_chain
    from procs.stt.backends import profile_chain
    from procs.tts.backends import backend_chain as tts_chain

    assert tts_chain(TtsConfig(backend="gpt-sovits")) == ["gpt-sovits", "piper"]
    assert tts_chain(TtsConfig(backend="piper")) == ["piper"]
    assert asyncio.run(llm_chain(LlmConfig(backend="ollama"))) == ["ollama", "embedded"]
    assert asyncio.run(llm_chain(LlmConfig(backend="embedded"))) == ["embedded"]
    # The GPU speech profile (its weights and CUDA may be missing) falls back to the CPU profile that would be
    # chosen without it: tiny.en live in English, base otherwise and for files.
    gpu = SttConfig(profile="gpu")
    assert profile_chain(gpu, live=True) == ["gpu", "tiny.en"]
    assert profile_chain(gpu) == ["gpu", "base"]
    assert profile_chain(SttConfig(profile="gpu", language="de"), live=True) == ["gpu", "base"]
    assert profile_chain(SttConfig(profile="base")) == ["base"]
    assert profile_chain(SttConfig(profile="base"), live=True) == ["tiny.en"]
