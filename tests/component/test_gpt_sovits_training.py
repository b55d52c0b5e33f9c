"""The GPT-SoVITS training driver end to end against a FAKE GPT-SoVITS install (tests/fakes/fake_gpt_sovits_install.py).

GPT-SoVITS's training needs a GPU and GBs of pretrained weights, so these tests run the real driver (real
subprocesses, process groups, signals, config files) against fake scripts at the real script paths. The fakes
record how they were started, check their inputs as the real ones would and write the real outputs' names.
"""

from __future__ import annotations

import json
import os
import threading
import time
import wave
from pathlib import Path
from typing import Any

import pytest
import yaml

from procs.trainer.dataset import ListEntry, write_list
from procs.trainer.gpt_sovits import (
    GptSovitsInstall,
    TrainedWeights,
    TrainingCancelled,
    TrainingError,
    TrainingPlan,
    TrainingSettings,
    plan_training,
    run_plan,
)
from tests.fakes.fake_gpt_sovits_install import FakeInstall, make_fake_install

EXP = "mynah-voice-7"
PRETRAINED = "GPT_SoVITS/pretrained_models"
CLIPS = [
    ("clip_001.wav", "EN", "The kettle is on."),
    ("clip_002.wav", "EN", "Tea will be ready soon."),
    ("clip_003.wav", "ZH", "今天天气很好。"),
    ("clip_004.wav", "EN", "Would you like some news?"),
]
Progress = list[tuple[str, float, str]]


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """A .list and its folder of 32 kHz clips."""
    wav_dir = tmp_path / "dataset"
    wav_dir.mkdir()
    entries = []
    for name, lang, text in CLIPS:
        with wave.open(str(wav_dir / name), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(32_000)
            out.writeframes(b"\x00\x01" * 32_000 * 4)
        entries.append(ListEntry(wav_dir / name, "mynah", lang, text))
    write_list(tmp_path / "dataset.list", entries)
    return tmp_path / "dataset.list", wav_dir


def _settings(dataset: tuple[Path, Path], **changes: Any) -> TrainingSettings:
    return TrainingSettings(EXP, dataset[0], dataset[1], **changes)


def _run(plan: TrainingPlan, log: Path, *, cancel: threading.Event | None = None, **kw: float) -> TrainedWeights:
    return run_plan(plan, on_progress=lambda *a: None, cancelled=cancel or threading.Event(), log_path=log, **kw)


def test_fake_install_trains_in_webui_order_with_webui_inputs(
    tmp_path: Path, dataset: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("i_part", "3")  # stale values in the caller's environment never reach a step
    monkeypatch.setenv("inp_wav_dir", "/nowhere")
    fake = make_fake_install(tmp_path / "gsv")
    root, exp_dir = fake.root, fake.root / "logs" / EXP
    exp_dir.mkdir(parents=True)
    (exp_dir / "2-name2text-0.txt").write_text("stale\tpart\n", encoding="utf-8")  # a failed run's leftover
    progress: Progress = []
    plan = plan_training(fake.install, _settings(dataset))
    weights = run_plan(plan, on_progress=lambda *a: progress.append(a), cancelled=lambda: False,
                       log_path=tmp_path / "train.log")  # fmt: skip

    calls = fake.calls()
    assert [c["step"] for c in calls] == ["1a-text", "1b-ssl", "1c-semantic", "sovits", "gpt"]
    scripts = [
        "GPT_SoVITS/prepare_datasets/1-get-text.py",
        "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py",
        "GPT_SoVITS/prepare_datasets/3-get-semantic.py",
        "GPT_SoVITS/s2_train.py",
        "GPT_SoVITS/s1_train.py",
    ]
    extra = [[], [], [], ["--config", f"{root}/TEMP/tmp_s2.json"], ["--config_file", f"{root}/TEMP/tmp_s1.yaml"]]
    for call, script, args in zip(calls, scripts, extra, strict=True):
        assert call["argv"] == [str(root / script), *args]
        assert call["cwd"] == str(root)
        assert call["no_user_site"]  # webui starts them with python -s
        assert call["pythonpath"] == ":".join(
            [
                str(root),
                *(f"{root}/{d}" for d in ("GPT_SoVITS", "GPT_SoVITS/BigVGAN", "tools", "tools/asr", "tools/uvr5")),
            ]
        )
    common = {"version": "v2", "is_half": "True", "_CUDA_VISIBLE_DEVICES": "0", "TEMP": f"{root}/TEMP"}
    dataset_env = {"inp_text": str(dataset[0]), "exp_name": EXP, "opt_dir": str(exp_dir), "i_part": "0",
                   "all_parts": "1"}  # fmt: skip
    assert calls[0]["env"] == {**common, **dataset_env, "inp_wav_dir": str(dataset[1]),
                               "bert_pretrained_dir": f"{root}/{PRETRAINED}/chinese-roberta-wwm-ext-large"}  # fmt: skip
    assert calls[1]["env"] == {**common, **dataset_env, "inp_wav_dir": str(dataset[1]),
                               "cnhubert_base_dir": f"{root}/{PRETRAINED}/chinese-hubert-base"}  # fmt: skip
    assert calls[2]["env"] == {**common, **dataset_env,
                               "pretrained_s2G": f"{root}/{PRETRAINED}/gsv-v2final-pretrained/s2G2333k.pth",
                               "s2config_path": f"{root}/GPT_SoVITS/configs/s2.json"}  # fmt: skip
    assert calls[3]["env"] == common
    assert calls[4]["env"] == {**common, "hz": "25hz"}

    names = [name for name, _, _ in CLIPS]
    text_lines = (exp_dir / "2-name2text.txt").read_text(encoding="utf-8").split("\n")
    assert [line.split("\t")[0] for line in text_lines] == [*names, ""]  # one line per clip, a final newline
    assert text_lines[2].split("\t")[3] == "今天天气很好。"
    semantic_lines = (exp_dir / "6-name2semantic.tsv").read_text(encoding="utf-8").split("\n")
    assert semantic_lines[0] == "item_name\tsemantic_audio"
    assert [line.split("\t")[0] for line in semantic_lines[1:]] == [*names, ""]
    assert not list(exp_dir.glob("*-0.*"))  # the part files are merged away, as webui does
    assert sorted(p.name for p in (exp_dir / "3-bert").iterdir()) == ["clip_003.wav.pt"]
    assert sorted(p.name for p in (exp_dir / "5-wav32k").iterdir()) == names

    s2 = json.loads((root / "TEMP" / "tmp_s2.json").read_text(encoding="utf-8"))
    assert s2["train"] | {"log_interval": None} == s2["train"] | {
        "batch_size": 8, "epochs": 8, "text_low_lr_rate": 0.4, "if_save_latest": True, "if_save_every_weights": True,
        "save_every_epoch": 8, "gpu_numbers": "0", "fp16_run": True, "grad_ckpt": False, "log_interval": None,
        "pretrained_s2G": f"{root}/{PRETRAINED}/gsv-v2final-pretrained/s2G2333k.pth",
        "pretrained_s2D": f"{root}/{PRETRAINED}/gsv-v2final-pretrained/s2D2333k.pth",
    }  # fmt: skip
    assert s2["train"]["seed"] == 1234 and s2["data"]["sampling_rate"] == 32000  # the template's own keys stay
    assert s2["model"]["version"] == s2["version"] == "v2"
    assert s2["data"]["exp_dir"] == s2["s2_ckpt_dir"] == str(exp_dir)
    assert (s2["save_weight_dir"], s2["name"]) == (f"{root}/SoVITS_weights_v2", EXP)
    s1 = yaml.safe_load((root / "TEMP" / "tmp_s1.yaml").read_text(encoding="utf-8"))
    assert s1["train"] == {
        "seed": 1234, "epochs": 15, "batch_size": 8, "save_every_n_epoch": 15, "precision": "16-mixed",
        "gradient_clip": 1.0, "if_save_every_weights": True, "if_save_latest": True, "if_dpo": False,
        "half_weights_save_dir": f"{root}/GPT_weights_v2", "exp_name": EXP,
    }  # fmt: skip
    assert (
        s1["pretrained_s1"]
        == f"{root}/{PRETRAINED}/gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"
    )
    assert (s1["train_semantic_path"], s1["train_phoneme_path"], s1["output_dir"]) == (
        f"{exp_dir}/6-name2semantic.tsv", f"{exp_dir}/2-name2text.txt", f"{exp_dir}/logs_s1_v2")  # fmt: skip
    assert s1["optimizer"]["lr_init"] == 0.00001 and s1["inference"] == {"top_k": 15}

    assert weights.gpt_path == root / "GPT_weights_v2" / f"{EXP}-e15.ckpt"
    assert weights.sovits_path.parent == root / "SoVITS_weights_v2"
    assert weights.sovits_path.name.startswith(f"{EXP}_e8_s") and weights.sovits_path.suffix == ".pth"
    assert weights.gpt_path.read_bytes() == b"FAKE GPT weights\n"
    assert weights.sovits_path.read_bytes() == b"FAKE SoVITS weights\n"

    steps = [name for name, _, _ in progress]
    assert progress[0] == ("1a-text", 0.0, "started") and progress[-1] == ("gpt", 1.0, "done")
    fractions = [fraction for _, fraction, _ in progress]
    assert fractions == sorted(fractions)
    assert steps.index("1b-ssl") < steps.index("sovits") < steps.index("gpt")
    assert ("sovits", "epoch 8/8") in [(s, d) for s, _, d in progress]  # read from s2_train's train.log
    assert any(s == "gpt" and d.startswith("epoch ") and 0.67 < f < 1.0 for s, f, d in progress)
    log = (tmp_path / "train.log").read_text(encoding="utf-8")
    assert "===== 1a-text:" in log and "training done" in log and "Epoch 14: 100%" in log


def test_without_half_precision_webui_halves_the_batches(tmp_path: Path, dataset: tuple[Path, Path]) -> None:
    fake = make_fake_install(tmp_path / "gsv")
    plan = plan_training(fake.install, _settings(dataset, is_half=False, batch_size=6, gpt_batch_size=11, gpu=1))
    s2 = json.loads(plan.steps[3].writes[0][1])
    s1 = yaml.safe_load(plan.steps[4].writes[0][1])
    assert (s2["train"]["fp16_run"], s2["train"]["batch_size"], s2["train"]["gpu_numbers"]) == (False, 3, "1")
    assert (s1["train"]["precision"], s1["train"]["batch_size"]) == ("32", 5)
    assert all(step.env["is_half"] == "False" and step.env["_CUDA_VISIBLE_DEVICES"] == "1" for step in plan.steps)


def test_a_failing_step_stops_the_run_with_its_traceback(tmp_path: Path, dataset: tuple[Path, Path]) -> None:
    fake = make_fake_install(tmp_path / "gsv", fail_step="1c-semantic")
    with pytest.raises(TrainingError) as caught:
        _run(plan_training(fake.install, _settings(dataset)), tmp_path / "train.log")
    assert caught.value.code == "voice-training-failed"
    assert caught.value.message.startswith("1c-semantic exited 1: ")
    assert caught.value.message.endswith("torch.OutOfMemoryError: CUDA out of memory (FAKE failure of 1c-semantic)")
    assert "Traceback (most recent call last)" in caught.value.message
    assert [c["step"] for c in fake.calls()] == ["1a-text", "1b-ssl", "1c-semantic"]
    assert "CUDA out of memory" in (tmp_path / "train.log").read_text(encoding="utf-8")


def test_a_trainer_that_saves_nothing_fails_even_with_old_weights_there(
    tmp_path: Path, dataset: tuple[Path, Path]
) -> None:
    fake = make_fake_install(tmp_path / "gsv", no_output_step="sovits")
    old = fake.root / "SoVITS_weights_v2" / f"{EXP}_e8_s40.pth"  # an earlier run's
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    with pytest.raises(TrainingError, match=rf"sovits saved no .*/SoVITS_weights_v2/{EXP}_e8_s<step>\.pth: ") as caught:
        _run(plan_training(fake.install, _settings(dataset)), tmp_path / "train.log")
    assert caught.value.code == "voice-training-failed"
    assert "finished without writing anything" in caught.value.message
    assert [c["step"] for c in fake.calls()][-1] == "sovits"


def test_a_feature_step_that_processes_no_clip_fails(tmp_path: Path, dataset: tuple[Path, Path]) -> None:
    fake = make_fake_install(tmp_path / "gsv")
    dataset[0].write_text(f"{dataset[1]}/clip_001.wav|mynah|FR|Bonjour.\n", encoding="utf-8")  # 1-get-text skips FR
    with pytest.raises(TrainingError, match="1a-text processed none of the clips") as caught:
        _run(plan_training(fake.install, _settings(dataset)), tmp_path / "train.log")
    assert "is not supported for training" in caught.value.message
    fake_no_part = make_fake_install(tmp_path / "gsv2", no_output_step="1a-text")
    with pytest.raises(TrainingError, match=r"1a-text wrote no 2-name2text-0\.txt"):
        _run(plan_training(fake_no_part.install, _settings(dataset)), tmp_path / "train2.log")


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a reaped-late child of init counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _cancel_when_slow(fake: FakeInstall, cancel: threading.Event, at: list[float]) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(c.get("slow") for c in fake.calls()):
            time.sleep(0.02)
        at.append(time.monotonic())
        cancel.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("ignore_sigterm", "grace_s"), [(False, 10.0), (True, 0.5)], ids=["sigterm", "sigkill"])
def test_cancelling_kills_the_running_steps_process_group(
    tmp_path: Path, dataset: tuple[Path, Path], ignore_sigterm: bool, grace_s: float
) -> None:
    fake = make_fake_install(tmp_path / "gsv", slow_step="sovits", ignore_sigterm=ignore_sigterm)
    cancel, at = threading.Event(), list[float]()
    watcher = _cancel_when_slow(fake, cancel, at)
    with pytest.raises(TrainingCancelled) as caught:
        _run(plan_training(fake.install, _settings(dataset)), tmp_path / "train.log", cancel=cancel, grace_s=grace_s)
    elapsed = time.monotonic() - at[0]
    watcher.join()
    assert caught.value.code == "voice-training-cancelled"
    assert "during sovits" in caught.value.message
    assert elapsed < grace_s + 3.0  # the step would have slept 60 s
    if ignore_sigterm:
        assert elapsed >= grace_s  # SIGTERM was ignored: SIGKILL came after the grace period
    slow = next(c for c in fake.calls() if c.get("slow"))
    for pid in (slow["pid"], slow["child_pid"]):  # the step and the child it started
        deadline = time.monotonic() + 2.0
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(pid), f"pid {pid} survived the cancellation"
    assert [c["step"] for c in fake.calls()][-1] == "sovits"  # the GPT step never started


def test_cancelled_before_the_start_runs_nothing(tmp_path: Path, dataset: tuple[Path, Path]) -> None:
    fake = make_fake_install(tmp_path / "gsv")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TrainingCancelled, match="before 1a-text"):
        _run(plan_training(fake.install, _settings(dataset)), tmp_path / "train.log", cancel=cancel)
    assert fake.calls() == []


