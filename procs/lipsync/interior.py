"""The inside of an open mouth, painted between the inner lips: a shaded cavity, the tongue lying on the floor of
the mouth (raised for th and l), the lower teeth as the jaw drops, and the upper teeth under the upper lip (down
onto the lower lip for f and v). Colours come from the avatar (procs/lipsync/rig.py); everything is a function
of the column's position between the corners and the row's depth between the lips, so it stays put as the lips
move and never looks like a flat dark hole."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from procs.lipsync.visemes import MouthShape

F32 = npt.NDArray[np.float32]
UPPER_TEETH = 0.085  # most of the upper incisors a wide-open mouth shows, in mouth widths
LOWER_TEETH = 0.028
SUBPIXEL = 4  # fillPoly's fractional bits


def paint_interior(
    crop: npt.NDArray[np.uint8], upper: F32, lower: F32, shape: MouthShape, mouth_width: float,
    teeth: tuple[int, int, int], cavity: tuple[int, int, int], tongue: tuple[int, int, int],
    picture_teeth: float = 0.0,
) -> None:  # fmt: skip
    """Paint into `crop` (in place) between the inner lip contours `upper` and `lower` (N x 2 each, corner to
    corner, in the crop's pixels). `picture_teeth` > 0: the avatar's own upper teeth, that many pixels of them,
    are already in `crop` under the upper lip (the warp carries them with the lip) and are kept as they are."""
    polygon = np.concatenate([upper, lower[::-1]])
    x0, y0 = np.floor(polygon.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 3
    height, width = crop.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    points = np.round((polygon - [x0, y0]) * (1 << SUBPIXEL)).astype(np.int32)
    cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL)
    if not mask.any():
        return
    alpha = mask.astype(np.float32)[..., None] / 255.0

    xs = np.arange(x0, x1, dtype=np.float32) + 0.5
    order_u, order_l = np.argsort(upper[:, 0]), np.argsort(lower[:, 0])
    top = np.interp(xs, upper[order_u, 0], upper[order_u, 1]).astype(np.float32)
    bottom = np.interp(xs, lower[order_l, 0], lower[order_l, 1]).astype(np.float32)
    gap = np.maximum(bottom - top, 0.5)
    left, right = float(polygon[:, 0].min()), float(polygon[:, 0].max())
    centre, half = (left + right) / 2, max((right - left) / 2, 1.0)
    r = np.clip(np.abs(xs - centre) / half, 0.0, 1.0)  # 0 mid-mouth, 1 at a corner
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    depth = np.clip((ys - top) / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower

    colour = np.empty((y1 - y0, x1 - x0, 3), np.float32)
    shade = (1.0 - 0.5 * r**2) * (0.7 + 0.3 * depth)
    colour[:] = np.asarray(cavity, np.float32) * shade[..., None]

    tongue_height = gap * (0.28 + 0.5 * shape.tongue) * (1.0 - (r / 0.8) ** 2).clip(0.0, 1.0)
    tongue_top = bottom - tongue_height
    on_tongue = ys > tongue_top
    tongue_shade = 1.0 - 0.35 * np.clip((ys - tongue_top) / np.maximum(tongue_height, 1.0), 0.0, 1.0)
    colour = np.where(on_tongue[..., None], np.asarray(tongue, np.float32) * tongue_shade[..., None], colour)

    lower_height = mouth_width * LOWER_TEETH * float(np.clip((shape.opening - 0.3) * 2.5, 0, 1)) * (1.0 - r**2)
    on_lower = ys > bottom - lower_height
    most = min(mouth_width * UPPER_TEETH, picture_teeth) if picture_teeth > 0 else mouth_width * UPPER_TEETH
    upper_height = np.minimum(most, 0.42 * gap) * (1.0 - r**4)
    upper_height = np.maximum(upper_height, shape.teeth * gap * 1.05)
    on_upper = ys < top + upper_height
    teeth_shade = (0.72 + 0.28 * (1.0 - r**2)) * (0.8 + 0.2 * np.clip((ys - top) / 3.0, 0.0, 1.0))
    edge = np.clip((top + upper_height - ys) / 1.5, 0.0, 1.0)  # the biting edge a touch darker
    teeth_rgb = np.asarray(teeth, np.float32)
    colour = np.where(on_lower[..., None], teeth_rgb * (0.82 * (1.0 - 0.35 * r**2))[None, :, None], colour)
    region = crop[y0:y1, x0:x1].astype(np.float32)
    if picture_teeth > 0:
        alpha = np.where(on_upper[..., None], 0.0, alpha)
    else:
        colour = np.where(on_upper[..., None], teeth_rgb * (teeth_shade * (0.9 + 0.1 * edge))[..., None], colour)

    crop[y0:y1, x0:x1] = (region + (colour - region) * alpha + 0.5).clip(0, 255).astype(np.uint8)


def paint_seam(crop: npt.NDArray[np.uint8], upper: F32, lower: F32, cavity: tuple[int, int, int]) -> None:
    """The dark line where closed lips meet, drawn along the middle of the inner contours."""
    seam = (upper + lower) / 2
    x0, y0 = np.maximum(np.floor(seam.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.ceil(seam.max(axis=0)).astype(int) + 3
    region = crop[y0:y1, x0:x1]
    overlay = region.copy()
    points = np.round((seam - [x0, y0]) * (1 << SUBPIXEL)).astype(np.int32)
    line = tuple(int(min(255, c * 1.6)) for c in cavity)
    cv2.polylines(overlay, [points], False, line, 1, lineType=cv2.LINE_AA, shift=SUBPIXEL)
    cv2.addWeighted(overlay, 0.55, region, 0.45, 0.0, dst=region)


def paint_lid(crop: npt.NDArray[np.uint8], rest: F32, edge: F32, shut: float, skin: tuple[int, int, int],
              lash: tuple[int, int, int]) -> None:  # fmt: skip
    """Smooth the upper lid between its open edge `rest` and where it is now (`edge`, both 7 x 2 in the crop's
    pixels) with the lid's own skin, more as it shuts, and draw its lashes along the edge."""
    polygon = np.concatenate([rest, edge[::-1]])
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.ceil(polygon.max(axis=0)).astype(int) + 3
    region = crop[y0:y1, x0:x1]
    if region.size == 0:
        return
    mask = np.zeros(region.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((polygon - [x0, y0]) * (1 << SUBPIXEL)).astype(np.int32)], 255,
                 lineType=cv2.LINE_AA, shift=SUBPIXEL)  # fmt: skip
    soft = cv2.GaussianBlur(mask, (0, 0), 1.2).astype(np.float32)
    alpha = (soft / 255.0 * min(0.8, 0.8 * shut))[..., None]
    blurred = cv2.GaussianBlur(region, (0, 0), 2.5).astype(np.float32)
    smooth = 0.7 * blurred + 0.3 * np.asarray(skin, np.float32)
    overlay = region.astype(np.float32) * (1 - alpha) + smooth * alpha
    lashes = overlay.copy()
    points = np.round((edge - [x0, y0]) * (1 << SUBPIXEL)).astype(np.int32)
    cv2.polylines(lashes, [points], False, tuple(float(c) for c in lash), 1, lineType=cv2.LINE_AA, shift=SUBPIXEL)
    strength = min(1.0, shut * 1.2)
    region[:] = (overlay + (lashes - overlay) * strength + 0.5).clip(0, 255).astype(np.uint8)
