"""The real-time renderer: one frame from a rig, a mouth shape, a head pose and a blink.

Per frame: the head's rigid motion over the head box, the mouth's two layers joined along this frame's seam,
the blink, one `cv2.remap` of the head box, the mouth interior painted in; the rest of the frame is the avatar
as it is. The work is proportional to the head box, not the image (a 1024 px avatar costs about four 512 px
ones only because its face is four times larger).

Mouth opening maps to a gap between the inner lips of up to FULL_GAP mouth widths. Below the picture's own gap
the lips close towards each other (the `close` basis); above it the jaw drops (the `jaw` basis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from procs.lipsync.interior import paint_interior, paint_lid, paint_seam
from procs.lipsync.motion import Pose
from procs.lipsync.rig import Box, Field, Rig
from procs.lipsync.visemes import MouthShape

F32 = npt.NDArray[np.float32]
FULL_GAP = 0.6  # the inner lips' gap at opening 1, in mouth widths


@dataclass(frozen=True, slots=True)
class Weights:
    jaw: float = 0.0
    close: float = 0.0
    wide: float = 0.0
    round: float = 0.0


def mouth_weights(rig: Rig, shape: MouthShape | None) -> Weights:
    """How strongly each mouth basis applies for a shape; None: the picture's own mouth (idle)."""
    if shape is None:
        return Weights()
    gap = shape.opening * FULL_GAP * rig.mouth_width
    if gap < rig.rest_gap:
        jaw, close = 0.0, 1.0 - gap / rig.rest_gap
    else:
        jaw, close = (gap - rig.rest_gap) / rig.jaw_range, 0.0
    return Weights(jaw, close, max(0.0, (shape.width - 0.5) * 2), max(0.0, (0.5 - shape.width) * 2))


