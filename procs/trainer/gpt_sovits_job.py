"""The GPT-SoVITS end of a voice job: with the GPU freed by the coordinator, run GPT-SoVITS's own training steps
on the job's `.list` and clips (procs/trainer/gpt_sovits.py), then keep the weights with the voice."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from ipc.errors import CodedError
from ipc.messages import TrainedVoice
from procs.trainer.gpt_sovits import (
    GptSovitsInstall,
    TrainingCancelled,
    TrainingSettings,
    plan_training,
    run_plan,
)
from procs.trainer.voice_job import JobCancelled, VoiceJob

TRAIN_START, TRAIN_END = 0.55, 0.95  # the job's progress while GPT-SoVITS trains
GPT_WEIGHTS, SOVITS_WEIGHTS = "gpt.ckpt", "sovits.pth"


def install_of(job: VoiceJob) -> GptSovitsInstall:
    root = job.trainer.gpt_sovits_root
    assert root is not None
    python = job.trainer.gpt_sovits_python or Path("python3")
    return GptSovitsInstall(root, python)


async def train_gpt_sovits(job: VoiceJob, base: TrainedVoice) -> TrainedVoice:
    install = install_of(job)
    missing = install.missing()
    if missing:
        listed = ", ".join(str(path) for path in missing[:4])
        raise CodedError("gpt-sovits-incomplete", f"GPT-SoVITS at {install.root} lacks {listed}: finish its install "
                         "(pretrained models included) or unset trainer.gpt_sovits_root")  # fmt: skip
    settings = TrainingSettings(exp_name=f"mynah_{job.job_id[:16]}", list_path=job.voice_dir / "dataset.list",
                                wav_dir=job.voice_dir / "dataset", gpu=job.trainer.gpu_index,
                                sovits_epochs=job.trainer.sovits_epochs, gpt_epochs=job.trainer.gpt_epochs,
                                batch_size=job.trainer.batch_size)  # fmt: skip
    plan = plan_training(install, settings)
    job.check()
    await job.report("gpu", TRAIN_START, "asking the coordinator to free the GPU")
    freed = await job.lease(True)
    loop = asyncio.get_running_loop()

    def on_progress(step: str, fraction: float, detail: str) -> None:
        progress = TRAIN_START + (TRAIN_END - TRAIN_START) * fraction
        asyncio.run_coroutine_threadsafe(job.report(f"train:{step}", progress, detail), loop)

    try:
        await job.report("train", TRAIN_START, "GPU freed: " + (", ".join(freed) or "nothing was on it"))
        log_path = job.work_dir / "training.log"
        weights = await job.off_loop(lambda: run_plan(plan, on_progress=on_progress, cancelled=job.cancelled,
                                                      log_path=log_path))  # fmt: skip
    except TrainingCancelled as err:
        raise JobCancelled() from err
    finally:
        await job.lease(False)
    shutil.copyfile(weights.gpt_path, job.voice_dir / GPT_WEIGHTS)
    shutil.copyfile(weights.sovits_path, job.voice_dir / SOVITS_WEIGHTS)
    await job.report("register", TRAIN_END, f"trained {weights.sovits_path.name} and {weights.gpt_path.name}")
    return TrainedVoice(base.job_id, "cloned", base.reference_path, base.reference_text, base.dataset_list,
                        base.clips, gpt_weights=GPT_WEIGHTS, sovits_weights=SOVITS_WEIGHTS)  # fmt: skip
