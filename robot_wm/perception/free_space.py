"""What the cameras saw through: the free-space test behind perception's "unseen space is not free".

A world point is *seen free* by a camera when the depth the camera measured along the ray through it lies
beyond it (the ray passed the point and hit something behind), *seen occupied* when the measured depth is
the point's own (within a tolerance), and *unseen* when something nearer hid it, the pixel has no valid depth
or the point is outside the image. Used to tell an empty corner from a hidden one (a level-topped pair of
boxes against one box whose top a neighbour hides: :mod:`robot_wm.perception.plateaus`).

:class:`FreeSpace` bundles the test with the cameras' positions, so that it can also say what a given box
hides from them (:meth:`FreeSpace.hidden_behind`: every camera that has a point in its image looks at it
through the box) — the part of a lower top that a taller neighbour hides lies behind that neighbour as the
cameras see it, whichever side of the neighbour the cameras are on.

World frame, metres; depth images are z-depth in the optical frame (0 or non-finite = invalid).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from robot_wm.geometry import project_points, to_rectangle_frame

MIN_TOLERANCE = 0.004  # m: depth within this of a point's own is the point itself ...
TOLERANCE_SIGMAS = 3.0  # ... or within this many sigma of the depth noise (along the ray)
MIN_RAY_Z = 0.2  # |vertical part| of a unit-optical-depth ray below which the conversion stops growing


def measured_depth(frame, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera-frame points (K, 3), measured depth (K,) m, pixel (K,) flat index) of world `points` (K, 3) in
    the camera of `frame` (``depth``, ``intrinsics``, ``camera2world``): the depth image's value at the pixel
    each point falls on, NaN (pixel -1) for points behind the camera or outside the image."""
    k = frame.intrinsics
    cam = frame.camera2world.inverse().transform_points(points)
    front = cam[:, 2] > 1e-3
    uv = np.full((len(points), 2), -1.0)
    uv[front] = project_points(cam[front], k)
    col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    inside = front & (col >= 0) & (col < k.width) & (row >= 0) & (row < k.height)
    d = np.full(len(points), np.nan)
    d[inside] = np.asarray(frame.depth)[row[inside], col[inside]]
    return cam, d, np.where(inside, row * k.width + col, -1)


def seen_through(frames: Iterable, points: np.ndarray, sigma: float | Sequence[float]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(free (K,) bool, seen (K,) bool) for world `points` (K, 3) over camera `frames` (each with ``depth``
    (H, W) m, ``intrinsics`` and ``camera2world``): free when some camera measured depth beyond the point by
    more than the tolerance, even if another measured it at the point (a point beside a face may read as on
    it); seen when some camera measured either.

    `sigma` (m) is the depth noise as a level surface shows it — the *height* scatter of the table plane's
    points (:func:`~robot_wm.perception.segment.fit_table_plane`) —, one value for every camera or one per
    camera. Along a camera's ray it is larger: a depth error e moves a point by e * |ray_z| in height (ray
    scaled to unit optical depth), so the tolerance is ``max(MIN_TOLERANCE, TOLERANCE_SIGMAS sigma /
    |ray_z|)`` (|ray_z| at least MIN_RAY_Z): a camera looking down at 40 deg reads depth ~1.6x noisier than
    its table's height scatter."""
    points = np.asarray(points, float).reshape(-1, 3)
    frames = list(frames)
    sigmas = np.broadcast_to(np.asarray(sigma, float), (len(frames),))
    beyond = np.zeros(len(points), bool)
    at = np.zeros(len(points), bool)
    for f, sig in zip(frames, sigmas, strict=True):
        if f is None:
            continue
        cam, d, _ = measured_depth(f, points)
        ray_z = np.abs(points[:, 2] - f.camera2world.position[2]) / np.maximum(cam[:, 2], 1e-3)
        tol = np.maximum(MIN_TOLERANCE, TOLERANCE_SIGMAS * float(sig) / np.maximum(ray_z, MIN_RAY_Z))
        valid = np.isfinite(d) & (d > 0)
        beyond |= valid & (d > cam[:, 2] + tol)
        at |= valid & (np.abs(d - cam[:, 2]) <= tol)
    return beyond, beyond | at


class FreeSpace:
    """The free-space test of some cameras: ``free_space(points (K, 3)) -> (free (K,), seen (K,))`` is
    :func:`seen_through` over `frames` with their noise `sigmas` (m, one per frame); :meth:`hidden_behind`
    says which points a box hides from them."""

    def __init__(self, frames: Sequence, sigmas: Sequence[float]) -> None:
        self.frames = list(frames)
        self.sigmas = [float(s) for s in sigmas]

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return seen_through(self.frames, points, self.sigmas)

    def hidden_behind(self, points: np.ndarray, centre: np.ndarray, yaw: float, extents: np.ndarray,
                      z_lo: float, z_hi: float) -> np.ndarray:
        """(K,) bool: True where every camera with world point `points[k]` in its image (in front of it)
        looks at it through the vertical prism of footprint rectangle (`centre` (2,), `yaw` rad, `extents`
        (2,) m) between heights `z_lo` and `z_hi` (the straight line from the camera's centre to the point
        meets the prism), and at least one camera has it in its image. A point inside the prism counts as
        hidden."""
        points = np.asarray(points, float).reshape(-1, 3)
        lo = np.r_[-np.asarray(extents, float) / 2, z_lo]
        hi = np.r_[np.asarray(extents, float) / 2, z_hi]

        def local(p: np.ndarray) -> np.ndarray:
            return np.column_stack([to_rectangle_frame(p[:, :2], centre, yaw), p[:, 2]])

        end = local(points)
        hidden = np.ones(len(points), bool)
        in_view = np.zeros(len(points), bool)
        for f in self.frames:
            k = f.intrinsics
            cam = f.camera2world.inverse().transform_points(points)
            front = cam[:, 2] > 1e-3
            uv = np.full((len(points), 2), -1.0)
            uv[front] = project_points(cam[front], k)
            inside = front & (uv[:, 0] >= 0) & (uv[:, 0] < k.width) & (uv[:, 1] >= 0) & (uv[:, 1] < k.height)
            start = local(np.asarray(f.camera2world.position, float)[None, :])[0]
            d = end - start
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (lo - start) / d, (hi - start) / d
            parallel = np.abs(d) < 1e-12  # the line runs along this slab: inside it or never
            outside = parallel & ((start < lo) | (start > hi))
            t_in = np.where(parallel, -np.inf, np.minimum(t1, t2)).max(axis=1)
            t_out = np.where(parallel, np.inf, np.maximum(t1, t2)).min(axis=1)
            meets = ~outside.any(axis=1) & (t_in <= t_out) & (t_out >= 0) & (t_in <= 1)
            hidden &= meets | ~inside
            in_view |= inside
        return hidden & in_view