class Renderer:
    """Frames of one avatar. Not thread-safe: one renderer per rendering thread."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        head = rig.head
        xs, ys = head.grid()
        px, py = rig.pivot
        self._base_x, self._base_y = xs, ys
        self._mask = rig.head_mask
        self._mx, self._my = rig.head_mask * (xs - px), rig.head_mask * (ys - py)
        self._map_x = np.empty_like(xs)
        self._map_y = np.empty_like(ys)
        self._crop = np.empty((*head.shape, 3), np.uint8)

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.rig.image.shape[:2]
        return width, height

    def render(self, out: npt.NDArray[np.uint8], shape: MouthShape | None, pose: Pose, blink: float) -> None:
        """Draw one frame into `out` (H x W x 3 RGB, the avatar's size)."""
        rig, head = self.rig, self.rig.head
        c, s = math.cos(pose.roll), math.sin(pose.roll)
        inv = 1.0 / pose.scale
        # Backward head motion: H^-1(x) - x = (R(-roll)/scale - I)(x - pivot) - R(-roll) t / scale, masked.
        a11, a12, a21, a22 = c * inv - 1.0, s * inv, -s * inv, c * inv - 1.0
        bx, by = -(c * pose.dx + s * pose.dy) * inv, -(-s * pose.dx + c * pose.dy) * inv
        np.multiply(self._mx, a11, out=self._map_x)
        self._map_x += a12 * self._my + bx * self._mask
        self._map_x += self._base_x
        np.multiply(self._my, a22, out=self._map_y)
        self._map_y += a21 * self._mx + by * self._mask
        self._map_y += self._base_y

        weights = mouth_weights(rig, shape)
        upper, lower = self._tracked(weights, pose)
        shift = self._head_shift(pose, float(rig.tracked[:, 0].mean()), float(rig.tracked[:, 1].mean()))
        self._add_mouth(weights, upper, lower, shift)
        if blink > 0.0:
            for name, field in rig.eyes.items():
                self._add_lid(field, rig.lids[name], blink, shift)
        cv2.remap(rig.image, self._map_x, self._map_y, cv2.INTER_LINEAR, dst=self._crop,
                  borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        offset = np.array([head.x0, head.y0], np.float32)
        if weights.close > 0.0:
            paint_seam(self._crop, upper - offset, lower - offset, rig.cavity_rgb)
        if blink > 0.0:
            for lids in rig.lids.values():
                rest = lids[0] + np.asarray(shift, np.float32) - offset
                paint_lid(self._crop, rest, rest + blink * (lids[1] - lids[0]), blink, rig.lid_rgb, rig.lash_rgb)
        if shape is not None and shape.opening > 0.0:
            paint_interior(self._crop, upper - offset, lower - offset, shape, rig.mouth_width,
                           rig.teeth_rgb, rig.cavity_rgb, rig.tongue_rgb, rig.picture_teeth)  # fmt: skip
        np.copyto(out, rig.image)
        out[head.y0 : head.y1, head.x0 : head.x1] = self._crop

    def _tracked(self, weights: Weights, pose: Pose) -> tuple[F32, F32]:
        """Where the inner lip contours are in this frame (image pixels): the bases' moves, then the head's."""
        rig = self.rig
        points = rig.tracked.copy()
        for name in ("jaw", "close", "wide", "round"):
            strength = getattr(weights, name)
            if strength:
                points += strength * rig.mouth[name].upper.moves
        px, py = rig.pivot
        c, s = math.cos(pose.roll), math.sin(pose.roll)
        rel_x, rel_y = points[:, 0] - px, points[:, 1] - py
        moved = np.empty_like(points)
        moved[:, 0] = px + pose.scale * (c * rel_x - s * rel_y) + pose.dx
        moved[:, 1] = py + pose.scale * (s * rel_x + c * rel_y) + pose.dy
        return moved[rig.inner_upper], moved[rig.inner_lower]

    def _head_shift(self, pose: Pose, x: float, y: float) -> tuple[int, int]:
        """How far (whole pixels) the head motion carries the point (x, y): the face's fields move with it."""
        px, py = self.rig.pivot
        c, s = math.cos(pose.roll), math.sin(pose.roll)
        nx = px + pose.scale * (c * (x - px) - s * (y - py)) + pose.dx
        ny = py + pose.scale * (s * (x - px) + c * (y - py)) + pose.dy
        return round(nx - x), round(ny - y)

    def _slices(self, box: Box, shift: tuple[int, int]) -> tuple[slice, slice, slice, slice] | None:
        """Where `box`, moved by `shift`, lies in the head box, and which part of the box that is."""
        head = self.rig.head
        x0, y0, x1, y1 = box.x0 + shift[0], box.y0 + shift[1], box.x1 + shift[0], box.y1 + shift[1]
        cx0, cy0, cx1, cy1 = max(x0, head.x0), max(y0, head.y0), min(x1, head.x1), min(y1, head.y1)
        if cx0 >= cx1 or cy0 >= cy1:
            return None
        return (
            slice(cy0 - head.y0, cy1 - head.y0), slice(cx0 - head.x0, cx1 - head.x0),
            slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0),
        )  # fmt: skip

    def _add_lid(self, field: Field, lids: F32, blink: float, shift: tuple[int, int]) -> None:
        """The eyelid layer, above where the lid's edge is in this frame; below it the eye stays as it is."""
        where = self._slices(field.box, shift)
        if where is None:
            return
        rows, cols, frows, fcols = where
        edge = lids[0] + blink * (lids[1] - lids[0]) + np.asarray(shift, np.float32)
        order = np.argsort(edge[:, 0])
        xs = np.arange(field.box.x0, field.box.x1, dtype=np.float32)[fcols] + shift[0]
        ys = np.arange(field.box.y0, field.box.y1, dtype=np.float32)[frows, None] + shift[1]
        line = np.interp(xs, edge[order, 0], edge[order, 1])
        above = np.clip(line - ys + 0.5, 0.0, 1.0) * blink
        self._map_x[rows, cols] += above * field.dx[frows, fcols]
        self._map_y[rows, cols] += above * field.dy[frows, fcols]

    def _add_mouth(self, weights: Weights, upper: F32, lower: F32, shift: tuple[int, int]) -> None:
        rig = self.rig
        active = [(name, w) for name in ("jaw", "close", "wide", "round") if (w := getattr(weights, name))]
        if not active:
            return
        box = rig.mouth_box
        where = self._slices(box, shift)
        if where is None:
            return
        rows, cols, frows, fcols = where
        top_dx = sum(w * rig.mouth[name].upper.dx[frows, fcols] for name, w in active)
        top_dy = sum(w * rig.mouth[name].upper.dy[frows, fcols] for name, w in active)
        bottom_dx = sum(w * rig.mouth[name].lower.dx[frows, fcols] for name, w in active)
        bottom_dy = sum(w * rig.mouth[name].lower.dy[frows, fcols] for name, w in active)
        xs = np.arange(box.x0, box.x1, dtype=np.float32)[fcols] + shift[0]
        ys = np.arange(box.y0, box.y1, dtype=np.float32)[frows, None] + shift[1]
        order_u, order_l = np.argsort(upper[:, 0]), np.argsort(lower[:, 0])
        seam = 0.5 * (
            np.interp(xs, upper[order_u, 0], upper[order_u, 1]) + np.interp(xs, lower[order_l, 0], lower[order_l, 1])
        )
        blend = np.clip((ys - seam) / rig.seam_softness[fcols] + 0.5, 0.0, 1.0)
        self._map_x[rows, cols] += top_dx + blend * (bottom_dx - top_dx)
        self._map_y[rows, cols] += top_dy + blend * (bottom_dy - top_dy)
