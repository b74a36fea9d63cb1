"""Shape descriptors: what an object's geometry looks like, for the world model's grasp head.

A descriptor is a float vector of length ``SHAPE_DIM`` = 6 + 16^3 + PARTS_DIM, in the object's own (body)
frame, the frame of the state's position and quaternion (:mod:`robot_wm.model.state`):

=========== ============ ======================================================================
index       name         meaning
=========== ============ ======================================================================
0:3         centre       centre of the occupancy grid in the body frame, m
3:6         half         half-size of the grid along the body axes, m (one empty cell beyond the object)
6:4102      occupancy    GRID^3 cells, fraction of each cell inside the object (0..1), index [z, y, x]
4102:       parts        the solid as a union of PARTS convex polytopes: vertices (PARTS, PART_VERTS, 3),
                         then face planes (PARTS, PART_PLANES, 5) = (unit normal n, offset b, and the
                         part's minimum of n . x) with n . x <= b inside — the part spans [min, b] along
                         n; m, body frame. Padding repeats a part's first vertex / plane and part 0, so
                         minima and maxima over them are unchanged.
=========== ============ ======================================================================

The object is a union of convex parts because that is what PyBullet collides: one convex hull per shape
of a mesh (pybullet_data's random_urdfs have 5-100 of them), so the overall convex hull would fill the
concavities between them. The grid is the union's occupancy; the polytopes let the grasp head compute
exactly whether the hand would overlap the object (:mod:`robot_wm.model.grasp_head`).

Sources: exact geometry (:func:`robot_wm.grasping.objects.collision_parts`) when collecting data, the
convex hull of perceived points for a perceived object, or, when nothing is known, :func:`box_descriptor`
(the bounding box, filled). :func:`sample_occupancy` reads a batch of descriptors at arbitrary
body-frame points (trilinear, 0 outside the grid) in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.spatial import ConvexHull, QhullError

from robot_wm.geometry.polytope import primitive_polytope

GRID = 16
BOX_DIM = 6
OCC_DIM = GRID**3
PARTS = 8  # convex parts kept per object (beyond: the smallest is merged into the nearest, repeatedly)
PART_VERTS = 32  # hull vertices per part (beyond: a farthest-point subset)
PART_PLANES = 64  # face planes per part (a hull of 32 vertices has at most 60 faces)
PLANE_DIM = 5  # unit normal n (3), offset b = max over the part of n . x, and the minimum of n . x
PARTS_DIM = PARTS * (PART_VERTS * 3 + PART_PLANES * PLANE_DIM)
SHAPE_DIM = BOX_DIM + OCC_DIM + PARTS_DIM
MIN_HALF = 0.004  # m: the grid is never thinner than this (flat objects)
_SUPER = 2  # sub-samples per cell and axis for the occupancy fractions


def _grid_half(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-size of a grid over the box [lo, hi] with one empty cell on each side."""
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, MIN_HALF) * GRID / (GRID - 2)
    return centre, half


def _hull(points: np.ndarray) -> ConvexHull | None:
    try:
        return ConvexHull(points)
    except (QhullError, ValueError):
        return None


def farthest_subset(v: np.ndarray, n: int) -> np.ndarray:
    """n of the points v (V, 3) spread by farthest-point sampling (from the point farthest from the mean)."""
    chosen = [int(np.argmax(np.linalg.norm(v - v.mean(0), axis=1)))]
    d = np.linalg.norm(v - v[chosen[0]], axis=1)
    for _ in range(n - 1):
        chosen.append(int(np.argmax(d)))
        d = np.minimum(d, np.linalg.norm(v - v[chosen[-1]], axis=1))
    return v[chosen]


def _merge_parts(hulls: list[ConvexHull]) -> list[np.ndarray]:
    """Vertex sets of at most PARTS convex parts: while there are more, the smallest (by hull volume) joins
    the part whose centroid is nearest (their convex hull replaces both: a slight over-approximation)."""
    parts = [h.points[h.vertices] for h in hulls]
    vols = [h.volume for h in hulls]
    while len(parts) > PARTS:
        i = int(np.argmin(vols))
        c = [p.mean(0) for p in parts]
        d = [np.inf if j == i else float(np.linalg.norm(c[j] - c[i])) for j in range(len(parts))]
        j = int(np.argmin(d))
        merged = np.vstack([parts[i], parts[j]])
        h = _hull(merged)
        parts[j], vols[j] = (merged, vols[i] + vols[j]) if h is None else (h.points[h.vertices], h.volume)
        del parts[i], vols[i]
    return parts


