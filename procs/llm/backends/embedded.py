"""The embedded LLM: llama.cpp in-process (llama-cpp-python) with a small GGUF model, on the CPU.

Every llama.cpp call runs on one dedicated worker thread, so the model is never touched concurrently and
the event loop never blocks. Generated text goes through the ReplyShaper on that thread, so a stop string
or the sentence cap ends generation at once; pieces reach the loop through `call_soon_threadsafe`.

KV state: llama-cpp-python reuses the longest common token prefix of the new prompt and its context, and
our prompts extend the previous turn's prompt + reply (procs/llm/prompting.py), so the live session
prefills only its new words. Other sessions' states are kept in a small LRU and restored on a switch.
"""

import asyncio
import codecs
import ctypes
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from appliance.config import EmbeddedLlmConfig, ReplyConfig
from procs.llm.backends.base import Exchange, Finished, LlmError, Piece, Prompt
from procs.llm.context import ContextBudget, TrimPoints
from procs.llm.prompting import PromptText, render
from procs.llm.reply import ReplyShaper

log = logging.getLogger(__name__)

Item = Piece | Finished | LlmError


@dataclass(frozen=True, slots=True)
class _KvState:
    """A session's context, saved with llama.cpp's per-sequence state API into one of the reserved buffers.

    Llama.save_state() would also copy a (n_batch x n_vocab) float array of logits (100 MB for SmolLM2)
    that sampling no longer uses; the sequence state holds only the KV cells actually filled.
    """

    tokens: tuple[int, ...]
    buffer: ctypes.Array[ctypes.c_uint8]
    size: int


class _StateBuffers:
    """The memory saved session states live in, taken whole at load: `count` buffers, each the size of a full
    context's state, written before use so that they are resident from the start. A switch saves the outgoing
    state before the incoming one is restored, so `kv_sessions` kept states need `kv_sessions + 1` buffers.

    Taken as states grow instead, the worker's RSS climbs for the first ten minutes of use (a 30-minute soak with
    three sessions: 414 -> 528 MiB from minute 5, while contexts filled) and then stays: memory it will need
    anyway, better counted at load, where the residency planner and a user's `mynah status` see it."""

    def __init__(self, count: int, capacity: int) -> None:
        self.capacity = capacity
        self.reserved = count * capacity
        self._free = [self._buffer(capacity) for _ in range(count)]

    @staticmethod
    def _buffer(size: int) -> ctypes.Array[ctypes.c_uint8]:
        buffer = (ctypes.c_uint8 * size)()
        ctypes.memset(buffer, 0, size)  # calloc's pages are mapped on first write, even of a zero: write them now
        return buffer

    def take(self, size: int) -> ctypes.Array[ctypes.c_uint8]:
        buffer = self._free.pop() if self._free else None
        if buffer is None or len(buffer) < size:
            log.warning("a saved KV state of %d bytes is over the %d reserved: allocating it", size, self.capacity)
            buffer = self._buffer(size)
        return buffer

    def give_back(self, state: _KvState) -> None:
        self._free.append(state.buffer)


