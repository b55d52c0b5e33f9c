"""One voice-training job, step by step: decode and check the sample, slice it at pauses, transcribe the clips
into GPT-SoVITS's `.list`, choose the reference clip, then train (GPT-SoVITS, where installed) or adapt the
embedded voice toward the sample (an approximation), and measure what came out.

Everything is written under `<work_dir>/voice/`; the coordinator moves that folder into place when it registers
the voice, and removes the work dir when the job fails. Heavy work runs in threads so the worker keeps
heartbeating; cancellation is checked between clips and steps (and kills GPT-SoVITS's trainers at once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import wave
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from appliance.config import SttLimits, TrainerConfig, TtsConfig
from appliance.models.store import ModelError, ModelStore
from ipc.errors import CodedError
from ipc.messages import TrainedVoice
from procs.stt.audio import decode_audio, float_to_pcm16, resample
from procs.stt.backends.base import SttError
from procs.stt.vad import FRAME_SAMPLES, SileroVad, frames
from procs.trainer.dataset import (
    Candidate,
    ListEntry,
    choose_reference,
    clean_text,
    gpt_sovits_language,
    require_enough,
    write_list,
)
from procs.trainer.slicing import ClipSpan, slice_at_pauses
from procs.tts.backends.base import OUTPUT_RATE, VoiceSettings

log = logging.getLogger(__name__)

RATE = 32_000  # GPT-SoVITS's training rate (its slicer writes 32 kHz clips)
VAD_RATE = 16_000
TARGET_RMS_DBFS = -20.0
PEAK_LIMIT = 0.95
SILENT_PEAK = 10 ** (-50 / 20)  # a sample whose loudest moment is below -50 dBFS holds nothing
MIN_SPEECH_S = 10.0
MIN_SPEECH_FRACTION = 0.35  # of the sample; a minute of talk with natural pauses is 60-85% speech
VAD_SPEECH = 0.5
# Piper's own voice is measured reading every transcript of the sample, without its random variation: the same
# words as the sample, so what the words do to pitch and timbre cancels out (measured: Piper reading 4 other
# sentences read 150 Hz, reading the sample's 119 Hz, with 117 Hz on the check sentence).
STEADY = VoiceSettings(variation=0.0, timing_variation=0.0)
# Voices are measured at Piper's own rate: WORLD's analysis costs grow with the rate, and the profiles only
# describe 0-8 kHz (procs/tts/adapt.py).
MEASURE_RATE = 22_050
CHECK_SENTENCE = "The quick brown fox jumps over the lazy dog, and then it rests in the warm afternoon sun."

Report = Callable[[str, float, str], Coroutine[Any, Any, None]]
Transcribe = Callable[[bytes, str], Awaitable[str]]
Result = TypeVar("Result")
Lease = Callable[[bool], Awaitable[tuple[str, ...]]]  # True: make room for this job (per the plan); False: give it back


class JobCancelled(CodedError):
    def __init__(self) -> None:
        super().__init__("cancelled", "the job was cancelled")


class SampleError(CodedError):
    """The sample cannot make a voice (codes voice-sample-*, audio-*)."""


@dataclass(frozen=True, slots=True)
class Sample:
    samples: npt.NDArray[np.float32]  # mono, RATE, loudness-normalised
    duration_s: float
    speech_s: float


@dataclass
class VoiceJob:
    job_id: str
    name: str
    language: str
    sample_path: Path
    work_dir: Path
    trainer: TrainerConfig
    tts: TtsConfig
    models: ModelStore
    report: Report
    transcribe: Transcribe
    cancelled: threading.Event
    lease: Lease
    threads: Executor
    list_language: str = ""  # the .list's LANG, set once the language is checked

    @property
    def voice_dir(self) -> Path:
        return self.work_dir / "voice"

    async def off_loop(self, fn: Callable[..., Result], *args: Any) -> Result:
        """Run `fn` on the job's worker thread (idle scheduling class): the event loop keeps heartbeating."""
        return await asyncio.get_running_loop().run_in_executor(self.threads, fn, *args)

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()

    async def accept_sample(self) -> Sample:
        """Decode, normalise and check the sample (the first step: its errors answer the request itself)."""
        try:
            self.list_language = gpt_sovits_language(self.language)  # the dataset is GPT-SoVITS's, on either path
        except ValueError as err:
            raise SampleError("voice-language-invalid", str(err)) from err
        sample = await self.off_loop(load_sample, self.sample_path, self.trainer)
        self.voice_dir.mkdir(parents=True, exist_ok=True)
        await self.off_loop(write_wav, self.voice_dir / "sample.wav", sample.samples, RATE)
        return sample

    async def run(self, sample: Sample) -> TrainedVoice:
        self.check()
        await self.report("slice", 0.08, "cutting the sample into clips at its pauses")
        clips = slice_at_pauses(sample.samples, RATE)
        if not clips:
            raise SampleError("voice-sample-no-speech", "no speech was found to cut into clips")
        entries, candidates = await self._transcribe(sample, clips)
        require_enough([c.duration_s for c in candidates])
        self.check()
        reference = choose_reference(candidates)
        shutil.copyfile(reference.path, self.voice_dir / "reference.wav")
        await self.report("reference", 0.5, f"reference clip {reference.path.name} ({reference.duration_s:.1f} s): "
                          f"{reference.text!r}")  # fmt: skip
        base = TrainedVoice(self.job_id, "approximated", "reference.wav", reference.text, "dataset.list", len(entries))
        if self.trainer.gpt_sovits_root is not None:
            return await self._train_gpt_sovits(base)
        # The adaptation needs RAM and a core to itself: the coordinator's plan evicts what is in the way.
        freed = await self.lease(True)
        try:
            await self.report("adapt", 0.52, "made room: " + (", ".join(freed) or "nothing was in the way"))
            return await self._adapt(sample, [e.text for e in entries], base)
        finally:
            await self.lease(False)

    async def _transcribe(self, sample: Sample, clips: list[ClipSpan]) -> tuple[list[ListEntry], list[Candidate]]:
        clip_dir = self.voice_dir / "dataset"
        clip_dir.mkdir(parents=True, exist_ok=True)
        entries: list[ListEntry] = []
        candidates: list[Candidate] = []
        for number, clip in enumerate(clips, start=1):
            self.check()
            path = clip_dir / f"clip_{number:03d}_{clip.start}_{clip.end}.wav"
            audio = clip.take(sample.samples)
            write_wav(path, audio, RATE)
            text = clean_text(await self.transcribe(path.read_bytes(), path.name))
            progress = 0.1 + 0.35 * number / len(clips)
            await self.report("transcribe", progress, f"clip {number}/{len(clips)} ({clip.duration_s:.1f} s): {text!r}")
            if not text:
                path.unlink()
                continue
            entries.append(ListEntry(path, "mynah", self.list_language, text))
            candidates.append(Candidate(path, clip.duration_s, text, clip.speech_fraction))
        write_list(self.voice_dir / "dataset.list", entries)
        return entries, candidates

    async def _adapt(self, sample: Sample, texts: list[str], base: TrainedVoice) -> TrainedVoice:
        from procs.tts.adapt import VoiceAdapter, measure_voice

        self.check()
        await self.report("adapt", 0.55, "measuring the sample's voice (pitch and timbre)")
        target = await self.off_loop(measure_voice, resampled(sample.samples, RATE), MEASURE_RATE)
        piper = self._piper()
        await self.off_loop(piper.load)
        self.check()
        await self.report("adapt", 0.65, "measuring the built-in voice on the sample's own sentences")
        own = await self.off_loop(speak, piper, " ".join(texts))
        source = await self.off_loop(measure_voice, resampled(own, OUTPUT_RATE), MEASURE_RATE)
        stored = {"version": 1, "source": json.loads(source.to_json()), "target": json.loads(target.to_json())}
        (self.voice_dir / "adaptation.json").write_text(json.dumps(stored, indent=1), encoding="utf-8")
        self.check()
        await self.report("verify", 0.85, "speaking a test sentence in the adapted voice")
        adapted_piper = piper.with_transform(VoiceAdapter(source, target).apply)
        plain = await self.off_loop(speak, piper, CHECK_SENTENCE)
        adapted = await self.off_loop(speak, adapted_piper, CHECK_SENTENCE)  # the same words, without variation
        voices = {"sample": resampled(sample.samples, RATE), "builtin": resampled(plain, OUTPUT_RATE),
                  "voice": resampled(adapted, OUTPUT_RATE)}  # fmt: skip
        measures = await self.off_loop(compare, voices)
        await self.off_loop(write_wav, self.voice_dir / "check.wav", adapted, OUTPUT_RATE)
        summary = (
            "median F0 {builtin_f0_hz:.0f} -> {voice_f0_hz:.0f} Hz (sample {sample_f0_hz:.0f} Hz); spectral centroid "
            "{builtin_centroid_hz:.0f} -> {voice_centroid_hz:.0f} Hz (sample {sample_centroid_hz:.0f} Hz)"
        )
        await self.report("verify", 0.95, summary.format(**measures))
        return TrainedVoice(base.job_id, "approximated", base.reference_path, base.reference_text, base.dataset_list,
                            base.clips, adaptation_path="adaptation.json",
                            measures={k: round(v, 2) for k, v in measures.items()})  # fmt: skip

    def _piper(self) -> Any:
        from procs.tts.backends.piper import PiperBackend

        try:
            model_dir = self.models.resolve(self.tts.piper.model)
        except ModelError as err:
            raise SampleError(err.code, err.message) from err
        return PiperBackend(model_dir, threads=1)

    async def _train_gpt_sovits(self, base: TrainedVoice) -> TrainedVoice:
        from procs.trainer.gpt_sovits_job import train_gpt_sovits

        return await train_gpt_sovits(self, base)


