"""Drive GPT-SoVITS's own training steps as subprocesses of its install, the way its webui.py does.

Read from RVC-Boss/GPT-SoVITS (HEAD 2026-08): webui.py (open1abc, open1Ba, open1Bb), config.py (pretrained
paths, weight folders), GPT_SoVITS/prepare_datasets/1-get-text.py, 2-get-hubert-wav32k.py, 3-get-semantic.py,
GPT_SoVITS/s2_train.py, s1_train.py, process_ckpt.py, configs/s2.json and configs/s1longer-v2.yaml. The steps:

| step        | runs                                             | leaves in logs/<exp>/                        |
|-------------|--------------------------------------------------|----------------------------------------------|
| 1a-text     | prepare_datasets/1-get-text.py                   | 2-name2text-0.txt -> 2-name2text.txt, 3-bert/ |
| 1b-ssl      | prepare_datasets/2-get-hubert-wav32k.py          | 4-cnhubert/, 5-wav32k/                       |
| 1c-semantic | prepare_datasets/3-get-semantic.py               | 6-name2semantic-0.tsv -> 6-name2semantic.tsv |
| sovits      | s2_train.py --config TEMP/tmp_s2.json            | SoVITS_weights_v2/<exp>_e<E>_s<S>.pth        |
| gpt         | s1_train.py --config_file TEMP/tmp_s1.yaml       | GPT_weights_v2/<exp>-e<E>.ckpt               |

The feature scripts take their inputs from environment variables (webui sets them in its own os.environ, so every
later step also sees the earlier ones; here each step gets the ones it reads, named explicitly), write one part
file per GPU, and report a failed clip by printing it and exiting 0: the merged file's contents are checked here.
Paths are passed absolute (webui passes them relative to the repository root, the steps' working directory).
The trainers save their final weights only on an epoch that is a multiple of the save interval, and
process_ckpt.savee swallows a failure to save, so the interval here is the epoch count and the weights are looked
for afterwards. Only version v2 is planned (v2Pro adds 2-get-sv.py and another config).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from ipc.errors import CodedError

# config.py: pretrained_sovits_name / pretrained_gpt_name and the fixed model folders, relative to the root.
_PRETRAINED = "GPT_SoVITS/pretrained_models"
BERT_DIR = f"{_PRETRAINED}/chinese-roberta-wwm-ext-large"
CNHUBERT_DIR = f"{_PRETRAINED}/chinese-hubert-base"


@dataclass(frozen=True, slots=True)
class _Version:
    s2g: str
    s1: str
    s2_config: str
    s1_config: str

    @property
    def s2d(self) -> str:
        return self.s2g.replace("s2G", "s2D")  # webui: pretrained_s2D is the s2G path with s2G -> s2D


VERSIONS = {
    "v2": _Version(
        s2g=f"{_PRETRAINED}/gsv-v2final-pretrained/s2G2333k.pth",
        s1=f"{_PRETRAINED}/gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt",
        s2_config="GPT_SoVITS/configs/s2.json",
        s1_config="GPT_SoVITS/configs/s1longer-v2.yaml",
    ),
}
SCRIPTS = {
    "1a-text": "GPT_SoVITS/prepare_datasets/1-get-text.py",
    "1b-ssl": "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py",
    "1c-semantic": "GPT_SoVITS/prepare_datasets/3-get-semantic.py",
    "sovits": "GPT_SoVITS/s2_train.py",
    "gpt": "GPT_SoVITS/s1_train.py",
}
# webui.py writes users.pth with these folders; integrations.md lists them as the steps' PYTHONPATH.
PYTHONPATH_DIRS = ("", "GPT_SoVITS", "GPT_SoVITS/BigVGAN", "tools", "tools/asr", "tools/uvr5")
SEMANTIC_HEADER = "item_name\tsemantic_audio"  # webui writes it above the merged parts
# Rough shares of a run's time, for progress: the trainers dominate, each feature step mostly loads a model.
_STEP_SHARE = {"1a-text": 0.08, "1b-ssl": 0.08, "1c-semantic": 0.06, "sovits": 0.45, "gpt": 0.33}
_EXP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class TrainingError(CodedError):
    """Training could not run or failed. Codes: `voice-training-unavailable` (GPT-SoVITS or one of its files is
    missing), `voice-training-failed` (a step exited non-zero or left no output)."""


class TrainingCancelled(CodedError):
    """The job was cancelled; the running step's whole process group was killed."""

    def __init__(self, message: str = "voice training was cancelled") -> None:
        super().__init__("voice-training-cancelled", message)


