"""Kinect-style depth noise after Nguyen, Izadi and Lovell (3DIMPVT 2012).

axial  sigma_z(z, theta) = 0.0012 + 0.0019 (z - 0.4)^2 + 0.0001 / sqrt(z) * theta^2 / (pi/2 - theta)^2   [m]
lateral sigma_L(theta)   = 0.8 + 0.035 * theta / (pi/2 - theta)                                            [px]

theta is the angle between the surface normal and the camera ray, estimated from the organised depth
image. Lateral noise resamples each pixel from a Gaussian-displaced neighbour (so edges fray); axial noise
is added along the ray.

``nguyen2012_dropout`` adds what structured-light sensors (Kinect v1, RealSense in IR-projector mode) do
besides: pixels with no depth. It invalidates :data:`DROPOUT_RATE` (1 %) of the valid pixels, drawn without
replacement with weights that put them at depth edges first: the far side of a depth jump (the band a
projector offset from the camera cannot light, :data:`SHADOW_BAND_PX` wide) weighs :data:`W_SHADOW`, the
near side of a jump :data:`W_OCCLUDER`, surfaces seen at grazing incidence (> :data:`GRAZING_DEG`)
:data:`W_GRAZING`, every other pixel 1. Invalid = 0, the depth convention. NumPy/SciPy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from robot_wm.geometry import Intrinsics, deproject_depth

MAX_THETA = np.deg2rad(80.0)
DROPOUT_RATE = 0.01  # fraction of the valid pixels a dropout model invalidates
EDGE_JUMP_M, EDGE_JUMP_REL = 0.01, 0.02  # a depth jump between neighbours: > 1 cm + 2 % of the depth
SHADOW_BAND_PX = 2  # pixels on the far side of a jump that count as its shadow
W_SHADOW, W_OCCLUDER, W_GRAZING = 200.0, 50.0, 10.0  # dropout weights relative to an ordinary pixel (1)
GRAZING_DEG = 70.0


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


def nguyen2012(depth: np.ndarray, k: Intrinsics, rng: np.random.Generator,
               theta: np.ndarray | None = None) -> np.ndarray:
    """Noisy copy of a clean depth image (H, W) float32 m; 0 stays 0 (invalid). `theta`: the
    :func:`incidence_angles` of `depth` when already computed."""
    h, w = depth.shape
    theta = incidence_angles(depth, k) if theta is None else theta
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


def depth_edges(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(far side, near side) bool masks (H, W) of the valid pixels next to a depth jump (> EDGE_JUMP_M +
    EDGE_JUMP_REL * depth between 8-neighbours) in a depth image (H, W) m; the far side is widened to a
    band of SHADOW_BAND_PX pixels behind the occluding edge."""
    z = np.asarray(depth, dtype=np.float32)
    valid = z > 0
    big = np.float32(np.inf)
    zmin = ndimage.minimum_filter(np.where(valid, z, big), size=3, mode="nearest")  # nearest valid neighbour
    zmax = ndimage.maximum_filter(np.where(valid, z, 0), size=3, mode="nearest")
    jump = EDGE_JUMP_M + EDGE_JUMP_REL * z
    far = valid & (z - zmin > jump)  # a neighbour is much nearer: this pixel is behind an occluding edge
    near = valid & (zmax - z > jump)  # a neighbour is much farther: this pixel is on the occluder's rim
    if SHADOW_BAND_PX > 1:
        band = ndimage.binary_dilation(far, iterations=SHADOW_BAND_PX - 1) & valid & ~near
        far = far | band
    return far, near & ~far


def dropout_mask(depth: np.ndarray, k: Intrinsics, rng: np.random.Generator, rate: float = DROPOUT_RATE,
                 theta: np.ndarray | None = None) -> np.ndarray:
    """Bool mask (H, W) of round(rate * valid pixels) pixels of a clean depth image (H, W) m to invalidate,
    drawn without replacement with the edge-first weights of the module docstring (exponential keys:
    the k smallest of E_i / w_i). `theta`: its :func:`incidence_angles` when already computed."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must lie in [0, 1] (got {rate})")
    valid = depth > 0
    n_valid = int(valid.sum())
    n_drop = int(round(rate * n_valid))
    mask = np.zeros(depth.shape, dtype=bool)
    keys = rng.exponential(size=depth.shape)  # drawn whatever the image holds: the stream stays aligned
    if n_drop == 0:
        return mask
    theta = incidence_angles(depth, k) if theta is None else theta
    far, near = depth_edges(depth)
    weight = np.where(far, W_SHADOW, np.where(near, W_OCCLUDER, 1.0))
    weight = np.where(~far & ~near & (theta > np.deg2rad(GRAZING_DEG)), W_GRAZING, weight)
    score = np.where(valid, keys / weight, np.inf).ravel()
    mask.ravel()[np.argpartition(score, n_drop - 1)[:n_drop]] = True
    return mask


def nguyen2012_dropout(depth: np.ndarray, k: Intrinsics, rng: np.random.Generator,
                       rate: float = DROPOUT_RATE) -> np.ndarray:
    """:func:`nguyen2012` noise plus structured-light dropout: `rate` of the valid pixels of the clean
    depth (H, W) m set to 0 (invalid), at depth edges first (:func:`dropout_mask`). float32 (H, W) m."""
    theta = incidence_angles(depth, k)
    noisy = nguyen2012(depth, k, rng, theta)
    noisy[dropout_mask(depth, k, rng, rate, theta)] = 0.0
    return noisy


# calibration ``depth_noise`` value -> model (depth (H, W) m, intrinsics, rng) -> noisy depth; "none" is absent
DEPTH_NOISE_MODELS: dict[str, Callable[[np.ndarray, Intrinsics, np.random.Generator], np.ndarray]] = {
    "nguyen2012": nguyen2012,
    "nguyen2012_dropout": nguyen2012_dropout,
}
