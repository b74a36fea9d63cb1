"""Splitting touching objects of one colour by the seam the camera sees between their tops.

Two boxes of one colour pushed flush together (a millimetre apart) can have level tops of nearly the same
outline: :mod:`robot_wm.perception.plateaus` has no height step and no outline step larger than the depth
noise to cut on. Their tops still meet along a *seam*: wherever a pixel's ray falls into the gap, the
camera sees the boxes' sides or the table below instead of the top, so a thin, dashed line of pixels of
another colour runs straight across the top face — in the colour image, which carries no depth noise.
:func:`seam_cut` finds that line: per camera, the pixels of a group's top face (the top's colour, at the
top's height) and the pixels of another colour that top-face pixels enclose on both sides (along a row,
a column or a diagonal, up to ``SEAM_WIDTH_PX`` wide); those pixels' rays met with the top's plane give
world points on the seam, and a straight line through most of them, found by exhaustive two-point
hypotheses, must cross the top from edge to edge (``MIN_SEAM_COVER`` of the top's chord along it) and
leave a box-sized part (``plateaus.MIN_SIDE``) on each side; and the top must have one shade on both
sides in every camera (two level tops of one material under one light do; a crease or a bend between two
facets of one object turns the normal and the shade with it). Seams seen by several cameras add up: the
points are in the world frame.

A printed line, a crease or a sticker across one object looks the same; such an object is cut in two
(as a real robot's vision would, without touching it). The group's whole cloud (tops and sides) is cut
by the vertical plane through the seam, and each part is tried again (a row of three boxes).

World frame, metres; colours RGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robot_wm.perception.plateaus import MIN_SIDE, MIN_TOP_POINTS, UP_NORMAL_Z, _densest
from robot_wm.perception.segment import Segment

SEAM_WIDTH_PX = 4  # a seam is at most this many pixels wide (a gap under a pixel; at an angle, with a
#                     slightly taller neighbour, its side shows above the other top)
TOP_COLOUR_TOL = 0.03  # top-face pixels lie within this of the top's median colour (max over channels) ...
TOP_COLOUR_MADS = 4.0  # ... or this many median absolute deviations of the top's colours
TOP_BAND_SIGMAS = 3.0  # top-face pixels lie within this many depth-noise sigmas of the top's height ...
MIN_TOP_BAND = 0.003  # m ... and at least this
MIN_SEAM_POINTS = 6  # seam pixels on the line, at least
SEAM_TOL_PX = 1.0  # a seam pixel lies on the line within this many pixel footprints ...
SEAM_TOL_MIN = 0.001  # m ... plus this (the top's height, and so the ray's end, is uncertain)
MAX_STRAY = 0.25  # fraction of the top's enclosed off-colour pixels that may lie off the line (the top is
#                   uniform but for the seam: a mesh's facets or a curved top's shading bands are not)
MIN_SEAM_COVER = 0.75  # fraction of the top's chord along the line that seam pixels cover ...
SEAM_BIN = 0.004  # m ... measured in bins this long
CHORD_NEAR = 0.003  # m: the chord is the extent along the line of the top's points this close to it
SAME_SHADE_TOL = 1.5 / 255  # both sides' top colours (medians) agree within this (a quantisation step) ...
SAME_SHADE_SE = 3.0  # ... or this many standard errors of their difference (camera noise)
MIN_SHADE_PIXELS = 10  # top-face pixels a side needs in a camera for its shade to count
MAX_PAIRS = 2000  # line hypotheses (point pairs) tried at most; all pairs when fewer


@dataclass(frozen=True)
class SeamView:
    """What the seam test needs of one camera: `rgb` (H*W, 3) uint8, `shape` (H, W), `rays`
    (H*W, 3) world ray per pixel (point = z-depth * ray + origin), `origin` (3,) camera position, `fx` (px)."""

    rgb: np.ndarray
    shape: tuple[int, int]
    rays: np.ndarray
    origin: np.ndarray
    fx: float


def _enclosed(top: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels outside `top` (h, w) in a run of at most SEAM_WIDTH_PX such pixels with `top`
    pixels at both ends, along a row, a column or a diagonal."""
    h, w = top.shape
    m = SEAM_WIDTH_PX
    pad = np.zeros((h + 2 * m, w + 2 * m), bool)
    pad[m:m + h, m:m + w] = top

    def shifted(dy: int, dx: int) -> np.ndarray:
        return pad[m + dy:m + dy + h, m + dx:m + dx + w]

    out = np.zeros((h, w), bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        for k_before in range(1, m + 1):
            for k_after in range(1, m + 2 - k_before):
                out |= shifted(-dy * k_before, -dx * k_before) & shifted(dy * k_after, dx * k_after)
    return out & ~top


def _seam_points(pixels: np.ndarray, points: np.ndarray, colors: np.ndarray, up: np.ndarray, z_top: float,
                 band: float, view: SeamView) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(seam world xy (S, 2), their pixel footprints (S,) m, top-face world xy (T, 2), top-face colours
    (T, 3)) for one camera's segment: `pixels` flat indices, `points` (N, 3), `colors` (N, 3), `up` (N,)
    upward-facing."""
    at_top = np.abs(points[:, 2] - z_top) < band
    ref = colors[up & at_top]
    empty = np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros((0, 3))
    if len(ref) < MIN_TOP_POINTS // 2:
        return empty
    colour = np.median(ref, axis=0)
    tol = max(TOP_COLOUR_TOL, TOP_COLOUR_MADS * float(np.median(np.abs(ref - colour).max(axis=1))))
    face = at_top & (np.abs(colors - colour).max(axis=1) < tol)
    h, w = view.shape
    rows, cols = np.divmod(pixels[face], w)
    if len(rows) < MIN_TOP_POINTS // 2:
        return empty
    m = SEAM_WIDTH_PX
    r0, r1 = max(int(rows.min()) - m, 0), min(int(rows.max()) + m + 1, h)
    c0, c1 = max(int(cols.min()) - m, 0), min(int(cols.max()) + m + 1, w)
    top = np.zeros((r1 - r0, c1 - c0), bool)
    top[rows - r0, cols - c0] = True
    sr, sc = np.nonzero(_enclosed(top))
    flat = (sr + r0) * w + (sc + c0)
    # a seam pixel shows another colour (a pixel dropped by the depth sensor inside the face does not)
    flat = flat[np.abs(view.rgb[flat] / 255.0 - colour).max(axis=1) >= tol]
    rays = view.rays[flat].astype(np.float64)
    ok = np.abs(rays[:, 2]) > 1e-6
    rays, flat = rays[ok], flat[ok]
    depth = (z_top - view.origin[2]) / rays[:, 2]  # z-depth at which each ray meets the top's plane
    keep = depth > 0
    xy = (view.origin[None, :2] + depth[keep, None] * rays[keep, :2])
    return xy, depth[keep] / view.fx, points[face, :2], colors[face]


def _line_through(xy: np.ndarray, tol: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float, np.ndarray]:
    """(unit normal w (2,), offset t, inlier mask) of the line `xy @ w = t` with the most points of `xy` (S, 2)
    within their `tol` (S,), over two-point hypotheses (all pairs, or MAX_PAIRS drawn by `rng`)."""
    n = len(xy)
    i, j = np.triu_indices(n, 1)
    if len(i) > MAX_PAIRS:
        pick = rng.choice(len(i), MAX_PAIRS, replace=False)
        i, j = i[pick], j[pick]
    d = xy[j] - xy[i]
    norm = np.linalg.norm(d, axis=1)
    ok = norm > 1e-4
    i, d, norm = i[ok], d[ok], norm[ok]
    w = np.stack([-d[:, 1], d[:, 0]], axis=1) / norm[:, None]
    t = np.einsum("ij,ij->i", w, xy[i])
    inl = np.abs(xy @ w.T - t[None, :]) < tol[:, None]  # (S, hypotheses)
    best = int(np.argmax(inl.sum(axis=0)))
    mask = inl[:, best]
    # refit on the inliers (total least squares) and take the inliers again
    p = xy[mask]
    c = p.mean(axis=0)
    _, _, vt = np.linalg.svd(p - c)
    wn = vt[1]
    tn = float(wn @ c)
    mask = np.abs(xy @ wn - tn) < tol
    return wn, tn, mask


def seam_cut(segments: Sequence[Segment], views: dict[str, SeamView], sigma: float,
             rng: np.random.Generator | None = None) -> tuple[np.ndarray, float] | None:
    """The seam across a group's level top as a vertical cutting plane `(w (2,), t)` (points with
    ``xy @ w > t`` on one side), or None when no camera shows one. `segments`: the group's per-camera
    segments (``camera, pixels, points, colors, normal_z``); `views`: camera name -> :class:`SeamView`
    (cameras without one are skipped); `sigma` (m): the depth noise."""
    pts = np.concatenate([s.points for s in segments])
    nz = np.concatenate([s.normal_z for s in segments])
    up = np.isfinite(nz) & (nz > UP_NORMAL_Z)
    if up.sum() < MIN_TOP_POINTS:
        return None
    band = max(MIN_TOP_BAND, TOP_BAND_SIGMAS * sigma)
    z_top = _densest(pts[up, 2], band / 2)
    seam, foot, face, shades = [], [], [], []
    for s in segments:
        view = views.get(s.camera)
        if view is None:
            continue
        s_up = np.isfinite(s.normal_z) & (s.normal_z > UP_NORMAL_Z)
        xy, fp, f, c = _seam_points(s.pixels, s.points, s.colors, s_up, z_top, band, view)
        seam.append(xy)
        foot.append(fp)
        face.append(f)
        shades.append((f, c))
    if not seam:
        return None
    xy, fp, top = np.concatenate(seam), np.concatenate(foot), np.concatenate(face)
    if len(xy) < MIN_SEAM_POINTS or len(top) < MIN_TOP_POINTS:
        return None
    tol = SEAM_TOL_PX * fp + SEAM_TOL_MIN
    w, t, on = _line_through(xy, tol, rng if rng is not None else np.random.default_rng(0))
    if on.sum() < MIN_SEAM_POINTS or on.mean() < 1.0 - MAX_STRAY:
        return None
    across = top @ w - t
    # a box-sized part of the top on each side
    if min(float(np.percentile(across, 98)), float(-np.percentile(across, 2))) < MIN_SIDE:
        return None
    # the seam crosses the top from edge to edge
    along_dir = np.array([-w[1], w[0]])
    chord = top[np.abs(across) < CHORD_NEAR] @ along_dir
    if len(chord) < 2:
        return None
    lo, hi = np.percentile(chord, [2, 98])
    if hi - lo < MIN_SIDE:
        return None
    bins = np.arange(lo, hi + SEAM_BIN, SEAM_BIN)
    hit = np.histogram(xy[on] @ along_dir, bins=bins)[0] > 0
    if hit.mean() < MIN_SEAM_COVER:
        return None
    # one surface on both sides: a crease or a bend between two facets of one object turns the normal, and
    # so the shade, where a gap between two level tops of one colour does not
    if not all(_same_shade(f @ w > t, c) for f, c in shades):
        return None
    return w, t


def _same_shade(side: np.ndarray, colors: np.ndarray) -> bool:
    """Whether one camera's top-face colours `colors` (T, 3) on both sides of a cut (`side` (T,) bool) have
    the same median, within SAME_SHADE_TOL or SAME_SHADE_SE standard errors (sides with fewer than
    MIN_SHADE_PIXELS pixels say nothing)."""
    a, b = colors[side], colors[~side]
    if min(len(a), len(b)) < MIN_SHADE_PIXELS:
        return True
    ma, mb = np.median(a, axis=0), np.median(b, axis=0)
    spread = 1.4826 * np.median(np.abs(np.concatenate([a - ma, b - mb])), axis=0)
    se = spread * np.sqrt(np.pi / 2) * np.sqrt(1.0 / len(a) + 1.0 / len(b))  # standard error of a difference of medians
    return bool(np.all(np.abs(ma - mb) <= np.maximum(SAME_SHADE_TOL, SAME_SHADE_SE * se)))


def split_by_seams(segments: Sequence[Segment], views: dict[str, SeamView], sigma: float, min_points: int,
                   depth: int = 2) -> list[np.ndarray]:
    """Boolean masks over the concatenated points of `segments`, one per object: [all True] when no seam
    (:func:`seam_cut`) is found, else both sides of the seam, each cut again up to `depth` times. A side
    with fewer than `min_points` points is no object (no cut)."""
    pts = np.concatenate([s.points for s in segments])
    whole = [np.ones(len(pts), bool)]
    if depth <= 0:
        return whole
    cut = seam_cut(segments, views, sigma)
    if cut is None:
        return whole
    side = pts[:, :2] @ cut[0] > cut[1]
    if side.sum() < min_points or (~side).sum() < min_points:
        return whole
    bounds = np.cumsum([0] + [len(s.points) for s in segments])
    out = []
    for part in (~side, side):
        kept = [s.part(part[a:b]) for s, a, b in zip(segments, bounds[:-1], bounds[1:], strict=True)
                if part[a:b].any()]
        idx = np.flatnonzero(part)
        for sub in split_by_seams(kept, views, sigma, min_points, depth - 1):
            m = np.zeros(len(pts), bool)
            m[idx[sub]] = True
            out.append(m)
    return out
