"""A FAKE GPT-SoVITS install, for tests. It trains nothing and its "models" are placeholder bytes.

GPT-SoVITS's training needs a GPU and several GB of pretrained weights, neither of which can be had here, so the
driver in procs/trainer/gpt_sovits.py is tested against this fake. `make_fake_install(root)` writes a directory
tree shaped like a GPT-SoVITS checkout (RVC-Boss/GPT-SoVITS, HEAD 2026-08, version v2):
- placeholder files where config.py and webui.py expect the pretrained models (chinese-roberta-wwm-ext-large/,
  chinese-hubert-base/, gsv-v2final-pretrained/s2G2333k.pth, s2D2333k.pth, s1bert25hz-5kh-...ckpt);
- GPT_SoVITS/configs/s2.json and s1longer-v2.yaml holding a subset of the real templates' keys and defaults;
- at each script path (prepare_datasets/1-get-text.py, 2-get-hubert-wav32k.py, 3-get-semantic.py, s2_train.py,
  s1_train.py) a stub that runs `run_fake_step` below with whatever Python starts it.

Each fake step appends one JSON line to `<root>/calls.jsonl` (its argv, cwd, pid, PYTHONPATH, and each variable
that a real script reads or webui.py sets for them which it was given), checks its inputs as the real one would,
and writes the real one's outputs under their real names. Like the real scripts, the feature steps print and
skip a clip they cannot use and still exit 0; unlike them, the fake fails loudly on a missing pretrained path or
config key (s2_train.py would quietly train from scratch), and on being run from any folder but the root (the
real ones save temporary files in their working directory) or without the root and GPT_SoVITS on PYTHONPATH.
What it writes: 2-name2text-<i_part>.txt (name, phones, word2ph, text by tabs), 3-bert/<name>.pt for ZH lines,
4-cnhubert/<name>.pt and 5-wav32k/<name>, 6-name2semantic-<i_part>.tsv (no header, no final newline), then
logs/<exp>/train.log with "====> Epoch: N", SoVITS_weights_v2/<name>_e<E>_s<S>.pth, and Lightning-style
"Epoch N: 100%|..." progress and GPT_weights_v2/<exp_name>-e<E>.ckpt.

Scripted misbehaviour (step names as the plan's: 1a-text, 1b-ssl, 1c-semantic, sovits, gpt):
`fail_step` exits 1 with a traceback on stderr; `slow_step` starts a child that sleeps, then sleeps 60 s itself
(for cancellation: both pids are recorded); `ignore_sigterm` makes the slow step and its child ignore SIGTERM;
`no_output_step` exits 0 having written nothing (as the real ones do when every clip fails, or when savee
swallows a failure to save).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procs.trainer.gpt_sovits import GptSovitsInstall

REPO = Path(__file__).resolve().parents[2]
PRETRAINED = "GPT_SoVITS/pretrained_models"
PRETRAINED_FILES = (
    f"{PRETRAINED}/chinese-roberta-wwm-ext-large/config.json",
    f"{PRETRAINED}/chinese-roberta-wwm-ext-large/pytorch_model.bin",
    f"{PRETRAINED}/chinese-roberta-wwm-ext-large/tokenizer.json",
    f"{PRETRAINED}/chinese-hubert-base/config.json",
    f"{PRETRAINED}/chinese-hubert-base/preprocessor_config.json",
    f"{PRETRAINED}/chinese-hubert-base/pytorch_model.bin",
    f"{PRETRAINED}/gsv-v2final-pretrained/s2G2333k.pth",
    f"{PRETRAINED}/gsv-v2final-pretrained/s2D2333k.pth",
    f"{PRETRAINED}/gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt",
)
SCRIPT_STEPS = {
    "GPT_SoVITS/prepare_datasets/1-get-text.py": "1a-text",
    "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py": "1b-ssl",
    "GPT_SoVITS/prepare_datasets/3-get-semantic.py": "1c-semantic",
    "GPT_SoVITS/s2_train.py": "sovits",
    "GPT_SoVITS/s1_train.py": "gpt",
}
# The variables each real script reads from its environment.
ENV_READ = {
    "1a-text": ("inp_text", "inp_wav_dir", "exp_name", "i_part", "all_parts", "_CUDA_VISIBLE_DEVICES", "opt_dir",
                "bert_pretrained_dir", "is_half", "version"),
    "1b-ssl": ("inp_text", "inp_wav_dir", "exp_name", "i_part", "all_parts", "_CUDA_VISIBLE_DEVICES", "opt_dir",
               "cnhubert_base_dir", "is_half"),
    "1c-semantic": ("inp_text", "exp_name", "i_part", "all_parts", "_CUDA_VISIBLE_DEVICES", "opt_dir",
                    "pretrained_s2G", "s2config_path", "is_half"),
    "sovits": (),  # s2_train.py takes everything from its --config, the GPU from train.gpu_numbers
    "gpt": ("_CUDA_VISIBLE_DEVICES", "hz"),  # hz: AR/data/dataset.py
}  # fmt: skip
# Recorded when set: what the scripts read, and what webui.py also puts in their environment.
_SEEN = {name for names in ENV_READ.values() for name in names} | {"version", "TEMP", "sv_path"}
# 1-get-text.py's language_v1_to_language_v2 keys: the spellings it trains on.
LANGUAGES = {"ZH": "zh", "zh": "zh", "JP": "ja", "jp": "ja", "JA": "ja", "ja": "ja", "EN": "en", "en": "en",
             "En": "en", "KO": "ko", "Ko": "ko", "ko": "ko", "yue": "yue", "YUE": "yue", "Yue": "yue"}  # fmt: skip
SEMANTIC_HEADER = "item_name\tsemantic_audio"
S2_TEMPLATE: dict[str, Any] = {  # keys and defaults of GPT_SoVITS/configs/s2.json (a subset)
    "train": {"log_interval": 100, "eval_interval": 500, "seed": 1234, "epochs": 100, "learning_rate": 0.0001,
              "batch_size": 32, "fp16_run": True, "segment_size": 20480, "text_low_lr_rate": 0.4, "grad_ckpt": False},
    "data": {"max_wav_value": 32768.0, "sampling_rate": 32000, "hop_length": 640, "n_speakers": 300},
    "model": {"inter_channels": 192, "semantic_frame_rate": "25hz", "freeze_quantizer": True},
    "s2_ckpt_dir": "logs/s2/big2k1",
    "content_module": "cnhubert",
}  # fmt: skip
S1_TEMPLATE = """\
train:
  seed: 1234
  epochs: 20
  batch_size: 8
  save_every_n_epoch: 1
  precision: 16-mixed
  gradient_clip: 1.0
