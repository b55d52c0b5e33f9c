"""Avatars: an uploaded portrait made into the square image the renderer draws, with its face mesh, cached.

An upload is checked (PNG, JPEG or WebP by its magic bytes, size, pixels), decoded (alpha laid on white), and
framed: a square image of 512..max_resolution pixels is used as it is, anything else becomes the largest
square around the face, scaled into that range. The face is found on the original (to place the crop) and
meshed on the prepared image. A prepared avatar is named by its source's hash and the resolution it was made
for, `<16 hex of sha256>-<max_resolution>`, so the same upload under another `max_resolution` is prepared
afresh instead of serving an image of the wrong size; it is cached as `<root>/<avatar_id>/`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import msgspec
import numpy as np

import procs
from appliance.config import MynahConfig
from ipc.errors import CodedError
from ipc.messages import AvatarInfo
from procs.lipsync.face import LIPS_OUTER, Detection, FaceError, FaceFinder, FaceMesh, Image
from procs.lipsync.layout import AVATAR_ID, FACE_FILE, IMAGE_FILE, INFO_FILE

log = logging.getLogger(__name__)

DEFAULT_AVATAR = Path(procs.__file__).resolve().parents[1] / "assets" / "avatar.png"
MIN_SIDE = 256  # smaller uploads are refused
PREPARED_MIN = 512  # smaller squares are scaled up to this
MAX_PIXELS = 50_000_000  # decoding more would take gigabytes (a 48 MP phone photo still fits)
PROBE_SIDE = 1536  # the face is looked for in a copy this large at most: the detector sees 128x128 anyway
FACE_SCORE = 0.5  # a second face this sure makes the avatar ambiguous
MIN_PRESENCE = 0.5
MIN_MOUTH_PX = 40.0  # a narrower mouth in the prepared image is too few pixels to animate
MIN_FACE_FRACTION = 0.2  # the face box's longer side against the image's side
CLOSER = "use a portrait where the face is at least a fifth of the picture"

# Formats we read, then formats people try, so the refusal can name what was sent.
SUPPORTED = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"))
FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP"}
KNOWN = ((b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
         (b"%PDF", "PDF"), (b"<svg", "SVG"), (b"<?xml", "SVG"))  # fmt: skip


class AvatarError(CodedError):
    """An unusable upload: avatar-too-large, avatar-unreadable, avatar-unsupported-format, avatar-too-small,
    avatar-id-invalid, avatar-default-missing. A usable image without a usable face raises FaceError."""


@dataclass(frozen=True, slots=True, eq=False)  # eq: arrays do not compare to one bool
class PreparedAvatar:
    avatar_id: str
    image: Image  # RGB, square, even side, 512..max_resolution
    mesh: FaceMesh  # in the prepared image's pixels
    sha256: str  # of the uploaded bytes
    adjusted: str  # "" when used as it is, else a sentence saying what was done

    def info(self) -> AvatarInfo:
        x, y, w, h = self.mesh.box
        lips = tuple((round(float(px), 1), round(float(py), 1)) for px, py in self.mesh.xy(LIPS_OUTER))
        height, width = self.image.shape[:2]
        box = (round(x), round(y), round(w), round(h))
        mouth = round(self.mesh.mouth_width, 1)
        return AvatarInfo(avatar_id=self.avatar_id, width=width, height=height, face_box=box,
                          mouth_width_px=mouth, lips=lips, adjusted=self.adjusted)  # fmt: skip


def avatar_id(sha256: str, max_resolution: int) -> str:
    return f"{sha256[:16]}-{max_resolution}"


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise AvatarError("avatar-too-large", f"the image is {_mb(len(data))}, over the {_mb(max_bytes)} limit: "
                          "use a smaller file (a JPEG, or fewer pixels)")  # fmt: skip


def sniff(data: bytes) -> str:
    """The image format by its magic bytes: "png", "jpeg" or "webp"; anything else is refused."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, kind in SUPPORTED:
        if data.startswith(magic):
            return kind
    named = next((name for magic, name in KNOWN if data.lstrip()[: len(magic)] == magic), None)
    if named is None and data[4:8] == b"ftyp":
        named = "HEIC/AVIF" if data[8:12] in (b"heic", b"heix", b"mif1", b"avif") else "video"
    what = f"{named} images are" if named else "this file is"
    raise AvatarError("avatar-unsupported-format", f"{what} not supported: send a PNG, JPEG or WebP portrait")


