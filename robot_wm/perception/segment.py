"""Per-camera stage: support plane, foreground and image-space segmentation on the organised grid.

Everything here works on the depth image as a grid (vectorised NumPy / scipy.ndimage, no loops over
pixels): the table plane is fitted on a strided sample, heights above it come from per-pixel world-frame
ray directions (cached per calibration), and segments are connected components of foreground pixels
after removing *boundary* pixels: depth jumps, concave creases (normals folding towards each other, as
between a stacked block and the one under it) and colour (chromaticity) edges. Boundary pixels then join
the segment next to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from robot_wm.geometry import Intrinsics, Pose
from robot_wm.perception.union_find import UnionFind
from robot_wm.perception.validate import validate_frame

log = logging.getLogger(__name__)

_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


@dataclass
class PerceptionConfig:
    """Tunable parameters (m unless named otherwise). Tuned on primitives and random_urdfs 000-699 only."""

    min_height: float = 0.0025  # foreground: at least this far above the table plane (clean depth) ...
    noisy_min_height: float = 0.005  # ... noisy depth: this + 1.2 sigma seeds segments, this + 0.3 sigma may join
    max_height: float = 0.45  # ... and at most this (above: the arm, not objects)
    workspace_x: tuple[float, float] = (0.12, 1.1)  # world xy box where objects are looked for
    workspace_y: tuple[float, float] = (-0.7, 0.7)
    robot_xy: tuple[float, float] = (0.0, 0.0)  # robot base; pixels within robot_radius of it are ignored
    robot_radius: float = 0.2
    jump_abs: float = 0.004  # depth jump between neighbours that cuts: jump_abs + jump_rel * depth
    jump_rel: float = 0.006
    normal_step: int = 2  # px, half-width of the central differences for normals
    concave_cos: float = 0.8  # cut a concave crease when the normals differ by more than ~37 deg
    chroma_edge: float = 0.05  # L1 chromaticity difference that cuts (dark pixels exempt)
    min_brightness: float = 40.0  # r + g + b below this: no colour edges
    min_segment_px: int = 25  # smaller interior components are dropped (their pixels may still join one)
    grow_iters: int = 3  # boundary pixels join an adjacent segment within this many px ...
    grow_max_cost: float = 0.6  # ... if their colour/depth feature differs by less than this
    fringe_px: int = 2  # mask-only growth over same-coloured pixels whose depth is unusable ...
    fringe_max_cost: float = 0.15  # ... if their colour feature differs from the neighbour's by less than this
    merge_chroma: float = 0.035  # adjacent segments with mean chromaticity this close (L1) are one object
    noisy_sigma: float = 0.0008  # plane residual above this: treat depth as noisy (smooth, wider thresholds)
    smooth_px: int = 5  # box smoothing of noisy depth
    table_bin: float = 0.003  # histogram bin for the table height search
    plane_inlier: float = 0.008  # |z - plane| for table inliers


@dataclass
class Segment:
    """One image-space segment of one camera: flat pixel indices (row * W + col), world points (N, 3) float32,
    RGB (N, 3) in [0, 1], world normals' z (N,) (NaN where undefined)."""

    camera: str
    pixels: np.ndarray
    points: np.ndarray
    colors: np.ndarray
    normal_z: np.ndarray
    mask_extra: np.ndarray | None = None  # more mask pixels (same colour, depth unusable): no points

    @property
    def mask(self) -> np.ndarray:
        """All image pixels of the segment (flat indices)."""
        return self.pixels if self.mask_extra is None else np.concatenate([self.pixels, self.mask_extra])

    def part(self, sel: np.ndarray) -> Segment:
        """The pixels and points `sel` (N,) bool of this segment, as a segment of its own; the extra mask
        pixels (no points to place them by) go with it when it holds at least half of the points."""
        extra = self.mask_extra if self.mask_extra is not None and sel.mean() >= 0.5 else None
        return Segment(self.camera, self.pixels[sel], self.points[sel], self.colors[sel], self.normal_z[sel], extra)