def load_sample(path: Path, config: TrainerConfig) -> Sample:
    limits = SttLimits(max_upload_bytes=config.max_upload_bytes, max_duration_s=config.max_sample_s,
                       min_duration_s=config.min_sample_s)  # fmt: skip
    try:
        decoded = decode_audio(path, limits, rate=RATE)
    except SttError as err:
        code = {"audio-too-long": "voice-sample-too-long", "audio-too-short": "voice-sample-too-short"}.get(err.code)
        if code is None:
            raise SampleError(err.code, err.message) from err
        bounds = f"{config.min_sample_s:.0f}-{config.max_sample_s:.0f} s"
        why = f"{err.message}: a voice needs about one minute of speech ({bounds})"
        raise SampleError(code, why) from err
    samples = decoded.samples
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak < SILENT_PEAK:
        raise SampleError("voice-sample-silent", f"the sample is silent (its loudest moment is {_dbfs(peak):.0f} dBFS)")
    speech_s = speech_seconds(samples)
    if speech_s < MIN_SPEECH_S or speech_s < MIN_SPEECH_FRACTION * decoded.duration_s:
        raise SampleError("voice-sample-no-speech", f"only {speech_s:.1f} s of the {decoded.duration_s:.1f} s sample "
                          "sounds like speech: record one person talking, with little noise or music")  # fmt: skip
    return Sample(normalise(samples), decoded.duration_s, speech_s)


