"""One surface cut in two by an object in front of it, in one camera's image, or seen in pieces by none.

A box seen behind a bottle, or the top of a stack's lower box seen on both sides of the box it carries, shows
up in the image as two segments of one colour with another object's pixels between them. Colour and depth
jumps cannot join them (the occluder's pixels separate them); what can is where the gap between them lies:
:func:`joined_across_occluder` asks whether the straight lines between the two segments' nearest points lie
behind the occluder as this camera sees it — its measured depth there is nearer than the line, and the pixel
belongs to a segment of another colour — where they do not run over the two segments' own surfaces, and
whether no camera saw through them. Two objects of one colour
side by side fail it: the gap between them is seen (free, or as their own faces), or it lies behind one of
them rather than behind an object of another colour; segments that touch are left to the other rules.
:func:`unseen_gap` says when no camera saw the space between two segments at all (a leaning slab's foot seen
by one camera and its upper edge by another): the pipeline joins a sliver to its object across such a gap.

World frame, metres; depth images are z-depth in the optical frame (0 or non-finite = invalid).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree

from robot_wm.perception.free_space import measured_depth

MAX_GAP = 0.1  # m: segments further apart than this are not tried (an occluder is narrower than this)
LINE_PAIRS = 12  # the lines between this many closest point pairs ...
LINE_SAMPLES = np.linspace(0.1, 0.9, 9)  # ... sampled at these fractions of their length
MIN_OCCLUDED = 0.2  # fraction of the samples behind an occluder of another colour in the segments' camera ...
MIN_BEHIND = 0.8  # ... and behind it or on the segments' own surfaces
MAX_FREE = 0.2  # fraction of the samples some camera saw that were seen free, at most
DEPTH_TOLERANCE = 0.004  # m: measured depth this much nearer than a sample is something in front of it
MAX_SEEN = 0.05  # a gap no camera saw: at most this fraction of its samples seen (free or occupied)


def gap_samples(a: np.ndarray, b: np.ndarray, tree_b: cKDTree | None = None) -> tuple[np.ndarray, float]:
    """(samples (LINE_PAIRS * len(LINE_SAMPLES), 3), gap m): points on the straight lines between the
    LINE_PAIRS closest pairs of world points `a` (N, 3) and `b` (M, 3) (each point of `a` paired with its
    nearest in `b`), and the closest pair's distance."""
    d, nn = (tree_b or cKDTree(b)).query(a)
    order = np.argsort(d)[:LINE_PAIRS]
    p, q = a[order], b[nn[order]]
    t = LINE_SAMPLES[None, :, None]
    return (p[:, None, :] * (1 - t) + q[:, None, :] * t).reshape(-1, 3), float(d[order[0]])


def pixel_labels(frame, labels: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label (K,), behind (K,) bool, pixel (K,) flat index or -1) for world `points` (K, 3) in the camera of
    `frame` (``depth``,
    ``intrinsics``, ``camera2world``): the label (`labels` (H, W), 0 = none) of the pixel each point falls on,
    -1 where the camera has no depth for it (outside the image, behind the camera, invalid depth) or its
    measured depth lies beyond the point (seen through); `behind` where the measured depth is more than
    DEPTH_TOLERANCE nearer than the point (something in front hides it). A labelled point not behind is on
    the labelled surface (measured at its own depth)."""
    cam, d, pixel = measured_depth(frame, np.asarray(points, float).reshape(-1, 3))
    out = np.full(len(cam), -1, np.int64)
    valid = np.isfinite(d) & (d > 0)
    behind = valid & (d < cam[:, 2] - DEPTH_TOLERANCE)
    labelled = behind | (valid & (np.abs(d - cam[:, 2]) <= DEPTH_TOLERANCE))
    out[labelled] = labels.ravel()[pixel[labelled]]
    return out, behind, pixel


def joined_across_occluder(a: np.ndarray, b: np.ndarray, own: tuple[int, int], frame, labels: np.ndarray,
                           same_colour: Callable[[int], bool],
                           seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
                           min_gap: float, tree_b: cKDTree | None = None,
                           colour: tuple[np.ndarray, float] | None = None) -> bool:
    """True when the points `a` (N, 3) and `b` (M, 3) of two segments of one camera (`frame`, its label image
    `labels`; the segments' own labels `own`) are one surface that something in front cuts in two: they are
    between `min_gap` and MAX_GAP apart, and of the samples on the lines between them at least MIN_OCCLUDED
    lie behind a labelled segment that is not one of them and not of their colour (`same_colour(label)`) and
    MIN_BEHIND lie behind one or on the two segments' own surfaces (the gap runs over what is seen of them and
    under the occluder) — or on an unlabelled surface of their colour (`colour` = (chromaticity (3,), L1
    tolerance), looked up in ``frame.rgb``); with `seen_free` (every camera), at most MAX_FREE of the samples
    some camera saw were seen free."""
    samples, gap = gap_samples(a, b, tree_b)
    if not (min_gap <= gap <= MAX_GAP):
        return False
    lab, behind, pixel = pixel_labels(frame, labels, samples)
    other = behind & (lab > 0) & (lab != own[0]) & (lab != own[1])
    for v in np.unique(lab[other]):
        if same_colour(int(v)):
            other &= lab != v
    on_own = ~behind & ((lab == own[0]) | (lab == own[1]))
    bare = ~behind & (lab == 0)  # a surface no segment kept (edge pixels, dropped specks): its colour decides
    if bare.any() and colour is not None and getattr(frame, "rgb", None) is not None:
        rgb = np.asarray(frame.rgb)[..., :3].reshape(-1, 3)[pixel[bare]].astype(float)
        chroma = rgb / np.maximum(rgb.sum(1, keepdims=True), 1.0)
        on_own[np.flatnonzero(bare)] = np.abs(chroma - colour[0]).sum(1) < colour[1]
    if other.mean() < MIN_OCCLUDED or (other | on_own).mean() < MIN_BEHIND:
        return False
    if seen_free is None:
        return True
    free, seen = seen_free(samples)
    return not seen.any() or float(free[seen].mean()) <= MAX_FREE


def unseen_gap(a: np.ndarray, b: np.ndarray,
               seen_free: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], tree_b: cKDTree | None = None) -> bool:
    """True when no camera saw the gap between world points `a` (N, 3) and `b` (M, 3): at most MAX_SEEN of
    the samples on the lines between their closest pairs (:func:`gap_samples`) were seen by `seen_free`
    (every camera), free or occupied — what lies between them is hidden from every camera, so it may be
    the same object."""
    samples, _ = gap_samples(a, b, tree_b)
    _, seen = seen_free(samples)
    return float(seen.mean()) <= MAX_SEEN
