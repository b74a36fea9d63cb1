"""Full 3D oriented boxes for objects lying tilted (a slab leaning on a box, a plate propped on an edge).

The default object box is gravity-aligned (yaw only): right for anything resting on a face, and for a lying
cylinder, but a slab leaning 30 deg gets an upright box around it — 3-4x its volume, wider than its thickness,
and centred where the slab is not. :func:`tilted_box` fits a box whose axes follow the object's dominant
face instead, and says None unless that box is clearly the better description of the points:

1. the points are flat — the smallest principal spread under PLANARITY_MAX x the middle one — and the
   face normal (the smallest principal axis, pointed up) is between MIN_TILT_DEG and 90 - MIN_TILT_DEG from
   vertical (nearer vertical or horizontal, the upright box is the same box); at least MIN_FACE_FRACTION of
   the points lie within the noise tolerance (max(2 mm, 3 sigma)) of the face plane — a rounded top (a
   held-out mesh's dome seen from one side) spreads them through its height;
2. the face's rectangle is the minimum-area rectangle of the points projected on it; the thickness is the
   points' spread along the normal (trimmed and de-noised under depth noise, at least MIN_THICKNESS);
3. amodal completion: an object rests on its support (`bottom`), so a box whose lowest corner is above it
   is completed down its steeper face axis (the points under the foreground cut, `hidden_below`, were never
   kept) — all the way when the points measured the thickness (they reach more than twice the noise
   tolerance below the face: edges seen), else only through the hidden band and then in thickness (a face
   seen without its edges);
4. it is kept only when it holds at least MIN_INSIDE of the points (grown by the noise tolerance) and its
   volume is under MAX_VOLUME_RATIO x the upright box's: a wedge, whose side faces reach below the tilted top
   face, fails the first test and keeps its upright box.

World frame, metres. NumPy only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.geometry import Pose, min_area_rectangle

PLANARITY_MAX = 0.4  # smallest / middle principal standard deviation of a flat object's points
MIN_TILT_DEG = 12.0  # a face normal within this of vertical or of horizontal: not tilted
MIN_FACE_FRACTION = 0.5  # of the points within the noise tolerance of the face plane: a flat object shows mostly its face
MIN_THICKNESS = 0.004  # m: the thinnest box perception reports (one face seen, no edge)
MIN_INSIDE = 0.97  # fraction of the points the tilted box must hold (within the noise tolerance)
MAX_VOLUME_RATIO = 0.7  # the tilted box must be this much smaller than the upright box
MAX_BELOW_SUPPORT = 0.006  # m: a fitted box reaching further below its support than this is wrong
TRIM_PERCENT = 1.5  # noisy depth: outlying points ignored on each side (as the upright box does)
FACE_BANDS = (0.006, 0.003)  # m: the bands under the face's top its normal is refined from (then the tolerance)


def _right_handed(a: np.ndarray, b: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Rotation matrix with columns a, b, n (b flipped if needed so that det = +1)."""
    r = np.column_stack([a, b, n])
    if np.linalg.det(r) < 0:
        r[:, 1] = -r[:, 1]
    return r


