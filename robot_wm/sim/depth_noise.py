"""Kinect-style depth noise after Nguyen, Izadi and Lovell (3DIMPVT 2012).

axial  sigma_z(z, theta) = 0.0012 + 0.0019 (z - 0.4)^2 + 0.0001 / sqrt(z) * theta^2 / (pi/2 - theta)^2   [m]
lateral sigma_L(theta)   = 0.8 + 0.035 * theta / (pi/2 - theta)                                            [px]

theta is the angle between the surface normal and the camera ray, estimated from the organised depth
image. Lateral noise resamples each pixel from a Gaussian-displaced neighbour (so edges fray); axial noise
is added along the ray. NumPy only.
"""

from __future__ import annotations

import numpy as np

from robot_wm.geometry import Intrinsics, deproject_depth

MAX_THETA = np.deg2rad(80.0)


def incidence_angles(depth: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Angle (rad) between the surface normal and the viewing ray per pixel (H, W), from neighbours."""
    pts = deproject_depth(depth, k).astype(np.float64)
    du = np.gradient(pts, axis=1)
    dv = np.gradient(pts, axis=0)
    n = np.cross(du, dv)
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
    ray = pts / (np.linalg.norm(pts, axis=-1, keepdims=True) + 1e-12)
    cos = np.abs(np.sum(n * ray, axis=-1))
    theta = np.arccos(np.clip(cos, 0.0, 1.0))
    return np.minimum(np.nan_to_num(theta, nan=MAX_THETA), MAX_THETA)


def nguyen2012(depth: np.ndarray, k: Intrinsics, rng: np.random.Generator) -> np.ndarray:
    """Noisy copy of a clean depth image (H, W) float32 m; 0 stays 0 (invalid)."""
    h, w = depth.shape
    theta = incidence_angles(depth, k)
    sigma_l = 0.8 + 0.035 * theta / (np.pi / 2 - theta)
    du = np.rint(rng.normal(size=(h, w)) * sigma_l).astype(np.int64)
    dv = np.rint(rng.normal(size=(h, w)) * sigma_l).astype(np.int64)
    uu = np.clip(np.arange(w)[None, :] + du, 0, w - 1)
    vv = np.clip(np.arange(h)[:, None] + dv, 0, h - 1)
    z = depth[vv, uu].astype(np.float64)
    th = theta[vv, uu]
    safe_z = np.maximum(z, 1e-3)
    sigma_z = 0.0012 + 0.0019 * (safe_z - 0.4) ** 2 + 0.0001 / np.sqrt(safe_z) * th**2 / (np.pi / 2 - th) ** 2
    noisy = z + rng.normal(size=(h, w)) * sigma_z
    noisy[z <= 0] = 0.0
    return np.maximum(noisy, 0.0).astype(np.float32)
