"""Splitting touching objects of one colour by their top plateaus.

Two boxes of one colour pushed flush together look like one object to colour and to depth jumps: the gap
between them is narrower than a pixel and, seen from above, their tops meet without a jump. What gives them
away is their tops: two flat plateaus at different heights, side by side (not one inside the other, as a
stack's), each with a rectangular outline. :func:`split_by_plateaus` finds such a pair among a fused group's
upward-facing points and cuts every point of the group (tops and sides) along the straight line between the
plateaus. Thresholds follow the measured depth noise `sigma`: plateaus must lie more than
``max(MIN_STEP, STEP_SIGMAS * sigma)`` apart, so noise alone never splits an object, and a step the sensor
cannot resolve is left alone (the objects stay merged; a larger step, or a second camera, splits them).

World frame, metres. Works on point arrays only; the pipeline maps the cut back to each camera's segments.
"""

from __future__ import annotations

import numpy as np

from robot_wm.geometry import min_area_rectangle

UP_NORMAL_Z = 0.97  # a point faces up when its normal's z is above this (~14 deg from vertical)
MIN_TOP_POINTS = 60  # upward-facing points a group needs before a split is considered
MIN_PLATEAU_FRACTION = 0.15  # each plateau holds at least this fraction of the upward points
MIN_STEP = 0.004  # m: plateaus closer in height than this are one surface ...
STEP_SIGMAS = 3.0  # ... or closer than this many sigma of depth noise
CORE_SIGMAS = 1.5  # a plateau's core: its points within this many sigma of its densest height ...
MIN_FLAT = 0.00075  # m ... and at least this
MIN_CORE_FRACTION = 0.4  # the rest's own plateau holds at least this fraction of it
MAX_LEVELS = 4  # plateau heights tried per cut
MIN_TOP_COVER = 0.75  # each side's top spans at least this fraction of its footprint's area (a box's: ~1)
FOOTPRINT_TRIM = 2.0  # percent of points trimmed from the rectangles compared (flying pixels)
MAX_OVERLAP = 0.05  # fraction of either plateau's points that may fall on the other side of the cut
MIN_RECT_FILL = 0.8  # a plateau's convex-hull area over its min-area rectangle's (box tops are rectangles)


def _rect_fill(xy: np.ndarray) -> float:
    """Area of the convex hull of `xy` (N, 2) over the area of its min-area rectangle (1 for a rectangle),
    stray points (mean distance to their 8 nearest neighbours over 3x the median) left out."""
    from scipy.spatial import ConvexHull, QhullError, cKDTree

    if len(xy) > 9:
        d = cKDTree(xy).query(xy, k=9)[0][:, 1:].mean(axis=1)
        xy = xy[d <= 3.0 * np.median(d)]
    try:
        hull_area = float(ConvexHull(xy).volume)
    except (QhullError, ValueError):
        return 0.0
    _, _, ext = min_area_rectangle(xy, "search")
    return hull_area / max(float(ext[0] * ext[1]), 1e-12)


def _densest(z: np.ndarray, band: float) -> float:
    """Median of the heights in the window of width 2 `band` holding the most of `z` (N,)."""
    zs = np.sort(z)
    end = np.searchsorted(zs, zs + 2 * band, side="right")
    i = int(np.argmax(end - np.arange(len(zs))))
    return float(np.median(zs[i:end[i]]))