def test_a_missing_file_is_named_and_nothing_is_planned(tmp_path: Path, dataset: tuple[Path, Path]) -> None:
    fake = make_fake_install(tmp_path / "gsv")
    assert fake.install.is_installed() and fake.install.missing() == []
    absent = fake.root / PRETRAINED / "gsv-v2final-pretrained" / "s2D2333k.pth"
    absent.unlink()
    assert not fake.install.is_installed()
    assert fake.install.missing() == [absent]
    with pytest.raises(TrainingError, match=r"s2D2333k\.pth") as caught:
        plan_training(fake.install, _settings(dataset))
    assert caught.value.code == "voice-training-unavailable"
    no_python = GptSovitsInstall(fake.root, fake.root / "runtime" / "python")
    assert no_python.missing()[0] == fake.root / "runtime" / "python"
    not_executable = fake.root / "GPT_SoVITS" / "configs" / "s2.json"
    assert GptSovitsInstall(fake.root, not_executable).missing()[0] == not_executable


@pytest.mark.parametrize("name", ["", "has space", "../escape", "名字", "x" * 65])
def test_experiment_names_are_file_name_safe(tmp_path: Path, dataset: tuple[Path, Path], name: str) -> None:
    fake = make_fake_install(tmp_path / "gsv")
    with pytest.raises(ValueError, match="experiment name"):
        plan_training(fake.install, TrainingSettings(name, dataset[0], dataset[1]))
