"""Splitting touching objects of one colour by their top plateaus.

Two boxes of one colour pushed flush together look like one object to colour and to depth jumps: the gap
between them is narrower than a pixel and, seen from above, their tops meet without a jump. What gives them
away is their tops: two flat plateaus at different heights, side by side (not one inside the other, as a
stack's), each with a rectangular outline. :func:`split_by_plateaus` finds such a pair among a fused group's
upward-facing points and cuts every point of the group (tops and sides) along the straight line between the
plateaus. Thresholds follow the measured depth noise `sigma`, as it is left in a top's heights once each is
the median of its neighbours' (:func:`smoothed_tops`: a top is measured by many pixels, so a step of a few
pixel sigmas stands out): plateaus must lie more than ``max(MIN_STEP, STEP_SIGMAS * noise)`` apart, so
noise alone never splits an object, and a step the sensor cannot resolve is left alone (the objects stay
merged; a larger step, or a second camera, splits them).

A lower top is often seen only in part: from a low camera its taller neighbour hides most of it, and what is
left is a strip a few pixels wide cut off obliquely by the neighbour's silhouette. Such a plateau still counts
as a box top when the rest of its rectangle — its own, or the one along the neighbour's axes (boxes touching
face to face stand parallel) — lies behind the neighbour as the cameras see it
(:meth:`~robot_wm.perception.free_space.FreeSpace.hidden_behind`) and was not seen through; a grid sample
within a sample spacing of the plateau's points is no missing part (:func:`_fills_rectangle`).

Two boxes with *level* tops form one plateau, but unless they are equally wide and aligned their common top
is not a rectangle: its width steps where one box ends and the other begins. :func:`width_step_cut` finds
that step (the top's outline, measured across the rectangle's axes, piecewise constant on both sides of a
cut, with a jump larger than the noise allows). A box whose top is partly hidden (by a neighbour, by
something leaning on it) shows the same outline, so the cut is only made when the free space agrees
(``seen_free``: the test of :mod:`robot_wm.perception.free_space`): walking outward from each side's top,
the cameras must see through it (unseen space is not free), the sides' widths where they first do must
differ (by ``max(MIN_STEP, WIDTH_DIFF_SIGMAS * sigma)``: each edge is a step fitted to tens of free-space
samples, not one pixel), and the cut goes where the free space ends the wider box.

World frame, metres. Works on point arrays only; the pipeline maps the cut back to each camera's segments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from robot_wm.geometry import min_area_rectangle, to_rectangle_frame

UP_NORMAL_Z = 0.97  # a point faces up when its normal's z is above this (~14 deg from vertical)
MIN_TOP_POINTS = 60  # upward-facing points a group needs before a split is considered
MIN_PLATEAU_FRACTION = 0.15  # each plateau holds at least this fraction of the upward points ...
MIN_SMALL_PLATEAU_FRACTION = 0.04  # ... or, the lower one of a taller neighbour that hides most of it, this
BIG_STEP = 0.01  # m: ... when it lies this far below (a lower top it hides) or above (a grazing taller top)
MIN_STEP = 0.002  # m: plateaus closer in height than this are one surface ...
MIN_STEP_CLEAN = 0.001  # ... or this, on depth without measurable noise (sigma under CLEAN_SIGMA) ...
CLEAN_SIGMA = 0.0002  # m
STEP_SIGMAS = 3.0  # ... or closer than this many sigma of depth noise
CORE_SIGMAS = 1.5  # a plateau's core: its points within this many sigma of its densest height ...
MIN_FLAT = 0.00075  # m ... and at least this
MIN_CORE_FRACTION = 0.4  # the rest's own plateau holds at least this fraction of it
MAX_LEVELS = 4  # plateau heights tried per cut
MIN_TOP_COVER = 0.75  # each side's top spans at least this fraction of its footprint's area (a box's: ~1)
FACE_NEAR = 0.01  # m: points this near the cut line (and 2 bands) beside or above a side's top ...
FACE_MAX_NORMAL_Z = 0.3  # ... are its neighbour's face, not its footprint, when their normals' median z is under
MIN_FACE_NORMALS = 10  # this (and at least this many have a normal)
FOOTPRINT_TRIM = 2.0  # percent of points trimmed from the rectangles compared (flying pixels)
MAX_OVERLAP = 0.05  # fraction of either plateau's points that may fall on the other side of the cut
MAX_EDGE_TURN = 35.0  # deg: a plateau's edge replaces the line between the centres when this close to it
MIN_RECT_FILL = 0.8  # a plateau's convex-hull area over its min-area rectangle's (box tops are rectangles)
MIN_HIDDEN_FILL = 0.5  # ... or this, when the rest of its rectangle was not seen free (hidden) ...
HIDDEN_MAX_FREE = 0.2  # ... at most this fraction of the seen samples there free ...
HIDDEN_SPACING = 0.003  # m: ... sampled on this grid ...
HIDDEN_NEAR = 0.7  # ... this fraction of it behind the other plateau as the cameras see it
SPACING_Q = 0.9  # the samples' spacing: this quantile of their nearest-neighbour distances
HIDDEN_MARGIN = 0.005  # m: the other plateau's rectangle grown by this (normals erode a top's edge pixels)
# level tops (width_step_cut)
PROFILE_BIN = 0.002  # m: the top's outline is measured in slices this wide across each rectangle axis
PROFILE_EDGE_Q = 5.0  # percent: a slice's edges are these percentiles of its points across the axis
MIN_SIDE = 0.02  # m: each side of a cut spans at least this along the axis (a box is >= 3 cm)
MIN_WIDTH_STEP = 0.004  # m: the outline jumps by more than this ...
WIDTH_STEP_SIGMAS = 2.0  # ... and more than this many sigma of depth noise
FLAT_EDGE = 0.001  # m: mean deviation of a box top's edges from straight lines, noise-free (pixel steps) ...
FLAT_EDGE_SIGMAS = 1.1  # ... plus this many sigma of depth noise (a looser rule splits L-shaped meshes)
MIN_LEVEL_FILL = 0.7  # each side's top is this close to a rectangle (hull area / rectangle area)
EDGE_SEARCH = 0.02  # m: a top's true edge is looked for this far outward of where its points end ...
EDGE_STEP = 0.001  # m: ... in steps of this, with samples this far apart along the edge ...
EDGE_SPAN = 0.6  # ... over the middle of the side's length
EDGE_MIN_SEEN = 0.3  # fraction of an offset's samples some camera must have seen
WIDTH_DIFF_SIGMAS = 1.5  # the sides' widths as the free space shows them differ by this many sigma (and MIN_STEP)
# denoised tops (plateau_cut)
SMOOTH_CELL = 0.005  # m: an upward point's height is the median of the upward points in its cell of this grid ...
SMOOTH_KEEP_SIGMAS = 3.0  # ... unless it lies more than this many sigma from it


def smoothed_tops(points: np.ndarray, normal_z: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(`points` (N, 3) with each upward-facing point's height replaced by the median height of the upward
    points in its SMOOTH_CELL square of an xy grid, the noise left in each height (N,) m).

    A top's height is measured by many pixels, each with depth noise `sigma`: a median over the k points of
    a cell leaves about ``sqrt(pi / 2) sigma / sqrt(k)``, so two plateaus a few millimetres apart stand out
    under noise that hides the step pixel by pixel. A cell across a step takes the height of the side most of
    its points are on (a median does not blur the step into a ramp). A point more than SMOOTH_KEEP_SIGMAS
    sigma from its cell's median keeps its height and its noise `sigma` (a step that large needs no
    smoothing, and a few points of a lower top must not join the taller one), as do points that do not face
    up."""
    up = np.flatnonzero(np.isfinite(normal_z) & (normal_z > UP_NORMAL_Z))
    noise = np.full(len(points), float(sigma))
    if len(up) < MIN_TOP_POINTS or sigma <= 0:
        return points, noise
    cell = np.floor(points[up, :2] / SMOOTH_CELL).astype(np.int64)
    key = (cell[:, 0] - cell[:, 0].min()) * (int(np.ptp(cell[:, 1])) + 1) + (cell[:, 1] - cell[:, 1].min())
    cells = _Groups(points[up, 2], key)
    med, count = cells.quantile(0.5)[cells.inverse], cells.counts[cells.inverse]
    zs, rows = cells.sorted, up[cells.order]
    out = points.copy()
    # a point farther from its cell's median than noise explains is another surface's (a lower top beside a
    # taller one, in a cell most of which lies on the taller): it keeps its own height
    keep = np.abs(zs - med) > SMOOTH_KEEP_SIGMAS * sigma
    out[rows, 2] = np.where(keep, zs, med)
    noise[rows] = np.where(keep, sigma, sigma * np.sqrt(np.pi / 2 / count))
    return out, noise


