"""Shape descriptors: what an object's geometry looks like, for the world model's grasp head.

A descriptor is a float vector of length ``SHAPE_DIM`` = 6 + 16^3, in the object's own (body) frame,
the frame of the state's position and quaternion (:mod:`robot_wm.model.state`):

====== ============ ===========================================================================
index  name         meaning
====== ============ ===========================================================================
0:3    centre       centre of the occupancy grid in the body frame, m
3:6    half         half-size of the grid along the body axes, m (one empty cell beyond the object)
6:     occupancy    GRID^3 cells, fraction of each cell inside the object (0..1), index [z, y, x]
====== ============ ===========================================================================

Sources: exact geometry (primitives, URDF convex hulls: what PyBullet collides) when collecting data,
the convex hull of perceived points for a perceived object, or, when nothing is known,
:func:`box_descriptor` (the bounding box, filled). :func:`sample_occupancy` reads a batch of
descriptors at arbitrary body-frame points (trilinear, 0 outside the grid) in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.spatial import ConvexHull, QhullError

GRID = 16
BOX_DIM = 6
SHAPE_DIM = BOX_DIM + GRID**3
MIN_HALF = 0.004  # m: the grid is never thinner than this (flat objects)
_SUPER = 2  # sub-samples per cell and axis for the occupancy fractions


def _grid_half(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and half-size of a grid over the box [lo, hi] with one empty cell on each side."""
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, MIN_HALF) * GRID / (GRID - 2)
    return centre, half


def descriptor_from_inside(inside: Callable[[np.ndarray], np.ndarray], lo: Sequence[float],
                           hi: Sequence[float]) -> np.ndarray:
    """Descriptor (SHAPE_DIM,) of the solid `inside(points (M, 3)) -> bool (M,)` whose body-frame bounding
    box is [lo, hi] (m)."""
    centre, half = _grid_half(np.asarray(lo, float), np.asarray(hi, float))
    n = GRID * _SUPER
    axes = [centre[i] + half[i] * ((np.arange(n) + 0.5) / n * 2 - 1) for i in range(3)]
    zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    occ = inside(pts).reshape(GRID, _SUPER, GRID, _SUPER, GRID, _SUPER).mean(axis=(1, 3, 5))
    return np.concatenate([centre, half, occ.ravel()]).astype(np.float32)


def descriptor_from_hull(vertices: np.ndarray) -> np.ndarray:
    """Descriptor of the convex hull of body-frame points (V, 3) (m); degenerate hulls become boxes."""
    v = np.asarray(vertices, float)
    lo, hi = v.min(0), v.max(0)
    try:
        eq = ConvexHull(v).equations
    except (QhullError, ValueError):
        return descriptor_from_inside(lambda p: np.ones(len(p), bool), lo, hi)
    return descriptor_from_inside(lambda p: np.all(p @ eq[:, :3].T + eq[:, 3] <= 1e-9, axis=1), lo, hi)


def descriptor_from_primitive(shape: str, size: Sequence[float]) -> np.ndarray:
    """Descriptor of a primitive centred on its body frame: box (full extents), cylinder [radius, height]
    (axis = body z), sphere [radius] — the scene contract's sizes."""
    if shape == "box":
        h = np.asarray(size, float) / 2
        return descriptor_from_inside(lambda p: np.all(np.abs(p) <= h, axis=1), -h, h)
    if shape == "cylinder":
        r, height = float(size[0]), float(size[1])
        h = np.array([r, r, height / 2])
        return descriptor_from_inside(
            lambda p: (p[:, 0] ** 2 + p[:, 1] ** 2 <= r * r) & (np.abs(p[:, 2]) <= height / 2), -h, h)
    if shape == "sphere":
        r = float(size[0])
        return descriptor_from_inside(lambda p: np.sum(p * p, axis=1) <= r * r, -np.full(3, r), np.full(3, r))
    raise ValueError(f"unknown primitive shape {shape!r}")


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
    vol = desc[:, BOX_DIM:].reshape(r, 1, GRID, GRID, GRID)
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


def pack(desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compact storage: (..., SHAPE_DIM) float -> box (..., 6) float32 and occupancy (..., GRID^3) uint8."""
    return desc[..., :BOX_DIM].astype(np.float32), np.round(desc[..., BOX_DIM:] * 255).astype(np.uint8)


def unpack(box: np.ndarray, occ: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack` (occupancy quantised to 1/255)."""
    return np.concatenate([box.astype(np.float32), occ.astype(np.float32) / 255.0], axis=-1)
