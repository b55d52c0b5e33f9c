"""Piper (VITS on onnxruntime) in-process: the embedded voice, with the phoneme timing that lip-sync needs.

The session is built here, not by PiperVoice.load: that gives onnxruntime default options (a thread per core,
spinning), and its `include_alignments` needs the `onnx` package (not installed; ~430 MB peak). Piper's
alignments read the output of the graph's one Ceil node (frames per phoneme id); `expose_durations` makes it a
graph output by editing the protobuf bytes. Text is cut into sentences here and each is synthesized on its own
(as Piper does anyway), so every chunk knows its words: the conversation keeps only what was played.

An optional `transform` reworks each sentence's audio at the voice's native rate, before the one resampling (the
approximated voice: procs/tts/adapt.py). It must keep the length, sample for sample: the alignments count samples.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime  # type: ignore[import-untyped, unused-ignore]  # ships no type information (no py.typed)
import soxr
from piper import AudioChunk, PiperConfig, PiperVoice, SynthesisConfig
from piper.const import BOS, EOS

from procs.tts.backends.base import OUTPUT_RATE, SILENCE, Audio, SpeechChunk, TtsError, VoiceSettings, to_output_spans

log = logging.getLogger(__name__)

# (samples at the native rate, the rate) -> as many samples, reworked
Transform = Callable[[Audio, int], Audio]

# A sentence ends at . ! or ? (then maybe closing quotes or brackets) before whitespace; not after a title, an
# abbreviation or an initial. Not cutting costs only latency: espeak-ng still cuts, and _speak joins the parts.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+")
_NOT_AN_END = re.compile(r"(?:\b(?:mrs?|ms|dr|prof|st|jr|sr|vs|etc|e\.g|i\.e)|(?<!\w)[a-z])\.$", re.IGNORECASE)


def split_sentences(text: str) -> list[str]:
    """`text` cut after each sentence end; pieces stripped, empty ones dropped."""
    pieces: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if not _NOT_AN_END.search(text, start, end.start() + 1):
            pieces.append(text[start : end.end()].strip())
            start = end.end()
    pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


class PiperBackend:
    name: ClassVar[str] = "piper"

    def __init__(self, model_dir: Path, *, threads: int = 1, transform: Transform | None = None) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self._model_dir = model_dir
        self._threads = threads
        self._transform = transform
        self._voice: PiperVoice | None = None

    @property
    def model(self) -> str:
        return self._model_dir.name

    @property
    def native_rate(self) -> int:
        return int(self._loaded().config.sample_rate)

    def load(self) -> None:
        if self._voice is not None:
            return
        started = time.monotonic()
        models = sorted(self._model_dir.glob("*.onnx"))
        if len(models) != 1:
            raise TtsError("tts-load-failed", f"{self.model}: expected one .onnx voice in {self._model_dir}, "
                           f"found {len(models)}; run: mynah models fetch {self.model}")  # fmt: skip
        model_path = models[0]
        try:
            config = PiperConfig.from_dict(json.loads(Path(f"{model_path}.json").read_text(encoding="utf-8")))
            options, model = self._session_options(), expose_durations(model_path.read_bytes())
            session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's errors (Fail, InvalidGraph, ...) derive from Exception itself
            raise TtsError("tts-load-failed", f"cannot load the Piper voice {model_path}: {err}") from err
        voice = PiperVoice(session=session, config=config)
        # One short synthesis now: the first one also starts espeak-ng and sizes onnxruntime's buffers, which
        # would otherwise land on the first turn, and it proves the alignment output (and any transform) works.
        try:
            _speak(voice, "Ready.", SynthesisConfig(), self._transform)
        except TtsError as err:
            raise TtsError("tts-load-failed", f"{self.model}: a test synthesis failed: {err.message}") from err
        self._voice = voice
        log.info("loaded %s (%d Hz, %d intra-op threads) in %.2f s", self.model, config.sample_rate, self._threads,
                 time.monotonic() - started)  # fmt: skip

    def synthesize(self, text: str, *, voice: VoiceSettings | None = None) -> Generator[SpeechChunk]:
        piper = self._loaded()  # checked now, not at the first next(): a generator body starts late
        pieces = split_sentences(text)
        if not pieces:
            raise TtsError("tts-empty-text", "there is nothing to say: the text is empty or only spaces")
        config = _synthesis_config(piper.config, voice or VoiceSettings())
        return _stream(piper, pieces, config, text, self._transform)

    def with_transform(self, transform: Transform) -> PiperBackend:
        """This voice speaking through `transform` (an approximated voice), sharing the loaded model: no reload."""
        other = PiperBackend(self._model_dir, threads=self._threads, transform=transform)
        other._voice = self._loaded()
        return other

    def _loaded(self) -> PiperVoice:
        if self._voice is None:
            raise TtsError("tts-not-loaded", f"{self.model} is not loaded: call load() first")
        return self._voice

    def _session_options(self) -> Any:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads  # two cores serve every model: the budget is explicit
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads would spin after each operator, taking CPU from the STT and lip-sync workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # No arena and no memory patterns: with them, every new input length grows the arena, which never gives
        # memory back (the same 60-word sentence spoken 150 times: RSS 586 -> 1029 MB; without: a plateau at
        # 348 MB), and a 30-minute soak saw the tts worker grow 9.9%. Measured cost, side by side on 60 sentences:
        # synthesis 1.10x slower (real-time factor 0.095 -> 0.110), ~10 ms on a first clause.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        return options


def _stream(piper: PiperVoice, pieces: list[str], config: SynthesisConfig, text: str,
            transform: Transform | None) -> Generator[SpeechChunk]:  # fmt: skip
    # Nothing runs between yields: a caller that closes this generator stops synthesis at once.
    spoken = False
    for piece in pieces:
        chunk = _speak(piper, piece, config, transform)
        if chunk is not None:
            spoken = True
            yield chunk
    if not spoken:
        raise TtsError("tts-empty-text", f"there is nothing to say in {text!r}")


def _synthesis_config(voice: PiperConfig, settings: VoiceSettings) -> SynthesisConfig:
    return SynthesisConfig(speaker_id=settings.speaker_id, length_scale=voice.length_scale / settings.speed,
                           noise_scale=settings.variation, noise_w_scale=settings.timing_variation)  # fmt: skip


def _speak(piper: PiperVoice, text: str, config: SynthesisConfig, transform: Transform | None) -> SpeechChunk | None:
    """`text` (one sentence) as one chunk at OUTPUT_RATE, or None when it holds nothing speakable."""
    try:
        # Usually one Piper chunk; several when espeak-ng cuts where split_sentences did not: they are joined.
        pieces: list[AudioChunk] = list(piper.synthesize(text, config, include_alignments=True))
    except Exception as err:  # espeak-ng and onnxruntime failures; onnxruntime's derive from Exception itself
        raise TtsError("tts-failed", f"Piper failed on {text!r}: {err}") from err
    if not pieces:
        return None
    native = np.concatenate([piece.audio_float_array for piece in pieces]).astype(np.float32, copy=False)
    spans = [span for piece in pieces for span in _alignment(piece)]
    if transform is not None:
        native = _transformed(transform, native, pieces[0].sample_rate, text)
    # The one resampling on the way to the output timeline. Its filter can overshoot a full-scale peak (Piper
    # normalizes each sentence to 1.0), hence the clip.
    samples = np.clip(soxr.resample(native, pieces[0].sample_rate, OUTPUT_RATE), -1.0, 1.0).astype(np.float32)
    return SpeechChunk(samples=samples, phonemes=to_output_spans(spans, len(samples)), text=text)


def _transformed(transform: Transform, native: Audio, rate: int, text: str) -> Audio:
    try:
        reworked = np.asarray(transform(native, rate), dtype=np.float32)
    except TtsError:
        raise
    except Exception as err:  # the transform's own failures (WORLD's, numpy's): the sentence cannot be spoken
        raise TtsError("tts-failed", f"the voice transform failed on {text!r}: {err}") from err
    if reworked.shape != native.shape:
        raise TtsError("tts-failed", f"the voice transform changed {len(native)} samples into {reworked.shape} "
                       f"on {text!r}: the phoneme timing would no longer fit")  # fmt: skip
    return reworked


def _alignment(piece: AudioChunk) -> list[tuple[str, int]]:
    """(phoneme, native samples) for each phoneme of a Piper chunk, Piper's start and end symbols as SILENCE."""
    if piece.phoneme_id_samples is None:
        raise TtsError("tts-failed", "the voice gave no phoneme durations: its model has no alignment output")
    if piece.phoneme_alignments is None:
        # Piper drops (and warns of) a phoneme the voice has no id for, which defeats its alignment: lips rest.
        log.warning("no phoneme timing for %r: a phoneme is missing from the voice", "".join(piece.phonemes))
        return [(SILENCE, len(piece.audio_float_array))]
    return _fold_marks([(SILENCE if a.phoneme in (BOS, EOS) else a.phoneme, int(a.num_samples))
                        for a in piece.phoneme_alignments])  # fmt: skip