def plateau_cut(points: np.ndarray, normal_z: np.ndarray, sigma: float) -> tuple[np.ndarray, float] | None:
    """A straight cut in xy between a top plateau of `points` (N, 3) (normals' z `normal_z` (N,)) and the
    rest of the upward-facing points: (unit direction w (2,), offset t) such that ``points[:, :2] @ w > t``
    is one side, or None when no plateau sits beside the rest as a box top does.

    Plateaus are tried densest first (a height band of +-CORE_SIGMAS sigma, at least MIN_FLAT); one is cut
    off when it holds MIN_PLATEAU_FRACTION of the upward points, the points at least a step (MIN_STEP,
    STEP_SIGMAS sigma) above or below it hold as much and have a plateau of their own, the two separate
    along the line joining their centres (a stack's lower top, a ring around the upper one, does not),
    both plateaus' outlines are rectangles, and each
    side's top spans its footprint (:func:`_tops_cover_footprints`)."""
    up = np.isfinite(normal_z) & (normal_z > UP_NORMAL_Z)
    if up.sum() < MIN_TOP_POINTS:
        return None
    top = points[up]
    z = top[:, 2]
    n = len(top)
    band = max(MIN_FLAT, CORE_SIGMAS * sigma)
    step = max(MIN_STEP, STEP_SIGMAS * sigma)
    seeds = np.ones(n, bool)
    for _ in range(MAX_LEVELS):
        if seeds.sum() < MIN_PLATEAU_FRACTION * n:
            return None
        zm = _densest(z[seeds], band)
        seeds &= np.abs(z - zm) >= step
        core, rest = top[np.abs(z - zm) < band], top[np.abs(z - zm) >= step]
        if min(len(core), len(rest)) < MIN_PLATEAU_FRACTION * n:
            continue
        rz = _densest(rest[:, 2], band)
        rest_core = rest[np.abs(rest[:, 2] - rz) < band]
        if len(rest_core) < MIN_CORE_FRACTION * len(rest):
            continue  # the rest is no plateau (a slope, a curved top)
        cut = _separating_cut(core[:, :2], rest[:, :2])
        if (cut is not None and min(_rect_fill(core[:, :2]), _rect_fill(rest_core[:, :2])) >= MIN_RECT_FILL
                and _tops_cover_footprints(points, normal_z, cut, band)):
            return cut
    return None


def _tops_cover_footprints(points: np.ndarray, normal_z: np.ndarray, cut: tuple[np.ndarray, float],
                           band: float) -> bool:
    """True when on both sides of `cut` the points at the side's plateau height (within 2 `band`) span
    MIN_TOP_COVER of the side's footprint (trimmed min-area rectangles): a box's top is its footprint, while
    a stepped or tapered object's upper part is narrower than its base."""
    w, t = cut
    up = np.isfinite(normal_z) & (normal_z > UP_NORMAL_Z)
    side = points[:, :2] @ w > t
    for part in (side, ~side):
        if (part & up).sum() < 3:
            return False
        zp = _densest(points[part & up, 2], band)
        top = part & (np.abs(points[:, 2] - zp) < 2 * band)
        if top.sum() < 3 or _trimmed_area(points[top, :2]) < MIN_TOP_COVER * _trimmed_area(points[part, :2]):
            return False
    return True


def _trimmed_area(xy: np.ndarray) -> float:
    """Area (m^2) of the min-area rectangle of `xy` (N, 2) with FOOTPRINT_TRIM percent of outliers trimmed."""
    _, _, ext = min_area_rectangle(xy, "search", trim_percent=FOOTPRINT_TRIM)
    return float(ext[0] * ext[1])


def _separating_cut(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(w, t) with ``a @ w <= t < b @ w`` for all but MAX_OVERLAP of `a` (N, 2) and of `b` (M, 2), w along
    the line from a's median to b's; None when they overlap more along it."""
    w = np.median(b, axis=0) - np.median(a, axis=0)
    norm = float(np.linalg.norm(w))
    if norm < 1e-6:
        return None
    w = w / norm
    pa, pb = a @ w, b @ w
    t = 0.5 * (float(np.quantile(pa, 1 - MAX_OVERLAP)) + float(np.quantile(pb, MAX_OVERLAP)))
    if np.mean(pa > t) > MAX_OVERLAP or np.mean(pb <= t) > MAX_OVERLAP:
        return None
    return w, t


def split_by_plateaus(points: np.ndarray, normal_z: np.ndarray, sigma: float,
                      min_points: int) -> list[np.ndarray]:
    """Boolean masks (N,) over `points` (N, 3), one per object the group holds: one all-True mask when it is
    one object, else the parts of :func:`plateau_cut`, each cut again (a row of three boxes). Parts with
    fewer than `min_points` points do not count as objects (no cut is made for them)."""
    cut = plateau_cut(points, normal_z, sigma)
    if cut is None:
        return [np.ones(len(points), bool)]
    w, t = cut
    side = points[:, :2] @ w > t
    if side.sum() < min_points or (~side).sum() < min_points:
        return [np.ones(len(points), bool)]
    out = []
    for part in (~side, side):
        idx = np.flatnonzero(part)
        for sub in split_by_plateaus(points[idx], normal_z[idx], sigma, min_points):
            m = np.zeros(len(points), bool)
            m[idx[sub]] = True
            out.append(m)
    return out