@dataclass(frozen=True, slots=True)
class GptSovitsInstall:
    """A GPT-SoVITS checkout at `root` and the Python of its environment."""

    root: Path
    python: Path

    def required(self, version: str = "v2") -> tuple[Path, ...]:
        """The files the training steps need: the interpreter, the scripts, the configs and pretrained models."""
        spec = VERSIONS[version]
        files = [
            *SCRIPTS.values(),
            spec.s2_config,
            spec.s1_config,
            f"{BERT_DIR}/config.json",
            f"{BERT_DIR}/pytorch_model.bin",
            f"{BERT_DIR}/tokenizer.json",
            f"{CNHUBERT_DIR}/config.json",
            f"{CNHUBERT_DIR}/pytorch_model.bin",
            spec.s2g,
            spec.s2d,
            spec.s1,
        ]
        return (self.python, *(self.root / name for name in files))

    def missing(self, version: str = "v2") -> list[Path]:
        """The required files that are absent; the interpreter counts as present when it can be run (a bare name
        such as "python3" is looked up on PATH, as the steps' argv will be)."""
        python, *files = self.required(version)
        absent = [] if shutil.which(str(python)) else [python]
        return absent + [path for path in files if not path.is_file()]

    def is_installed(self, version: str = "v2") -> bool:
        return not self.missing(version)


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """One training job. Defaults are webui.py's for v2, except the save interval (see the module docstring)."""

    exp_name: str  # letters, digits, "_", "." and "-": it names folders and weight files
    list_path: Path  # the .list (dataset.write_list)
    wav_dir: Path  # the folder holding its clips
    version: str = "v2"
    is_half: bool = True  # fp16; webui halves the batch sizes when it is off
    gpu: int = 0
    sovits_epochs: int = 8
    gpt_epochs: int = 15
    batch_size: int = 8  # SoVITS's per GPU; webui's default is about a VRAM GiB per 2
    gpt_batch_size: int | None = None  # None: the same as batch_size
    text_low_lr_rate: float = 0.4
    if_dpo: bool = False


@dataclass(frozen=True, slots=True)
class PartMerge:
    """Per-part outputs joined into the file the next steps read, as webui does after each feature step."""

    parts: tuple[Path, ...]
    merged: Path
    header: str | None = None


@dataclass(frozen=True, slots=True)
class WeightsPattern:
    """Where a trainer saves its final weights: a folder, a regular expression for the file name, and that name
    as people read it."""

    folder: Path
    name: str
    shown: str


