"""A FAKE SadTalker install, for tests. It animates nothing: its "models" are placeholder bytes.

SadTalker needs a GPU, PyTorch and about 2 GB of weights, none of which can be had here, so the backend in
procs/lipsync/backends/sadtalker.py is tested against this fake. `make_fake_install(root)` writes a tree shaped
like an OpenTalker/SadTalker checkout (2023-10):
- at each module the host drives (src/utils/init_path.py, src/utils/preprocess.py, src/test_audio2coeff.py,
  src/facerender/animate.py, src/generate_batch.py, src/generate_facerender_batch.py) a stub that re-exports the
  same-named fake below, with upstream's signatures;
- placeholders for src/config/*.yaml and similarity_Lm3D_all.mat, checkpoints/ with the names
  scripts/download_models.sh fetches (SadTalker_V0.0.2_256/512.safetensors, mapping_00109/00229-model.pth.tar)
  and gfpgan/weights/ (alignment_WFLW_4HG.pth, detection_Resnet50_Final.pth, GFPGANv1.4.pth, parsing_parsenet.pth).

Like upstream: init_path picks the checkpoint by size and the mapping net and renderer config by "full" in
preprocess; each model constructor loads its checkpoint (a missing file raises) and CropAndExtract reads
gfpgan/weights relative to the working directory; it prints on stdout and runs a child that writes on file
descriptor 1 (upstream runs ffmpeg with os.system); device "cuda" fails as a CPU-only torch does; CropAndExtract
writes <name>.png, <name>_landmarks.txt and <name>.mat beside nothing but its save_dir, and in a crop or full mode
an image with no face (here: every pixel one colour) fails the way upstream's croper does (it raises a str, which
Python turns into TypeError); get_data makes int(samples_at_16k / 640) frames; the renderer writes a 25 fps MP4
(mpeg4) of that many frames named <pic>##<audio>.mp4 (+ _full, + _enhanced as upstream), `size` wide (full
modes: the source image's size), each frame's grey level following the audio's loudness in its 40 ms.

Unlike upstream, the fake records: each model construction appends a line to `<root>/builds.jsonl`, and each
pipeline call (with the arguments it got, the image's sha256) to `<root>/calls.jsonl`. Scripted misbehaviour:
`FakeSadTalker.slow(seconds)` makes Audio2Coeff.generate write its pid to `<root>/sleeping` and sleep.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import soundfile
from PIL import Image

if TYPE_CHECKING:
    from appliance.config import SadTalkerConfig

REPO = Path(__file__).resolve().parents[2]
CHECKPOINTS = ("SadTalker_V0.0.2_256.safetensors", "SadTalker_V0.0.2_512.safetensors",
               "mapping_00109-model.pth.tar", "mapping_00229-model.pth.tar")  # fmt: skip
GFPGAN_WEIGHTS = ("alignment_WFLW_4HG.pth", "detection_Resnet50_Final.pth", "GFPGANv1.4.pth", "parsing_parsenet.pth")
CONFIGS = ("auido2pose.yaml", "auido2exp.yaml", "facerender.yaml", "facerender_still.yaml", "similarity_Lm3D_all.mat")
MODULES = {
    "src/utils/init_path.py": "init_path",
    "src/utils/preprocess.py": "CropAndExtract",
    "src/test_audio2coeff.py": "Audio2Coeff",
    "src/facerender/animate.py": "AnimateFromCoeff",
    "src/generate_batch.py": "get_data",
    "src/generate_facerender_batch.py": "get_facerender_data",
}
_STUB = """\
# FAKE {module} (tests/fakes/fake_sadtalker_install.py): the same name and signature as upstream's.
import sys

sys.path.insert(0, {repo!r})
import tests.fakes.fake_sadtalker_install as fake