def _rect_fill(xy: np.ndarray) -> float:
    """Area of the convex hull of `xy` (N, 2) over the area of their min-area rectangle (1 for a rectangle):
    the rectangle with FOOTPRINT_TRIM percent of outlying points trimmed on each side (a noisy top's edge
    frays outward by a few points), the hull over the points inside it."""
    from scipy.spatial import ConvexHull, QhullError

    if len(xy) < 3:
        return 0.0
    centre, yaw, ext = min_area_rectangle(xy, "search", trim_percent=FOOTPRINT_TRIM)
    local = to_rectangle_frame(xy, centre, yaw)
    inside = np.all(np.abs(local) <= ext / 2 + 1e-9, axis=1)
    try:
        hull_area = float(ConvexHull(xy[inside]).volume)
    except (QhullError, ValueError):
        return 0.0
    return hull_area / max(float(ext[0] * ext[1]), 1e-12)


def _densest(z: np.ndarray, band: float) -> float:
    """Median of the heights in the window of width 2 `band` holding the most of `z` (N,)."""
    zs = np.sort(z)
    end = np.searchsorted(zs, zs + 2 * band, side="right")
    i = int(np.argmax(end - np.arange(len(zs))))
    return float(np.median(zs[i:end[i]]))


def plateau_cut(points: np.ndarray, normal_z: np.ndarray, sigma: float,
                seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
                ) -> tuple[np.ndarray, float] | None:
    """A straight cut in xy between a top plateau of `points` (N, 3) (normals' z `normal_z` (N,)) and the
    rest of the upward-facing points: (unit direction w (2,), offset t) such that ``points[:, :2] @ w > t``
    is one side, or None when no plateau sits beside the rest as a box top does.

    Heights are denoised first (:func:`smoothed_tops`; below, sigma is each height's own noise). Plateaus are
    tried densest first (a height band of +-CORE_SIGMAS sigma, at least MIN_FLAT); one is cut
    off when it holds MIN_PLATEAU_FRACTION of the upward points, the points at least a step (MIN_STEP,
    STEP_SIGMAS sigma) above or below it hold as much and have a plateau of their own, the two separate
    along the line joining their centres (a stack's lower top, a ring around the upper one, does not),
    both plateaus' outlines are rectangles (or, with `seen_free`, rectangles in part hidden:
    :func:`_rectangular`), and each
    side's top spans its footprint (:func:`_tops_cover_footprints`)."""
    up = np.isfinite(normal_z) & (normal_z > UP_NORMAL_Z)
    if up.sum() < MIN_TOP_POINTS:
        return None
    smooth, noise = smoothed_tops(points, normal_z, sigma)
    top = smooth[up]
    z = top[:, 2]
    n = len(top)
    core_band = np.maximum(MIN_FLAT, CORE_SIGMAS * noise[up])  # each height's own noise
    step = np.maximum(MIN_STEP if sigma > CLEAN_SIGMA else MIN_STEP_CLEAN, STEP_SIGMAS * noise[up])
    band = float(np.median(core_band))
    floor = float(points[:, 2].min())  # the group's base: where a neighbour's prism starts
    seeds = np.ones(n, bool)
    for _ in range(MAX_LEVELS):
        if seeds.sum() < MIN_PLATEAU_FRACTION * n:
            return None
        zm = _densest(z[seeds], band)
        off = np.abs(z - zm)
        is_rest = off >= step
        seeds &= is_rest
        core, rest = top[off < core_band], top[is_rest]
        if len(core) < MIN_PLATEAU_FRACTION * n or len(rest) < MIN_SMALL_PLATEAU_FRACTION * n:
            continue
        if len(rest) < MIN_PLATEAU_FRACTION * n and abs(float(np.median(rest[:, 2])) - zm) < BIG_STEP:
            continue  # a small second plateau only counts well below or above the first (a lower top that a
            # taller neighbour hides; a taller top seen at a grazing angle, whose noisy normals seldom face up)
        rz = _densest(rest[:, 2], band)
        rest_core = rest[np.abs(rest[:, 2] - rz) < core_band[is_rest]]
        if len(rest_core) < MIN_CORE_FRACTION * len(rest):
            continue  # the rest is no plateau (a slope, a curved top)
        cut = _separating_cut(core[:, :2], rest[:, :2])
        raw_band = max(MIN_FLAT, CORE_SIGMAS * sigma)  # (heights of points not smoothed)
        noisy = sigma > CLEAN_SIGMA  # (clean normals that miss the upward test mean a surface that is not flat)
        if (cut is not None and all(_top_is_rectangular(c, towards, taller and noisy, points, cut, raw_band, seen_free,
                                                        (other, floor))
                                    for c, towards, taller, other in ((core, cut[0], zm > rz, rest_core),
                                                                      (rest_core, -cut[0], rz > zm, core)))
                and _tops_cover_footprints(points, normal_z, cut, raw_band)):
            return cut
    return None


