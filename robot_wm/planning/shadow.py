"""Shadow-world grasp verification: before the arm moves, the chosen grasp is executed — close, lift,
shake, pull — in a physics world rebuilt only from what perception reported, never the true state.

The shadow object (:func:`shadow_geometry`) is the convex hull of the object's perceived points extended
straight down to its support (the camera never sees the underside), or the perceived oriented box when
there are too few points. Depth noise would inflate that hull — its vertices are the cloud's extremes, a
few sigma outside the surface, and flying pixels at depth edges lie centimetres out — and the hand would
"collide" with air. So the geometry is filtered with a surface tolerance measured from the cloud itself
(:func:`surface_noise`: the median residual of local plane fits, ~0 for clean depth, 1-2 mm for a
structured-light sensor at 1 m): points further than ``CLIP_SIGMAS`` sigma outside the perceived box (which
perception fits with trimmed percentiles) are dropped, and the hull is eroded by ``ERODE_SIGMAS`` sigma, the
expected overshoot of the extremes of a few hundred noisy samples of a face. Each verdict carries the
sigma, the points dropped and the erosion, so a caller can see how uncertain the geometry was.

A block carrying a load shows only its sides (its top is under the load), often only the one or two facing
the cameras: the hull of those points is a slab on one side of the block, and the verifier's fingers close
on air or start inside it. Perception places the block's box from more than its points (the support
footprint, the load, free space), so when the points span less than ``MIRROR_SPAN`` of the box along
either horizontal axis, they are completed by central symmetry about the box's vertical axis (each point
also mirrored through it), as a box, a cylinder and most table-top objects are.

Mass and friction cannot be seen: the shadow uses deliberately unfavourable values, so a grasp that holds
there should hold on the real object.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull, HalfspaceIntersection, QhullError, cKDTree

from robot_wm.geometry import Pose
from robot_wm.grasping import Grasp, ObjectModel, ShakeConfig, load_shake_config, robust_shake_test
from robot_wm.grasping.shake import ShakeResult
from robot_wm.perception.estimate import ObjectEstimate

SHADOW_MASS = 0.2  # kg: the heavy end of the objects the demo handles, so verification errs on the safe side
SHADOW_FRICTION = 0.5  # lateral friction coefficient, below what table-top objects usually have
MIN_HULL_POINTS = 30
NOISE_NEIGHBOURS = 10  # points in each local plane fit of surface_noise
NOISE_SAMPLE = 2000  # at most this many plane fits (evenly spaced over the cloud)
CLIP_SIGMAS = 2.0  # points further than this many sigma outside the perceived box are outliers
MIN_CLIP = 0.001  # m: ... and never closer than this (clean depth)
ERODE_SIGMAS = 3.0  # the hull shrinks by this many sigma (its vertices are the noise's extremes)
MAX_ERODE_FRACTION = 0.4  # never more than this fraction of the hull's inner radius
MIRROR_SPAN = 0.9  # points spanning less than this fraction of the box along x or y are completed by symmetry


def surface_noise(points: np.ndarray, k: int = NOISE_NEIGHBOURS) -> float:
    """Depth noise (m) of a cloud (N, 3): the median over (at most NOISE_SAMPLE) points of the residual
    std normal to the plane fitted to each point's `k` nearest neighbours. ~0 on clean depth of flat or
    gently curved surfaces, about the sensor's axial sigma on noisy depth; 0 with too few points."""
    pts = np.asarray(points, float).reshape(-1, 3)
    if len(pts) <= k:
        return 0.0
    sample = pts if len(pts) <= NOISE_SAMPLE else pts[np.linspace(0, len(pts) - 1, NOISE_SAMPLE).astype(int)]
    _, idx = cKDTree(pts).query(sample, k=k)
    nb = pts[idx] - pts[idx].mean(axis=1, keepdims=True)
    smallest = np.linalg.eigvalsh(np.einsum("nki,nkj->nij", nb, nb) / (k - 1))[:, 0]
    return float(np.sqrt(np.median(np.clip(smallest, 0.0, None))))


