"""Voice training on the GPT-SoVITS path, against FAKES of GPT-SoVITS (it needs a GPU and GBs of weights).

Two fakes stand in for the engine: a FAKE install (tests/fakes/fake_gpt_sovits_install.py: its training scripts
record how they were called and write placeholder outputs under the real names) and a FAKE api_v2 server
(tests/fakes/fake_gpt_sovits.py). Everything of Mynah's is real: supervisord, the coordinator freeing the GPU
first, the trainer, the batch STT worker transcribing the clips, the voice store, and the tts worker switching
the server to the trained weights when the voice speaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio_files import encode
from tests.conftest import Appliance, start_appliance, stop_appliance
from tests.fakes.fake_gpt_sovits import FakeGptSovits, write_reference_clip
from tests.fakes.fake_gpt_sovits_install import FakeInstall, make_fake_install
from tests.speech import SAMPLE_RATE, minute_of_speech
from tests.sse import follow_job

pytestmark = pytest.mark.integration

STEPS = ["1a-text", "1b-ssl", "1c-semantic", "sovits", "gpt"]


@pytest.fixture(scope="module")
def fake_install(tmp_path_factory: pytest.TempPathFactory) -> FakeInstall:
    return make_fake_install(tmp_path_factory.mktemp("fake-gpt-sovits"))


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeGptSovits, Path]]:
    reference = write_reference_clip(tmp_path_factory.mktemp("reference") / "default.wav")
    with FakeGptSovits() as server:
        yield server, reference


@pytest.fixture(scope="module")
def appliance(fake_install: FakeInstall, fake_server: tuple[FakeGptSovits, Path]) -> Iterator[Appliance]:
    server, reference = fake_server
    running = start_appliance(f"""
[tts]
backend = "gpt-sovits"
[tts.gpt_sovits]
url = "{server.url}"
reference_path = "{reference}"
reference_text = "A default voice."
[trainer]
gpt_sovits_root = "{fake_install.root}"
gpt_sovits_python = "{fake_install.python}"
sovits_epochs = 2
gpt_epochs = 3
""")
    try:
        yield running
    finally:
        stop_appliance(running)


def test_a_sample_trains_gpt_sovits_weights_that_the_voice_then_speaks_with(
    appliance: Appliance, fake_install: FakeInstall, fake_server: tuple[FakeGptSovits, Path]
) -> None:
    sample = minute_of_speech("espeak")
    with appliance.client(timeout=120) as client:
        started = client.post("/train-voice", data={"name": "Cloned", "consent": "yes", "language": "en"},
                              files={"file": ("sample.flac", encode(sample, SAMPLE_RATE, "flac"))})  # fmt: skip
    assert started.status_code == 202, started.text
    stream = follow_job(appliance.client(timeout=600), started.json()["job_id"])
    assert stream[-1][0] == "done", stream[-4:]
    steps = [event["step"] for kind, event in stream if kind == "progress"]
    assert steps.index("reference") < steps.index("gpu") < steps.index("train:1a-text")
    assert "adapt" not in steps  # GPT-SoVITS is installed: no approximation
    gpu_events = [event["detail"] for kind, event in stream if event["step"] == "gpu"]
    assert any(detail.startswith("freed") for detail in gpu_events), gpu_events

    # GPT-SoVITS's own steps ran in order, on this job's dataset, with the settings from the configuration.
    calls = fake_install.calls()
    assert [call["step"] for call in calls] == STEPS
    job_folder_list = calls[0]["env"]["inp_text"]
    assert job_folder_list.endswith("/voice/dataset.list") and calls[0]["env"]["inp_wav_dir"].endswith("/voice/dataset")
    assert calls[0]["env"]["version"] == "v2" and calls[0]["env"]["_CUDA_VISIBLE_DEVICES"] == "0"
    assert calls[3]["argv"][1:3] == ["--config", str(fake_install.root / "TEMP" / "tmp_s2.json")]
    assert calls[4]["argv"][1:3] == ["--config_file", str(fake_install.root / "TEMP" / "tmp_s1.yaml")]

    with appliance.client() as client:
        voice = next(v for v in client.get("/api/voices").json()["voices"] if v["name"] == "Cloned")
        assert voice["kind"] == "cloned" and "GPT-SoVITS" in voice["note"]
        folder = appliance.home / "data" / "voices" / voice["voice_id"]
        assert (folder / "gpt.ckpt").is_file() and (folder / "sovits.pth").is_file()
        # Speaking in the voice switches the api_v2 server to its weights and its reference clip.
        server, _ = fake_server
        response = client.post("/api/speak", json={"text": "Hello from the cloned voice.", "voice": voice["voice_id"]})
    assert response.status_code == 200, response.text
    assert server.queries("/set_gpt_weights")[-1]["weights_path"] == str(folder / "gpt.ckpt")
    assert server.queries("/set_sovits_weights")[-1]["weights_path"] == str(folder / "sovits.pth")
    assert server.queries("/set_refer_audio")[-1]["refer_audio_path"] == str(folder / "reference.wav")
    body = server.bodies("/tts")[-1]
    assert body["prompt_text"] == voice["reference_text"] and body["text"] == "Hello from the cloned voice."