def _top_is_rectangular(top: np.ndarray, towards: np.ndarray, taller: bool, points: np.ndarray,
                        cut: tuple[np.ndarray, float], band: float,
                        seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
                        neighbour: tuple[np.ndarray, float]) -> bool:
    """Whether a plateau's upward points `top` (K, 3) outline a rectangle (:func:`_rectangular`; `towards` (2,)
    the direction to the other plateau, across `cut` = (w, t)). With `taller` (the taller of the two, on noisy
    depth) it may instead be outlined by all the group's `points` (N, 3) at its height (within `band`) on its
    side of the cut, whatever their normals: a top seen at a grazing angle under depth noise has few normals
    that face up (a lower top's height band holds its taller neighbour's face, so it gets no such second
    look; on clean depth, normals that miss the upward test mean a surface that is not flat)."""
    z = float(np.median(top[:, 2]))
    if _rectangular(top[:, :2], z, seen_free, towards, neighbour):
        return True
    if not taller:
        return False
    w, t = cut
    mine = (points[:, :2] @ w > t) == bool(towards @ w < 0)  # this plateau's side of the cut
    at = mine & (np.abs(points[:, 2] - z) < band)
    return bool(at.sum() > len(top)) and _rectangular(points[at, :2], z, seen_free, towards, neighbour)


