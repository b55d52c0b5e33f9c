"""Avatar preparation with the real face models: what is accepted, how it is framed, what is refused, the cache."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.config import LipsyncConfig, MynahConfig
from ipc.errors import CodedError
from procs.lipsync.avatar import (
    DEFAULT_AVATAR,
    FACE_FILE,
    IMAGE_FILE,
    INFO_FILE,
    AvatarCache,
    PreparedAvatar,
    default_avatar_bytes,
    prepare_avatar,
    prepare_cached,
)
from procs.lipsync.face import Detection, FaceFinder, FaceMesh, Image
from tests.conftest import require_model

MAX_BYTES = 20 * 1024 * 1024
AVATAR_MOUTH_PX = 91.1  # measured on assets/avatar.png (512x512)


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    return FaceFinder(require_model("mediapipe-face"))


@pytest.fixture(scope="module")
def avatar() -> Image:
    bgr = cv2.imread(str(DEFAULT_AVATAR), cv2.IMREAD_COLOR)
    assert bgr is not None
    return np.ascontiguousarray(bgr[..., ::-1])


def encode(rgb: Image, ext: str = ".png") -> bytes:
    ok, data = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return data.tobytes()


def resized(rgb: Image, side: int) -> Image:
    interpolation = cv2.INTER_AREA if side < rgb.shape[0] else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(rgb, (side, side), interpolation=interpolation), dtype=np.uint8)


def prepare(data: bytes, finder: FaceFinder, max_resolution: int = 1024) -> PreparedAvatar:
    return prepare_avatar(data, finder, max_resolution=max_resolution, max_bytes=MAX_BYTES)


def refused(data: bytes, finder: FaceFinder) -> CodedError:
    with pytest.raises(CodedError) as caught:
        prepare(data, finder)
    return caught.value


def test_the_default_avatar_is_used_as_it_is(finder: FaceFinder) -> None:
    data = default_avatar_bytes(MynahConfig())
    started = time.perf_counter()
    prepared = prepare(data, finder)
    elapsed = time.perf_counter() - started
    info = prepared.info()
    assert prepared.image.shape == (512, 512, 3) and prepared.image.dtype == np.uint8
    assert prepared.adjusted == "" and info.adjusted == ""
    assert info.mouth_width_px == pytest.approx(AVATAR_MOUTH_PX, abs=4)
    x, y, w, h = info.face_box
    assert 100 < x < 256 < x + w < 412 and 100 < y < 256 < y + h < 412  # a head in the middle of a portrait
    assert 150 < w < 260 and 150 < h < 280
    assert len(info.lips) == 20 and all(100 < px < 412 and 256 < py < 412 for px, py in info.lips)
    assert info.avatar_id == prepared.sha256[:16] + "-1024" and len(prepared.sha256) == 64
    assert elapsed < 2.0


def test_the_configured_avatar_overrides_the_default(tmp_path: Path) -> None:
    mine = tmp_path / "me.jpg"
    mine.write_bytes(b"\xff\xd8\xff not really")
    assert default_avatar_bytes(MynahConfig(lipsync=LipsyncConfig(avatar=mine))) == mine.read_bytes()
    with pytest.raises(CodedError) as caught:
        default_avatar_bytes(MynahConfig(lipsync=LipsyncConfig(avatar=tmp_path / "gone.png")))
    assert caught.value.code == "avatar-default-missing"


@pytest.mark.parametrize("ext", [".jpg", ".webp"])
def test_jpeg_and_webp_are_accepted(finder: FaceFinder, avatar: Image, ext: str) -> None:
    prepared = prepare(encode(avatar, ext), finder)
    assert prepared.image.shape == (512, 512, 3) and prepared.adjusted == ""
    assert prepared.mesh.mouth_width == pytest.approx(AVATAR_MOUTH_PX, abs=4)


def test_transparency_is_laid_on_white(finder: FaceFinder, avatar: Image) -> None:
    bgra = np.dstack([avatar[..., ::-1], np.full(avatar.shape[:2], 255, np.uint8)])
    bgra[:40, :40, 3] = 0  # a transparent corner
    ok, data = cv2.imencode(".png", bgra)
    assert ok
    prepared = prepare(data.tobytes(), finder)
    assert (prepared.image[:40, :40] == 255).all()
    assert (prepared.image[100:] == avatar[100:]).all()


def test_a_wide_picture_is_cropped_around_the_face(finder: FaceFinder, avatar: Image) -> None:
    canvas = np.full((800, 1200, 3), (90, 120, 150), np.uint8)
    left, top = 640, 200
    canvas[top : top + 512, left : left + 512] = avatar
    prepared = prepare(encode(canvas), finder)
    assert prepared.image.shape == (800, 800, 3)
    assert prepared.adjusted == "cropped 1200x800 to 800x800 around the face"
    # The face sits at x 640+256 = 896: the square cannot centre it (it would end past 1200), so it is pushed
    # against the right border and starts at x 400.
    assert (prepared.image[top : top + 512, 240:752] == avatar).all()
    reference = prepare(encode(avatar), finder).mesh.xy((61, 291))
    assert prepared.mesh.xy((61, 291)) == pytest.approx(reference + np.array([240, top]), abs=3)


def test_a_tall_picture_is_cropped_with_the_face_centred(finder: FaceFinder, avatar: Image) -> None:
    canvas = np.full((1400, 700, 3), 200, np.uint8)
    canvas[500:1012, 100:612] = avatar
    prepared = prepare(encode(canvas), finder)
    assert prepared.image.shape == (700, 700, 3) and "cropped 700x1400 to 700x700 around the face" in prepared.adjusted
    _, y, _, h = prepared.mesh.box
    assert abs((y + h / 2) - 350) < 40  # centred vertically (the borders allowed it)


def test_a_large_square_is_scaled_down(finder: FaceFinder, avatar: Image) -> None:
    prepared = prepare(encode(resized(avatar, 2048)), finder)
    assert prepared.image.shape == (1024, 1024, 3)
    assert prepared.adjusted == "scaled 2048x2048 down to 1024x1024"
    assert prepared.mesh.mouth_width == pytest.approx(2 * AVATAR_MOUTH_PX, rel=0.05)
    smaller = prepare(encode(resized(avatar, 2048)), finder, max_resolution=512)
    assert smaller.image.shape == (512, 512, 3) and smaller.avatar_id != prepared.avatar_id


def test_a_small_square_is_scaled_up(finder: FaceFinder, avatar: Image) -> None:
    prepared = prepare(encode(resized(avatar, 300)), finder)
    assert prepared.image.shape == (512, 512, 3)
    assert prepared.adjusted == "scaled 300x300 up to 512x512"
    assert prepared.mesh.mouth_width == pytest.approx(AVATAR_MOUTH_PX, rel=0.06)


def test_an_odd_square_loses_a_pixel(finder: FaceFinder, avatar: Image) -> None:
    prepared = prepare(encode(resized(avatar, 601)), finder)
    assert prepared.image.shape == (600, 600, 3)
    assert prepared.adjusted == "cropped 601x601 to 600x600 so the video gets even sides"


def landscape() -> Image:
    height, width = 600, 800
    rows = np.linspace(0, 1, height)[:, None, None]
    image = ((1 - rows) * np.array([90, 150, 235]) + rows * np.array([200, 225, 250])) * np.ones((1, width, 1))
    xs = np.arange(width)
    hills = 380 + 50 * np.sin(xs / 90.0) + 25 * np.sin(xs / 37.0 + 1)
    ground = np.arange(height)[:, None] > hills[None, :]
    image[ground] = (60, 140, 50)
    yy, xx = np.mgrid[:height, :width]
    image[(yy - 130) ** 2 + (xx - 620) ** 2 < 55**2] = (255, 215, 60)
    return np.ascontiguousarray(image.astype(np.uint8))


def test_refusals_name_the_problem_and_the_fix(finder: FaceFinder, avatar: Image) -> None:
    error = refused(encode(landscape()), finder)
    assert error.code == "avatar-no-face" and "portrait" in error.message

    error = refused(encode(np.hstack([avatar, avatar])), finder)
    assert error.code == "avatar-several-faces" and "2 faces" in error.message

    error = refused(encode(resized(avatar, 64)), finder)
    assert error.code == "avatar-too-small" and "64x64" in error.message and "256" in error.message

    canvas = np.full((1000, 1000, 3), 128, np.uint8)
    canvas[300:420, 550:670] = resized(avatar, 120)
    error = refused(encode(canvas), finder)
    assert error.code == "avatar-face-too-small" and "a fifth of the picture" in error.message


def test_a_face_detected_but_too_small_is_refused(finder: FaceFinder, avatar: Image) -> None:
    canvas = np.full((1024, 1024, 3), 128, np.uint8)  # used as it is: the face box is about 15% of its side
    canvas[400:800, 300:700] = resized(avatar, 400)
    error = refused(encode(canvas), finder)
    assert error.code == "avatar-face-too-small" and "a fifth of the picture" in error.message


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_a_truncated_file_is_unreadable(finder: FaceFinder, avatar: Image, ext: str) -> None:
    data = encode(avatar, ext)
    for cut in (len(data) // 2, len(data) - 2):
        error = refused(data[:cut], finder)
        assert error.code == "avatar-unreadable" and "again" in error.message


def test_other_formats_are_refused_by_their_bytes(finder: FaceFinder, avatar: Image) -> None:
    error = refused(np.random.default_rng(7).bytes(5000), finder)
    assert error.code == "avatar-unsupported-format" and "PNG, JPEG or WebP" in error.message
    error = refused(b"GIF89a" + bytes(2000), finder)
    assert error.code == "avatar-unsupported-format" and "GIF" in error.message
    error = refused(encode(avatar, ".bmp"), finder)
    assert error.code == "avatar-unsupported-format" and "BMP" in error.message


def test_size_limits(finder: FaceFinder, avatar: Image) -> None:
    data = encode(avatar)
    with pytest.raises(CodedError) as caught:
        prepare_avatar(data, finder, max_resolution=1024, max_bytes=len(data) - 1)
    assert caught.value.code == "avatar-too-large" and "smaller" in caught.value.message
    huge = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (20000).to_bytes(4, "big") * 2 + bytes(100)
    error = refused(huge, finder)
    assert error.code == "avatar-too-large" and "20000x20000" in error.message


class CountingFinder(FaceFinder):
    def __init__(self, model_dir: Path) -> None:
        super().__init__(model_dir)
        self.calls = 0

    def detect(self, image: Image) -> list[Detection]:
        self.calls += 1
        return super().detect(image)

    def mesh(self, image: Image, detection: Detection) -> FaceMesh:
        self.calls += 1
        return super().mesh(image, detection)


@pytest.fixture
def counting() -> CountingFinder:
    return CountingFinder(require_model("mediapipe-face"))


def test_the_cache_round_trips(tmp_path: Path, finder: FaceFinder, avatar: Image) -> None:
    cache = AvatarCache(tmp_path / "avatars")
    prepared = prepare(encode(resized(avatar, 300)), finder)
    folder = cache.put(prepared)
    (folder / "idle.mp4").write_bytes(b"the renderer's own file")
    again = cache.get(prepared.avatar_id)
    assert again is not None
    assert np.array_equal(again.image, prepared.image)
    assert np.array_equal(again.mesh.points, prepared.mesh.points) and again.mesh.presence == prepared.mesh.presence
    assert again.sha256 == prepared.sha256 and again.info() == prepared.info()
    cache.put(prepared)  # a second put of the same avatar keeps the folder and its other files
    assert (folder / "idle.mp4").exists()
    assert [p.name for p in cache.path(prepared.avatar_id).parent.iterdir()] == [prepared.avatar_id]
    cache.remove(prepared.avatar_id)
    assert cache.get(prepared.avatar_id) is None and not folder.exists()
    with pytest.raises(CodedError) as caught:
        cache.get("../../etc")
    assert caught.value.code == "avatar-id-invalid"


def test_concurrent_puts_of_one_avatar_leave_one_folder(tmp_path: Path, finder: FaceFinder, avatar: Image) -> None:
    cache = AvatarCache(tmp_path)
    prepared = prepare(encode(avatar), finder)
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: cache.put(prepared), range(8)))
    assert set(folders) == {cache.path(prepared.avatar_id)}
    assert [p.name for p in tmp_path.iterdir()] == [prepared.avatar_id]  # no staging folder left behind
    assert cache.get(prepared.avatar_id) is not None


def test_prepare_cached_uses_the_cache(tmp_path: Path, counting: CountingFinder, avatar: Image) -> None:
    cache = AvatarCache(tmp_path)
    data = encode(avatar, ".jpg")
    first, cached = prepare_cached(data, counting, cache, max_resolution=1024, max_bytes=MAX_BYTES)
    assert not cached and counting.calls == 2
    second, cached = prepare_cached(data, counting, cache, max_resolution=1024, max_bytes=MAX_BYTES)
    assert cached and counting.calls == 2
    assert np.array_equal(second.image, first.image) and second.info() == first.info()
    _, cached = prepare_cached(data, counting, cache, max_resolution=768, max_bytes=MAX_BYTES)
    assert not cached  # another resolution is another avatar


def test_a_half_written_folder_counts_as_absent(tmp_path: Path, counting: CountingFinder, avatar: Image) -> None:
    cache = AvatarCache(tmp_path)
    data = encode(avatar)
    prepared, _ = prepare_cached(data, counting, cache, max_resolution=1024, max_bytes=MAX_BYTES)
    (cache.path(prepared.avatar_id) / INFO_FILE).unlink()
    assert cache.get(prepared.avatar_id) is None
    _, cached = prepare_cached(data, counting, cache, max_resolution=1024, max_bytes=MAX_BYTES)
    assert not cached and cache.get(prepared.avatar_id) is not None  # prepared again and replaced
    (cache.path(prepared.avatar_id) / IMAGE_FILE).write_bytes(encode(resized(avatar, 300)))  # not what info says
    assert cache.get(prepared.avatar_id) is None
    prepare_cached(data, counting, cache, max_resolution=1024, max_bytes=MAX_BYTES)
    (cache.path(prepared.avatar_id) / FACE_FILE).write_bytes(b"not a zip")
    assert cache.get(prepared.avatar_id) is None