@dataclass
class FrameSegments:
    """Result of :func:`segment_frame` for one camera."""

    camera: str
    shape: tuple[int, int]
    plane: np.ndarray  # (3,) table plane z = a x + b y + c in the world frame
    plane_sigma: float  # robust std (m) of table inliers' residuals: the depth noise level seen
    table_xyz: np.ndarray  # (K, 3) sample of table-level points (world), incl. floors within plane_inlier
    camera_position: np.ndarray
    noisy: bool
    min_height: float = 0.0  # foreground threshold used (m above the table plane)
    frame: object = field(default=None, repr=False)  # the input frame (for pixels looked up later)
    segments: list[Segment] = field(default_factory=list)
    labels: np.ndarray | None = None  # (H, W) int32 segment index + 1 (0 = none), for overlays


_RAY_CACHE: dict[tuple, np.ndarray] = {}


def world_rays(k: Intrinsics, camera2world: Pose) -> np.ndarray:
    """(H, W, 3) float32 world-frame direction per pixel scaled so that point = depth * ray + camera position."""
    key = (k, tuple(np.round(camera2world.position, 9)), tuple(np.round(camera2world.quaternion, 9)))
    rays = _RAY_CACHE.get(key)
    if rays is None:
        u = (np.arange(k.width, dtype=np.float64) - k.cx) / k.fx
        v = (np.arange(k.height, dtype=np.float64) - k.cy) / k.fy
        cam = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))), axis=-1)
        rays = (cam @ camera2world.rotation.as_matrix().T).astype(np.float32)
        if len(_RAY_CACHE) > 16:
            _RAY_CACHE.clear()
        _RAY_CACHE[key] = rays
    return rays


def fit_table_plane(depth: np.ndarray, rays: np.ndarray, origin: np.ndarray, cfg: PerceptionConfig,
                    stride: int = 8) -> tuple[np.ndarray, float, np.ndarray]:
    """Dominant horizontal plane from a strided sample: height histogram mode, then two least-squares
    refits of z = a x + b y + c. Returns (plane (3,), robust residual std (m), inlier points (K, 3))."""
    d = depth[::stride, ::stride]
    r = rays[::stride, ::stride]
    ok = d > 0
    p = d[ok][:, None] * r[ok] + origin
    if len(p) < 50:
        raise ValueError("too few valid depth pixels to find the table")
    z = p[:, 2]
    q = np.floor((z - z.min()) / cfg.table_bin).astype(np.int64)
    hist = np.bincount(q)
    i = int(np.argmax(hist))
    z0 = float(z.min() + (i + 0.5) * cfg.table_bin)
    plane = np.array([0.0, 0.0, z0])
    tol = 2.5 * cfg.plane_inlier
    for _ in range(2):
        res = z - (plane[0] * p[:, 0] + plane[1] * p[:, 1] + plane[2])
        inl = np.abs(res) < tol
        a = np.column_stack([p[inl, 0], p[inl, 1], np.ones(int(inl.sum()))])
        plane = np.linalg.lstsq(a, z[inl], rcond=None)[0]
        tol = cfg.plane_inlier
    res = z - (plane[0] * p[:, 0] + plane[1] * p[:, 1] + plane[2])
    inl = np.abs(res) < cfg.plane_inlier
    sigma = float(1.4826 * np.median(np.abs(res[inl] - np.median(res[inl]))))
    return plane, sigma, p[inl]


def _box_smooth(depth: np.ndarray, size: int) -> np.ndarray:
    """Mean of valid depth over a size x size window (invalid pixels stay 0)."""
    valid = (depth > 0).astype(np.float32)
    num = ndimage.uniform_filter(depth, size, mode="nearest")
    den = ndimage.uniform_filter(valid, size, mode="nearest")
    out = np.where(den > 0.5, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)
    out[depth <= 0] = 0.0
    return out