def _rectangular(xy: np.ndarray, z: float, seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
                 towards: np.ndarray, neighbour: tuple[np.ndarray, float] | None = None) -> bool:
    """True when a plateau's points `xy` (N, 2) at height `z` outline a rectangle, in part hidden or not.

    The rectangle: the points' min-area rectangle, or — with `neighbour` = (the other plateau's points
    (M, 3), the group's lowest height) — the points' extent along the neighbour's rectangle's axes (boxes
    touching face to face stand parallel, and the part of a lower top that its neighbour hides is cut off
    along the neighbour's silhouette, which turns the visible part's own rectangle away from the box's
    edges; only with cameras to ask, and only as a top that the neighbour hides in part); either one that
    passes (:func:`_fills_rectangle`) will do. A rectangle found by the hull's area over the min-area
    rectangle's (:func:`_rect_fill`) is tried first."""
    if _rect_fill(xy) >= MIN_RECT_FILL:
        return True
    own = min_area_rectangle(xy, "search")
    if neighbour is None or getattr(seen_free, "hidden_behind", None) is None:
        return _fills_rectangle(xy, z, own, seen_free, towards)
    n_rect = min_area_rectangle(neighbour[0][:, :2], "search", trim_percent=FOOTPRINT_TRIM)
    return (_fills_rectangle(xy, z, own, seen_free, towards, neighbour, n_rect)
            or _fills_rectangle(xy, z, _extent_along(xy, n_rect[1]), seen_free, towards, neighbour, n_rect,
                                hidden=True))


def _extent_along(xy: np.ndarray, yaw: float) -> tuple[np.ndarray, float, np.ndarray]:
    """(centre (2,), `yaw`, extents (2,)) of the rectangle with axes at `yaw` rad spanning `xy` (N, 2),
    FOOTPRINT_TRIM percent of outlying points trimmed on each side."""
    lo, hi = np.percentile(to_rectangle_frame(xy, np.zeros(2), yaw), [FOOTPRINT_TRIM, 100 - FOOTPRINT_TRIM], axis=0)
    mid = (lo + hi) / 2
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([c * mid[0] - s * mid[1], s * mid[0] + c * mid[1]]), float(yaw), hi - lo


def _fills_rectangle(xy: np.ndarray, z: float, rect: tuple[np.ndarray, float, np.ndarray],
                     seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None, towards: np.ndarray,
                     neighbour: tuple[np.ndarray, float] | None = None,
                     n_rect: tuple[np.ndarray, float, np.ndarray] | None = None, hidden: bool = False) -> bool:
    """True when the plateau points `xy` (N, 2) at height `z` fill `rect` = (centre, yaw, extents).

    Fill = the share of `rect` (sampled every HIDDEN_SPACING) that the points cover: inside their convex
    hull or within a sample spacing of a point (the hull of a few pixels' samples lies up to a spacing
    inside the top's edges: a strip a few pixels wide seen at a grazing angle misses whole edge rows). A
    rectangle fills MIN_RECT_FILL. With `seen_free`, a fill of MIN_HIDDEN_FILL suffices when the cameras did
    not see through the missing part (at most HIDDEN_MAX_FREE of its seen samples free) and HIDDEN_NEAR of it
    is explained as a lower top that its taller neighbour hides in part: with cameras to ask (`seen_free` a
    :class:`~robot_wm.perception.free_space.FreeSpace`) and the neighbour (its points and the group's lowest
    height, its rectangle `n_rect`), a missing sample is explained when it lies behind the neighbour's prism
    (`n_rect` grown by HIDDEN_MARGIN, from that height to its top) for every camera that has it in view, or
    when a camera measured a surface at it (its top's normals spoiled by the occluding edge); without
    cameras, when it lies on this plateau's half `towards` (2,) the neighbour. With `hidden`, what is missing
    must be explained so however little it is (a rectangle drawn along the neighbour's axes says the top is
    cut off by the neighbour's silhouette; a mesh's round top fills most of any rectangle). A patch spanning
    less than MIN_SIDE is no rectangle (too small to tell)."""
    from scipy.spatial import Delaunay, QhullError

    centre, yaw, ext = rect
    if ext.max() < MIN_SIDE:
        return False
    c, s = np.cos(yaw), np.sin(yaw)
    g = np.stack(np.meshgrid(np.arange(-ext[0] / 2, ext[0] / 2, HIDDEN_SPACING),
                             np.arange(-ext[1] / 2, ext[1] / 2, HIDDEN_SPACING), indexing="ij"), -1).reshape(-1, 2)
    grid = centre + g @ np.array([[c, s], [-s, c]])
    try:
        missing = grid[Delaunay(xy).find_simplex(grid) < 0]
    except (QhullError, ValueError):
        return False
    tree = cKDTree(xy)
    spacing = float(np.quantile(tree.query(xy, k=2)[0][:, 1], SPACING_Q))
    missing = missing[tree.query(missing)[0] > spacing]
    fill = 1.0 - len(missing) / max(len(grid), 1)
    if fill >= MIN_RECT_FILL and not hidden:
        return True
    if seen_free is None or fill < MIN_HIDDEN_FILL:
        return False
    if len(missing) == 0:
        return True
    at_top = np.column_stack([missing, np.full(len(missing), z)])
    free, seen = seen_free(at_top)
    behind = getattr(seen_free, "hidden_behind", None)
    if behind is not None and neighbour is not None and n_rect is not None:
        other, floor = neighbour
        n_centre, n_yaw, n_ext = n_rect
        explained = behind(at_top, n_centre, n_yaw, n_ext + 2 * HIDDEN_MARGIN, floor, float(np.median(other[:, 2])))
        explained |= seen & ~free  # a surface measured at the top's height there: its normals spoiled by an edge
    else:
        explained = (missing - np.median(xy, axis=0)) @ towards > 0
    if np.mean(explained) < HIDDEN_NEAR:
        return False  # what is missing is not where the neighbour could hide it (a mesh's own shape)
    return not seen.any() or float(free[seen].mean()) <= HIDDEN_MAX_FREE


