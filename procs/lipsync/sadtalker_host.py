"""The SadTalker host: SadTalker's models loaded once, then one render per request. Runs under SadTalker's python.

Started by procs/lipsync/backends/sadtalker.py as `<sadtalker python> sadtalker_host.py --root <root> ...` with the
SadTalker checkout as its working directory (SadTalker reads `gfpgan/weights` and `checkpoints` relative to it).
It imports no Mynah module: Mynah's packages are not installed in SadTalker's environment.

It drives the pieces that OpenTalker/SadTalker's inference.py drives (2023-10): init_path, CropAndExtract,
Audio2Coeff and AnimateFromCoeff are built once; per request it runs CropAndExtract.generate, get_data,
Audio2Coeff.generate, get_facerender_data and AnimateFromCoeff.generate. (Its gradio class SadTalker.test
rebuilds every model on each call and moves the source image away.) The models depend on the checkpoint size and
on whether preprocess is a "full" mode (init_path picks the mapping net and the renderer config by it), so a
request asking for another size or family rebuilds them once.

Protocol: JSON lines. stdin: `{"id", "image", "audio", "result_dir", "size", "preprocess", "still", "enhancer",
"batch_size", "pose_style", "expression_scale"}`; EOF ends the host. stdout: one `{"ready": {...}}` after loading
(or `{"error": {...}}` and exit status 1), then per request `{"id", "progress", "stage"}` lines and a final
`{"id", "video"}` or `{"id", "error": {"code", "message"}}`. Everything else SadTalker prints (its own prints,
tqdm, the ffmpeg it runs with os.system) goes to stderr: file descriptor 1 itself is pointed at stderr and the
protocol keeps a private duplicate of the original.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import IO, Any

NO_FACE = "avatar-no-face"
FAILED = "sadtalker-failed"
UNAVAILABLE = "sadtalker-unavailable"
# CropAndExtract.generate reads a path ending in one of these as an image and anything else as a video.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Upstream's croper.Preprocesser.crop does `raise '<message>'` when it finds no landmarks; Python 3 turns raising
# a str into this TypeError.
_RAISED_STR = "exceptions must derive from BaseException"


class RequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _module(name: str) -> Any:
    """A SadTalker module, imported by name: they exist only under SadTalker's root (and have no types)."""
    return importlib.import_module(name)


def classify(error: BaseException, stage: str) -> RequestError:
    """A failure of one request, with its code: the ways SadTalker says it found no face become avatar-no-face."""
    text = str(error)
    if isinstance(error, AttributeError) and "No face is detected" in text:  # gradio_demo.SadTalker.test's error
        return RequestError(NO_FACE, "SadTalker found no face in the avatar image")
    if stage == "crop" and isinstance(error, TypeError) and _RAISED_STR in text:
        return RequestError(NO_FACE, "SadTalker found no face landmarks in the avatar image")
    return RequestError(FAILED, f"SadTalker failed during {stage}: {type(error).__name__}: {text}")


class Models:
    """SadTalker's three model holders for one (size, preprocess family), built once."""

    def __init__(self, root: Path, checkpoint_dir: Path, size: int, preprocess: str, device: str) -> None:
        init_path = _module("src.utils.init_path").init_path
        paths = init_path(str(checkpoint_dir), str(root / "src" / "config"), size, False, preprocess)
        self.key = (size, "full" in preprocess)
        self.device = device
        self.crop = _module("src.utils.preprocess").CropAndExtract(paths, device)
        self.audio_to_coeff = _module("src.test_audio2coeff").Audio2Coeff(paths, device)
        self.animate = _module("src.facerender.animate").AnimateFromCoeff(paths, device)