@dataclass(frozen=True)
class Step:
    """One subprocess of the plan, and what it needs before and leaves after."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]  # set over the inherited environment (see run_plan)
    cwd: Path
    outputs: tuple[Path, ...] = ()  # each must exist afterwards, non-empty (a file with bytes, a folder with entries)
    writes: tuple[tuple[Path, str], ...] = ()  # (path, text) written before it starts
    makedirs: tuple[Path, ...] = ()
    clears: tuple[Path, ...] = ()  # stale part files: the scripts skip their work when these exist
    merge: PartMerge | None = None
    weights: WeightsPattern | None = None
    epochs: int = 0  # for progress inside a trainer
    epoch_pattern: str | None = None  # group 1: epochs done, in a line of its output or of progress_file
    progress_file: Path | None = None
    share: float = 1.0  # its part of the whole plan's time


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    steps: tuple[Step, ...]
    exp_dir: Path


@dataclass(frozen=True, slots=True)
class TrainedWeights:
    gpt_path: Path
    sovits_path: Path


def _common_env(install: GptSovitsInstall, settings: TrainingSettings) -> dict[str, str]:
    root = install.root
    return {
        "version": settings.version,  # webui sets it in os.environ at start; 1-get-text.py reads it
        "is_half": str(settings.is_half),
        "_CUDA_VISIBLE_DEVICES": str(settings.gpu),
        "PYTHONPATH": os.pathsep.join(str(root / d) if d else str(root) for d in PYTHONPATH_DIRS),
        "TEMP": str(root / "TEMP"),
        "PYTHONUNBUFFERED": "1",  # their prints reach the log (and progress) as they happen
    }


def _s2_config(install: GptSovitsInstall, settings: TrainingSettings, exp_dir: Path) -> dict[str, Any]:
    """webui.open1Ba's edits of configs/s2.json."""
    spec = VERSIONS[settings.version]
    data: dict[str, Any] = json.loads((install.root / spec.s2_config).read_text(encoding="utf-8"))
    batch = settings.batch_size
    if not settings.is_half:
        data["train"]["fp16_run"] = False
        batch = max(1, batch // 2)
    data["train"].update(
        {
            "batch_size": batch,
            "epochs": settings.sovits_epochs,
            "text_low_lr_rate": settings.text_low_lr_rate,
            "pretrained_s2G": str(install.root / spec.s2g),
            "pretrained_s2D": str(install.root / spec.s2d),
            "if_save_latest": True,
            "if_save_every_weights": True,
            "save_every_epoch": settings.sovits_epochs,
            "gpu_numbers": str(settings.gpu),
            "grad_ckpt": False,
            "lora_rank": "32",  # webui's default; only v3/v4 read it
        }
    )
    data["model"]["version"] = settings.version
    data["data"]["exp_dir"] = data["s2_ckpt_dir"] = str(exp_dir)
    data["save_weight_dir"] = str(install.root / f"SoVITS_weights_{settings.version}")
    data["name"] = settings.exp_name
    data["version"] = settings.version
    return data


def _s1_config(install: GptSovitsInstall, settings: TrainingSettings, exp_dir: Path) -> dict[str, Any]:
    """webui.open1Bb's edits of configs/s1longer-v2.yaml: the template's other keys are kept as they are."""
    spec = VERSIONS[settings.version]
    data: dict[str, Any] = yaml.safe_load((install.root / spec.s1_config).read_text(encoding="utf-8"))
    batch = settings.gpt_batch_size or settings.batch_size
    if not settings.is_half:
        data["train"]["precision"] = "32"
        batch = max(1, batch // 2)
    data["train"].update(
        {
            "batch_size": batch,
            "epochs": settings.gpt_epochs,
            "save_every_n_epoch": settings.gpt_epochs,
            "if_save_every_weights": True,
            "if_save_latest": True,
            "if_dpo": settings.if_dpo,
            "half_weights_save_dir": str(install.root / f"GPT_weights_{settings.version}"),
            "exp_name": settings.exp_name,
        }
    )
    data["pretrained_s1"] = str(install.root / spec.s1)
    data["train_semantic_path"] = str(exp_dir / "6-name2semantic.tsv")
    data["train_phoneme_path"] = str(exp_dir / "2-name2text.txt")
    data["output_dir"] = str(exp_dir / f"logs_s1_{settings.version}")
    return data


def plan_training(install: GptSovitsInstall, settings: TrainingSettings) -> TrainingPlan:
    """The five steps for one experiment, with their configs rendered from the install's templates now."""
    if settings.version not in VERSIONS:
        raise ValueError(f"GPT-SoVITS version {settings.version!r} is not planned (only {', '.join(VERSIONS)})")
    if not _EXP_NAME.fullmatch(settings.exp_name):
        raise ValueError(f"experiment name {settings.exp_name!r}: use up to 64 letters, digits, '_', '.', '-'")
    missing = install.missing(settings.version)
    if missing:
        raise TrainingError("voice-training-unavailable", f"GPT-SoVITS is not installed: missing {missing[0]}")
    root, version, exp = install.root, settings.version, settings.exp_name
    spec = VERSIONS[version]
    exp_dir = root / "logs" / exp  # webui: exp_root = "logs"
    temp = root / "TEMP"
    inputs = {
        **_common_env(install, settings),
        "inp_text": str(settings.list_path),
        "exp_name": exp,
        "opt_dir": str(exp_dir),
        "i_part": "0",  # one GPU: one part of the list
        "all_parts": "1",
    }
    text_part, semantic_part = exp_dir / "2-name2text-0.txt", exp_dir / "6-name2semantic-0.tsv"
    s2_path, s1_path = temp / "tmp_s2.json", temp / "tmp_s1.yaml"
    s2_text = json.dumps(_s2_config(install, settings, exp_dir), indent=2)
    s1_text = yaml.safe_dump(_s1_config(install, settings, exp_dir), default_flow_style=False)
    sovits_dir, gpt_dir = root / f"SoVITS_weights_{version}", root / f"GPT_weights_{version}"

    def argv(step: str, *args: str) -> tuple[str, ...]:
        return (str(install.python), "-s", str(root / SCRIPTS[step]), *args)

    steps = (
        Step(
            "1a-text",
            argv("1a-text"),
            {**inputs, "inp_wav_dir": str(settings.wav_dir), "bert_pretrained_dir": str(root / BERT_DIR)},
            root,
            makedirs=(exp_dir,),
            clears=(text_part,),
            merge=PartMerge((text_part,), exp_dir / "2-name2text.txt"),
            share=_STEP_SHARE["1a-text"],
        ),
        Step(
            "1b-ssl",
            argv("1b-ssl"),
            {**inputs, "inp_wav_dir": str(settings.wav_dir), "cnhubert_base_dir": str(root / CNHUBERT_DIR)},
            root,
            outputs=(exp_dir / "4-cnhubert", exp_dir / "5-wav32k"),
            share=_STEP_SHARE["1b-ssl"],
        ),
        Step(
            "1c-semantic",
            argv("1c-semantic"),
            {**inputs, "pretrained_s2G": str(root / spec.s2g), "s2config_path": str(root / spec.s2_config)},
            root,
            clears=(semantic_part,),
            merge=PartMerge((semantic_part,), exp_dir / "6-name2semantic.tsv", SEMANTIC_HEADER),
            share=_STEP_SHARE["1c-semantic"],
        ),
        Step(
            "sovits",
            argv("sovits", "--config", str(s2_path)),
            _common_env(install, settings),
            root,
            writes=((s2_path, s2_text),),
            makedirs=(temp, exp_dir / f"logs_s2_{version}", sovits_dir),
            weights=WeightsPattern(
                sovits_dir,
                rf"{re.escape(exp)}_e{settings.sovits_epochs}_s(\d+)\.pth",  # process_ckpt.savee's name
                f"{exp}_e{settings.sovits_epochs}_s<step>.pth",
            ),
            epochs=settings.sovits_epochs,
            epoch_pattern=r"====> Epoch: (\d+)",  # s2_train logs it to <exp_dir>/train.log only
            progress_file=exp_dir / "train.log",
            share=_STEP_SHARE["sovits"],
        ),
        Step(
            "gpt",
            argv("gpt", "--config_file", str(s1_path)),
            {**_common_env(install, settings), "hz": "25hz"},  # AR/data/dataset.py reads hz
            root,
            writes=((s1_path, s1_text),),
            makedirs=(temp, exp_dir / "logs_s1", gpt_dir),
            weights=WeightsPattern(
                gpt_dir,
                rf"{re.escape(exp)}-e{settings.gpt_epochs}\.ckpt",  # s1_train's my_model_ckpt name
                f"{exp}-e{settings.gpt_epochs}.ckpt",
            ),
            epochs=settings.gpt_epochs,
            epoch_pattern=r"Epoch (\d+):",  # Lightning's progress bar names the (0-based) epoch under way
            share=_STEP_SHARE["gpt"],
        ),
    )
    return TrainingPlan(steps, exp_dir)


def merge_parts(merge: PartMerge) -> int:
    """Join the part files as webui does (each part's lines, the part deleted after); the number of data lines."""
    lines = [] if merge.header is None else [merge.header]
    for part in merge.parts:
        lines += part.read_text(encoding="utf-8").strip("\n").split("\n")
        part.unlink()
    merge.merged.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = lines if merge.header is None else lines[1:]
    return sum(1 for line in data if line.strip())


def find_weights(pattern: WeightsPattern, *, since: float = -math.inf) -> Path | None:
    """The newest file matching the pattern written at or after `since` (a time.time()); None if there is none.
    Among several, the highest step number (the pattern's group 1, when it has one) wins."""
    if not pattern.folder.is_dir():
        return None
    regex = re.compile(pattern.name)
    found: list[tuple[int, float, str, Path]] = []
    for path in pattern.folder.iterdir():
        match = regex.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        mtime = path.stat().st_mtime
        if mtime < since:
            continue
        number = int(match.group(1)) if regex.groups else 0
        found.append((number, mtime, path.name, path))
    return max(found)[3] if found else None


# Every variable a step reads: the inherited environment's own values for these never reach a step.
_STEP_VARIABLES = frozenset(
    {
        "version", "is_half", "_CUDA_VISIBLE_DEVICES", "inp_text", "inp_wav_dir", "exp_name", "opt_dir", "i_part",
        "all_parts", "bert_pretrained_dir", "cnhubert_base_dir", "sv_path", "pretrained_s2G", "s2config_path", "hz",
    }
)  # fmt: skip
_TAIL_LINES = 12
_TAIL_CHARS = 2000
_DRAIN_S = 2.0  # how long output may keep coming from a step's leftover children after it exits
ProgressCallback = Callable[[str, float, str], None]


class _Output:
    """A step's output: copied to the log as it comes, its last lines kept, its epoch lines counted."""

    def __init__(self, log: BinaryIO, pattern: re.Pattern[str] | None) -> None:
        self._log = log
        self._pattern = pattern
        self._pending = b""
        self.lines: deque[str] = deque(maxlen=_TAIL_LINES)
        self.epochs = 0

    def feed(self, chunk: bytes) -> None:
        self._log.write(chunk)
        self._log.flush()
        *complete, self._pending = re.split(rb"[\r\n]", self._pending + chunk)
        if len(self._pending) > 65536:  # a line with no end: take it as it stands
            complete.append(self._pending)
            self._pending = b""
        for raw in complete:
            self.line(raw.decode("utf-8", "replace"))

    def line(self, text: str) -> None:
        if text.strip():
            self.lines.append(text.rstrip())
        self.count(text)

    def count(self, text: str) -> None:
        """Note the epochs a line says are done (a line of the output, or of the step's progress file)."""
        if self._pattern is not None and (match := self._pattern.search(text)) is not None:
            self.epochs = max(self.epochs, int(match.group(1)))

    def finish(self) -> None:
        if self._pending:
            self.line(self._pending.decode("utf-8", "replace"))
            self._pending = b""

    def tail(self) -> str:
        text = "\n".join(self.lines)
        return text[-_TAIL_CHARS:] if text else "(no output)"


class _FileLines:
    """Lines appended to a file after it was first looked at (s2_train's train.log grows across runs)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = path.stat().st_size if path.is_file() else 0
        self._pending = b""

    def new_lines(self) -> list[str]:
        try:
            with self._path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *complete, self._pending = (self._pending + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _environment(step: Step) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if key not in _STEP_VARIABLES}
    return {**inherited, **step.env}


def _prepare(step: Step) -> None:
    for folder in step.makedirs:
        folder.mkdir(parents=True, exist_ok=True)
    for stale in step.clears:
        stale.unlink(missing_ok=True)
    for path, text in step.writes:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _execute(
    step: Step,
    log: BinaryIO,
    cancelled: Callable[[], bool],
    report: Callable[[float, str], None],
    *,
    grace_s: float,
    poll_s: float,
) -> tuple[int | None, str]:
    """Run one step in its own process group: (its exit status, or None when cancelled; its output's tail)."""
    log.write(f"\n===== {step.name}: {' '.join(step.argv)}\n".encode())
    log.flush()
    pattern = re.compile(step.epoch_pattern) if step.epoch_pattern else None
    output = _Output(log, pattern)
    progress_file = _FileLines(step.progress_file) if step.progress_file else None
    proc = subprocess.Popen(
        step.argv,
        cwd=step.cwd,
        env=_environment(step),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: cancelling kills its workers too
    )
    assert proc.stdout is not None  # Popen with stdout=PIPE always sets it
    pipe = proc.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(pipe, selectors.EVENT_READ)
    reading, reported = True, 0
    term_at: float | None = None
    exited_at: float | None = None
    try:
        while True:
            if reading and selector.select(poll_s):
                chunk = os.read(pipe, 65536)
                if chunk:
                    output.feed(chunk)
                else:
                    selector.unregister(pipe)
                    reading = False
            elif not reading:
                time.sleep(poll_s)
            if progress_file is not None:
                for line in progress_file.new_lines():
                    output.count(line)
            if step.epochs and output.epochs > reported:
                reported = min(output.epochs, step.epochs)
                report(reported / step.epochs, f"epoch {reported}/{step.epochs}")
            now = time.monotonic()
            if term_at is None and cancelled():
                _signal_group(proc.pid, signal.SIGTERM)
                term_at = now
            if proc.poll() is None:
                if term_at is not None and now - term_at > grace_s:
                    _signal_group(proc.pid, signal.SIGKILL)
                continue
            exited_at = exited_at or now
            if not reading or now - exited_at > _DRAIN_S:
                break
    finally:
        if proc.poll() is None:  # an exception (from a callback, say) left it running
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # whatever it left behind in its group
        selector.close()
        proc.stdout.close()
    output.finish()
    status = None if term_at is not None else proc.returncode
    log.write(f"===== {step.name}: {'cancelled' if status is None else f'exit status {status}'}\n".encode())
    log.flush()
    return status, output.tail()


def _finish(step: Step, since: float, tail: str) -> Path | None:
    """Merge and check what the step left; the weights it saved, when it is a trainer."""
    if step.merge is not None:
        absent = [part for part in step.merge.parts if not part.is_file()]
        if absent:
            raise TrainingError("voice-training-failed", f"{step.name} wrote no {absent[0].name}: {tail}")
        if merge_parts(step.merge) == 0:
            raise TrainingError("voice-training-failed", f"{step.name} processed none of the clips: {tail}")
    for output in step.outputs:
        empty = not any(output.iterdir()) if output.is_dir() else not output.is_file() or output.stat().st_size == 0
        if empty:
            raise TrainingError("voice-training-failed", f"{step.name} left no {output.name}: {tail}")
    if step.weights is None:
        return None
    weights = find_weights(step.weights, since=since)
    if weights is None:
        raise TrainingError(
            "voice-training-failed",
            f"{step.name} saved no {step.weights.folder / step.weights.shown}: {tail}",
        )
    return weights


def run_plan(
    plan: TrainingPlan,
    *,
    on_progress: ProgressCallback,
    cancelled: Callable[[], bool] | threading.Event,
    log_path: Path,
    grace_s: float = 10.0,
    poll_s: float = 0.1,
) -> TrainedWeights:
    """Run the plan's steps in order, each in its own process group, their output appended to `log_path`.

    `on_progress(step, fraction of the plan done, detail)` is called from this thread as each step starts, at
    each epoch of a trainer, and as each ends. When `cancelled` turns true the running step's group gets SIGTERM,
    then SIGKILL after `grace_s`, and TrainingCancelled is raised. A step that exits non-zero, or leaves no
    output, raises TrainingError `voice-training-failed` with the tail of its output, and nothing after it runs.
    """
    is_cancelled = cancelled.is_set if isinstance(cancelled, threading.Event) else cancelled
    total = sum(step.share for step in plan.steps) or 1.0
    done = 0.0
    weights: dict[str, Path] = {}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        for step in plan.steps:
            if is_cancelled():
                raise TrainingCancelled(f"voice training was cancelled before {step.name}")
            _prepare(step)
            on_progress(step.name, done / total, "started")
            since = time.time() - 1.0  # a coarse file-system clock may date a new file a little early

            def report(fraction: float, detail: str, step: Step = step, done: float = done) -> None:
                on_progress(step.name, (done + step.share * fraction) / total, detail)

            status, tail = _execute(step, log, is_cancelled, report, grace_s=grace_s, poll_s=poll_s)
            if status is None:
                raise TrainingCancelled(f"voice training was cancelled during {step.name}")
            if status != 0:
                how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited {status}"
                raise TrainingError("voice-training-failed", f"{step.name} {how}: {tail}")
            found = _finish(step, since, tail)
            if found is not None:
                weights[step.name] = found
            done += step.share
            on_progress(step.name, done / total, "done")
    if "gpt" not in weights or "sovits" not in weights:
        raise TrainingError("voice-training-failed", "the plan trained no GPT and SoVITS weights")
    return TrainedWeights(gpt_path=weights["gpt"], sovits_path=weights["sovits"])