def _tops_cover_footprints(points: np.ndarray, normal_z: np.ndarray, cut: tuple[np.ndarray, float],
                           band: float) -> bool:
    """True when on both sides of `cut` the points at the side's plateau height (within 2 `band`) span
    MIN_TOP_COVER of the side's footprint (trimmed min-area rectangles; points within 2 `band` of the cut
    line left out): a box's top is its footprint, while a stepped or tapered object's upper part is narrower
    than its base. A side's footprint also leaves out its neighbour's upright face: points within FACE_NEAR
    (+ 2 `band`) of the line, off the side's top, beside it along the line or above it, and no higher than
    the other side's top, when their normals' median z is under FACE_MAX_NORMAL_Z."""
    w, t = cut
    up = np.isfinite(normal_z) & (normal_z > UP_NORMAL_Z)
    across = points[:, :2] @ w - t
    side = across > 0
    away = np.abs(across) > 2 * band  # the faces on the cut line (one box's end face beside the other) left out
    near = np.abs(across) < FACE_NEAR + 2 * band
    along = points[:, :2] @ np.array([-w[1], w[0]])
    parts = (side & away, ~side & away)
    if any((part & up).sum() < 3 for part in parts):
        return False
    zps = [_densest(points[part & up, 2], band) for part in parts]
    for part, zp, z_other in zip(parts, zps, zps[::-1], strict=True):
        top = part & (np.abs(points[:, 2] - zp) < 2 * band)
        if top.sum() < 3:
            return False
        # near the cut line, beside this side's top (along the line) or above it, and no higher than the other
        # side's top: when upright (their normals' median z under FACE_MAX_NORMAL_Z), the neighbour's face,
        # which rises over a lower box and, when wider, stands beside it down to the table (a ramp between
        # two levels of one object is no face)
        lo, hi = np.percentile(along[top], [FOOTPRINT_TRIM, 100 - FOOTPRINT_TRIM])
        beside = (along < lo - 2 * band) | (along > hi + 2 * band) | (points[:, 2] > zp + 2 * band)
        face = part & near & ~top & beside & (points[:, 2] < z_other + 2 * band)
        nz_face = normal_z[face & np.isfinite(normal_z)]
        if len(nz_face) < MIN_FACE_NORMALS or float(np.median(nz_face)) >= FACE_MAX_NORMAL_Z:
            face[:] = False
        if _trimmed_area(points[top, :2]) < MIN_TOP_COVER * _trimmed_area(points[part & ~face, :2]):
            return False
    return True


def _trimmed_area(xy: np.ndarray) -> float:
    """Area (m^2) of the min-area rectangle of `xy` (N, 2) with FOOTPRINT_TRIM percent of outliers trimmed."""
    _, _, ext = min_area_rectangle(xy, "search", trim_percent=FOOTPRINT_TRIM)
    return float(ext[0] * ext[1])