def _principal(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(standard deviations (3,), ascending; unit axes (3, 3) as columns) of `points` (N, 3) about their mean."""
    evals, evecs = np.linalg.eigh(np.cov((points - points.mean(0)).T))
    return np.sqrt(np.maximum(evals, 0.0)), evecs


def _up(v: np.ndarray) -> np.ndarray:
    """`v` or -v, whichever does not point down."""
    return v if v[2] >= 0 else -v


def _face_normal(rel: np.ndarray, n: np.ndarray, tol: float) -> np.ndarray:
    """The face's unit normal, refined from the principal axis `n` (biased by the edge and end-face points):
    the plane through the points within a band under the face's top along the normal, the band narrowing
    from FACE_BANDS[0] to the noise tolerance `tol`. `rel` (N, 3): points about their centroid."""
    for band in (*(max(b, k * tol) for b, k in zip(FACE_BANDS, (3.0, 2.0), strict=True)), tol):
        s = rel @ n
        face = rel[s > np.percentile(s, 100 - TRIM_PERCENT) - band]
        if len(face) < 10:
            break
        n = _up(_principal(face)[1][:, 0])
    return n


def tilted_box(points: np.ndarray, bottom: float, upright_volume: float, sigma: float = 0.0,
               noisy: bool = False, hidden_below: float = 0.0) -> tuple[Pose, np.ndarray] | None:
    """(pose, extents (3,)) of a tilted oriented box around `points` (N, 3) resting on the support at height
    `bottom` (m), or None when the object is not tilted or the upright box (volume `upright_volume`, m^3)
    describes it as well (module docstring). `sigma` (m): the depth noise's standard deviation; `noisy`: trim
    outliers and de-noise the thickness as the upright box does. `hidden_below` (m): the points' height above
    the support under which they were not kept (the foreground cut). The box's third axis is the face normal."""
    pts = np.asarray(points, dtype=float)
    if len(pts) < 30 or upright_volume <= 0:
        return None
    centre = pts.mean(0)
    spread, axes0 = _principal(pts)
    if spread[1] <= 0 or spread[0] > PLANARITY_MAX * spread[1]:
        return None
    rel = pts - centre
    tol = max(0.002, 3.0 * sigma)
    n = _face_normal(rel, _up(axes0[:, 0]), tol)
    tilt = math.degrees(math.acos(min(1.0, abs(float(n[2])))))
    if not MIN_TILT_DEG <= tilt <= 90.0 - MIN_TILT_DEG:
        return None
    # in-plane basis: u horizontal, v up the face
    u = np.cross([0.0, 0.0, 1.0], n)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    uv = np.column_stack([rel @ u, rel @ v])
    q = TRIM_PERCENT if noisy else 0.0
    _, ryaw, _ = min_area_rectangle(uv, "search", trim_percent=q)
    c, s = math.cos(ryaw), math.sin(ryaw)
    a = c * u + s * v  # the face rectangle's axes in the world
    b = -s * u + c * v
    local = np.column_stack([rel @ a, rel @ b, rel @ n])
    lo, hi = (np.percentile(local, [q, 100 - q], axis=0) if q > 0 else (local.min(0), local.max(0)))
    face = np.percentile(local[:, 2], 100 - TRIM_PERCENT)
    if float(np.mean(local[:, 2] > face - tol)) < MIN_FACE_FRACTION:
        return None  # no flat face: a rounded top spreads its points through its height
    if noisy:  # the trimmed face sits ~2 sigma outside it on the side the camera sees (as the upright top)
        hi[2] -= 2.0 * sigma
    edges_seen = hi[2] - lo[2] > 2.0 * tol  # the points reach through the thickness: it was measured
    if hi[2] - lo[2] < MIN_THICKNESS:
        lo[2] = hi[2] - MIN_THICKNESS
    axes = np.column_stack([a, b, n])
    # amodal completion toward the support (module docstring, 3)
    steep = int(np.argmax(np.abs(axes[2, :2])))
    if axes[2, steep] < 0:  # make it point up, so that its low end is `lo`
        axes[:, steep] = -axes[:, steep]
        lo[steep], hi[steep] = -hi[steep], -lo[steep]
    other = 1 - steep
    base = float(centre[2] + lo[steep] * axes[2, steep] + min(lo[other] * axes[2, other], hi[other] * axes[2, other]))
    gap = base + lo[2] * axes[2, 2] - bottom  # the lowest corner's height above the support
    if gap < -MAX_BELOW_SUPPORT:
        return None
    if gap > 0:
        # how far the face may go down: as far as needed when the thickness was measured, else only through
        # the band the foreground cut hid
        face_room = np.inf if edges_seen else base + hi[2] * axes[2, 2] - (bottom + hidden_below)
        down = min(gap, max(0.0, face_room))
        lo[steep] -= down / axes[2, steep]
        lo[2] -= (gap - down) / axes[2, 2]
    ext = hi - lo
    if float(np.prod(ext)) > MAX_VOLUME_RATIO * upright_volume:
        return None
    local = rel @ axes  # (the steep axis may have flipped since `local` was measured)
    inside = np.all((local >= lo - tol) & (local <= hi + tol), axis=1)
    if float(inside.mean()) < MIN_INSIDE:
        return None
    rot = _right_handed(axes[:, 0], axes[:, 1], axes[:, 2])
    mid = (lo + hi) / 2
    return Pose(centre + axes @ mid, Rotation.from_matrix(rot).as_quat()), ext
