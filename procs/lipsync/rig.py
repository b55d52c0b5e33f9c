"""An avatar's rig: what moves, where, and by how much, worked out once from its face mesh.

A few basis motions, each a displacement of the face's landmarks at full strength, expressed in the mouth's
own frame (x along the lips, y down, in mouth widths):

- `jaw`: the lower lip and chin drop (the mouth opens beyond how the picture has it);
- `close`: the lips meet (from however open the picture has them: portraits often smile with their teeth);
- `wide`: the corners spread (ee); `round`: the corners come in and the lips push out (oo, w);
- `blink_right`, `blink_left`: the upper lid comes down onto the lower one (a layer above the lid's edge).

Each becomes a backward displacement field over a small box of pixels (a thin-plate spline through the
landmarks), so a frame is the picture resampled at `pixel + sum(weight * field)`: a few multiply-adds and one
`cv2.remap` over the face, never the whole image. The lips part along a seam, which no smooth field can do, so
the mouth's fields come in two layers: one moving the upper lip (used above the seam) and one moving the lower
lip (used below it); the renderer joins them along the seam of each frame.

Head motion (procs/lipsync/motion.py) is a rigid motion of everything under a soft mask around the head, so the
background, shoulders and body stay exactly as they are.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from procs.lipsync import face as mesh_ids
from procs.lipsync.face import FaceMesh
from procs.lipsync.tps import ThinPlate

Vec = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]

JAW_RANGE = 0.34  # the lips' extra gap at full opening, in mouth widths (about 1.7 cm on a 5 cm mouth)
CHIN_FOLLOW = 0.75  # the chin drops less than the lower lip: the jaw turns about its hinge
WIDE_SPREAD = 0.07  # each corner outward at full "ee"
ROUND_PULL = 0.16  # each corner inward at full "oo"
POUT = 0.03
LID_OVERLAP = 0.08  # a shut upper lid reaches this far (eye widths) over the lower lid's edge: no white shows
FIELD_STRIDE = 2
ANCHOR_STEP = 0.18  # spacing of the fixed points on a field box's border, in mouth widths


@dataclass(frozen=True, slots=True)
class Box:
    """A pixel rectangle [x0, x1) x [y0, y1) in image coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    def clip(self, width: int, height: int) -> Box:
        return Box(max(0, self.x0), max(0, self.y0), min(width, self.x1), min(height, self.y1))

    def grid(self) -> tuple[F32, F32]:
        ys, xs = np.mgrid[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        return xs, ys


@dataclass(frozen=True, slots=True)
class Field:
    """A backward displacement (dx, dy per pixel) over `box`, and how the tracked points move forward."""

    box: Box
    dx: F32
    dy: F32
    moves: F32  # forward displacement of Rig.tracked points at full strength (T x 2)


@dataclass(frozen=True, slots=True)
class LayeredField:
    """A mouth basis: `upper` applies above the lips' seam, `lower` below it."""

    upper: Field
    lower: Field


@dataclass
class Rig:
    image: npt.NDArray[np.uint8]  # RGB, the prepared avatar
    mouth_width: float
    face_height: float
    rest_gap: float  # the picture's own gap between the inner lips at their middle, in pixels
    jaw_range: float  # pixels the jaw basis adds to the gap at full strength
    head: Box  # where anything moves: the head and a margin around it
    head_mask: F32  # 0..1 over `head`: how much of the head's rigid motion a pixel follows
    pivot: tuple[float, float]  # the neck: head rotation centre
    mouth_box: Box
    mouth: dict[str, LayeredField]
    eyes: dict[str, Field]  # each a layer over the eye, used above its lid's edge
    lids: dict[str, F32]  # per eye: the upper lid's edge open and shut (2 x 7 x 2)
    lid_rgb: tuple[int, int, int]  # the skin of the upper lids, and their lashes
    lash_rgb: tuple[int, int, int]
    tracked: F32  # rest positions of the inner lip contour (upper 0..10, lower 11..21) in image pixels
    seam_softness: F32  # per column of mouth_box: how soft the join of the two layers is, in pixels
    teeth_rgb: tuple[int, int, int]
    picture_teeth: float  # pixels of the picture's own upper teeth under the upper lip (0: it shows none)
    cavity_rgb: tuple[int, int, int]
    tongue_rgb: tuple[int, int, int]

    @property
    def inner_upper(self) -> slice:
        return slice(0, len(mesh_ids.LIPS_INNER_UPPER))

    @property
    def inner_lower(self) -> slice:
        return slice(len(mesh_ids.LIPS_INNER_UPPER), len(self.tracked))


@dataclass(frozen=True, slots=True)
class MouthFrame:
    centre: Vec
    u: Vec  # along the lips, towards the image's right
    v: Vec  # down the face
    width: float

    def local(self, points: Vec) -> tuple[Vec, Vec]:
        rel = points - self.centre
        return rel @ self.u / self.width, rel @ self.v / self.width

    def vector(self, along_u: Vec, along_v: Vec) -> Vec:
        """Displacements in pixels from components in mouth widths."""
        return (np.outer(along_u, self.u) + np.outer(along_v, self.v)) * self.width


def _smoothstep(edge0: float, edge1: float, x: Vec) -> Vec:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def build_rig(image: npt.NDArray[np.uint8], mesh: FaceMesh) -> Rig:
    """Work out an avatar's rig (about a second of numpy, once per avatar)."""
    height, width = image.shape[:2]
    points = mesh.points[:, :2].astype(np.float64)
    left, right = points[mesh_ids.MOUTH_CORNERS[0]], points[mesh_ids.MOUTH_CORNERS[1]]
    u = (right - left) / np.linalg.norm(right - left)
    v = np.array([-u[1], u[0]])
    frame = MouthFrame((left + right) / 2, u, v, float(np.linalg.norm(right - left)))
    x, y = frame.local(points)
    upper_inner = np.array(mesh_ids.LIPS_INNER_UPPER)
    lower_inner = np.array(mesh_ids.LIPS_INNER_LOWER)
    seam = _seam(x, y, upper_inner, lower_inner)
    is_lip = _lip_points(points, seam, x, y)
    upper_lip, lower_lip = is_lip & (y < seam(x)), is_lip & (y >= seam(x))
    corners = np.zeros(len(points), bool)
    corners[[*mesh_ids.MOUTH_CORNERS, upper_inner[0], upper_inner[-1]]] = True
    upper_lip &= ~corners
    lower_lip &= ~corners
    gap = _gap(x, y, upper_inner, lower_inner)
    rest_gap = float(gap(np.zeros(1))[0]) * frame.width
    oval = points[list(mesh_ids.FACE_OVAL)]
    (fx0, fy0), (fx1, fy1) = oval.min(axis=0), oval.max(axis=0)
    face_height = float(fy1 - fy0)
    chin = points[mesh_ids.CHIN]
    mw = frame.width

    mouth_box = Box(
        int(min(left[0], right[0]) - 0.95 * mw), int(frame.centre[1] - 0.62 * mw),
        int(max(left[0], right[0]) + 0.95 * mw) + 1, int(chin[1] + 0.3 * mw) + 1,
    ).clip(width, height)  # fmt: skip
    tracked_ids = [*mesh_ids.LIPS_INNER_UPPER, *mesh_ids.LIPS_INNER_LOWER]
    tracked = points[tracked_ids].astype(np.float32)
    motions = _mouth_motions(frame, x, y, seam, gap, upper_lip, lower_lip, corners)
    mouth = {
        name: LayeredField(
            _field(points, d, ~lower_lip, mouth_box, mw, tracked_ids),
            _field(points, d, ~upper_lip, mouth_box, mw, tracked_ids),
        )
        for name, d in motions.items()
    }
    eyes, lids = {}, {}
    for side, upper, lower, corners_ids in (
        ("right", mesh_ids.RIGHT_EYE_UPPER, mesh_ids.RIGHT_EYE_LOWER, mesh_ids.RIGHT_EYE_CORNERS),
        ("left", mesh_ids.LEFT_EYE_UPPER, mesh_ids.LEFT_EYE_LOWER, mesh_ids.LEFT_EYE_CORNERS),
    ):
        eyes[f"blink_{side}"], lids[f"blink_{side}"] = _eye_field(points, upper, lower, corners_ids, width, height)
    lid_rgb, lash_rgb = _lid_colours(image, points)
    head, head_mask = _head_region(fx0, fy0, fx1, fy1, width, height)
    columns = np.arange(mouth_box.x0, mouth_box.x1, dtype=np.float64)
    beyond = np.maximum(0.0, np.maximum(left[0] - columns, columns - right[0]) - 0.02 * mw)
    softness = (0.6 + 1.2 * beyond).astype(np.float32)
    teeth, cavity, tongue, shows_teeth = _mouth_colours(image, tracked)
    return Rig(
        image=image, mouth_width=mw, face_height=face_height, rest_gap=rest_gap,
        jaw_range=JAW_RANGE * mw, head=head, head_mask=head_mask,
        pivot=(float(chin[0]), float(chin[1] + 0.35 * face_height)),
        mouth_box=mouth_box, mouth=mouth, eyes=eyes, lids=lids, lid_rgb=lid_rgb, lash_rgb=lash_rgb,
        tracked=tracked, seam_softness=softness,
        teeth_rgb=teeth, picture_teeth=0.6 * rest_gap if shows_teeth else 0.0, cavity_rgb=cavity, tongue_rgb=tongue,
    )  # fmt: skip


def _seam(x: Vec, y: Vec, upper: npt.NDArray[np.int_], lower: npt.NDArray[np.int_]) -> np.vectorize:
    """The line between the lips at rest (the middle of the inner contours), as a function of x, extended flat."""
    xs = (x[upper] + x[lower]) / 2
    ys = (y[upper] + y[lower]) / 2
    order = np.argsort(xs)

    def at(query: Vec) -> Vec:
        return np.interp(query, xs[order], ys[order])

    return at  # type: ignore[return-value]


def _gap(x: Vec, y: Vec, upper: npt.NDArray[np.int_], lower: npt.NDArray[np.int_]) -> np.vectorize:
    """The rest gap between the inner lips (mouth widths) as a function of x: 0 at and beyond the corners."""
    xs = (x[upper] + x[lower]) / 2
    gaps = np.maximum(0.0, y[lower] - y[upper])
    order = np.argsort(xs)

    def at(query: Vec) -> Vec:
        return np.interp(query, xs[order], gaps[order], left=0.0, right=0.0)

    return at  # type: ignore[return-value]


def _lip_points(points: Vec, seam: np.vectorize, x: Vec, y: Vec) -> npt.NDArray[np.bool_]:
    """Mesh points on the lips: inside the outer lip contour (or on it)."""
    outline = points[list(mesh_ids.LIPS_OUTER)].astype(np.float32).reshape(-1, 1, 2)
    inside = [cv2.pointPolygonTest(outline, (float(px), float(py)), True) >= -1.0 for px, py in points]
    return np.asarray(inside) & (np.abs(x) <= 0.55)


def _mouth_motions(
    frame: MouthFrame, x: Vec, y: Vec, seam: np.vectorize, gap: np.vectorize,
    upper_lip: npt.NDArray[np.bool_], lower_lip: npt.NDArray[np.bool_], corners: npt.NDArray[np.bool_],
) -> dict[str, Vec]:  # fmt: skip
    """Each mouth basis as a forward displacement of every mesh point, in pixels."""
    n = len(x)
    zero = np.zeros(n)
    lateral = np.exp(-((x / 1.0) ** 4))
    below = ~(upper_lip | lower_lip | corners) & (y > 0)
    chin_follow = lateral * _smoothstep(0.02, 0.32, y)
    middle = np.cos(np.pi / 2 * np.clip(np.abs(x) / 0.5, 0, 1)) ** 2

    jaw_v = np.where(lower_lip, 0.3 + 0.7 * middle, 0.0)
    jaw_v = np.where(corners, 0.3, jaw_v)
    jaw_v = np.where(below, CHIN_FOLLOW * chin_follow, jaw_v) * JAW_RANGE

    # Close: each lip travels half the gap in its column, the outer edge a little less (the lips roll).
    half = 0.5 * gap(x)
    depth = np.clip(np.abs(y - seam(x)) / 0.22, 0, 1)
    roll = 1.0 - 0.3 * depth
    close_v = np.where(upper_lip, half * roll, 0.0) - np.where(lower_lip, half * roll, 0.0)
    close_v -= np.where(below, 0.7 * float(gap(np.zeros(1))[0]) * 0.5 * chin_follow, 0.0)

    on_mouth = upper_lip | lower_lip | corners
    spread = np.clip(x / 0.5, -1, 1)
    near = np.exp(-((np.maximum(np.abs(x) - 0.5, 0) / 0.3) ** 2) - (np.maximum(np.abs(y) - 0.2, 0) / 0.25) ** 2)
    reach = np.where(on_mouth, 1.0, near)
    wide_u = WIDE_SPREAD * spread * reach
    wide_v = np.where(on_mouth, -0.015 * spread**2, 0.0)
    round_u = -ROUND_PULL * spread * reach
    outer = np.clip((np.abs(y - seam(x)) - 0.06) / 0.12, 0, 1) * middle
    round_v = np.where(upper_lip, -POUT * outer, 0.0) + np.where(lower_lip, POUT * outer, 0.0)
    return {
        "jaw": frame.vector(zero, jaw_v),
        "close": frame.vector(zero, close_v),
        "wide": frame.vector(wide_u, wide_v),
        "round": frame.vector(round_u, round_v),
    }


def _anchors(box: Box, spacing: float) -> Vec:
    step = max(4.0, spacing)
    xs = np.linspace(box.x0, box.x1 - 1, max(2, int((box.x1 - box.x0) / step) + 1))
    ys = np.linspace(box.y0, box.y1 - 1, max(2, int((box.y1 - box.y0) / step) + 1))
    ring = [(px, box.y0) for px in xs] + [(px, box.y1 - 1) for px in xs]
    ring += [(box.x0, py) for py in ys[1:-1]] + [(box.x1 - 1, py) for py in ys[1:-1]]
    return np.asarray(ring, np.float64)


def _field(points: Vec, moves: Vec, use: npt.NDArray[np.bool_], box: Box, mw: float, tracked: list[int]) -> Field:
    """The backward field over `box` that carries the used points along `moves` and keeps the box's edge still.
    Fitted at the points' destinations, valued with the way back."""
    inside = use & (points[:, 0] > box.x0) & (points[:, 0] < box.x1 - 1)
    inside &= (points[:, 1] > box.y0) & (points[:, 1] < box.y1 - 1)
    anchors = _anchors(box, ANCHOR_STEP * mw)
    at = np.concatenate([points[inside] + moves[inside], anchors])
    back = np.concatenate([-moves[inside], np.zeros_like(anchors)])
    spline = ThinPlate(at, back, smoothing=1e-4)
    # Evaluated on every FIELD_STRIDE-th pixel and interpolated: the field is smooth, and this is 4x faster.
    rows, cols = box.shape
    ys, xs = np.mgrid[0 : rows + FIELD_STRIDE : FIELD_STRIDE, 0 : cols + FIELD_STRIDE : FIELD_STRIDE]
    values = spline(np.stack([xs.ravel() + box.x0, ys.ravel() + box.y0], axis=1).astype(np.float64))
    coarse = values.reshape(*xs.shape, 2).astype(np.float32)
    fine = cv2.resize(coarse, (xs.shape[1] * FIELD_STRIDE, xs.shape[0] * FIELD_STRIDE), interpolation=cv2.INTER_LINEAR)
    shift = (FIELD_STRIDE - 1) / 2  # cv2.resize puts coarse sample j at fine pixel j * stride + shift
    grid_y, grid_x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    sampled = cv2.remap(fine, grid_x + shift, grid_y + shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Field(box, np.ascontiguousarray(sampled[..., 0]), np.ascontiguousarray(sampled[..., 1]),
                 moves[tracked].astype(np.float32))  # fmt: skip


def _eye_field(
    points: Vec, upper: tuple[int, ...], lower: tuple[int, ...], corners: tuple[int, int], width: int, height: int,
) -> tuple[Field, F32]:  # fmt: skip
    """The upper lid down onto the lower one, the skin above it following; a layer used above the lid's edge only
    (the lower lid and what is under it stay as they are). Returns the field and the lid's edge, open and shut
    (2 x 7 x 2: its rest points, then where they go), which the renderer joins the layer along."""
    a, b = points[corners[0]], points[corners[1]]
    eye_width = float(np.linalg.norm(a - b))
    u = (b - a) / eye_width
    v = np.array([-u[1], u[0]]) if u[0] > 0 else np.array([u[1], -u[0]])
    centre = (a + b) / 2
    rel = points - centre
    ex, ey = rel @ u / eye_width, rel @ v / eye_width
    up, low = np.array(upper), np.array(lower)
    order_up, order_low = np.argsort(ex[up]), np.argsort(ex[low])
    upper_edge = np.interp(ex, ex[up][order_up], ey[up][order_up])
    lower_edge = np.interp(ex, ex[low][order_low], ey[low][order_low])
    lid_gap = np.where(np.abs(ex) < 0.5, np.maximum(0.0, lower_edge - upper_edge + LID_OVERLAP), 0.0)
    near = np.abs(ex) < 0.75
    above = near & (ey <= upper_edge + 1e-6) & (ey > upper_edge - 0.55)
    falloff = np.clip(1 - (upper_edge - ey) / 0.55, 0, 1) ** 2
    drop = np.where(above, lid_gap * falloff, 0.0)
    drop[list(corners)] = 0.0
    moves = np.outer(drop * eye_width, v)
    x0, y0 = int(centre[0] - 0.95 * eye_width), int(centre[1] - 0.8 * eye_width)
    x1, y1 = int(centre[0] + 0.95 * eye_width) + 1, int(centre[1] + 0.6 * eye_width) + 1
    box = Box(x0, y0, x1, y1).clip(width, height)
    # The upper layer: not the lower lid or anything under it (they would pull against the lid coming down).
    region = (np.abs(ex) < 1.0) & (ey > -0.8) & (ey < 0.6) & ~(near & (ey > upper_edge + 0.02))
    field = _field(points, moves, region, box, eye_width * 1.5, list(upper))
    lids = np.stack([points[list(upper)], points[list(upper)] + moves[list(upper)]]).astype(np.float32)
    return field, lids


def _lid_colours(image: npt.NDArray[np.uint8], points: Vec) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The upper lids' skin (a band just above each lid's edge, its lighter half) and lashes (the edge's darkest)."""
    skin: list[Vec] = []
    lash: list[Vec] = []
    for upper, corners in ((mesh_ids.RIGHT_EYE_UPPER, mesh_ids.RIGHT_EYE_CORNERS),
                           (mesh_ids.LEFT_EYE_UPPER, mesh_ids.LEFT_EYE_CORNERS)):  # fmt: skip
        width = float(np.linalg.norm(points[corners[0]] - points[corners[1]]))
        for x, y in points[list(upper[1:-1])]:
            column = image[max(0, int(y - 0.3 * width)) : max(1, int(y - 0.08 * width)), int(x)].astype(np.float64)
            skin.extend(column)
            lash.extend(image[max(0, int(y) - 1) : int(y) + 2, int(x)].astype(np.float64))
    skin_px, lash_px = np.asarray(skin), np.asarray(lash)
    luma = skin_px @ np.array([0.299, 0.587, 0.114])
    lid = np.median(skin_px[luma >= np.median(luma)], axis=0)
    dark = lash_px[(lash_px @ np.array([0.299, 0.587, 0.114])).argsort()[: max(1, len(lash_px) // 3)]]
    lashes = np.median(dark, axis=0) * 0.8
    return (int(lid[0]), int(lid[1]), int(lid[2])), (int(lashes[0]), int(lashes[1]), int(lashes[2]))


def _head_region(fx0: float, fy0: float, fx1: float, fy1: float, width: int, height: int) -> tuple[Box, F32]:
    """The head with its hair: an ellipse around the face oval, with a soft edge the motion fades out over."""
    cx, cy = (fx0 + fx1) / 2, fy0 + 0.42 * (fy1 - fy0)
    rx, ry = 0.78 * (fx1 - fx0), 0.72 * (fy1 - fy0)
    fade = 0.45
    box = Box(int(cx - rx * (1 + fade)), int(cy - ry * (1 + fade)),
              int(cx + rx * (1 + fade)) + 1, int(cy + ry * (1 + fade)) + 1).clip(width, height)  # fmt: skip
    xs, ys = box.grid()
    radius = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
    t = np.clip((radius - 1.0) / fade, 0.0, 1.0)
    mask = 1.0 - t * t * (3 - 2 * t)
    return box, mask.astype(np.float32)


def _mouth_colours(
    image: npt.NDArray[np.uint8], tracked: F32
) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int], bool]:
    """Teeth from the picture when it shows them (the brightest part of the open mouth), else a natural ivory;
    the cavity and tongue as shades of the lips' own red."""
    n_upper = len(mesh_ids.LIPS_INNER_UPPER)
    polygon = np.concatenate([tracked[:n_upper], tracked[n_upper:][::-1]]).astype(np.int32)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [polygon], 255)
    inside = image[mask > 0].astype(np.float64)
    teeth: tuple[int, int, int] = (226, 220, 206)
    shows_teeth = False
    if len(inside) >= 40:
        luma = inside @ np.array([0.299, 0.587, 0.114])
        bright = inside[luma >= np.percentile(luma, 70)]
        if len(bright) and float(bright.mean(axis=0) @ np.array([0.299, 0.587, 0.114])) > 150:
            r, g, b = np.median(bright, axis=0)
            teeth, shows_teeth = (int(r), int(g), int(b)), True
    lips = cv2.dilate(mask, np.ones((7, 7), np.uint8)) - mask
    lip_rgb = image[lips > 0].astype(np.float64).mean(axis=0) if (lips > 0).any() else np.array([170, 90, 90.0])
    cavity = tuple(int(c) for c in np.clip(lip_rgb * np.array([0.32, 0.16, 0.18]), 0, 255))
    tongue = tuple(int(c) for c in np.clip(lip_rgb * np.array([0.95, 0.55, 0.6]), 0, 255))
    return teeth, cavity, tongue, shows_teeth  # type: ignore[return-value]


def rotation(angle: float) -> tuple[float, float, float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return c, -s, s, c


RIG_VERSION = 4


def save_rig(rig: Rig, path: Path) -> None:
    """Keep a rig beside its avatar (`rig.npz`): building it takes seconds, loading it milliseconds."""
    arrays: dict[str, npt.NDArray[Any]] = {"head_mask": rig.head_mask, "tracked": rig.tracked,
                                          "seam_softness": rig.seam_softness}  # fmt: skip
    boxes = {"head": rig.head, "mouth_box": rig.mouth_box}
    for name, layered in rig.mouth.items():
        for layer, part in (("upper", layered.upper), ("lower", layered.lower)):
            arrays |= {f"mouth.{name}.{layer}.dx": part.dx, f"mouth.{name}.{layer}.dy": part.dy,
                       f"mouth.{name}.{layer}.moves": part.moves}  # fmt: skip
            boxes[f"mouth.{name}.{layer}"] = part.box
    for name, part in rig.eyes.items():
        arrays |= {f"eyes.{name}.dx": part.dx, f"eyes.{name}.dy": part.dy, f"eyes.{name}.moves": part.moves}
        boxes[f"eyes.{name}"] = part.box
        arrays[f"lids.{name}"] = rig.lids[name]
    scalars = {
        "version": RIG_VERSION, "mouth_width": rig.mouth_width, "face_height": rig.face_height,
        "rest_gap": rig.rest_gap, "jaw_range": rig.jaw_range, "pivot": list(rig.pivot),
        "teeth_rgb": list(rig.teeth_rgb), "picture_teeth": rig.picture_teeth, "cavity_rgb": list(rig.cavity_rgb),
        "tongue_rgb": list(rig.tongue_rgb), "lid_rgb": list(rig.lid_rgb), "lash_rgb": list(rig.lash_rgb),
        "boxes": {k: [b.x0, b.y0, b.x1, b.y1] for k, b in boxes.items()},
    }  # fmt: skip
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(temp, scalars=np.str_(json.dumps(scalars)), **arrays)  # type: ignore[arg-type]
    os.replace(temp, path)


def load_rig(image: npt.NDArray[np.uint8], path: Path) -> Rig | None:
    """The rig saved beside an avatar; None when there is none or it is from another version (rebuild it)."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            scalars = json.loads(str(saved["scalars"]))
            if scalars.get("version") != RIG_VERSION:
                return None
            arrays = {key: saved[key] for key in saved.files if key != "scalars"}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None
    boxes = {key: Box(*value) for key, value in scalars["boxes"].items()}

    def part(prefix: str) -> Field:
        return Field(boxes[prefix], arrays[f"{prefix}.dx"], arrays[f"{prefix}.dy"], arrays[f"{prefix}.moves"])

    mouth_names = {key.split(".")[1] for key in arrays if key.startswith("mouth.")}
    eye_names = {key.split(".")[1] for key in arrays if key.startswith("eyes.")}
    return Rig(
        image=image, mouth_width=scalars["mouth_width"], face_height=scalars["face_height"],
        rest_gap=scalars["rest_gap"], jaw_range=scalars["jaw_range"], head=boxes["head"],
        head_mask=arrays["head_mask"], pivot=tuple(scalars["pivot"]), mouth_box=boxes["mouth_box"],
        mouth={name: LayeredField(part(f"mouth.{name}.upper"), part(f"mouth.{name}.lower")) for name in mouth_names},
        eyes={name: part(f"eyes.{name}") for name in eye_names},
        lids={name: arrays[f"lids.{name}"] for name in eye_names}, tracked=arrays["tracked"],
        seam_softness=arrays["seam_softness"], teeth_rgb=tuple(scalars["teeth_rgb"]),
        picture_teeth=scalars["picture_teeth"], cavity_rgb=tuple(scalars["cavity_rgb"]),
        tongue_rgb=tuple(scalars["tongue_rgb"]), lid_rgb=tuple(scalars["lid_rgb"]), lash_rgb=tuple(scalars["lash_rgb"]),
    )  # fmt: skip