# A context shift needs the prompt's next _SHIFT_PROBE tokens found further on in the live context, and is made
# only when it keeps at least _SHIFT_MIN tokens (below that, evaluating them is as quick).
_SHIFT_PROBE = 16
_SHIFT_MIN = 48
# Prefills longer than this are logged at INFO (about 2.5 s on one thread of the 2-core box).
_LONG_PREFILL = 256


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class EmbeddedBackend:
    name: ClassVar[str] = "embedded"

    def __init__(self, config: EmbeddedLlmConfig, reply: ReplyConfig, model_path: Path) -> None:
        self._config = config
        self._reply = reply
        self._model_path = model_path
        self._llama: Any = None
        self._llama_cpp: Any = None
        self._worker = _Worker()
        self._lock = asyncio.Lock()  # one generation at a time; a second stream waits for the first
        self._live: str | None = None  # the session whose tokens fill the context now
        self._stale_logits = False  # the context was restored from a saved state since the last decode
        self._saved: OrderedDict[str, _KvState] = OrderedDict()
        self._buffers = _StateBuffers(0, 0)
        # Where each session's history was trimmed to fit the context (procs/llm/context.py), so later turns
        # trim at the same place, keeping their prompt a prefix-extension, instead of re-prefilling everything.
        self._trims = TrimPoints()
        self.last_finished: Finished | None = None  # the last turn's accounting, cancelled ones included

    @property
    def model(self) -> str:
        return self._config.model

    @property
    def generating(self) -> bool:
        return self._worker.busy

    async def load(self) -> None:
        if self._llama is not None:
            return
        try:
            import llama_cpp
        except ImportError as err:
            raise LlmError("llm-load-failed", "llama-cpp-python is missing: pip install 'mynah[embedded]'") from err
        self._llama_cpp = llama_cpp
        try:
            self._llama = await self._worker.run(self._open)
        except Exception as err:  # llama-cpp-python raises ValueError/RuntimeError/OSError for bad models
            raise LlmError("llm-load-failed", f"cannot load {self._model_path}: {err}") from err
        await self._worker.run(self._reserve)
        log.info("loaded %s (n_ctx=%d, n_threads=%d; %d MiB reserved for %d saved KV states)", self.model,
                 self._config.n_ctx, self._config.n_threads, self._buffers.reserved >> 20,
                 self._config.kv_sessions)  # fmt: skip

    def _reserve(self) -> None:
        """Take at load the memory a full context needs: the live KV cache's pages (llama.cpp allocates them but
        the OS maps them only when written) and the saved states' buffers, sized from the state's growth per
        token over the prompt frame."""
        llama, llama_cpp = self._llama, self._llama_cpp
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llama.ctx), True)  # writes zeros to every cell
        empty = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        self._prefill_frame()
        if llama.n_tokens:
            per_token = (llama_cpp.llama_state_seq_get_size(llama.ctx, 0) - empty) / llama.n_tokens
            capacity = empty + int(per_token * self._config.n_ctx) + 4096
            self._buffers = _StateBuffers(self._config.kv_sessions + 1 if self._config.kv_sessions else 0, capacity)

    def _prefill_frame(self) -> None:
        """Evaluate the frame every prompt starts with (instructions and examples) once, at load: llama.cpp keeps
        the common prefix of the live context, so even a new session's first turn prefills only its own words
        (measured here: the first voice turn's first token 0.62 s sooner)."""
        first, second = (self._tokens(render(Prompt("", (), user, 1), self._config.prompt_format,
                                                 self._reply.assistant_name)) for user in ("a", "b"))  # fmt: skip
        frame = first[: _common_prefix(first, second)]
        if frame:
            self._llama.eval(frame)

    def _open(self) -> Any:
        """Flash attention keeps no (batch x context) attention matrix: without it the compute buffer grew as the
        context filled (RSS +58 MiB over a 2048-token context here, the soak's one late step), with it +6 MiB,
        and a 1200-token prefill ran 1.45-1.78x faster."""
        c = self._config
        return self._llama_cpp.Llama(
            model_path=str(self._model_path), n_ctx=c.n_ctx, n_batch=c.n_batch, n_ubatch=c.n_batch,
            n_threads=c.n_threads, n_threads_batch=c.n_threads, flash_attn=True, seed=c.seed, verbose=False,
        )  # fmt: skip

    async def unload(self) -> None:
        async with self._lock:
            if self._llama is not None:
                await self._worker.run(self._close)

    def _close(self) -> None:
        self._live = None
        self._saved.clear()
        self._buffers = _StateBuffers(0, 0)
        self._trims.clear()
        self._llama.close()
        self._llama = None

    async def stream(self, prompt: Prompt) -> AsyncGenerator[Piece | Finished, None]:
        async with self._lock:
            if self._llama is None:
                raise LlmError("llm-failed", "the embedded model is not loaded")
            loop = asyncio.get_running_loop()
            # Bounded by construction: at most one piece per token, one final flush and one Finished.
            queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=prompt.max_tokens + 2)
            cancel = threading.Event()

            def push(item: Item) -> None:
                try:
                    loop.call_soon_threadsafe(queue.put_nowait, item)
                except RuntimeError:  # the consumer's event loop is closed: nobody is listening any more
                    cancel.set()

            job = self._worker.run(self._turn, prompt, cancel, push)
            try:
                while True:
                    item = await queue.get()
                    if isinstance(item, LlmError):
                        raise item
                    yield item
                    if isinstance(item, Finished):
                        return
            finally:
                cancel.set()  # aclose() or task cancellation: the worker stops before its next token
                await job

    # Everything below runs on the worker thread.
    def _turn(self, prompt: Prompt, cancel: threading.Event, push: Callable[[Item], None]) -> None:
        try:
            finished = self._generate(prompt, cancel, push)
        except LlmError as err:
            push(err)
            return
        except Exception as err:
            self._live = None  # what the context holds is unknown now: let the next turn start afresh
            self._llama.reset()
            log.exception("generation failed")
            push(LlmError("llm-failed", f"generation failed: {err}"))
            return
        self.last_finished = finished
        push(finished)

    def _generate(self, prompt: Prompt, cancel: threading.Event, push: Callable[[Item], None]) -> Finished:
        llama, llama_cpp = self._llama, self._llama_cpp
        rendered, tokens = self._fit(prompt)
        self._switch_to(prompt.session_id)
        shift = self._shift_out(tokens)
        longest = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        if self._stale_logits and longest == llama.n_tokens == len(tokens):
            # A restored state has no logits for its last token, and Llama.generate would sample an exactly
            # cached prompt at once: make it re-evaluate that token.
            llama.n_tokens -= 1
        self._stale_logits = False
        # What Llama.generate keeps: the common prefix, less the last token when the whole prompt is cached
        # (it re-evaluates that one to refresh the logits, unless they are still live: then 1 is reported
        # for the 0 it prefills).
        reused = longest - 1 if longest == len(tokens) else longest
        vocab = llama_cpp.llama_model_get_vocab(llama.model)
        shaper = ReplyShaper(rendered.stop, self._reply.max_sentences)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span tokens
        generated, reason = 0, "length"
        tokens_out = llama.generate(
            tokens, temp=self._config.temperature, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0
        )
        try:
            for token in tokens_out:
                if cancel.is_set():
                    reason = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token) or llama_cpp.llama_vocab_is_control(vocab, token):
                    reason = "stop"  # end of turn, or a template marker such as <|im_start|>: never spoken
                    break
                generated += 1
                text = shaper.feed(decoder.decode(llama.detokenize([token])))
                if text:
                    push(Piece(text))
                if shaper.done:
                    reason = "stop"
                    break
                if generated >= prompt.max_tokens:
                    break
        finally:
            tokens_out.close()
        if reason != "cancelled":
            text = shaper.feed(decoder.decode(b"", final=True)) + shaper.finish()
            if text:
                push(Piece(text))
        prefilled = len(tokens) - reused
        # A long prefill holds every other session's turn behind it: say so where a user looking at a slow
        # answer will look.
        level = logging.INFO if prefilled > _LONG_PREFILL else logging.DEBUG
        log.log(level, "session %s: %d prompt tokens, %d prefilled, %d generated, %s%s", prompt.session_id,
                len(tokens), prefilled, generated, reason, f" ({shift})" if shift else "")  # fmt: skip
        return Finished(len(tokens), prefilled, generated, reason)

    def _tokens(self, rendered: PromptText) -> list[int]:
        return list(self._llama.tokenize(rendered.text.encode("utf-8"), add_bos=True, special=rendered.special))

    def _fit(self, prompt: Prompt) -> tuple[PromptText, list[int]]:
        """The prompt's text and tokens, its oldest exchanges dropped until the reply fits the context
        (the shared policy, procs/llm/context.py; counted exactly with the model's tokenizer, so no margin)."""
        measured: dict[int, tuple[PromptText, list[int]]] = {}  # by history length: the fit's own is reused

        def count(history: tuple[Exchange, ...]) -> int:
            rendered = render(replace(prompt, history=history), self._config.prompt_format, self._reply.assistant_name)
            measured[len(history)] = rendered, self._tokens(rendered)
            return len(measured[len(history)][1])

        budget = ContextBudget(context=self._config.n_ctx, reply=prompt.max_tokens)
        fit = self._trims.fit(prompt.session_id, prompt.history, count, budget)
        return measured[len(fit.history)]

    def _shift_out(self, tokens: list[int]) -> str:
        """Context shift: when the live context holds the prompt's start and, further on, the rest of it (the
        oldest exchanges were trimmed away since), drop the trimmed span from the KV cache and slide what follows
        down over it, instead of evaluating the kept history again. Measured on the 2-core box: re-evaluating a
        trimmed 1500-token history took 19.5 s with one thread (a 30-minute soak saw first tokens 13-25 s late
        at each trim, three sessions queued behind one another); the shift takes milliseconds. The kept tokens'
        cache entries were computed with the dropped ones in view, as in llama.cpp's own context shift."""
        llama, llama_cpp = self._llama, self._llama_cpp
        live = llama.input_ids[: llama.n_tokens].tolist()
        start = _common_prefix(live, tokens)
        probe = tokens[start : start + _SHIFT_PROBE]
        if start == len(live) or len(probe) < _SHIFT_PROBE:
            return ""  # already a prefix of the prompt (the usual turn), or nothing worth finding
        # Every place the probe occurs, keeping the one that keeps most: in a conversation that repeats itself the
        # kept history's first words also occur in the dropped span, and the first copy found there diverged
        # after a few dozen tokens (a 30-minute soak: 43-302 kept of ~1400, the rest evaluated again, 15-30 s).
        copies = [b for b in range(start + 1, len(live) - _SHIFT_PROBE + 1) if live[b : b + _SHIFT_PROBE] == probe]
        if not copies:
            return f"no shift: the prompt's tokens after {start} are not in the live context"
        found = max(copies, key=lambda b: _common_prefix(live[b:], tokens[start:]))  # the earliest of the longest
        kept = _common_prefix(live[found:], tokens[start:])
        if kept < _SHIFT_MIN:
            return f"no shift: it would keep {kept} tokens"
        end = found + kept
        memory = llama_cpp.llama_get_memory(llama.ctx)
        if not (
            llama_cpp.llama_memory_seq_rm(memory, 0, end, -1) and llama_cpp.llama_memory_seq_rm(memory, 0, start, found)
        ):
            llama.n_tokens = start  # the cache past `start` is in doubt: evaluate the rest afresh
            return "no shift: llama.cpp refused to remove the span"
        llama_cpp.llama_memory_seq_add(memory, 0, found, end, start - found)
        llama.input_ids[start : start + kept] = live[found:end]
        llama.n_tokens = start + kept
        return f"context shift: {found - start} tokens dropped at {start}, {kept} kept"

    def _switch_to(self, session: str) -> None:
        """Make `session`'s KV state the live one, saving the outgoing session's state in the LRU."""
        if self._live == session:
            return
        llama = self._llama
        if self._live is not None and self._config.kv_sessions > 0 and llama.n_tokens > 0:
            self._saved[self._live] = self._save()
            self._saved.move_to_end(self._live)
            while len(self._saved) > self._config.kv_sessions:
                self._buffers.give_back(self._saved.popitem(last=False)[1])
        state = self._saved.pop(session, None)
        if state is not None:
            if not self._restore(state):
                log.warning("could not restore the KV state of session %s; prefilling it afresh", session)
            self._buffers.give_back(state)
        self._live = session

    def _save(self) -> _KvState:
        llama, llama_cpp = self._llama, self._llama_cpp
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        buffer = self._buffers.take(size)
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, buffer, len(buffer), 0)
        return _KvState(tuple(llama.input_ids[: llama.n_tokens].tolist()), buffer, written)

    def _restore(self, state: _KvState) -> bool:
        llama, llama_cpp = self._llama, self._llama_cpp
        if llama_cpp.llama_state_seq_set_data(llama.ctx, state.buffer, state.size, 0) != state.size:
            llama.reset()
            return False
        llama.input_ids[: len(state.tokens)] = state.tokens
        llama.n_tokens = len(state.tokens)
        self._stale_logits = True
        return True


class _Worker:
    """One thread that runs every llama.cpp call, in submission order."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mynah-llm")
        self._last: Future[Any] | None = None

    @property
    def busy(self) -> bool:
        return self._last is not None and not self._last.done()

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Submit now; the returned future resolves on the running loop when the call has finished."""
        self._last = self._pool.submit(fn, *args)
        return asyncio.wrap_future(self._last)