def _separating_cut(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(w, t) with ``a @ w <= t < b @ w`` for all but MAX_OVERLAP of `a` (N, 2) and of `b` (M, 2), or None
    when they overlap more. w is the axis of either plateau's min-area rectangle nearest the line from a's
    median to b's (two boxes side by side meet along an edge of each: the line between their centres is
    oblique when they differ in length or are offset, and cutting along it hands one box a corner of the
    other) when that axis separates them, else that line itself."""
    w = np.median(b, axis=0) - np.median(a, axis=0)
    norm = float(np.linalg.norm(w))
    if norm < 1e-6:
        return None
    w = w / norm
    axes = []
    for pts in (a, b):
        _, yaw, _ = min_area_rectangle(pts, "search", trim_percent=FOOTPRINT_TRIM)
        for ang in (yaw, yaw + np.pi / 2):
            u = np.array([np.cos(ang), np.sin(ang)])
            axes.append(u if u @ w >= 0 else -u)
    axes.sort(key=lambda u: -float(u @ w))
    for u in (*axes[:2], w):
        if u @ w < np.cos(np.deg2rad(MAX_EDGE_TURN)):
            continue
        pa, pb = a @ u, b @ u
        t = 0.5 * (float(np.quantile(pa, 1 - MAX_OVERLAP)) + float(np.quantile(pb, MAX_OVERLAP)))
        if np.mean(pa > t) <= MAX_OVERLAP and np.mean(pb <= t) <= MAX_OVERLAP:
            return u, t
    return None


def _level_top(points: np.ndarray, normal_z: np.ndarray, sigma: float) -> tuple[np.ndarray, float] | None:
    """(xy (M, 2) of the upward-facing points level with the densest plateau — closer in height than a
    step, ``max(MIN_STEP, STEP_SIGMAS sigma)``, so :func:`plateau_cut` cannot part them —, its height) or
    None with too few upward points."""
    up = np.isfinite(normal_z) & (normal_z > UP_NORMAL_Z)
    if up.sum() < MIN_TOP_POINTS:
        return None
    top = points[up]
    zm = _densest(top[:, 2], max(MIN_FLAT, CORE_SIGMAS * sigma))
    core = top[np.abs(top[:, 2] - zm) < max(MIN_STEP, STEP_SIGMAS * sigma), :2]
    return (core, zm) if len(core) >= MIN_TOP_POINTS else None


class _Groups:
    """`values` (N,) grouped by integer `keys` (N,), each group sorted: `order` sorts the input (keys, then
    values), `keys` (G,) the distinct keys, `starts` / `counts` (G,) each group's slice of `sorted`, `inverse`
    (N,) the group of each sorted value."""

    def __init__(self, values: np.ndarray, keys: np.ndarray) -> None:
        self.order = np.lexsort((values, keys))
        self.sorted = values[self.order]
        self.keys, self.starts, self.inverse, self.counts = np.unique(
            keys[self.order], return_index=True, return_inverse=True, return_counts=True)

    def quantile(self, q: float, starts: np.ndarray | None = None, counts: np.ndarray | None = None) -> np.ndarray:
        """Each group's `q` quantile (G,) (linear interpolation; q 0.5: the median), or of the groups whose
        `starts` / `counts` are given."""
        starts = self.starts if starts is None else starts
        counts = self.counts if counts is None else counts
        x = starts + q * (counts - 1)
        i = np.floor(x).astype(int)
        j = np.minimum(i + 1, starts + counts - 1)
        return self.sorted[i] + (x - i) * (self.sorted[j] - self.sorted[i])


def _outline(s: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slice positions (K,), low edges (K,), high edges (K,)): the PROFILE_EDGE_Q / 100 - PROFILE_EDGE_Q
    percentiles (linear interpolation) of `r` in PROFILE_BIN slices of `s` holding at least 3 points."""
    groups = _Groups(r, np.floor((s - s.min()) / PROFILE_BIN).astype(int))
    keep = groups.counts >= 3
    starts, counts = groups.starts[keep], groups.counts[keep]
    return (s.min() + (groups.keys[keep] + 0.5) * PROFILE_BIN, groups.quantile(PROFILE_EDGE_Q / 100, starts, counts),
            groups.quantile(1 - PROFILE_EDGE_Q / 100, starts, counts))