def _fold_marks(spans: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Whole phonemes: espeak-ng's stress (ˈ ˌ), length (ː ˑ) and diacritic marks are tokens with durations (up
    to 0.1 s) but no sound. Stress goes to the phoneme after, the rest to the one before: visemes never see them."""
    folded: list[tuple[str, int]] = []
    stress = 0  # samples of stress marks waiting for their phoneme
    for phoneme, count in spans:
        if phoneme in ("ˈ", "ˌ"):
            stress += count
        elif folded and len(phoneme) == 1 and (phoneme in "ːˑ" or unicodedata.combining(phoneme)):
            folded[-1] = (folded[-1][0], folded[-1][1] + count)
        else:
            folded.append((phoneme, count + stress))
            stress = 0
    return folded  # no stress is left over: Piper's end symbol comes last


def expose_durations(model: bytes) -> bytes:
    """The ONNX model with its one Ceil node's output (frames per phoneme id) added to the graph's outputs.

    ONNX files are protobuf: ModelProto.graph is field 7, GraphProto.node 1 and .output 12, NodeProto.output 2
    and .op_type 4, ValueInfoProto.name 1. The graph field is re-emitted with a ValueInfoProto naming the tensor
    appended; every other byte is kept. A model whose graph already outputs the tensor is returned unchanged.
    """
    view = memoryview(model)
    graphs = [field for field in _fields(view, 0, len(view)) if field[0] == 7]
    if len(graphs) != 1:
        raise ValueError(f"not an ONNX model: {len(graphs)} graph fields")
    _, tag_start, graph_start, graph_end = graphs[0]
    ceil_outputs: list[bytes] = []
    outputs: set[bytes] = set()
    for number, _, start, end in _fields(view, graph_start, graph_end):
        if number == 1:
            node = [(n, bytes(view[s:e])) for n, _, s, e in _fields(view, start, end) if n in (2, 4)]
            if (4, b"Ceil") in node:
                ceil_outputs += [value for n, value in node if n == 2]
        elif number == 12:
            outputs.update(bytes(view[s:e]) for n, _, s, e in _fields(view, start, end) if n == 1)
    if len(ceil_outputs) != 1:
        raise ValueError(f"expected one Ceil output (phoneme durations) in the voice, found {len(ceil_outputs)}")
    if ceil_outputs[0] in outputs:
        return model
    value_info = _header(1, len(ceil_outputs[0])) + ceil_outputs[0]
    output = _header(12, len(value_info)) + value_info
    graph_head = _header(7, graph_end - graph_start + len(output))
    # One copy of the model's bytes: the slices are views until joined.
    return b"".join((view[:tag_start], graph_head, view[graph_start:graph_end], output, view[graph_end:]))


def _fields(data: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, tag offset, value start, value end) for each field of the message in data[start:end]."""
    position = start
    while position < end:
        tag_start = position
        key, position = _varint(data, position)
        wire_type = key & 7
        value_start = position
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type == 2:
            size, value_start = _varint(data, position)
            position = value_start + size
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type} at byte {tag_start}")
        if position > end:
            raise ValueError(f"truncated protobuf field at byte {tag_start}")
        yield key >> 3, tag_start, value_start, position


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if byte < 0x80:
            return value, position


def _header(number: int, size: int) -> bytes:
    """The tag and size of a length-delimited field, as varints."""
    out = bytearray()
    for value in (number << 3 | 2, size):
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)
