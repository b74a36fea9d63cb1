"""Oriented bounding boxes of point sets: minimum-area rectangles of 2D points and gravity-aligned boxes.

A rectangle is ``(centre (2,), yaw, extents (2,))``: yaw (rad) is the direction of its first axis, which is
the longer one, with yaw in (-pi/2, pi/2]; extents are full side lengths along the axes (same unit as the
points, m).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from robot_wm.geometry.pose import Pose, yaw_quaternion

Rectangle = tuple[np.ndarray, float, np.ndarray]


def to_rectangle_frame(xy: np.ndarray, centre: np.ndarray, yaw: float) -> np.ndarray:
    """Points `xy` (N, 2) in the frame of a rectangle centred at `centre` (2,) whose first axis points at `yaw`
    rad: (N, 2) coordinates along its first and second axes."""
    c, s = np.cos(yaw), np.sin(yaw)
    d = np.asarray(xy) - centre
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)


def min_area_rectangle(xy: np.ndarray, method: Literal["hull", "search"] = "hull",
                       trim_percent: float = 0.0) -> Rectangle:
    """Smallest-area rectangle ``(centre (2,), yaw, extents (2,))`` of 2D points (N, 2), first axis the longer.

    `method`:

    * ``"hull"`` (exact): rotating calipers over the edges of the points' convex hull; the rectangle encloses
      every point. Collinear or fewer than three points fall back to the points themselves; no points give
      a zero rectangle at the origin.
    * ``"search"`` (fast, for perception; no hull construction): an angle search over [0, 90) deg, coarse
      then refined around the best coarse angle, measuring each candidate on a subsample. With
      ``trim_percent == 0``: the extreme points along 36 directions of at most ~1000 points (a close inner
      approximation of their hull), 1 deg steps refined at 0.05 deg over +-1 deg; the rectangle is the
      minimum-area one of those extreme points, so callers that need every point inside measure extents on
      all points themselves. With ``trim_percent = q > 0``: at most ~300 points, the rectangle minimising the
      area between the q-th and (100 - q)-th order statistics of the points projected on its axes (ignores
      the q % most outlying points on each side, e.g. a noisy silhouette), 3 deg steps refined at 0.5 deg
      over +-2.5 deg.
    """
    xy = np.asarray(xy, dtype=float)
    if method == "hull":
        if trim_percent:
            raise ValueError("min_area_rectangle: trim_percent needs method='search'")
        try:
            hull = xy[ConvexHull(xy).vertices]
        except (QhullError, ValueError):  # degenerate (collinear or too few points)
            hull = xy
        if len(hull) < 2:
            return (hull[0] if len(hull) else np.zeros(2)), 0.0, np.zeros(2)
        edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
        angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
        area, lo, hi = _projected_intervals(hull, angles, 0.0)
        i = int(np.argmin(area))
        c, s = np.cos(angles)[i], np.sin(angles)[i]
        # box -> world: the transpose of world -> box (this product's rounding is what upright_box has always given)
        centre = np.array([[c, s], [-s, c]]).T @ ((lo[i] + hi[i]) / 2)
        return _longer_axis_first(centre, float(angles[i]), hi[i] - lo[i])
    if method != "search":
        raise ValueError(f"min_area_rectangle: unknown method {method!r} (hull, search)")
    if trim_percent > 0:
        pts = xy[:: len(xy) // 300 + 1]
        coarse, fine = _TRIMMED_COARSE, _TRIMMED_FINE
    else:
        if len(xy) == 0:
            return np.zeros(2), 0.0, np.zeros(2)
        if len(xy) > 1000:  # orientation only
            xy = xy[:: len(xy) // 1000 + 1]
        proj = xy @ _EXTREME_DIRECTIONS
        extreme = np.zeros(len(xy), bool)
        extreme[proj.argmin(0)] = True
        extreme[proj.argmax(0)] = True
        pts = xy[extreme]
        coarse, fine = _COARSE, _FINE
    area, _, _ = _projected_intervals(pts, coarse[0], trim_percent, coarse[1:])
    angles = coarse[0][int(np.argmin(area))] + fine
    area, lo, hi = _projected_intervals(pts, angles, trim_percent)
    i = int(np.argmin(area))
    yaw = float(angles[i])
    mid = (lo[i] + hi[i]) / 2
    c, s = np.cos(yaw), np.sin(yaw)
    centre = np.array([c * mid[0] - s * mid[1], s * mid[0] + c * mid[1]])
    return _longer_axis_first(centre, yaw, hi[i] - lo[i])


def _projected_intervals(xy: np.ndarray, angles: np.ndarray, trim_percent: float,
                         cos_sin: tuple[np.ndarray, np.ndarray] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each angle a (A,), the points (N, 2) projected on the axes (cos a, sin a) and (-sin a, cos a):
    (area (A,), lo (A, 2), hi (A, 2)) of the interval they span on each axis (min to max, or the
    trim_percent-th to the (100 - trim_percent)-th order statistic). `cos_sin`: the angles' cosines and
    sines when the caller has them (constant angle grids)."""
    c, s = (np.cos(angles), np.sin(angles)) if cos_sin is None else cos_sin
    x, y = xy[:, 0], xy[:, 1]
    uv = np.empty((2, len(c), len(x)))
    np.add(c[:, None] * x, s[:, None] * y, out=uv[0])
    np.subtract(c[:, None] * y, s[:, None] * x, out=uv[1])
    if trim_percent > 0:
        n = len(x)
        k1, k2 = int(trim_percent / 100 * (n - 1)), int((1 - trim_percent / 100) * (n - 1))
        uv.partition([k1, k2], axis=2)
        lo, hi = uv[:, :, k1].T, uv[:, :, k2].T
    else:
        lo, hi = uv.min(axis=2).T, uv.max(axis=2).T
    ext = hi - lo
    return ext[:, 0] * ext[:, 1], lo, hi


