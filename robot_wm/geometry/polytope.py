"""Convex polytopes standing for primitive solids (box, cylinder, sphere), as vertex sets."""

from __future__ import annotations

import numpy as np

PRIMITIVE_SEGMENTS = 32  # sides of the prism / rings of the polyhedron that stand for a cylinder / sphere


def primitive_polytope(shape: str, size: tuple[float, ...]) -> np.ndarray:
    """Vertices (V, 3) of a convex polytope for a primitive centred on its frame: a box exactly, a cylinder
    (axis z) as a PRIMITIVE_SEGMENTS-sided prism, a sphere as a Fibonacci polyhedron (both within 0.5 % of
    the radius)."""
    if shape == "box":
        h = np.asarray(size, float) / 2
        return np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * h
    if shape == "cylinder":
        r, half = float(size[0]), float(size[1]) / 2
        a = np.linspace(0.0, 2 * np.pi, PRIMITIVE_SEGMENTS, endpoint=False)
        ring = np.stack([r * np.cos(a), r * np.sin(a)], 1)
        return np.concatenate([np.c_[ring, np.full(len(a), -half)], np.c_[ring, np.full(len(a), half)]])
    k = np.arange(2 * PRIMITIVE_SEGMENTS) + 0.5
    phi = np.arccos(1 - 2 * k / len(k))
    theta = np.pi * (1 + 5**0.5) * k
    return float(size[0]) * np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)