optimizer:
  lr: 0.01
  lr_init: 0.00001
  warmup_steps: 2000
data:
  max_sec: 54
  pad_val: 1024
model:
  vocab_size: 1025
  EOS: 1024
inference:
  top_k: 15
"""  # keys and defaults of GPT_SoVITS/configs/s1longer-v2.yaml (a subset)
S2_KEYS = {
    "train": ("batch_size", "epochs", "text_low_lr_rate", "pretrained_s2G", "pretrained_s2D", "if_save_latest",
              "if_save_every_weights", "save_every_epoch", "gpu_numbers", "fp16_run", "seed"),
    "model": ("version",),
    "data": ("exp_dir", "sampling_rate"),
    "": ("s2_ckpt_dir", "save_weight_dir", "name", "version"),
}  # fmt: skip
S1_KEYS = {
    "train": ("batch_size", "epochs", "save_every_n_epoch", "if_save_every_weights", "if_save_latest", "if_dpo",
              "half_weights_save_dir", "exp_name", "precision", "seed"),
    "": ("pretrained_s1", "train_semantic_path", "train_phoneme_path", "output_dir"),
}  # fmt: skip
_STUB = """\
# FAKE {script} (tests/fakes/fake_gpt_sovits_install.py): records its call and writes placeholder outputs.
import sys

sys.path.insert(0, {repo!r})
from tests.fakes.fake_gpt_sovits_install import run_fake_step