fake.bind({root!r})
{name} = fake.{name}
"""


@dataclass(frozen=True, slots=True)
class FakeSadTalker:
    root: Path
    python: Path

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def config(self, **changes: Any) -> SadTalkerConfig:
        from appliance.config import SadTalkerConfig

        settings: dict[str, Any] = {"root": self.root, "python": self.python, "checkpoint_dir": self.checkpoint_dir,
                                    "device": "cpu", "timeout_s": 20.0, **changes}  # fmt: skip
        return SadTalkerConfig(**settings)

    def builds(self) -> list[dict[str, Any]]:
        return _read_lines(self.root / "builds.jsonl")

    def calls(self, function: str | None = None) -> list[dict[str, Any]]:
        calls = _read_lines(self.root / "calls.jsonl")
        return [call for call in calls if function is None or call["function"] == function]

    def slow(self, seconds: float | None) -> None:
        """Make each Audio2Coeff.generate sleep `seconds` (None: not at all), announcing it in <root>/sleeping."""
        (self.root / "control.json").write_text(json.dumps({"sleep_s": seconds}), encoding="utf-8")
        (self.root / "sleeping").unlink(missing_ok=True)

    def sleeping_pid(self, timeout_s: float = 10.0) -> int:
        deadline = time.monotonic() + timeout_s
        marker = self.root / "sleeping"
        while time.monotonic() < deadline:
            if marker.is_file() and marker.read_text(encoding="utf-8").strip():
                return int(marker.read_text(encoding="utf-8"))
            time.sleep(0.02)
        raise AssertionError("the fake never started sleeping")


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    *complete, _unfinished = path.read_text(encoding="utf-8").split("\n")  # a line being written
    return [json.loads(line) for line in complete if line]


def make_fake_install(root: Path) -> FakeSadTalker:
    """Write the FAKE install under `root` (see the module docstring); its Python is this test's interpreter."""
    placeholders = [root / "checkpoints" / name for name in CHECKPOINTS]
    placeholders += [root / "gfpgan" / "weights" / name for name in GFPGAN_WEIGHTS]
    placeholders += [root / "src" / "config" / name for name in CONFIGS]
    for path in placeholders:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"FAKE SadTalker placeholder\n")
    for module, name in MODULES.items():
        path = root / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_STUB.format(module=module, repo=str(REPO), root=str(root), name=name), encoding="utf-8")
    (root / "inference.py").write_text("# FAKE SadTalker inference.py placeholder\n", encoding="utf-8")
    return FakeSadTalker(root, Path(sys.executable))


# ---- what runs inside the host, under the fake modules' names ----

_ROOT: Path | None = None


def bind(root: str) -> None:
    global _ROOT
    _ROOT = Path(root)


def _root() -> Path:
    assert _ROOT is not None, "imported outside a fake install"
    return _ROOT


def _append(name: str, record: dict[str, Any]) -> None:
    with (_root() / name).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, default=str) + "\n")


