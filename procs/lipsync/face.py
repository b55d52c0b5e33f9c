"""Faces: MediaPipe's short-range face detector and its 468-point face mesh, run in OpenCV's dnn (no MediaPipe).

The detector (BlazeFace, 128x128 input, 896 anchors) finds faces and six keypoints; the mesh model reads a
192x192 crop around one face, rotated so the eyes are level, and gives 468 points. As MediaPipe's own graph
does, the crop comes first from the detection and then once more from the first pass's landmarks, which
centres the face better and makes the points steadier. Points come back in the image's pixels (x, y) with a
depth (z) in the same scale.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ipc.errors import CodedError

DETECTOR_FILE = "face_detection_short_range.tflite"
MESH_FILE = "face_landmark.tflite"
DETECT_SIZE = 128
MESH_SIZE = 192
MIN_SCORE = 0.5
NMS_IOU = 0.3
ROI_SCALE = 1.5  # the mesh crop is this much larger than the face box, as MediaPipe's graph takes it

# Indices into the 468-point mesh (MediaPipe's canonical face model).
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
MOUTH_CORNERS = (61, 291)
INNER_MIDDLE = (13, 14)  # the inner lips' midpoints, upper and lower: the opening is their distance
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
CHIN = 152
NOSE_TIP = 1
RIGHT_EYE_UPPER = (246, 161, 160, 159, 158, 157, 173)  # the subject's right eye: the image's left
RIGHT_EYE_LOWER = (7, 163, 144, 145, 153, 154, 155)
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_UPPER = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER = (249, 390, 373, 374, 380, 381, 382)
LEFT_EYE_CORNERS = (263, 362)

Image = npt.NDArray[np.uint8]  # RGB, H x W x 3
Points = npt.NDArray[np.float32]  # N x 3: x, y in pixels, z


class FaceError(CodedError):
    """No usable face: avatar-no-face, avatar-several-faces, face-model-failed."""


@dataclass(frozen=True, slots=True)
class Detection:
    score: float
    box: tuple[float, float, float, float]  # x, y, width, height in the image's pixels
    keypoints: npt.NDArray[np.float32]  # 6 x 2: right eye, left eye, nose tip, mouth, right ear, left ear


@dataclass(frozen=True, slots=True)
class FaceMesh:
    points: Points  # 468 x 3 in the image's pixels
    presence: float  # the mesh model's own confidence that a face is in its crop, 0..1

    def xy(self, indices: tuple[int, ...]) -> npt.NDArray[np.float32]:
        return self.points[list(indices), :2]

    @property
    def mouth_width(self) -> float:
        a, b = self.xy(MOUTH_CORNERS)
        return float(np.linalg.norm(a - b))

    @property
    def opening(self) -> float:
        """The gap between the inner lips at their middle, in pixels."""
        upper, lower = self.xy(INNER_MIDDLE)
        return float(np.linalg.norm(upper - lower))

    @property
    def box(self) -> tuple[float, float, float, float]:
        oval = self.xy(FACE_OVAL)
        (x0, y0), (x1, y1) = oval.min(axis=0), oval.max(axis=0)
        return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def _anchors() -> npt.NDArray[np.float32]:
    """BlazeFace short-range anchors: a 16x16 grid with 2 per cell, then an 8x8 grid with 6 (centres, 0..1)."""
    rows = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                rows.extend([((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell)
    return np.asarray(rows, dtype=np.float32)


ANCHORS = _anchors()


class FaceFinder:
    """Both face models, loaded once. OpenCV nets are not thread-safe: calls are serialised."""

    def __init__(self, model_dir: Path) -> None:
        try:
            self._detector = cv2.dnn.readNetFromTFLite(str(model_dir / DETECTOR_FILE))
            self._mesh = cv2.dnn.readNetFromTFLite(str(model_dir / MESH_FILE))
        except cv2.error as err:
            raise FaceError("face-model-failed", f"cannot load the face models from {model_dir}: {err}") from err
        self._lock = threading.Lock()

    def detect(self, image: Image) -> list[Detection]:
        """Every face the detector sees, best first (after non-maximum suppression)."""
        height, width = image.shape[:2]
        side = max(height, width)
        square = np.zeros((side, side, 3), np.uint8)  # letterboxed, as MediaPipe keeps the aspect ratio
        top, left = (side - height) // 2, (side - width) // 2
        square[top : top + height, left : left + width] = image
        tensor = cv2.resize(square, (DETECT_SIZE, DETECT_SIZE), interpolation=cv2.INTER_AREA)
        blob = (tensor.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        with self._lock:
            self._detector.setInput(np.ascontiguousarray(blob))
            scores, boxes = self._detector.forward(["classificators", "regressors"])
        logits = np.clip(scores.reshape(-1).astype(np.float64), -100.0, 100.0)
        score = 1.0 / (1.0 + np.exp(-logits))
        raw = boxes.reshape(-1, 16) / DETECT_SIZE
        keep = np.flatnonzero(score >= MIN_SCORE)
        found: list[Detection] = []
        for index in keep[np.argsort(-score[keep])]:
            cx, cy = raw[index, 0] + ANCHORS[index, 0], raw[index, 1] + ANCHORS[index, 1]
            w, h = raw[index, 2], raw[index, 3]
            keypoints = raw[index, 4:].reshape(6, 2) + ANCHORS[index]
            box = ((cx - w / 2) * side - left, (cy - h / 2) * side - top, w * side, h * side)
            keypoints = keypoints * side - np.array([left, top], np.float32)
            box_px = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            candidate = Detection(float(score[index]), box_px, keypoints.astype(np.float32))
            if all(_iou(candidate.box, kept.box) < NMS_IOU for kept in found):
                found.append(candidate)
        return found

    def mesh(self, image: Image, detection: Detection) -> FaceMesh:
        """The 468 points of the detected face, refined by a second crop from the first pass's points."""
        right_eye, left_eye = detection.keypoints[0], detection.keypoints[1]
        x, y, w, h = detection.box
        first = self._mesh_in(image, (x + w / 2, y + h / 2), max(w, h) * ROI_SCALE, _tilt(right_eye, left_eye))
        return self.refine(image, first)

    def refine(self, image: Image, previous: FaceMesh) -> FaceMesh:
        """The mesh again, in a crop placed by earlier points (of this image or a frame close to it)."""
        points = previous.points[:, :2]
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        right_eye = previous.points[list(RIGHT_EYE_CORNERS), :2].mean(axis=0)
        left_eye = previous.points[list(LEFT_EYE_CORNERS), :2].mean(axis=0)
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        return self._mesh_in(image, centre, max(x1 - x0, y1 - y0) * ROI_SCALE, _tilt(right_eye, left_eye))

    def _mesh_in(self, image: Image, centre: tuple[float, float], side: float, angle: float) -> FaceMesh:
        """Run the mesh model on the square crop of `side` pixels around `centre`, turned by `angle` radians."""
        cos, sin = math.cos(angle), math.sin(angle)
        scale = side / MESH_SIZE
        # crop pixel (u, v) -> image: centre + R(angle) * ((u, v) - MESH_SIZE / 2) * scale
        to_image = np.array([[cos * scale, -sin * scale, 0.0], [sin * scale, cos * scale, 0.0]], np.float64)
        half = MESH_SIZE / 2
        to_image[:, 2] = np.array(centre) - to_image[:, :2] @ np.array([half, half])
        crop = cv2.warpAffine(image, cv2.invertAffineTransform(to_image), (MESH_SIZE, MESH_SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        blob = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        with self._lock:
            self._mesh.setInput(np.ascontiguousarray(blob))
            names = self._mesh.getUnconnectedOutLayersNames()
            outputs = self._mesh.forward(names)
        flag, raw = sorted(outputs, key=lambda a: a.size)
        local = raw.reshape(468, 3).astype(np.float64)
        points = np.empty((468, 3), np.float32)
        points[:, :2] = local[:, :2] @ to_image[:, :2].T + to_image[:, 2]
        points[:, 2] = local[:, 2] * scale
        presence = 1.0 / (1.0 + math.exp(-float(np.clip(flag.reshape(-1)[0], -100, 100))))
        return FaceMesh(points, presence)


def _tilt(right_eye: npt.NDArray[np.float32], left_eye: npt.NDArray[np.float32]) -> float:
    """The angle that levels the eyes (the subject's right eye is on the image's left)."""
    dx, dy = float(left_eye[0] - right_eye[0]), float(left_eye[1] - right_eye[1])
    return math.atan2(dy, dx)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax1, bx1) - max(a[0], b[0])), max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