def _part_block(parts: list[np.ndarray], hulls: list[ConvexHull]) -> np.ndarray:
    """The PARTS_DIM polytope block of convex point sets (each (V_i, 3), body frame) given their hulls (the
    degenerate ones left out); see the module doc."""
    if not hulls:  # flat or degenerate: its bounding box
        pts = np.concatenate([np.asarray(p, float) for p in parts])
        lo, hi = pts.min(0), np.maximum(pts.max(0), pts.min(0) + 1e-4)
        hulls = [ConvexHull(np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                                      for z in (lo[2], hi[2])]))]
    verts = np.zeros((PARTS, PART_VERTS, 3))
    planes = np.zeros((PARTS, PART_PLANES, PLANE_DIM))
    for k, p in enumerate(_merge_parts(hulls)):
        if len(p) > PART_VERTS:
            p = farthest_subset(p, PART_VERTS)
        h = _hull(p)
        v = p if h is None else h.points[h.vertices]
        eq = np.array([[0.0, 0.0, 1.0, -v[:, 2].max()]]) if h is None else np.unique(np.round(h.equations, 9), axis=0)
        verts[k] = np.concatenate([v, np.repeat(v[:1], PART_VERTS - len(v), 0)])
        pl = np.concatenate([eq[:, :3], -eq[:, 3:], (v @ eq[:, :3].T).min(0)[:, None]], axis=1)
        planes[k] = np.concatenate([pl, np.repeat(pl[:1], PART_PLANES - len(pl), 0)])
        n = k + 1
    verts[n:], planes[n:] = verts[0], planes[0]
    return np.concatenate([verts.ravel(), planes.ravel()])