def decode(data: bytes) -> Image:
    """RGB pixels of a PNG, JPEG or WebP; transparency is laid on white."""
    kind = sniff(data)
    size = _dimensions(data, kind)
    if size is None:
        # Each format states its size before its pixels; a file whose size cannot be read here is cut short or
        # damaged, and letting the decoder go on would skip the pixel limit (libjpeg finds a frame header that
        # garbage hides from a strict reading, and allocates whatever it says, up to a gigapixel).
        raise AvatarError("avatar-unreadable", f"the {FORMAT_NAMES[kind]} file does not say how large the picture "
                          "is (it is damaged or cut short): save or export the picture again")  # fmt: skip
    if size[0] * size[1] > MAX_PIXELS:
        megapixels = MAX_PIXELS // 1_000_000
        raise AvatarError("avatar-too-large", f"the image is {size[0]}x{size[1]} pixels, over {megapixels} "
                          "megapixels: send a smaller one (1024x1024 is plenty)")  # fmt: skip
    buffer = np.frombuffer(data, np.uint8)
    unreadable = AvatarError("avatar-unreadable", f"the {FORMAT_NAMES[kind]} file is damaged or cut short: "
                             "save or export the picture again and send the new file")  # fmt: skip
    try:
        # JPEG has no alpha, and IMREAD_COLOR applies its EXIF rotation (phone photos); PNG and WebP are read
        # as they are to see their alpha, so a rare EXIF rotation inside one of them is not applied.
        raw = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB if kind == "jpeg" else cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        raise unreadable from err
    except MemoryError as err:  # within MAX_PIXELS, but more than this box has free now
        raise AvatarError("avatar-too-large", f"the {size[0]}x{size[1]} picture does not fit in memory: send a "
                          "smaller one (1024x1024 is plenty)") from err  # fmt: skip
    if raw is None or raw.size == 0:  # OpenCV 4.14 refuses truncated files (tests check that it still does)
        raise unreadable
    if kind == "jpeg":
        return _pixels(raw)
    pixels = _pixels(np.asarray(raw, np.uint16) >> 8) if raw.dtype == np.uint16 else _pixels(raw)
    if pixels.ndim == 2:
        return _pixels(cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB))
    if pixels.shape[2] == 4:
        colour, alpha = pixels[..., :3].astype(np.uint16), pixels[..., 3:].astype(np.uint16)
        pixels = _pixels((colour * alpha + 255 * (255 - alpha) + 127) // 255)
    return _pixels(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))


@dataclass(frozen=True, slots=True)
class Framing:
    """The square taken from the original (x, y, side) and its side once scaled (`out`)."""

    x: int
    y: int
    side: int
    out: int


def frame(width: int, height: int, face: tuple[float, float], max_resolution: int) -> Framing:
    """The largest square that fits, centred on the face as far as the borders allow, sized for the renderer."""
    side = min(width, height)
    out = min(max(side, PREPARED_MIN), max_resolution)
    if out == side and side % 2:  # used unscaled: H.264 wants even sides
        side = out = side - 1
    x = min(max(round(face[0] - side / 2), 0), width - side)
    y = min(max(round(face[1] - side / 2), 0), height - side)
    return Framing(x, y, side, out)


def describe(width: int, height: int, framing: Framing) -> str:
    """What was done, in words; "" when the image is used as it is."""
    parts = []
    if framing.side != width or framing.side != height:
        why = "around the face" if width != height else "so the video gets even sides"
        parts.append(f"cropped {width}x{height} to {framing.side}x{framing.side} {why}")
    if framing.out != framing.side:
        way = "up" if framing.out > framing.side else "down"
        subject = "it" if parts else f"{framing.side}x{framing.side}"
        parts.append(f"scaled {subject} {way} to {framing.out}x{framing.out}")
    return " and ".join(parts)