def _best_step(pos: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[int, float, float] | None:
    """(index j, step, deviation) of the cut before slice j that best explains the outline as two straight-
    edged parts: the sum of absolute deviations of the edges from their medians on each side is smallest.
    step = the larger jump of the medians (m); deviation = the larger side's mean absolute deviation (m).
    Every admissible cut (each side MIN_SIDE long) is scored at once: (J, K) masked arrays."""
    k = len(pos)
    js = np.arange(1, k)
    js = js[(pos[js - 1] - pos[0] >= MIN_SIDE - PROFILE_BIN) & (pos[-1] - pos[js] >= MIN_SIDE - PROFILE_BIN)]
    if len(js) == 0:
        return None
    before = np.arange(k)[None, :] < js[:, None]  # (J, K): slice i on the first side of cut j
    rows = np.arange(len(js))
    meds, devs = [], []
    for side in (before, ~before):
        n = side.sum(axis=1)
        m_side, d_side = [], []
        for edge in (lo, hi):
            srt = np.sort(np.where(side, edge[None, :], np.inf), axis=1)  # the side's values first
            med = 0.5 * (srt[rows, (n - 1) // 2] + srt[rows, n // 2])
            m_side.append(med)
            d_side.append(np.where(side, np.abs(edge[None, :] - med[:, None]), 0.0).sum(axis=1) / n)
        meds.append(m_side)
        devs.append(0.5 * (d_side[0] + d_side[1]))
    cost = devs[0] * js + devs[1] * (k - js)
    i = int(np.argmin(cost))
    step = max(abs(meds[0][0][i] - meds[1][0][i]), abs(meds[0][1][i] - meds[1][1][i]))
    return int(js[i]), float(step), float(max(devs[0][i], devs[1][i]))


@dataclass(frozen=True)
class LevelStep:
    """A proposed cut between two level-topped boxes (:func:`width_step_cut`), in the top's rectangle frame:
    world xy = ``centre + s u + r v``. Side 0 spans ``s`` in ``spans[0]``, side 1 in ``spans[1]`` (the cut
    between them); ``edges[k] = (low r, high r)`` are side k's top edges as the top points show them (eroded
    by normal estimation and noise: the free space decides where they really are); `z` the tops' height."""

    centre: np.ndarray
    u: np.ndarray
    v: np.ndarray
    spans: tuple[tuple[float, float], tuple[float, float]]
    edges: tuple[tuple[float, float], tuple[float, float]]
    z: float

    @property
    def cut(self) -> tuple[np.ndarray, float]:
        """(w, t): side 1 is ``xy @ w > t``."""
        return self.u, float(self.spans[0][1] + self.centre @ self.u)

    def world(self, s: np.ndarray, r: np.ndarray) -> np.ndarray:
        """World points (K, 3) at the tops' height of rectangle-frame coordinates `s`, `r` (K,)."""
        xy = self.centre + np.outer(s, self.u) + np.outer(r, self.v)
        return np.column_stack([xy, np.full(len(xy), self.z)])


def width_step_cut(points: np.ndarray, normal_z: np.ndarray, sigma: float) -> LevelStep | None:
    """A proposed cut between two boxes of one colour whose tops are level, or None.

    The top plateau's outline is measured across each axis of its min-area rectangle (:func:`_outline`) and
    split where two straight-edged parts explain it best (:func:`_best_step`). A cut is proposed when the
    outline jumps by more than ``max(MIN_WIDTH_STEP, WIDTH_STEP_SIGMAS sigma)``, each part's edges are
    straight to within ``FLAT_EDGE + FLAT_EDGE_SIGMAS sigma``, each part's top is a rectangle (fill
    MIN_LEVEL_FILL) and spans its footprint (:func:`_tops_cover_footprints`). Whether it is made is for the
    free space to say (:func:`free_edges`, :func:`split_by_plateaus`)."""
    top = _level_top(points, normal_z, sigma)
    if top is None:
        return None
    core, zm = top
    band = max(MIN_FLAT, CORE_SIGMAS * sigma)
    min_step, max_dev = max(MIN_WIDTH_STEP, WIDTH_STEP_SIGMAS * sigma), FLAT_EDGE + FLAT_EDGE_SIGMAS * sigma
    best = None
    # an L's smallest rectangle lines up with its edges (the hull's), a noisy one's with the trimmed points
    for centre, yaw, _ in (min_area_rectangle(core, "hull"), min_area_rectangle(core, "search", trim_percent=1.0)):
        for a in (yaw, yaw + np.pi / 2):
            u = np.array([np.cos(a), np.sin(a)])
            v = np.array([-u[1], u[0]])
            d = core - centre
            pos, lo, hi = _outline(d @ u, d @ v)
            if len(pos) < 2 * MIN_SIDE / PROFILE_BIN:
                continue
            found = _best_step(pos, lo, hi)
            if (found is not None and found[1] >= min_step and found[2] <= max_dev
                    and (best is None or found[2] < best[0][2])):
                best = (found, centre, u, v, pos, lo, hi)
    if best is None:
        return None
    (j, _, _), centre, u, v, pos, lo, hi = best
    mid = 0.5 * (pos[j - 1] + pos[j])
    step = LevelStep(centre, u, v, ((float(pos[0]), mid), (mid, float(pos[-1]))),
                     ((float(np.median(lo[:j])), float(np.median(hi[:j]))),
                      (float(np.median(lo[j:])), float(np.median(hi[j:])))), zm)
    side = (core - centre) @ u > mid
    if min(_rect_fill(core[side]), _rect_fill(core[~side])) < MIN_LEVEL_FILL:
        return None
    if not _tops_cover_footprints(points, normal_z, step.cut, band):
        return None
    return step


def free_edges(step: LevelStep, seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
               ) -> list[tuple[float, float]] | None:
    """Each side's (low, high) top edge as the free space shows it: walking outward from the edge the points
    show (EDGE_SEARCH, EDGE_STEP apart, over the middle EDGE_SPAN of the side's length, at the tops' height),
    the first offset where at least half of the samples some camera saw are seen free (and EDGE_MIN_SEEN of
    them were seen). None when some edge is never seen free (hidden, or more object there), or is seen free
    already where the top's points end (then they are no solid top at that height)."""
    offsets = np.arange(0.0, EDGE_SEARCH + 1e-9, EDGE_STEP)
    out = []
    for (s0, s1), (lo, hi) in zip(step.spans, step.edges, strict=True):
        pad = 0.5 * (1 - EDGE_SPAN) * (s1 - s0)
        ss = np.arange(s0 + pad, s1 - pad + 1e-9, EDGE_STEP)
        found = []
        for edge, sign in ((lo, -1.0), (hi, 1.0)):
            s_g, o_g = np.meshgrid(ss, offsets, indexing="ij")
            free, seen = seen_free(step.world(s_g.ravel(), edge + sign * o_g.ravel()))
            free, seen = free.reshape(s_g.shape), seen.reshape(s_g.shape)
            n_seen = seen.sum(axis=0)
            ok = (n_seen >= EDGE_MIN_SEEN * len(ss)) & (free.sum(axis=0) >= 0.5 * np.maximum(n_seen, 1))
            if not ok.any() or ok[0]:
                return None  # never seen free, or free where the points put a top: no box top there
            found.append(edge + sign * offsets[_step_to_free(_seen_sign(free, seen).sum(axis=0))])
        out.append((found[0], found[1]))
    return out


def _seen_sign(free: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """+1 where seen free, -1 where seen occupied, 0 where unseen (same shape as `free`, `seen`)."""
    return np.where(seen, np.where(free, 1.0, -1.0), 0.0)


def _step_to_free(f: np.ndarray, lo: int = 0, hi: int | None = None) -> int:
    """Index i in [lo, hi) (default: every index of `f`) where a walk along the profile `f` (K,) (sums of
    :func:`_seen_sign`) steps from occupied to free: the step function that agrees with the most seen samples,
    i.e. the most free samples from i on and occupied ones before it. Noise reads a sample on a top as free now
    and then (more so near its edge), so the first offset where half the samples are free lies inside the top;
    the best step does not."""
    c = np.cumsum(np.r_[0.0, f])
    score = c[-1] - 2 * c[:-1]
    return lo + int(np.argmax(score[lo:len(f) if hi is None else hi]))


def free_cut(step: LevelStep, edges: list[tuple[float, float]],
             seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, float]:
    """The cut of `step` moved to where the free space ends the wider box: along the middle of the strip
    between the sides' edges (`edges`, :func:`free_edges`) that step the most, seen free beside the narrower
    box and not beside the wider one, the position that best separates free from not free (EDGE_STEP
    samples over both sides). The outline's cut can sit slices off under noise; a cut off by more than a
    box's side leaves one object in two parts."""
    (lo0, hi0), (lo1, hi1) = edges
    r = 0.5 * (lo0 + lo1) if abs(lo0 - lo1) >= abs(hi0 - hi1) else 0.5 * (hi0 + hi1)
    side0_narrow = (lo0 > lo1) if abs(lo0 - lo1) >= abs(hi0 - hi1) else (hi0 < hi1)
    ss = np.arange(step.spans[0][0], step.spans[1][1] + 1e-9, EDGE_STEP)
    free, seen = seen_free(step.world(ss, np.full(len(ss), r)))
    f = _seen_sign(free, seen)
    # free beside the narrower box: on side 0 the walk goes from free to occupied (a cut strictly inside)
    i = _step_to_free(-f if side0_narrow else f, 1, len(f))
    t = 0.5 * (ss[i - 1] + ss[i])
    return step.u, float(t + step.centre @ step.u)


def _level_sides(step: LevelStep, edges: list[tuple[float, float]], cut: tuple[np.ndarray, float],
                 points: np.ndarray) -> np.ndarray:
    """Side-1 mask (N,) of `points` (N, 3) for a level cut: beyond the cut line, except that a point outside
    its half's own edges (`edges`, EDGE_STEP to spare) and inside the other's goes to the other side — the
    wider box's corner when the cut line sits a little inside the wider box."""
    w, t = cut
    r = (points[:, :2] - step.centre) @ step.v
    (lo0, hi0), (lo1, hi1) = edges
    out0 = (r < lo0 - EDGE_STEP) | (r > hi0 + EDGE_STEP)
    out1 = (r < lo1 - EDGE_STEP) | (r > hi1 + EDGE_STEP)
    beyond = points[:, :2] @ w > t
    return np.where(beyond, ~(out1 & ~out0), out0 & ~out1)


def split_by_plateaus(points: np.ndarray, normal_z: np.ndarray, sigma: float, min_points: int,
                      seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
                      ) -> list[np.ndarray]:
    """Boolean masks (N,) over `points` (N, 3), one per object the group holds: one all-True mask when it is
    one object, else the parts of :func:`plateau_cut` (tops at different heights) or, with `seen_free`, of
    :func:`width_step_cut` (level tops), each cut again (a row of three boxes). Parts with fewer than
    `min_points` points do not count as objects (no cut is made for them).

    `seen_free(points (K, 3)) -> (free (K,), seen (K,))` says which world points the cameras saw through
    (free) and which they observed at all; a level-top cut is made when the sides' widths as the free space
    shows them (:func:`free_edges`) differ by ``max(MIN_STEP, WIDTH_DIFF_SIGMAS sigma)`` and the side they
    show wider is the wider one in the top's points as well, where the free space puts the wider box's end
    (:func:`free_cut`)."""
    side = None
    cut = plateau_cut(points, normal_z, sigma, seen_free)
    if cut is not None:
        side = points[:, :2] @ cut[0] > cut[1]
    elif seen_free is not None:
        level = width_step_cut(points, normal_z, sigma)
        edges = None if level is None else free_edges(level, seen_free)
        if edges is not None:
            (lo0, hi0), (lo1, hi1) = edges
            (plo0, phi0), (plo1, phi1) = level.edges
            # widths must differ: a top whose edges both shift by the same amount is as likely one sheared
            # object (or a noisy edge) as two boxes offset sideways; and the side the free space shows wider
            # must be the wider one in the top's points too (an eroded or partly hidden top of one box steps
            # at one edge, the free space beside it at another)
            diff = (hi0 - lo0) - (hi1 - lo1)
            if (abs(diff) >= max(MIN_STEP, WIDTH_DIFF_SIGMAS * sigma)
                    and np.sign(diff) == np.sign((phi0 - plo0) - (phi1 - plo1))):
                side = _level_sides(level, edges, free_cut(level, edges, seen_free), points)
    if side is None:
        return [np.ones(len(points), bool)]
    if side.sum() < min_points or (~side).sum() < min_points:
        return [np.ones(len(points), bool)]
    out = []
    for part in (~side, side):
        idx = np.flatnonzero(part)
        for sub in split_by_plateaus(points[idx], normal_z[idx], sigma, min_points, seen_free):
            m = np.zeros(len(points), bool)
            m[idx[sub]] = True
            out.append(m)
    return out