def speech_seconds(samples: npt.NDArray[np.float32]) -> float:
    """Seconds of speech in a RATE signal, by the Silero VAD (the one the live STT uses)."""
    vad = SileroVad()
    audio = resample(samples, RATE, VAD_RATE)
    speech = sum(1 for frame in frames(audio) if vad.process(frame) >= VAD_SPEECH)
    return speech * FRAME_SAMPLES / VAD_RATE


def normalise(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Loudness to TARGET_RMS_DBFS over the louder half of the frames (speech, not pauses), peaks under PEAK_LIMIT."""
    frame = RATE // 50
    usable = samples[: len(samples) // frame * frame].reshape(-1, frame)
    energies = np.sort(np.mean(usable.astype(np.float64) ** 2, axis=1))
    loud = energies[len(energies) // 2 :]
    rms = float(np.sqrt(np.mean(loud))) if loud.size else 0.0
    gain = 10 ** (TARGET_RMS_DBFS / 20) / max(rms, 1e-9)
    peak = float(np.max(np.abs(samples))) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    return (samples * gain).astype(np.float32)


def speak(backend: Any, text: str) -> npt.NDArray[np.float32]:
    """`text` in the backend's voice without random variation, at OUTPUT_RATE."""
    chunks = [chunk.samples for chunk in backend.synthesize(text, voice=STEADY)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def compare(voices: dict[str, npt.NDArray[np.float32]]) -> dict[str, float]:
    """Median F0 and spectral centroid of each voice (MEASURE_RATE audio), as `<name>_f0_hz`, `<name>_centroid_hz`."""
    from procs.tts.adapt import median_f0, spectral_centroid

    measures: dict[str, float] = {}
    for name, audio in voices.items():
        measures[f"{name}_f0_hz"] = median_f0(audio, MEASURE_RATE)
        measures[f"{name}_centroid_hz"] = spectral_centroid(audio, MEASURE_RATE)
    return measures


def resampled(samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    return resample(samples, rate, MEASURE_RATE)


def write_wav(path: Path, samples: npt.NDArray[np.float32], rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(float_to_pcm16(samples))


def _dbfs(value: float) -> float:
    return 20 * float(np.log10(max(value, 1e-12)))