def _load(path: str, what: str) -> None:
    """A model's checkpoint read: upstream's torch.load / safetensors load_file raises on a missing file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"[Errno 2] No such file or directory: {path!r} ({what})")


def _build(model: str, device: str) -> None:
    if device != "cpu":  # torch without CUDA, as on the test box
        raise AssertionError("Torch not compiled with CUDA enabled")
    _append("builds.jsonl", {"model": model, "device": device, "pid": os.getpid()})


def init_path(
    checkpoint_dir: str, config_dir: str, size: int = 512, old_version: bool = False, preprocess: str = "crop"
) -> dict[str, Any]:
    paths: dict[str, Any] = {"checkpoint": os.path.join(checkpoint_dir, f"SadTalker_V0.0.2_{size}.safetensors")}
    paths["use_safetensor"] = True  # the fake has no old-version .pth layout
    paths["dir_of_BFM_fitting"] = config_dir
    paths["audio2pose_yaml_path"] = os.path.join(config_dir, "auido2pose.yaml")
    paths["audio2exp_yaml_path"] = os.path.join(config_dir, "auido2exp.yaml")
    full = "full" in preprocess
    mapping = "mapping_00109-model.pth.tar" if full else "mapping_00229-model.pth.tar"
    paths["mappingnet_checkpoint"] = os.path.join(checkpoint_dir, mapping)
    paths["facerender_yaml"] = os.path.join(config_dir, "facerender_still.yaml" if full else "facerender.yaml")
    return paths


class CropAndExtract:
    def __init__(self, sadtalker_path: dict[str, Any], device: str) -> None:
        for name in ("alignment_WFLW_4HG.pth", "detection_Resnet50_Final.pth"):  # croper's KeypointExtractor
            _load(os.path.join("gfpgan/weights", name), "facexlib, relative to the working directory")
        _load(sadtalker_path["checkpoint"], "face_3drecon")
        _load(os.path.join(sadtalker_path["dir_of_BFM_fitting"], "similarity_Lm3D_all.mat"), "lm3d")
        _build("CropAndExtract", device)
        self.device = device

    def generate(
        self,
        input_path: str,
        save_dir: str,
        crop_or_resize: str = "crop",
        source_image_flag: bool = False,
        pic_size: int = 256,
    ) -> tuple[str, str, Any]:
        pic_name = os.path.splitext(os.path.split(input_path)[-1])[0]
        if not os.path.isfile(input_path):
            raise ValueError("input_path must be a valid path to video/image file")
        if input_path.split(".")[-1] not in ["jpg", "png", "jpeg"]:
            raise ValueError(f"FAKE: {input_path} would be read as a video, which the fake cannot")
        print("3DMM Extraction for source image")  # upstream prints on stdout throughout
        data = Path(input_path).read_bytes()
        _append("calls.jsonl", {"function": "CropAndExtract.generate", "input_path": input_path,
                                "input_sha256": hashlib.sha256(data).hexdigest(), "save_dir": save_dir,
                                "crop_or_resize": crop_or_resize, "source_image_flag": source_image_flag,
                                "pic_size": pic_size})  # fmt: skip
        with Image.open(input_path) as picture:
            pixels = np.asarray(picture.convert("RGB"))
        height, width = pixels.shape[:2]
        mode = crop_or_resize.lower()
        if ("crop" in mode or "full" in mode) and (pixels == pixels[0, 0]).all():
            # Upstream: croper.Preprocesser.crop does `raise 'can not detect the landmark from source image'`.
            raise TypeError("exceptions must derive from BaseException")
        crop_info = ((width, height), None, None) if mode == "resize" else ((width, height), (0, 0, width, height),
                                                                            [0, 0, width, height])  # fmt: skip
        png_path = os.path.join(save_dir, pic_name + ".png")
        Image.fromarray(pixels).resize((pic_size, pic_size)).save(png_path)
        Path(save_dir, pic_name + "_landmarks.txt").write_text("FAKE landmarks\n", encoding="utf-8")
        coeff_path = os.path.join(save_dir, pic_name + ".mat")
        Path(coeff_path).write_text(json.dumps({"source_size": [width, height]}), encoding="utf-8")
        return coeff_path, png_path, crop_info


def get_data(
    first_coeff_path: str,
    audio_path: str,
    device: str,
    ref_eyeblink_coeff_path: str | None,
    still: bool = False,
    idlemode: bool = False,
    length_of_audio: float = False,
    use_blink: bool = True,
) -> dict[str, Any]:
    samples, rate = soundfile.read(audio_path, dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    samples_16k = math.ceil(len(mono) * 16000 / rate)  # librosa.load(path, sr=16000)'s length
    num_frames = int(samples_16k / 640)  # parse_audio_length: whole 40 ms frames only
    loudness = []
    for i in range(num_frames):
        piece = mono[i * rate // 25 : (i + 1) * rate // 25]
        loudness.append(float(np.sqrt(np.mean(piece**2))) if len(piece) else 0.0)
    _append("calls.jsonl", {"function": "get_data", "first_coeff_path": first_coeff_path, "audio_path": audio_path,
                            "device": device, "ref_eyeblink_coeff_path": ref_eyeblink_coeff_path, "still": still,
                            "num_frames": num_frames})  # fmt: skip
    return {"loudness": loudness, "num_frames": num_frames, "still": still,
            "audio_name": os.path.splitext(os.path.split(audio_path)[-1])[0],
            "pic_name": os.path.splitext(os.path.split(first_coeff_path)[-1])[0]}  # fmt: skip


class Audio2Coeff:
    def __init__(self, sadtalker_path: dict[str, Any], device: str) -> None:
        for key in ("audio2pose_yaml_path", "audio2exp_yaml_path", "checkpoint"):
            _load(sadtalker_path[key], key)
        _build("Audio2Coeff", device)

    def generate(
        self, batch: dict[str, Any], coeff_save_dir: str, pose_style: int, ref_pose_coeff_path: str | None = None
    ) -> str:
        control = _root() / "control.json"
        sleep_s = json.loads(control.read_text(encoding="utf-8"))["sleep_s"] if control.is_file() else None
        if sleep_s:
            (_root() / "sleeping").write_text(str(os.getpid()), encoding="utf-8")
            time.sleep(sleep_s)
        _append("calls.jsonl", {"function": "Audio2Coeff.generate", "coeff_save_dir": coeff_save_dir,
                                "pose_style": pose_style, "ref_pose_coeff_path": ref_pose_coeff_path})  # fmt: skip
        path = os.path.join(coeff_save_dir, "{}##{}.mat".format(batch["pic_name"], batch["audio_name"]))
        Path(path).write_text(json.dumps({"loudness": batch["loudness"], "pose_style": pose_style}), encoding="utf-8")
        return path


def get_facerender_data(
    coeff_path: str,
    pic_path: str,
    first_coeff_path: str,
    audio_path: str,
    batch_size: int,
    input_yaw_list: list[int] | None = None,
    input_pitch_list: list[int] | None = None,
    input_roll_list: list[int] | None = None,
    expression_scale: float = 1.0,
    still_mode: bool = False,
    preprocess: str = "crop",
    size: int = 256,
) -> dict[str, Any]:
    loudness = json.loads(Path(coeff_path).read_text(encoding="utf-8"))["loudness"]
    _append("calls.jsonl", {"function": "get_facerender_data", "coeff_path": coeff_path, "pic_path": pic_path,
                            "first_coeff_path": first_coeff_path, "audio_path": audio_path, "batch_size": batch_size,
                            "input_yaw_list": input_yaw_list, "input_pitch_list": input_pitch_list,
                            "input_roll_list": input_roll_list, "expression_scale": expression_scale,
                            "still_mode": still_mode, "preprocess": preprocess, "size": size})  # fmt: skip
    return {"loudness": [value * expression_scale for value in loudness], "frame_num": len(loudness),
            "video_name": os.path.splitext(os.path.split(coeff_path)[-1])[0], "audio_path": audio_path}  # fmt: skip


class AnimateFromCoeff:
    def __init__(self, sadtalker_path: dict[str, Any], device: str) -> None:
        for key in ("facerender_yaml", "checkpoint", "mappingnet_checkpoint"):
            _load(sadtalker_path[key], key)
        _build("AnimateFromCoeff", device)

    def generate(
        self,
        x: dict[str, Any],
        video_save_dir: str,
        pic_path: str,
        crop_info: Any,
        enhancer: str | None = None,
        background_enhancer: str | None = None,
        preprocess: str = "crop",
        img_size: int = 256,
    ) -> str:
        _append("calls.jsonl", {"function": "AnimateFromCoeff.generate", "video_save_dir": video_save_dir,
                                "pic_path": pic_path, "crop_info": crop_info, "enhancer": enhancer,
                                "background_enhancer": background_enhancer, "preprocess": preprocess,
                                "img_size": img_size})  # fmt: skip
        subprocess.run(["echo", "FAKE ffmpeg: upstream muxes with os.system, on file descriptor 1"], check=True)
        width, height = crop_info[0]
        if "full" not in preprocess.lower():  # upstream resizes to img_size wide, keeping the face box's aspect
            width, height = img_size, int(img_size * height / width)
        width, height = width - width % 2, height - height % 2  # yuv420p wants even sides
        suffix = ("_full" if "full" in preprocess.lower() else "") + ("_enhanced" if enhancer else "")
        path = os.path.join(video_save_dir, x["video_name"] + suffix + ".mp4")
        with av.open(path, "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for loudness in x["loudness"][: x["frame_num"]]:
                grey = 16 + round(219 * min(1.0, 3.0 * loudness))
                frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), grey, np.uint8), format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        return path