# the search's constant angle grids: 36 directions for the extreme points; (angles, cos, sin) of the coarse
# steps and the fine offsets (rad), with and without trimming
_EXTREME_ANGLES = np.linspace(0, np.pi, 36, endpoint=False)
_EXTREME_DIRECTIONS = np.stack([np.cos(_EXTREME_ANGLES), np.sin(_EXTREME_ANGLES)])


def _grid(step_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.deg2rad(np.arange(0.0, 90.0, step_deg))
    return a, np.cos(a), np.sin(a)


_COARSE, _FINE = _grid(1.0), np.deg2rad(np.arange(-1.0, 1.0001, 0.05))
_TRIMMED_COARSE, _TRIMMED_FINE = _grid(3.0), np.deg2rad(np.arange(-2.5, 2.51, 0.5))


def _longer_axis_first(centre: np.ndarray, yaw: float, ext: np.ndarray) -> Rectangle:
    """The rectangle (centre, yaw, extents (2,)) with its axes swapped if the second is the longer one, and yaw
    wrapped into (-pi/2, pi/2]."""
    if ext[1] > ext[0]:
        ext = ext[::-1]
        yaw += np.pi / 2
    yaw = float(np.mod(yaw + np.pi / 2, np.pi) - np.pi / 2)
    return centre, yaw, ext


def upright_box(points: np.ndarray) -> tuple[Pose, np.ndarray]:
    """Gravity-aligned oriented box of points (N, 3): the xy footprint is the minimum-area rectangle,
    z spans the points. Returns (pose of the box centre, yaw about z only; full extents (3,) m)."""
    pts = np.asarray(points, dtype=float)
    centre_xy, yaw, ext_xy = min_area_rectangle(pts[:, :2])
    zlo, zhi = pts[:, 2].min(), pts[:, 2].max()
    pose = Pose([centre_xy[0], centre_xy[1], (zlo + zhi) / 2], yaw_quaternion(yaw))
    return pose, np.array([ext_xy[0], ext_xy[1], zhi - zlo])