def prepare_avatar(data: bytes, finder: FaceFinder, *, max_resolution: int, max_bytes: int) -> PreparedAvatar:
    """Check, decode, frame and mesh an uploaded portrait. Raises AvatarError or FaceError with what to do."""
    started = time.perf_counter()
    check_size(data, max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    original = decode(data)
    height, width = original.shape[:2]
    if min(width, height) < MIN_SIDE:
        raise AvatarError("avatar-too-small", f"the image is {width}x{height}: send one at least {MIN_SIDE} "
                          f"pixels on each side ({PREPARED_MIN}x{PREPARED_MIN} or larger looks best)")  # fmt: skip
    face = _one_face(finder, original)
    x, y, w, h = face.box
    framing = frame(width, height, (x + w / 2, y + h / 2), max_resolution)
    image = original[framing.y : framing.y + framing.side, framing.x : framing.x + framing.side]
    if framing.out != framing.side:
        shrink = framing.out < framing.side
        image = _pixels(cv2.resize(image, (framing.out, framing.out),
                                   interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC))  # fmt: skip
    image = _pixels(image)
    mesh = finder.mesh(image, _moved(face, framing))
    _check_face(mesh, framing.out)
    prepared = PreparedAvatar(avatar_id(sha256, max_resolution), image, mesh, sha256, describe(width, height, framing))
    log.info("prepared avatar %s from %dx%d in %.0f ms: %s", prepared.avatar_id, width, height,
             (time.perf_counter() - started) * 1000, prepared.adjusted or "used as it is")  # fmt: skip
    return prepared


def _one_face(finder: FaceFinder, image: Image) -> Detection:
    """The one face in the image (in its pixels), looked for in a copy at most PROBE_SIDE on a side."""
    height, width = image.shape[:2]
    scale = min(1.0, PROBE_SIDE / max(height, width))
    probe = _pixels(cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA))
    faces = [face for face in finder.detect(probe) if face.score >= FACE_SCORE]
    if len(faces) > 1:
        raise FaceError("avatar-several-faces", f"the picture shows {len(faces)} faces: send a portrait of one "
                        "person, or crop it to the face that should speak")  # fmt: skip
    if not faces:
        if _small_face(finder, probe):
            raise FaceError("avatar-face-too-small", f"the face is too small in the picture: {CLOSER}")
        raise FaceError("avatar-no-face", "no face found in the picture: send a portrait looking at the camera, "
                        "in good light, with the whole face visible")  # fmt: skip
    face = faces[0]
    box = (face.box[0] / scale, face.box[1] / scale, face.box[2] / scale, face.box[3] / scale)
    return Detection(face.score, box, (face.keypoints / scale).astype(np.float32))


