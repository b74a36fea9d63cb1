"""Checks on RGB-D input before perception. Every problem is one line naming the camera and what is wrong.

Documented handling (not errors): NaN / +-inf / negative depth pixels are treated as invalid (0);
depth given as uint16 millimetres (the usual driver format) is converted to float32 metres.
Errors: wrong shape or dtype, all-zero depth, float depth that looks like millimetres, RGB/depth size
mismatch, and an image size that does not match the calibration.
"""

from __future__ import annotations

import logging

import numpy as np

from robot_wm.geometry import Intrinsics

log = logging.getLogger(__name__)

MAX_PLAUSIBLE_DEPTH_M = 20.0  # a float depth image whose median valid value exceeds this is in millimetres


class PerceptionInputError(ValueError):
    """Bad RGB-D input; the message is one line."""


def validate_frame(name: str, rgb: np.ndarray | None, depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Check one frame and return its depth as a clean float32 (H, W) array in metres with 0 = invalid.

    rgb: (H, W, 3) uint8 or None; depth: (H, W) float (m) or uint16 (mm). Raises PerceptionInputError.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise PerceptionInputError(f"camera {name!r}: depth must be (H, W), got shape {depth.shape}")
    if depth.dtype == np.uint16:
        log.debug("camera %s: uint16 depth read as millimetres", name)
        depth = depth.astype(np.float32) / 1000.0
    elif depth.dtype.kind != "f":
        raise PerceptionInputError(
            f"camera {name!r}: depth dtype must be float32 metres (or uint16 millimetres), got {depth.dtype}")
    h, w = depth.shape
    k = intrinsics
    if not (k.fx > 0 and k.fy > 0 and -0.5 <= k.cx <= k.width - 0.5 and -0.5 <= k.cy <= k.height - 0.5):
        raise PerceptionInputError(
            f"camera {name!r}: calibration is not a valid pinhole (fx {k.fx}, fy {k.fy}, principal point "
            f"({k.cx}, {k.cy}) must lie in the {k.width}x{k.height} image)")
    if (w, h) != (intrinsics.width, intrinsics.height):
        raise PerceptionInputError(
            f"camera {name!r}: image is {w}x{h} but the calibration says {intrinsics.width}x{intrinsics.height}")
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
            raise PerceptionInputError(f"camera {name!r}: rgb must be (H, W, 3), got shape {rgb.shape}")
        if rgb.shape[:2] != depth.shape:
            raise PerceptionInputError(
                f"camera {name!r}: rgb is {rgb.shape[1]}x{rgb.shape[0]} but depth is {w}x{h}")
        if rgb.dtype != np.uint8:
            raise PerceptionInputError(f"camera {name!r}: rgb dtype must be uint8, got {rgb.dtype}")
    d = depth.astype(np.float32, copy=True)
    if d.size and d.min() >= 0 and d.max() < np.inf:  # fast path: nothing to clean (NaN fails both tests)
        bad = None
    else:
        bad = ~np.isfinite(d) | (d < 0)
    if bad is not None and bad.any():
        log.debug("camera %s: %d NaN/inf/negative depth pixels treated as invalid", name, int(bad.sum()))
        d[bad] = 0.0
    sample = d[::8, ::8]
    sample = sample[sample > 0]
    if len(sample) == 0 and not (d > 0).any():
        raise PerceptionInputError(f"camera {name!r}: depth has no valid pixels (all zero, NaN or inf)")
    med = float(np.median(sample)) if len(sample) else float(np.median(d[d > 0]))
    if med > MAX_PLAUSIBLE_DEPTH_M:
        raise PerceptionInputError(
            f"camera {name!r}: depth looks like millimetres (median {med:.0f}); give float32 metres")
    return d