def split_parts(desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of a descriptor batch (R, SHAPE_DIM): part vertices (R, PARTS, PART_VERTS, 3) and planes
    (R, PARTS, PART_PLANES, PLANE_DIM)."""
    r = desc.shape[0]
    lo = BOX_DIM + OCC_DIM
    mid = lo + PARTS * PART_VERTS * 3
    return desc[:, lo:mid].reshape(r, PARTS, PART_VERTS, 3), desc[:, mid:].reshape(r, PARTS, PART_PLANES, PLANE_DIM)


def _grid(inside: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Grid box (6,) and occupancy (GRID^3,) of the solid `inside(points (M, 3)) -> bool (M,)` whose
    body-frame bounding box is [lo, hi] (m)."""
    centre, half = _grid_half(np.asarray(lo, float), np.asarray(hi, float))
    n = GRID * _SUPER
    axes = [centre[i] + half[i] * ((np.arange(n) + 0.5) / n * 2 - 1) for i in range(3)]
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    occ = inside(pts).reshape(GRID, _SUPER, GRID, _SUPER, GRID, _SUPER).mean(axis=(1, 3, 5))
    return np.concatenate([centre, half, occ.ravel()])


def descriptor_from_parts(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Descriptor (SHAPE_DIM,) of the union of the convex hulls of point sets (each (V_i, 3), body frame,
    m) — an object as PyBullet collides it (:func:`robot_wm.grasping.objects.collision_parts`)."""
    parts = [np.asarray(p, float) for p in parts]
    pts = np.concatenate(parts)
    lo, hi = pts.min(0), pts.max(0)
    hulls = [h for h in (_hull(p) for p in parts) if h is not None]

    def inside(x: np.ndarray) -> np.ndarray:
        if not hulls:  # degenerate: the filled bounding box
            return np.ones(len(x), bool)
        out = np.zeros(len(x), bool)
        for h in hulls:  # points in the part's bounding box, then its planes
            v = h.points[h.vertices]
            near = np.flatnonzero(np.all((x >= v.min(0)) & (x <= v.max(0)), axis=1))
            eq = h.equations
            out[near[np.all(x[near] @ eq[:, :3].T + eq[:, 3] <= 1e-9, axis=1)]] = True
        return out

    return np.concatenate([_grid(inside, lo, hi), _part_block(parts, hulls)]).astype(np.float32)


def descriptor_from_hull(vertices: np.ndarray) -> np.ndarray:
    """Descriptor of the convex hull of body-frame points (V, 3) (m); degenerate hulls become boxes."""
    return descriptor_from_parts([vertices])


def descriptor_from_primitive(shape: str, size: Sequence[float]) -> np.ndarray:
    """Descriptor of a primitive centred on its body frame: box (full extents), cylinder [radius, height]
    (axis = body z), sphere [radius] — the scene contract's sizes. The grid is the exact solid; the
    polytope is :func:`robot_wm.geometry.polytope.primitive_polytope`."""

    if shape == "box":
        h = np.asarray(size, float) / 2
        grid = _grid(lambda p: np.all(np.abs(p) <= h, axis=1), -h, h)
    elif shape == "cylinder":
        r, height = float(size[0]), float(size[1])
        h = np.array([r, r, height / 2])
        grid = _grid(lambda p: (p[:, 0] ** 2 + p[:, 1] ** 2 <= r * r) & (np.abs(p[:, 2]) <= height / 2), -h, h)
    elif shape == "sphere":
        r = float(size[0])
        grid = _grid(lambda p: np.sum(p * p, axis=1) <= r * r, -np.full(3, r), np.full(3, r))
    else:
        raise ValueError(f"unknown primitive shape {shape!r}")
    poly = primitive_polytope(shape, tuple(size))
    return np.concatenate([grid, _part_block([poly], [ConvexHull(poly)])]).astype(np.float32)


def box_descriptor(extents: Sequence[float]) -> np.ndarray:
    """The prior when nothing but the bounding box is known: the box (centred on the body frame), filled."""
    return descriptor_from_primitive("box", extents)


def sample_occupancy(desc: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Occupancy (R, P) in [0, 1] of R descriptors (R, SHAPE_DIM) at body-frame points (R, P, 3) (m),
    trilinear between cell centres, 0 outside the grid."""
    return sample_grid(desc, (points - desc[:, None, 0:3]) / desc[:, None, 3:6])


def sample_grid(desc: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """:func:`sample_occupancy` at normalised grid coordinates (R, P, 3) ((point - centre) / half, so
    the grid spans [-1, 1] per axis)."""
    r, p, _ = coords.shape
    vol = desc[:, BOX_DIM:BOX_DIM + OCC_DIM].reshape(r, 1, GRID, GRID, GRID)
    out = torch.nn.functional.grid_sample(vol, coords.reshape(r, p, 1, 1, 3), mode="bilinear",
                                          padding_mode="zeros", align_corners=False)
    return out.reshape(r, p)


def box_occupancy(coords: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """What :func:`sample_grid` reads from a :func:`box_descriptor` at normalised coordinates (..., 3),
    in closed form: the box grid is the outer product of 1-D indicators (empty border cell, full inside),
    so its trilinear interpolation is the product of three 1-D ramps. `inplace`: `coords` is overwritten."""
    ramp = coords.abs_() if inplace else coords.abs()
    ramp.neg_().add_(1.0 - 1.0 / GRID).mul_(GRID / 2).clamp_(0.0, 1.0)
    return ramp[..., 0] * ramp[..., 1] * ramp[..., 2]


def pack(desc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compact storage: (..., SHAPE_DIM) float -> box (..., 6) float32, occupancy (..., GRID^3) uint8 and
    parts (..., PARTS_DIM) float32."""
    occ = desc[..., BOX_DIM:BOX_DIM + OCC_DIM]
    return (desc[..., :BOX_DIM].astype(np.float32), np.round(occ * 255).astype(np.uint8),
            desc[..., BOX_DIM + OCC_DIM:].astype(np.float32))


def unpack(box: np.ndarray, occ: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack` (occupancy quantised to 1/255)."""
    return np.concatenate([box.astype(np.float32), occ.astype(np.float32) / 255.0, parts.astype(np.float32)],
                          axis=-1)
