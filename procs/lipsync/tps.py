"""Thin-plate splines: the smoothest 2-D field that takes given values at given points. Used once per avatar to
turn "these landmarks move so" into a displacement for every pixel around them (procs/lipsync/rig.py)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
ROWS_PER_CHUNK = 4096


def _kernel(squared: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 0.5 * squared * np.log(squared)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class ThinPlate:
    """Fit at `points` (N x 2) to `values` (N x K), then evaluate anywhere. `smoothing` trades exactness for
    calm: 0 passes through every value; a little keeps nearly coincident points from making ripples."""

    def __init__(self, points: Array, values: Array, *, smoothing: float = 1e-3) -> None:
        self._scale = float(np.ptp(points, axis=0).max()) or 1.0
        self._origin = points.mean(axis=0)
        self._points = (points - self._origin) / self._scale
        n = len(points)
        system = np.zeros((n + 3, n + 3))
        system[:n, :n] = _kernel(_squared_distances(self._points, self._points)) + smoothing * np.eye(n)
        system[:n, n] = 1.0
        system[:n, n + 1 :] = self._points
        system[n, :n] = 1.0
        system[n + 1 :, :n] = self._points.T
        rhs = np.zeros((n + 3, values.shape[1]))
        rhs[:n] = values
        solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
        self._weights, self._affine = solution[:n], solution[n:]

    def __call__(self, at: Array) -> Array:
        """Values at `at` (M x 2), evaluated in chunks to bound memory."""
        out = np.empty((len(at), self._weights.shape[1]))
        for start in range(0, len(at), ROWS_PER_CHUNK):
            chunk = (at[start : start + ROWS_PER_CHUNK] - self._origin) / self._scale
            kernel = _kernel(_squared_distances(chunk, self._points))
            out[start : start + len(chunk)] = kernel @ self._weights + self._affine[0] + chunk @ self._affine[1:]
        return out


def _squared_distances(a: Array, b: Array) -> Array:
    squared: Array = np.maximum((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T), 0.0)
    return squared