def eroded_hull_vertices(points: np.ndarray, depth: float) -> np.ndarray:
    """Vertices (V, 3) of the convex hull of `points` (N, 3) with every facet moved inwards by `depth` m
    (at most MAX_ERODE_FRACTION of the distance from the vertices' centroid to the nearest facet)."""
    hull = ConvexHull(points)
    if depth <= 0:
        return points[hull.vertices]
    eq = hull.equations.copy()  # n . x + d <= 0 inside, n unit
    centre = points[hull.vertices].mean(axis=0)
    inner = float(np.min(-(eq[:, :3] @ centre + eq[:, 3])))
    eq[:, 3] += min(depth, MAX_ERODE_FRACTION * inner)
    return HalfspaceIntersection(eq, centre).intersections


@dataclass
class ShadowGeometry:
    """The shadow object of a perceived object and how sure its geometry is: `model` and its world `pose`;
    `sigma` (m) the cloud's surface noise, `points_used` / `points_dropped` (outliers outside the box),
    `eroded` (m) how far the hull was shrunk, `mirrored` whether the points were completed by symmetry
    (:data:`MIRROR_SPAN`); `model.shape` is "box" when the points could not be used."""

    model: ObjectModel
    pose: Pose
    sigma: float = 0.0
    points_used: int = 0
    points_dropped: int = 0
    eroded: float = 0.0
    mirrored: bool = False


def shadow_geometry(est: ObjectEstimate, mass: float = SHADOW_MASS,
                    friction: float = SHADOW_FRICTION) -> ShadowGeometry:
    """The shadow object of `est` (module docstring): the filtered, eroded hull of its points (world frame)
    extended down to `est.bottom_z`, in the frame of `est.pose`; its box with too few points."""
    pose = est.pose
    pts = None if est.points is None else np.asarray(est.points, float).reshape(-1, 3)
    pts = None if pts is None else pts[np.all(np.isfinite(pts), axis=1)]
    box = ObjectModel(est.id, "box", tuple(float(e) for e in est.extents), mass=mass, friction=friction)
    if pts is None or len(pts) < MIN_HULL_POINTS:
        return ShadowGeometry(box, pose)
    sigma = surface_noise(pts)
    local = pose.inverse().transform_points(pts)
    half = np.asarray(est.extents, float) / 2 + max(CLIP_SIGMAS * sigma, MIN_CLIP)
    local = local[np.all(np.abs(local) <= half, axis=1)]
    dropped = len(pts) - len(local)
    used = len(local)
    if used >= MIN_HULL_POINTS:
        local, mirrored = mirror_completed(local, np.asarray(est.extents, float))
        try:
            erode = ERODE_SIGMAS * sigma
            top = pose.transform_points(eroded_hull_vertices(local, erode))
            foot = top.copy()
            foot[:, 2] = est.bottom_z
            both = pose.inverse().transform_points(np.vstack([top, foot]))
            hull = both[ConvexHull(both).vertices]
            model = ObjectModel(est.id, "hull", tuple(hull.reshape(-1).tolist()), mass=mass, friction=friction)
            return ShadowGeometry(model, pose, sigma, used, dropped, erode, mirrored)
        except (QhullError, ValueError):
            pass  # flat or degenerate cloud: use the box
    return ShadowGeometry(box, pose, sigma, used, dropped)


def mirror_completed(local: np.ndarray, extents: np.ndarray, span: float = MIRROR_SPAN) -> tuple[np.ndarray, bool]:
    """(points, completed): `local` (N, 3), points in the perceived box's frame (centre at the origin, z up),
    with each point's mirror image through the box's vertical axis ((x, y, z) -> (-x, -y, z)) added when the
    points span less than `span` of the box's `extents` (3,) m along x or y; else the points unchanged."""
    cover = np.ptp(local[:, :2], axis=0) / np.maximum(extents[:2], 1e-6)
    if not np.any(cover < span):
        return local, False
    return np.vstack([local, local * np.array([-1.0, -1.0, 1.0])]), True