def segment_frame(frame, cfg: PerceptionConfig | None = None) -> FrameSegments:
    """Segment one calibrated RGB-D frame (anything with name, rgb, depth, intrinsics, camera2world).

    Raises :class:`~robot_wm.perception.validate.PerceptionInputError` on bad input.
    """
    cfg = cfg or PerceptionConfig()
    k: Intrinsics = frame.intrinsics
    depth = validate_frame(frame.name, frame.rgb, frame.depth, k)
    rays = world_rays(k, frame.camera2world)
    origin = frame.camera2world.position.astype(np.float32)
    try:
        plane, sigma, table_xyz = fit_table_plane(depth, rays, origin, cfg)
    except ValueError as exc:
        from robot_wm.perception.validate import PerceptionInputError

        raise PerceptionInputError(f"camera {frame.name!r}: {exc}") from None
    noisy = sigma > cfg.noisy_sigma
    ds = depth  # raw depth for points: smoothing would invent "flying" points across occlusion edges
    h_img, w_img = ds.shape
    out = FrameSegments(frame.name, (h_img, w_img), plane, sigma, table_xyz, origin.astype(float), noisy)
    out.frame = frame

    a, b, c = (float(x) for x in plane)
    th = origin[2] - a * origin[0] - b * origin[1] - c
    min_h = cfg.noisy_min_height + 1.2 * sigma if noisy else cfg.min_height
    out.min_height = min_h
    step = cfg.normal_step * (2 if noisy else 1)
    m = step + 2
    # coarse pass on every 4th pixel finds the region of interest; everything after works inside it
    st = 4
    rs = rays[::st, ::st]
    hs = ds[::st, ::st] * (rs[..., 2] - a * rs[..., 0] - b * rs[..., 1]) + th
    fs = (ds[::st, ::st] > 0) & (hs > min_h) & (hs < cfg.max_height)
    fs[fs] = _in_workspace(ds[::st, ::st][fs][:, None] * rs[fs] + origin, cfg)
    # isolated coarse hits are noise, not objects (objects span several coarse pixels)
    fs &= ndimage.correlate(fs.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") >= 3
    rows, cols = np.nonzero(fs)
    if len(rows) == 0:
        out.labels = np.zeros((h_img, w_img), np.int32)
        return out
    r0, r1 = int(rows.min()) * st - st - m, int(rows.max()) * st + st + m + 1
    c0, c1 = int(cols.min()) * st - st - m, int(cols.max()) * st + st + m + 1
    dc = _crop(ds, r0, r1, c0, c1, 0.0)
    raysc = _crop(rays, r0, r1, c0, c1, 0.0)
    heightc = dc * (raysc[..., 2] - a * raysc[..., 0] - b * raysc[..., 1]) + th
    # hysteresis on noisy depth: pixels between the clean and the noisy cut never seed a segment, but may
    # join an adjacent one of the same colour (the growth step), so object bases are not lost to the cut
    weak_cut = cfg.noisy_min_height + 0.3 * sigma if noisy else cfg.min_height
    fgc = (dc > 0) & (heightc > weak_cut) & (heightc < cfg.max_height)
    fgc[fgc] = _in_workspace(dc[fgc][:, None] * raysc[fgc] + origin, cfg)
    fgc[:m], fgc[-m:], fgc[:, :m], fgc[:, -m:] = False, False, False, False  # neighbour lookups stay inside
    if fgc.sum() < cfg.min_segment_px:
        out.labels = np.zeros((h_img, w_img), np.int32)
        return out
    rgbc = _crop(frame.rgb[..., :3], r0, r1, c0, c1, 0) if frame.rgb is not None else None
    hc, wc = fgc.shape
    idx = np.flatnonzero(fgc)
    rays_c = raysc.reshape(-1, 3)[idx]
    pts = dc.ravel()[idx][:, None] * rays_c + origin
    grid = _Grid(fgc, dc.ravel(), idx, pts, rgbc, origin, wc)
    if noisy and cfg.smooth_px > 1:  # normals from depth smoothed over the foreground only
        grid.pts_n = _box_smooth(np.where(fgc, dc, 0.0).astype(np.float32), cfg.smooth_px).ravel()[idx][:, None] * rays_c + origin
    boundary = grid.boundaries(cfg, noisy, step)
    if noisy:
        boundary |= heightc.ravel()[idx] <= min_h
    labels_c = _label(grid, boundary, cfg)
    full = np.zeros((h_img, w_img), np.int32)
    rr, cc = np.divmod(idx, wc)
    rr, cc = rr + r0, cc + c0
    full[rr, cc] = labels_c
    extra = _colour_fringe(labels_c, idx, (hc, wc), rgbc, dc, cfg) if rgbc is not None else None
    if extra is not None:
        er, ec = np.divmod(extra[0], wc)
        full[er + r0, ec + c0] = extra[1]
    out.labels = full
    lab = labels_c
    sel = np.flatnonzero(lab)
    if len(sel) == 0:
        return out
    order = sel[np.argsort(lab[sel], kind="stable")]
    counts = np.bincount(lab[order])[1:]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    flat_full = rr[order] * w_img + cc[order]
    pts_o = pts[order].astype(np.float32)
    rgb_o = (grid.rgb[order] / 255.0).astype(np.float32) if grid.rgb is not None else np.full((len(order), 3), 0.5, np.float32)
    nz_o = np.abs(grid.normals[order, 2]).astype(np.float32)
    extra_by_label: dict[int, np.ndarray] = {}
    if extra is not None and len(extra[0]):
        er, ec = np.divmod(extra[0], wc)
        eflat = (er + r0) * w_img + (ec + c0)
        o2 = np.argsort(extra[1], kind="stable")
        ecounts = np.bincount(extra[1][o2], minlength=len(counts) + 1)[1:]
        ebounds = np.concatenate([[0], np.cumsum(ecounts)])
        for s_ in range(len(ecounts)):
            extra_by_label[s_] = eflat[o2[ebounds[s_]:ebounds[s_ + 1]]]
    for s_ in range(len(counts)):
        lo, hi = bounds[s_], bounds[s_ + 1]
        if hi > lo:
            out.segments.append(Segment(frame.name, flat_full[lo:hi], pts_o[lo:hi], rgb_o[lo:hi], nz_o[lo:hi],
                                        extra_by_label.get(s_)))
    return out


def _colour_fringe(labels: np.ndarray, idx: np.ndarray, shape: tuple[int, int], rgb: np.ndarray, d: np.ndarray,
                   cfg: PerceptionConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """Mask-only pixels: unlabelled pixels next to a segment with the segment's colour (its silhouette where
    the depth reads the background, e.g. under lateral depth noise, or the base below the height cut).
    Works on the frontier pixels only. Returns (crop flat indices, labels) or None."""
    h, w = shape
    lab = np.zeros(h * w, np.int32)
    lab[idx] = labels
    rgbf = rgb.reshape(-1, 3).astype(np.float32)
    frontier = idx[labels > 0]
    new_idx, new_lab = [], []

    def feat(i: np.ndarray) -> np.ndarray:
        c = rgbf[i]
        sm = c.sum(1, keepdims=True)
        return np.concatenate([c / np.maximum(sm, 1.0) * 3.0, c / 255.0], axis=1), sm[:, 0]

    for _ in range(cfg.fringe_px):
        if len(frontier) == 0:
            break
        cand, src = [], []
        for off in (1, -1, w, -w):
            nb = frontier + off
            ok = (nb >= 0) & (nb < h * w)
            nb, fr = nb[ok], frontier[ok]
            free = lab[nb] == 0
            cand.append(nb[free])
            src.append(fr[free])
        cand_a, src_a = np.concatenate(cand), np.concatenate(src)
        if len(cand_a) == 0:
            break
        fc, bright = feat(cand_a)
        fs, _ = feat(src_a)
        cost = np.abs(fc - fs).sum(1)
        ok = (cost < cfg.fringe_max_cost) & (bright > cfg.min_brightness)
        cand_a, src_a, cost = cand_a[ok], src_a[ok], cost[ok]
        order = np.argsort(cost, kind="stable")
        cand_a, src_a = cand_a[order], src_a[order]
        cand_a, first = np.unique(cand_a, return_index=True)
        src_a = src_a[first]
        lab[cand_a] = lab[src_a]
        new_idx.append(cand_a)
        new_lab.append(lab[cand_a])
        frontier = cand_a
    if not new_idx:
        return None
    return np.concatenate(new_idx), np.concatenate(new_lab)


def _in_workspace(p: np.ndarray, cfg: PerceptionConfig) -> np.ndarray:
    """Which world points (N, 3) lie in the workspace box and outside the robot's base circle."""
    return ((p[:, 0] > cfg.workspace_x[0]) & (p[:, 0] < cfg.workspace_x[1])
            & (p[:, 1] > cfg.workspace_y[0]) & (p[:, 1] < cfg.workspace_y[1])
            & ((p[:, 0] - cfg.robot_xy[0]) ** 2 + (p[:, 1] - cfg.robot_xy[1]) ** 2 > cfg.robot_radius ** 2))


def _crop(a: np.ndarray, r0: int, r1: int, c0: int, c1: int, fill) -> np.ndarray:
    """a[r0:r1, c0:c1] with out-of-image parts filled."""
    h, w = a.shape[:2]
    out = np.full((r1 - r0, c1 - c0) + a.shape[2:], fill, dtype=a.dtype)
    sr0, sr1, sc0, sc1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    out[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] = a[sr0:sr1, sc0:sc1]
    return out


class _Grid:
    """Foreground pixels of a (padded) crop as flat index lists, with neighbour lookups by index offset.
    Per-pixel arrays below are indexed like `idx` (N,); `pos` maps a crop flat index to its row in them."""

    def __init__(self, fg: np.ndarray, d: np.ndarray, idx: np.ndarray, pts: np.ndarray, rgb: np.ndarray | None,
                 origin: np.ndarray, width: int) -> None:
        self.fg, self.d, self.idx, self.pts, self.w = fg.ravel(), d, idx, pts, width
        self.shape = fg.shape
        self.pos = np.full(fg.size, -1, np.int64)
        self.pos[idx] = np.arange(len(idx))
        self.rgb = rgb.reshape(-1, 3)[idx].astype(np.float32) if rgb is not None else None
        self.origin = origin
        self.normals = np.full((len(idx), 3), np.nan, np.float32)
        self.pts_n = pts  # points the normals are computed from

    def nb(self, off: int) -> np.ndarray:
        """Row (in the per-pixel arrays) of each pixel's neighbour at flat offset `off`; -1 if not foreground."""
        return self.pos[self.idx + off]

    def compute_normals(self, s: int) -> None:
        w = self.w
        a, b, c, e = self.nb(s), self.nb(-s), self.nb(s * w), self.nb(-s * w)
        ok = (a >= 0) & (b >= 0) & (c >= 0) & (e >= 0)
        p = self.pts_n
        du = p[a[ok]] - p[b[ok]]
        dv = p[c[ok]] - p[e[ok]]
        n = np.cross(dv, du)
        norm = np.linalg.norm(n, axis=1, keepdims=True)
        n = n / np.maximum(norm, 1e-12)
        flip = np.sum(n * (self.origin - p[ok]), axis=1) < 0
        n[flip] *= -1
        n[norm[:, 0] < 1e-12] = np.nan
        self.normals[ok] = n

    def boundaries(self, cfg: PerceptionConfig, noisy: bool, s: int) -> np.ndarray:
        """Boundary flags (N,): depth jumps, concave creases, colour edges."""
        n_px = len(self.idx)
        b = np.zeros(n_px, bool)
        d = self.d[self.idx]
        scale = 2.0 if noisy else 1.0
        tau = (cfg.jump_abs + cfg.jump_rel * d) * scale
        for off in (1, self.w):
            j = self.nb(off)
            ok = j >= 0
            jump = np.zeros(n_px, bool)
            jump[ok] = np.abs(d[j[ok]] - d[ok]) > tau[ok]
            b |= jump
            b[j[jump]] = True
        self.compute_normals(s)
        n, p = self.normals, self.pts
        w = self.w
        for off in (s, s * w, s * w + s, s * w - s):
            i1, i2 = self.nb(-off), self.nb(off)
            ok = np.flatnonzero((i1 >= 0) & (i2 >= 0))
            a1, a2 = i1[ok], i2[ok]
            n1, n2 = n[a1], n[a2]
            cand = np.einsum("ij,ij->i", n1, n2) < cfg.concave_cos  # bent at all (NaN: no)
            if not cand.any():
                continue
            a1, a2 = a1[cand], a2[cand]
            diff = p[a2] - p[a1]
            dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            conc = np.einsum("ij,ij->i", n2[cand] - n1[cand], diff) < -0.15 * dist
            b[ok[cand][conc]] = True
        if self.rgb is not None:
            c = self.rgb
            sm = c.sum(1)
            chroma = c / np.maximum(sm, 1.0)[:, None]
            bright = sm > cfg.min_brightness
            for off in (1, w):
                j = self.nb(off)
                ok = np.flatnonzero((j >= 0) & bright)
                jj = j[ok]
                dc = np.abs(chroma[jj] - chroma[ok])
                e = ((dc[:, 0] + dc[:, 1]) + dc[:, 2] > cfg.chroma_edge) & bright[jj]  # = .sum(1), faster
                b[ok[e]] = True
                b[jj[e]] = True
        self.chroma = chroma if self.rgb is not None else None
        return b


def _label(g: _Grid, boundary: np.ndarray, cfg: PerceptionConfig) -> np.ndarray:
    """Segment label (N,) per foreground pixel: 4-connected components of the non-boundary pixels (small
    ones dropped), grown back over boundary pixels for `grow_iters` steps (each joins the 4-neighbour
    segment most like it in colour and depth, if alike enough), then colour-alike touching segments merged."""
    interior = np.zeros(g.fg.size, bool)
    interior[g.idx[~boundary]] = True
    img, n = ndimage.label(interior.reshape(g.shape), structure=_FOUR)
    labels = img.ravel()[g.idx]
    if n == 0:
        return labels
    sizes = np.bincount(labels, minlength=n + 1)
    keep = sizes >= cfg.min_segment_px
    keep[0] = False
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, int(keep.sum()) + 1)
    labels = remap[labels]
    d = g.d[g.idx]
    feat = d[:, None] * 10.0
    if g.rgb is not None:
        feat = np.concatenate([g.chroma * 3.0, g.rgb / 255.0, feat], axis=1)
    todo = np.flatnonzero(labels == 0)
    if len(todo):
        nbs, costs = [], []
        for off in (1, -1, g.w, -g.w):
            j = g.nb(off)[todo]
            cost = np.full(len(todo), np.inf, np.float32)
            ok = j >= 0
            cost[ok] = np.abs(feat[j[ok]] - feat[todo[ok]]).sum(1)
            cost[cost >= cfg.grow_max_cost] = np.inf
            nbs.append(np.where(ok, j, 0))
            costs.append(cost)
        nbs_a, costs_a = np.stack(nbs, 1), np.stack(costs, 1)
        for _ in range(cfg.grow_iters):
            cand = labels[nbs_a]
            c = np.where(cand > 0, costs_a, np.inf)
            k = np.argmin(c, axis=1)
            best = c[np.arange(len(todo)), k]
            upd = np.isfinite(best) & (labels[todo] == 0)
            if not upd.any():
                break
            labels[todo[upd]] = cand[np.arange(len(todo)), k][upd]
    if g.rgb is not None:
        labels = _merge_similar(g, labels, cfg)
    return labels


def _merge_similar(g: _Grid, labels: np.ndarray, cfg: PerceptionConfig) -> np.ndarray:
    """Merge segments that touch in the image without a depth jump and share a colour (mean chromaticity
    within `merge_chroma`): parts of one object cut by a mild concavity. Labels are renumbered 1..K."""
    n = int(labels.max()) if len(labels) else 0
    if n < 2:
        return labels
    cnt = np.bincount(labels, minlength=n + 1).astype(float)
    mean = np.stack([np.bincount(labels, g.chroma[:, i], minlength=n + 1) for i in range(3)], 1)
    mean /= np.maximum(cnt, 1)[:, None]
    d = g.d[g.idx]
    tau = cfg.jump_abs + cfg.jump_rel * d
    pairs = []
    for off, k in ((1, 1), (g.w, 1), (2, 2), (2 * g.w, 2)):
        j = g.nb(off)
        ok = np.flatnonzero(j >= 0)
        jj = j[ok]
        a, b = labels[ok], labels[jj]
        sel = (a > 0) & (b > 0) & (a != b) & (np.abs(d[jj] - d[ok]) < tau[ok] * k)
        if sel.any():
            pairs.append(np.stack([a[sel], b[sel]], 1))
    if not pairs:
        return labels
    pr, counts = np.unique(np.sort(np.concatenate(pairs), axis=1), axis=0, return_counts=True)
    sets = UnionFind(n + 1)
    merged = False
    for (a, b), k in zip(pr, counts, strict=True):
        if k >= 4 and np.abs(mean[a] - mean[b]).sum() < cfg.merge_chroma:
            sets.union(int(a), int(b))
            merged = True
    if not merged:
        return labels
    roots = np.array(sets.roots())
    _, new = np.unique(roots, return_inverse=True)
    return new[labels].astype(np.int32)