sys.exit(run_fake_step({step!r}, {root!r}))
"""


@dataclass(frozen=True, slots=True)
class FakeInstall:
    root: Path
    python: Path

    @property
    def calls_path(self) -> Path:
        return self.root / "calls.jsonl"

    @property
    def install(self) -> GptSovitsInstall:
        from procs.trainer.gpt_sovits import GptSovitsInstall

        return GptSovitsInstall(self.root, self.python)

    def calls(self) -> list[dict[str, Any]]:
        if not self.calls_path.is_file():
            return []
        *complete, _unfinished = self.calls_path.read_text(encoding="utf-8").split("\n")  # a line being written
        return [json.loads(line) for line in complete if line]


def make_fake_install(
    root: Path,
    *,
    fail_step: str | None = None,
    slow_step: str | None = None,
    ignore_sigterm: bool = False,
    no_output_step: str | None = None,
) -> FakeInstall:
    """Write the FAKE install under `root` (see the module docstring); its Python is this test's interpreter."""
    for name in PRETRAINED_FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"FAKE pretrained model placeholder\n")
    configs = root / "GPT_SoVITS" / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "s2.json").write_text(json.dumps(S2_TEMPLATE, indent=2), encoding="utf-8")
    (configs / "s1longer-v2.yaml").write_text(S1_TEMPLATE, encoding="utf-8")
    for script, step in SCRIPT_STEPS.items():
        path = root / script
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_STUB.format(script=script, repo=str(REPO), step=step, root=str(root)), encoding="utf-8")
    settings = {"fail_step": fail_step, "slow_step": slow_step, "ignore_sigterm": ignore_sigterm,
                "no_output_step": no_output_step}  # fmt: skip
    (root / "fake_settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return FakeInstall(root, Path(sys.executable))


# ---- what runs inside the fake scripts ----


class _Refused(Exception):
    """An input the real script would choke on: the fake exits 1 with a traceback-like message."""


def _env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise _Refused(f"KeyError: environment variable {name!r} is not set")
    return value


def _record(step: str, root: Path, **extra: Any) -> None:
    record = {
        "step": step,
        "argv": sys.argv,
        "executable": sys.executable,
        "no_user_site": bool(sys.flags.no_user_site),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "pythonpath": os.environ.get("PYTHONPATH"),
        "env": {name: os.environ[name] for name in sorted(_SEEN) if name in os.environ},
        **extra,
    }
    with (root / "calls.jsonl").open("a", encoding="utf-8") as calls:
        calls.write(json.dumps(record) + "\n")


def _list_lines() -> list[list[str]]:
    """The part of inp_text this process handles (lines[i_part::all_parts]), each split on "|"."""
    inp_text = Path(_env("inp_text"))
    if not inp_text.is_file():
        raise _Refused(f"FileNotFoundError: [Errno 2] No such file or directory: '{inp_text}'")
    lines = inp_text.read_text(encoding="utf-8").strip("\n").split("\n")
    return [line.split("|") for line in lines[int(_env("i_part")) :: int(_env("all_parts"))]]


def _get_text(root: Path) -> None:
    opt_dir, bert_dir = Path(_env("opt_dir")), _env("bert_pretrained_dir")
    if not Path(bert_dir).is_dir():
        raise _Refused(f"FileNotFoundError: {bert_dir}")
    part = opt_dir / f"2-name2text-{_env('i_part')}.txt"
    if part.exists():  # the real script does nothing when its part file is there
        return
    (opt_dir / "3-bert").mkdir(parents=True, exist_ok=True)
    out = []
    for fields in _list_lines():
        if len(fields) != 4:
            print("|".join(fields), "ValueError: not enough values to unpack", flush=True)
            continue
        wav, _speaker, lang, text = fields
        if lang not in LANGUAGES:
            print(f"[Waring] The language = {lang!r} of {wav} is not supported for training.", flush=True)
            continue
        name = os.path.basename(wav)
        phones = " ".join(word.upper() for word in text.split())
        if LANGUAGES[lang] == "zh":
            (opt_dir / "3-bert" / f"{name}.pt").write_bytes(b"FAKE bert features\n")
        out.append(f"{name}\t{phones}\t{[1] * len(text.split())}\t{text}")
        print(name, flush=True)
    part.write_text("\n".join(out) + "\n", encoding="utf-8")


def _get_hubert(root: Path) -> None:
    opt_dir, hubert_base = Path(_env("opt_dir")), _env("cnhubert_base_dir")
    if not Path(hubert_base).is_dir():
        raise _Refused(f"FileNotFoundError: {hubert_base}")
    hubert_dir, wav_dir = opt_dir / "4-cnhubert", opt_dir / "5-wav32k"
    hubert_dir.mkdir(parents=True, exist_ok=True)
    wav_dir.mkdir(parents=True, exist_ok=True)
    inp_wav_dir = _env("inp_wav_dir") if "inp_wav_dir" in os.environ else ""  # the real one: "" or unset = paths
    for fields in _list_lines():
        if len(fields) != 4:
            print("|".join(fields), "ValueError: not enough values to unpack", flush=True)
            continue
        name = os.path.basename(fields[0])
        source = Path(inp_wav_dir) / name if inp_wav_dir else Path(fields[0])
        if not source.is_file() or source.read_bytes()[8:12] != b"WAVE":
            print(fields, f"Traceback: cannot load {source}", flush=True)
            continue
        shutil.copyfile(source, wav_dir / name)
        (hubert_dir / f"{name}.pt").write_bytes(b"FAKE ssl features\n")
        print(name, flush=True)


def _get_semantic(root: Path) -> None:
    opt_dir = Path(_env("opt_dir"))
    pretrained = Path(_env("pretrained_s2G"))
    if not pretrained.is_file():
        raise _Refused(f"FileNotFoundError: {pretrained}")
    config_path = _env("s2config_path")
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    if not {"train", "data", "model"} <= config.keys():
        raise _Refused(f"KeyError: {config_path} is not an s2 config")
    part = opt_dir / f"6-name2semantic-{_env('i_part')}.tsv"
    if part.exists():
        return
    out = []
    for fields in _list_lines():
        name = os.path.basename(fields[0])
        if (opt_dir / "4-cnhubert" / f"{name}.pt").is_file():  # the real one skips a clip with no features
            out.append(f"{name}\t{' '.join(str((len(name) * k) % 1024) for k in range(1, 9))}")
    part.write_text("\n".join(out), encoding="utf-8")


def _config_arg(flag: str) -> Path:
    args = sys.argv[1:]
    if len(args) != 2 or args[0] != flag or not Path(args[1]).is_file():
        raise _Refused(f"usage: expected {flag} <existing file>, got {args}")
    return Path(args[1])


def _check_keys(config: dict[str, Any], keys: dict[str, tuple[str, ...]]) -> None:
    for section, names in keys.items():
        table = config if not section else config.get(section, {})
        for name in names:
            if name not in table:
                raise _Refused(f"KeyError: {section + '.' if section else ''}{name}")


def _exists(path: str, what: str) -> Path:
    if not Path(path).exists():
        raise _Refused(f"FileNotFoundError: {what} {path}")
    return Path(path)


def _s2_train(root: Path) -> None:
    config = json.loads(_config_arg("--config").read_text(encoding="utf-8"))
    _check_keys(config, S2_KEYS)
    train, exp_dir = config["train"], Path(config["data"]["exp_dir"])
    _exists(train["pretrained_s2G"], "pretrained_s2G")
    _exists(train["pretrained_s2D"], "pretrained_s2D")
    names = _exists(str(exp_dir / "2-name2text.txt"), "phonemes").read_text(encoding="utf-8").strip("\n").split("\n")
    for folder in ("4-cnhubert", "5-wav32k"):
        _exists(str(exp_dir / folder), folder)
    items = len(names) * max(2, 100 // len(names)) if len(names) < 100 else len(names)  # module/data_utils repeats
    steps_per_epoch = math.ceil(items / int(train["batch_size"]))
    ckpt_dir = exp_dir / f"logs_s2_{config['model']['version']}"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    print(f"start training from epoch 1 ({items} items, batch {train['batch_size']})", flush=True)
    for epoch in range(1, int(train["epochs"]) + 1):
        step = epoch * steps_per_epoch
        if epoch % int(train["save_every_epoch"]) == 0:
            tag = 233333333333 if train["if_save_latest"] else step
            for model in ("G", "D"):
                (ckpt_dir / f"{model}_{tag}.pth").write_bytes(b"FAKE checkpoint\n")
            if train["if_save_every_weights"]:
                weights = Path(config["save_weight_dir"]) / f"{config['name']}_e{epoch}_s{step}.pth"
                if weights.parent.is_dir():
                    weights.write_bytes(b"FAKE SoVITS weights\n")
                else:  # process_ckpt.savee returns the traceback instead of raising
                    print(f"saving ckpt failed: FileNotFoundError: {weights.parent}", flush=True)
        with (exp_dir / "train.log").open("a", encoding="utf-8") as log:
            log.write(f"2026-08-18 12:00:00,000\t{exp_dir.name}\tINFO\t====> Epoch: {epoch}\n")
        time.sleep(0.02)
    print("training done", flush=True)


def _s1_train(root: Path) -> None:
    import yaml

    config = yaml.safe_load(_config_arg("--config_file").read_text(encoding="utf-8"))
    _check_keys(config, S1_KEYS)
    train = config["train"]
    _exists(config["pretrained_s1"], "pretrained_s1")
    semantic = _exists(config["train_semantic_path"], "semantic").read_text(encoding="utf-8").split("\n")
    if semantic[0] != SEMANTIC_HEADER:
        raise _Refused(f"KeyError: {config['train_semantic_path']} has no header line {SEMANTIC_HEADER!r}")
    phonemes = _exists(config["train_phoneme_path"], "phonemes").read_text(encoding="utf-8").strip("\n").split("\n")
    known = {line.split("\t")[0] for line in phonemes}
    items = [line.split("\t")[0] for line in semantic[1:] if line]
    for item in items:
        if item not in known:
            print(f'Warning: File "{item}" not in self.phoneme_data! Skipped. ', flush=True)
    (Path(config["output_dir"]) / "ckpt").mkdir(parents=True, exist_ok=True)
    epochs, every = int(train["epochs"]), int(train["save_every_n_epoch"])
    for epoch in range(epochs):
        for done in (1, 2):
            sys.stderr.write(f"\rEpoch {epoch}: {done * 50:3d}%|{'#' * done * 5:<10}| {done}/2 [00:00<00:00]")
            sys.stderr.flush()
        time.sleep(0.02)
        if (epoch + 1) % every == 0 and train["if_save_every_weights"]:
            weights = Path(train["half_weights_save_dir"]) / f"{train['exp_name']}-e{epoch + 1}.ckpt"
            if not weights.parent.is_dir():  # process_ckpt.my_save's shutil.move fails, unguarded
                raise _Refused(f"FileNotFoundError: [Errno 2] No such file or directory: '{weights}'")
            weights.write_bytes(b"FAKE GPT weights\n")
    sys.stderr.write("\n")


_STEPS = {
    "1a-text": _get_text,
    "1b-ssl": _get_hubert,
    "1c-semantic": _get_semantic,
    "sovits": _s2_train,
    "gpt": _s1_train,
}


def _sleep_forever(step: str, root: Path, ignore_sigterm: bool) -> None:
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the child inherits it
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    _record(step, root, child_pid=child.pid, slow=True)
    print(f"fake {step}: working slowly", flush=True)
    time.sleep(60)


def run_fake_step(step: str, root_text: str) -> int:
    """The body of every fake script: record, misbehave as scripted, check inputs, write outputs."""
    root = Path(root_text)
    settings = json.loads((root / "fake_settings.json").read_text(encoding="utf-8"))
    try:
        if Path(os.getcwd()).resolve() != root.resolve():
            raise _Refused(f"RuntimeError: run from {os.getcwd()}, not the GPT-SoVITS root {root}")
        path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        for needed in (root, root / "GPT_SoVITS"):
            if str(needed) not in path:
                raise _Refused(f"ModuleNotFoundError: {needed} is not on PYTHONPATH ({path})")
        if settings["slow_step"] == step:
            _sleep_forever(step, root, settings["ignore_sigterm"])
        else:
            _record(step, root)
        if settings["fail_step"] == step:
            raise _Refused(f"torch.OutOfMemoryError: CUDA out of memory (FAKE failure of {step})")
        if settings["no_output_step"] == step:
            print(f"fake {step}: finished without writing anything", flush=True)
            return 0
        _STEPS[step](root)
    except _Refused as err:
        print(f"fake {step}: about to fail", flush=True)
        sys.stderr.write(f'Traceback (most recent call last):\n  File "{sys.argv[0]}", line 1, in <module>\n{err}\n')
        return 1
    return 0