def copy_image(image: Path, folder: Path) -> Path:
    """The avatar copied where SadTalker may write beside it, under a name it reads as an image."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = image.suffix.lower()
    if suffix in _IMAGE_SUFFIXES:
        target = folder / f"avatar{suffix}"
        shutil.copyfile(image, target)
        return target
    target = folder / "avatar.png"
    pil_image = _module("PIL.Image")  # a SadTalker dependency; only other formats need it
    with pil_image.open(image) as picture:
        picture.convert("RGB").save(target)
    return target


class Host:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.root = Path(args.root).resolve()
        self.checkpoint_dir = Path(args.checkpoint_dir).resolve()
        self.device: str = args.device
        self.out = out
        self.models = self.load(args.size, args.preprocess)

    def load(self, size: int, preprocess: str) -> Models:
        return Models(self.root, self.checkpoint_dir, size, preprocess, self.device)

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def serve(self, lines: IO[str]) -> None:
        for line in lines:
            if not line.strip():
                continue
            request_id: Any = None
            try:
                request = json.loads(line)
                request_id = request["id"]
                video = self.render(request)
            except RequestError as err:
                self.send({"id": request_id, "error": {"code": err.code, "message": err.message}})
            except Exception as err:  # one bad request must not end the host; it is reported, not swallowed
                traceback.print_exc(file=sys.stderr)
                self.send({"id": request_id, "error": {"code": FAILED, "message": f"{type(err).__name__}: {err}"}})
            else:
                self.send({"id": request_id, "video": str(video)})
            finally:
                _release_cache()

    def render(self, request: dict[str, Any]) -> Path:
        request_id = request["id"]
        size, preprocess, still = int(request["size"]), str(request["preprocess"]), bool(request["still"])
        stage = "load"

        def progress(fraction: float, name: str) -> None:
            nonlocal stage
            stage = name
            self.send({"id": request_id, "progress": fraction, "stage": name})

        try:
            if self.models.key != (size, "full" in preprocess):
                progress(0.0, "load")
                print(f"sadtalker_host: rebuilding the models for size {size}, {preprocess}", file=sys.stderr)
                self.models = self.load(size, preprocess)
            models = self.models
            save_dir = Path(request["result_dir"]) / f"sadtalker-{request_id}"
            shutil.rmtree(save_dir, ignore_errors=True)
            first_frame_dir = save_dir / "first_frame_dir"
            first_frame_dir.mkdir(parents=True)
            image = copy_image(Path(request["image"]), save_dir / "input")  # SadTalker writes beside its input
            audio = str(request["audio"])
            progress(0.02, "crop")
            extracted = models.crop.generate(str(image), str(first_frame_dir), preprocess, True, size)
            first_coeff_path, crop_pic_path, crop_info = (*extracted, None)[:3]  # it returns (None, None) on none
            if first_coeff_path is None:
                raise AttributeError("No face is detected")
            progress(0.1, "audio2coeff")
            batch = _module("src.generate_batch").get_data(first_coeff_path, audio, models.device, None, still=still)
            coeff_path = models.audio_to_coeff.generate(batch, str(save_dir), int(request["pose_style"]), None)
            progress(0.2, "render")
            data = _module("src.generate_facerender_batch").get_facerender_data(
                coeff_path,
                crop_pic_path,
                first_coeff_path,
                audio,
                int(request["batch_size"]),
                None,
                None,
                None,
                expression_scale=float(request["expression_scale"]),
                still_mode=still,
                preprocess=preprocess,
                size=size,
            )
            video = models.animate.generate(
                data,
                str(save_dir),
                str(image),
                crop_info,
                enhancer=request.get("enhancer") or None,
                background_enhancer=None,
                preprocess=preprocess,
                img_size=size,
            )
        except RequestError:
            raise
        except Exception as err:
            traceback.print_exc(file=sys.stderr)
            raise classify(err, stage) from err
        progress(1.0, "done")
        return Path(video).resolve()


def _release_cache() -> None:
    """Give back what a request left cached on the GPU (only if SadTalker's torch is loaded already)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _protocol_stream() -> IO[str]:
    """Keep the real stdout for the protocol and point descriptor 1 (and sys.stdout) at stderr."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve SadTalker renders as JSON lines on stdin and stdout.")
    parser.add_argument("--root", required=True, help="the SadTalker checkout (also the working directory)")
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--size", type=int, choices=(256, 512), default=256)
    parser.add_argument("--preprocess", choices=("crop", "extcrop", "resize", "full", "extfull"), default="crop")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = _protocol_stream()
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if entry and Path(entry).resolve() != Path(here)]
    sys.path.insert(0, str(Path(args.root).resolve()))  # SadTalker's modules import as src.*
    try:
        host = Host(args, out)
    except Exception as err:
        traceback.print_exc(file=sys.stderr)
        message = f"SadTalker could not load its models: {type(err).__name__}: {err}"
        out.write(json.dumps({"error": {"code": UNAVAILABLE, "message": message}}) + "\n")
        out.flush()
        return 1
    size, full = host.models.key
    host.send({"ready": {"size": size, "full": full, "device": host.device, "pid": os.getpid()}})
    host.serve(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
