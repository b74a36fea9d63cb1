"""Oriented bounding boxes of point sets."""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from robot_wm.geometry.pose import Pose, yaw_quaternion


def min_area_rectangle(xy: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Smallest-area enclosing rectangle of 2D points (N, 2) by rotating calipers over the hull edges.

    Returns (centre (2,), yaw (rad) of the rectangle's first axis, extents (2,) along its axes), with the
    first axis the longer one and yaw in (-pi/2, pi/2].
    """
    xy = np.asarray(xy, dtype=float)
    try:
        hull = xy[ConvexHull(xy).vertices]
    except (QhullError, ValueError):  # degenerate (collinear or too few points)
        hull = xy
    if len(hull) < 2:
        return (hull[0] if len(hull) else np.zeros(2)), 0.0, np.zeros(2)
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    c, s = np.cos(angles), np.sin(angles)
    rot = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], 1)  # (A, 2, 2) world -> box
    proj = np.einsum("aij,nj->ani", rot, hull)
    lo, hi = proj.min(1), proj.max(1)
    area = np.prod(hi - lo, axis=1)
    i = int(np.argmin(area))
    ext = hi[i] - lo[i]
    centre = rot[i].T @ ((lo[i] + hi[i]) / 2)
    yaw = float(angles[i])
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
