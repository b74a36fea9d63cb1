"""Where to push an object that cannot be grasped where it lies (flush against a neighbour, a wall or a tray
rim): a nearby *free spot* on the table, reachable by a push whose start is free.

Footprints are the objects' upright rectangles on the table (x-y, world frame, m): the minimum-area
rectangle of the projected oriented-box corners. :func:`free_spot` scores displacements of the target's
footprint — 16 headings × a few distances — by the gap they leave to every other footprint, keeps those
whose pushing pads could be lowered just behind the object (the side opposite the motion must be free),
stay on the table and within reach, and returns the shortest displacement that leaves the fingers room
(``needed_gap``); failing that, the one with the widest gap. The MPC then plans the pushes that take the
object there with the world model, which also predicts what the neighbours do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_wm.config.workspace import in_reach, on_table
from robot_wm.geometry import min_area_rectangle
from robot_wm.perception.estimate import ObjectEstimate

PAD_DEPTH = 0.012 + 0.01  # m: the closed pads' thickness plus the MPC's approach gap behind the object
PAD_HALF_WIDTH = 0.012  # m: half the closed pads' width across the push


def footprint(est: ObjectEstimate) -> np.ndarray:
    """Corners (4, 2) of the estimate's upright footprint rectangle (world x-y, m), counter-clockwise."""
    centre, yaw, ext = min_area_rectangle(est.corners()[:, :2], "hull")
    c, s = np.cos(yaw), np.sin(yaw)
    axes = np.array([[c, s], [-s, c]]) * (np.asarray(ext)[:, None] / 2)
    return centre + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) @ axes


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances (...,) from points p (..., 2) to segments a-b (..., 2)."""
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(a + t[..., None] * ab - p, axis=-1)


def _inside(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(...,) bool: points p (..., 2) inside the convex counter-clockwise polygon poly (..., 4, 2)."""
    e = np.roll(poly, -1, axis=-2) - poly
    r = p[..., None, :] - poly
    return np.all(e[..., 0] * r[..., 1] - e[..., 1] * r[..., 0] >= 0, axis=-1)


def point_polygon_distances(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distances (M,) m from points (M, 2) to the convex counter-clockwise polygon (K, 2); 0 inside it."""
    d = _point_segment_distance(points[:, None, :], poly, np.roll(poly, -1, axis=0)).min(1)
    return np.where(_inside(points, poly), 0.0, d)


def rect_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Gap (...,) in m between convex quads a (..., 4, 2) and b (..., 4, 2); 0 when they touch or overlap."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    a2, b2 = np.roll(a, -1, axis=-2), np.roll(b, -1, axis=-2)
    d_ab = _point_segment_distance(a[..., :, None, :], b[..., None, :, :], b2[..., None, :, :]).min((-1, -2))
    d_ba = _point_segment_distance(b[..., :, None, :], a[..., None, :, :], a2[..., None, :, :]).min((-1, -2))
    overlap = _inside(a, b[..., None, :, :]).any(-1) | _inside(b, a[..., None, :, :]).any(-1)
    return np.where(overlap, 0.0, np.minimum(d_ab, d_ba))


@dataclass
class FreeSpot:
    """A displacement for the target: `goal_xy` (2,) m, the `gap` (m) its footprint would then have to the
    nearest other footprint, and the `current_gap` it has now."""

    goal_xy: np.ndarray
    gap: float
    current_gap: float


def clearance(target: ObjectEstimate, others: list[ObjectEstimate]) -> float:
    """Gap (m) between the target's footprint and the nearest other footprint (inf when alone)."""
    if not others:
        return float("inf")
    fa = footprint(target)
    return float(np.min(rect_gap(fa[None], np.stack([footprint(o) for o in others]))))


def free_spot(target: ObjectEstimate, others: list[ObjectEstimate], needed_gap: float = 0.035,
              distances: tuple[float, ...] = (0.03, 0.05, 0.08, 0.11, 0.14), headings: int = 16) -> FreeSpot | None:
    """The nearest displacement of `target` that leaves `needed_gap` m to every footprint in `others`
    (walls and trays included), with a free start behind it for the pads; None when no candidate is on the
    table, in reach and pushable."""
    fa = footprint(target)
    centre = fa.mean(0)
    fo = np.stack([footprint(o) for o in others]) if others else np.zeros((0, 4, 2))
    now = float(np.min(rect_gap(fa[None], fo))) if len(fo) else float("inf")
    ang = np.arange(headings) * (2 * np.pi / headings)
    dirs = np.stack([np.cos(ang), np.sin(ang)], 1)  # (K, 2)
    # footprint half-size along each direction, for where the pads start (behind the object)
    half_along = np.max(np.abs((fa - centre) @ dirs.T), axis=0)  # (K,)
    # the pads' way in: from their start behind the object to its centre line, a few points (K, P, 2)
    back = (half_along + PAD_DEPTH)[:, None, None]
    path = centre - dirs[:, None, :] * back * np.linspace(1.0, 0.0, 5)[None, :, None]
    free_start = np.ones(len(dirs), bool)
    if len(fo):
        square = PAD_HALF_WIDTH * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
        pads = path[:, :, None, :] + square  # (K, P, 4, 2)
        free_start = rect_gap(pads[:, :, None], fo[None, None]).min((1, 2)) > 0.002
    best: FreeSpot | None = None
    best_key = (np.inf, np.inf, np.inf)
    for d in distances:
        moved = fa[None] + (d * dirs)[:, None, :]  # (K, 4, 2)
        gaps = rect_gap(moved[:, None], fo[None]).min(1) if len(fo) else np.full(len(dirs), np.inf)
        for k in range(len(dirs)):
            goal = centre + d * dirs[k]
            if not (free_start[k] and on_table(*goal, margin=0.05) and in_reach(*goal)):
                continue
            ok = gaps[k] >= needed_gap
            key = (0.0, d, -float(gaps[k])) if ok else (1.0, -float(gaps[k]), d)
            if key < best_key:
                best_key, best = key, FreeSpot(goal, float(gaps[k]), now)
    if best is None or best.gap <= now:
        return None
    return best