def _small_face(finder: FaceFinder, image: Image) -> bool:
    """Whether a face too small for the detector on the whole image shows up in a third of it."""
    height, width = image.shape[:2]
    tile = max(min(height, width) // 3, max(height, width) // 12)
    step = tile // 2
    for y in range(0, height - tile + 1, step):
        for x in range(0, width - tile + 1, step):
            if any(face.score >= FACE_SCORE for face in finder.detect(image[y : y + tile, x : x + tile])):
                return True
    return False


def _moved(face: Detection, framing: Framing) -> Detection:
    """The detection in the prepared image's pixels."""
    s = framing.out / framing.side
    x, y, w, h = face.box
    box = ((x - framing.x) * s, (y - framing.y) * s, w * s, h * s)
    keypoints = (face.keypoints - np.array([framing.x, framing.y], np.float32)) * s
    return Detection(face.score, box, keypoints.astype(np.float32))


def _check_face(mesh: FaceMesh, side: int) -> None:
    if mesh.presence < MIN_PRESENCE:
        raise FaceError("avatar-no-face", "the face could not be traced: send a portrait looking at the camera, "
                        "in good light, with nothing covering the mouth")  # fmt: skip
    face_side = max(mesh.box[2], mesh.box[3])
    if face_side < MIN_FACE_FRACTION * side or mesh.mouth_width < MIN_MOUTH_PX:
        raise FaceError("avatar-face-too-small", f"the face is {face_side / side:.0%} of the picture and its "
                        f"mouth {mesh.mouth_width:.0f} pixels wide: {CLOSER}")  # fmt: skip


class AvatarCache:
    """Prepared avatars on disk, one folder each: avatar.png, face.npz, info.json, and whatever else the
    renderer keeps beside them. A folder appears whole (written aside, then renamed) or not at all."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def path(self, avatar_id: str) -> Path:
        if not AVATAR_ID.match(avatar_id):  # ids arrive from clients: never let one name another path
            raise AvatarError("avatar-id-invalid", f"{avatar_id!r} is not an avatar id: prepare the avatar first")
        return self._root / avatar_id

    def get(self, avatar_id: str) -> PreparedAvatar | None:
        """The cached avatar; None when absent, or incomplete or damaged (then it is prepared again)."""
        folder = self.path(avatar_id)
        if not folder.is_dir():
            return None
        try:
            info = msgspec.json.decode((folder / INFO_FILE).read_bytes(), type=AvatarInfo)
            with np.load(folder / FACE_FILE, allow_pickle=False) as face:
                points = np.asarray(face["points"], np.float32)
                presence, sha256 = float(face["presence"]), str(face["sha256"])
            bgr = cv2.imdecode(np.frombuffer((folder / IMAGE_FILE).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, msgspec.DecodeError, cv2.error) as err:
            log.warning("avatar cache %s is incomplete (%s): it will be prepared again", folder, err)
            return None
        if bgr is None or bgr.shape != (info.height, info.width, 3) or points.shape != (468, 3):
            log.warning("avatar cache %s does not match its info.json: it will be prepared again", folder)
            return None
        image = _pixels(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return PreparedAvatar(avatar_id, image, FaceMesh(points, presence), sha256, info.adjusted)

    def put(self, prepared: PreparedAvatar) -> Path:
        final = self.path(prepared.avatar_id)
        self._root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{prepared.avatar_id}.", dir=self._root))
        try:
            ok, png = cv2.imencode(".png", cv2.cvtColor(prepared.image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise AvatarError("avatar-cache-failed", f"cannot encode {prepared.avatar_id} as PNG")
            (staging / IMAGE_FILE).write_bytes(png.tobytes())
            np.savez(staging / FACE_FILE, points=prepared.mesh.points, presence=np.float64(prepared.mesh.presence),
                     sha256=np.str_(prepared.sha256))  # fmt: skip
            (staging / INFO_FILE).write_bytes(msgspec.json.encode(prepared.info()))
            for _ in range(3):
                try:
                    staging.rename(final)
                    return final
                except OSError:  # taken: by a concurrent put of the same upload, or a crash's leftovers
                    if self.get(prepared.avatar_id) is not None:
                        return final
                    self._discard(final)
            raise AvatarError("avatar-cache-failed", f"cannot move the prepared avatar into {final}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def remove(self, avatar_id: str) -> None:
        self._discard(self.path(avatar_id))

    def _discard(self, folder: Path) -> None:
        """Rename first, so no reader sees a folder half deleted."""
        doomed = self._root / f".{folder.name}.removed-{uuid.uuid4().hex}"
        try:
            os.rename(folder, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)


def prepare_cached(data: bytes, finder: FaceFinder, cache: AvatarCache, *, max_resolution: int,
                   max_bytes: int) -> tuple[PreparedAvatar, bool]:  # fmt: skip
    """The prepared avatar from the cache (True) or prepared now and cached (False)."""
    check_size(data, max_bytes)
    cached = cache.get(avatar_id(hashlib.sha256(data).hexdigest(), max_resolution))
    if cached is not None:
        return cached, True
    prepared = prepare_avatar(data, finder, max_resolution=max_resolution, max_bytes=max_bytes)
    cache.put(prepared)
    return prepared, False


def default_avatar_bytes(config: MynahConfig) -> bytes:
    """The configured default avatar's bytes, or the project's assets/avatar.png."""
    path = config.lipsync.avatar or DEFAULT_AVATAR
    try:
        return path.read_bytes()
    except OSError as err:
        raise AvatarError("avatar-default-missing", f"cannot read the default avatar {path}: {err.strerror}; "
                          "set [lipsync] avatar to a PNG, JPEG or WebP portrait") from err  # fmt: skip


def _dimensions(data: bytes, kind: str) -> tuple[int, int] | None:
    """Width and height from the header, before decoding; None when the header does not say (decoding will)."""
    try:
        if kind == "png" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if kind == "webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return int(width) & 0x3FFF, int(height) & 0x3FFF
        if kind == "jpeg":
            return _jpeg_dimensions(data)
    except struct.error:
        return None
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """The frame header's size, found as libjpeg finds it: bytes that are not a marker are skipped (libjpeg
    warns of "extraneous bytes" and goes on), so no file hides its size from this and shows it to the decoder."""
    at = 2
    while True:
        at = data.find(b"\xff", at)
        while 0 <= at < len(data) - 1 and data[at + 1] == 0xFF:  # fill bytes before a marker
            at += 1
        if at < 0 or at + 4 > len(data):
            return None
        marker = data[at + 1]
        if marker == 0x00 or 0xD0 <= marker <= 0xD7 or marker == 0x01:  # a stuffed byte, or no length follows
            at += 2
            continue
        if marker in (0xD8, 0xD9, 0xDA):  # a second start, the end, or scan data before any frame header
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")


def _pixels(array: object) -> Image:
    """OpenCV's results typed as what they are: contiguous 8-bit pixels."""
    return np.ascontiguousarray(array, dtype=np.uint8)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