def shadow_model(est: ObjectEstimate, mass: float = SHADOW_MASS,
                 friction: float = SHADOW_FRICTION) -> tuple[ObjectModel, Pose]:
    """(object model, its world pose) of a perceived object: :func:`shadow_geometry` without the report."""
    geo = shadow_geometry(est, mass, friction)
    return geo.model, geo.pose


@dataclass
class Verdict:
    """Result of verifying one grasp: fraction of the robust trials run (`trials`) labelled stable, and label
    counts;
    `geometry_sigma` (m) the perceived cloud's surface noise, `points_dropped` the outliers left out and
    `eroded` (m) how far the hull was shrunk for it, `mirrored` whether its hidden side was completed by
    symmetry (:class:`ShadowGeometry`) — how uncertain the shadow object was."""

    grasp: Grasp
    success_rate: float
    labels: dict[str, int] = field(default_factory=dict)
    passed: bool = False
    geometry_sigma: float = 0.0
    points_dropped: int = 0
    eroded: float = 0.0
    trials: int = 0
    mirrored: bool = False


class ShadowVerifier:
    """Runs the shake test (robot_wm.grasping, protocol in planners/shake_test.yaml) on perceived
    geometry with `trials` perturbed repetitions; a grasp passes at `min_success` or better.

    Seeded: the k-th call of :meth:`verify` on this verifier (k = 1, 2, ... counted over all objects and
    grasps since construction) draws its trials from ``SeedSequence([seed, crc32(estimate id), k])``. So a
    verdict depends on every verification before it; the same sequence of calls gives the same verdicts.

    `early_stop` (default): trials stop as soon as the verdict is decided — `needed` = ceil(min_success x
    trials) stable trials pass it, more than trials - needed others fail it (3 trials at 0.6: the third runs
    only when the first two disagree). The verdict is the one all `trials` would give; its `success_rate` is
    over the trials run.
    """

    def __init__(self, config: ShakeConfig | None = None, trials: int = 3, min_success: float = 0.6,
                 seed: int = 0, early_stop: bool = True) -> None:
        self.config = config or load_shake_config()
        self.trials, self.min_success, self.seed, self.early_stop = trials, min_success, seed, early_stop
        self.needed = max(1, math.ceil(min_success * trials - 1e-9))  # stable trials that pass a grasp
        self._calls = 0
        self._last: tuple[tuple[object, ...], ShadowGeometry] | None = None

    def geometry(self, est: ObjectEstimate) -> ShadowGeometry:
        """The shadow object of `est`, built once for consecutive verifications of the same estimate (the
        same object, points, pose and extents)."""
        key = (est, est.points, est.pose, est.extents)
        if self._last is None or any(a is not b for a, b in zip(self._last[0], key, strict=True)):
            self._last = (key, shadow_geometry(est))
        return self._last[1]

    def verify(self, est: ObjectEstimate, grasp: Grasp) -> Verdict:
        geo = self.geometry(est)
        self._calls += 1
        seq = np.random.SeedSequence([self.seed, zlib.crc32(est.id.encode()), self._calls])
        result = robust_shake_test(geo.model, grasp, seq, geo.pose, self.config, trials=self.trials,
                                   stop=self._decided if self.early_stop else None)
        ok = sum(r.success for r in result.trials)
        return Verdict(grasp, result.success_rate, result.labels, ok >= self.needed, geo.sigma, geo.points_dropped,
                       geo.eroded, len(result.trials), geo.mirrored)

    def _decided(self, results: list[ShakeResult]) -> bool:
        ok = sum(r.success for r in results)
        return ok >= self.needed or len(results) - ok > self.trials - self.needed
