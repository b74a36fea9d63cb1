"""Grasp candidates from ONE camera view: complete the partial cloud, mark the unseen space, then sample.

The antipodal sampler (:func:`robot_wm.grasping.candidates.sample_grasps`) needs both contact faces in the
cloud; from one view the far faces are missing. This module infers them and keeps the fingers out of space
the camera could not vouch for (all arrays world frame, m):

1. **Completion from the support footprint** (``completion="footprint"``, the default). The object rests on
   the table (``sampler.table_z``) and a camera looking down sees its tops, so the visible points' xy
   footprint bounds it: the footprint's outline (an xy grid of `voxel` cells) is extruded as vertical walls
   from the table up to each outline cell's highest point. On the unseen side these walls are the inferred
   far faces. Optionally (``"symmetry"``, ``"both"``) the visible points are also reflected through the
   vertical axis at the centre of the footprint's minimum-area rectangle
   (:func:`robot_wm.geometry.min_area_rectangle`), right for centrally symmetric shapes. Inferred points the
   camera contradicts (in front of the observed depth along their view ray by more than
   `visibility_tolerance`, i.e. in space it saw as free, e.g. under an overhang it sees through) are dropped.
2. **Unseen space is not free.** Along each view ray through a visible object point, the space from where
   the ray leaves the completed object's convex hull (with its shadow on the table) to the table (at most
   `free_band` + `max_shadow` m) is filled with obstacle points; so is the space behind every other observed
   surface above the table (other objects). The interior of the completed object is kept free of fingers by
   the sampler's convex-hull test, so fingers meet the completed object only at the contacts.
3. The sampler runs on the completed cloud with those obstacle points added to the scene (the IK variant
   hands the same inputs to :func:`robot_wm.grasping.candidates.grasp_candidates`), in tiers, the first that
   gives grasps wins: (a) all unseen space forbidden, so every finger is where the camera saw free space;
   (b) the same with `retry_contacts_factor` times as many sampled contacts; (c) the first `free_band` m
   behind the completed back face allowed (the far finger may sit just behind an inferred face).

With ``camera_position=None`` the cloud is taken as already complete (e.g. merged from several views) and
the sampler runs on it unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from robot_wm.config import ConfigError
from robot_wm.geometry import min_area_rectangle
from robot_wm.grasping.candidates import (
    SamplerConfig,
    collision_free,
    downsample,
    grasp_candidates,
    hull_planes,
    sample_grasps,
)
from robot_wm.grasping.grasp import MAX_WIDTH, Grasp

log = logging.getLogger(__name__)

SOURCE = "single_view_grasps"
MAX_BUFFER_POINTS = 20000  # scene points kept (every k-th) for the visibility buffer
COMPLETIONS = ("footprint", "symmetry", "both", "none")
REACH = 0.17  # m: farthest gripper point (palm corner) from the TCP; scene points beyond cannot touch it


@dataclass(frozen=True)
class SingleViewConfig:
    """Parameters of :func:`single_view_grasps` (SI units). `sampler` is handed to the antipodal sampler
    (its `table_z` is also the support plane of the completion)."""

    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    voxel: float = 0.003                 # m, downsampling of the input clouds before completion
    pixel: float = 0.004                 # m at the object's distance: bin size of the visibility buffer
    visibility_tolerance: float = 0.006  # m an inferred point may lie in front of the observed surface
    # how unseen faces are inferred: "footprint" (vertical walls from the table up to the visible footprint's
    # outline; needs sampler.table_z), "symmetry" (central reflection about the footprint's centre), "both", "none"
    completion: str = "footprint"
    free_band: float = 0.04              # m along a view ray behind the completed back face free in tier (c)
    shadow_step: float = 0.006           # m spacing of the obstacle points filling unseen space
    max_shadow: float = 0.15             # m of unseen space filled behind the free band (or the occluder)
    min_points: int = 10                 # fewer object points (after downsampling): no candidates
    retry_contacts_factor: int = 3       # more first contacts when the first try finds no grasp

    def __post_init__(self) -> None:
        if self.completion not in COMPLETIONS:
            raise ConfigError("SingleViewConfig", "completion", f"must be one of {', '.join(COMPLETIONS)} "
                              f"(got {self.completion!r})")
        for name in ("voxel", "pixel", "shadow_step"):
            if not getattr(self, name) > 0:
                raise ConfigError("SingleViewConfig", name, f"must be > 0 (got {getattr(self, name)!r})")
        for name in ("visibility_tolerance", "free_band", "max_shadow"):
            if not getattr(self, name) >= 0:
                raise ConfigError("SingleViewConfig", name, f"must be >= 0 (got {getattr(self, name)!r})")
        if self.retry_contacts_factor < 1 or self.min_points < 1:
            raise ConfigError("SingleViewConfig", "retry_contacts_factor" if self.retry_contacts_factor < 1
                              else "min_points", "must be >= 1")


@dataclass(frozen=True)
class Completion:
    """A completed single-view cloud (world frame, m): `points` (K, 3) = the visible points followed by the
    inferred ones (`inferred` (K,) marks them); `occupied` (M, 3): obstacle points filling unseen space
    (not part of the object); `centre` (2,): the footprint centre used for the reflection."""

    points: np.ndarray
    inferred: np.ndarray
    occupied: np.ndarray
    band: np.ndarray
    centre: np.ndarray


def _array(value: object, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(SOURCE, name, "expected a numeric array") from None
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape, strict=True)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ConfigError(SOURCE, name, f"expected shape {want} (got {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ConfigError(SOURCE, name, "must be finite (no NaN or inf)")
    return a


class _ViewBuffer:
    """Nearest observed range (m) per angular bin of a camera at `eye` (3,) looking towards `target` (3,):
    a z-buffer of the observed points, over a window of `half` bins about the target."""

    def __init__(self, eye: np.ndarray, target: np.ndarray, pixel: float, half: int) -> None:
        z = target - eye
        dist = float(np.linalg.norm(z))
        z /= dist
        helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        x = np.cross(helper, z)
        x /= np.linalg.norm(x)
        self.basis = np.stack([x, np.cross(z, x), z], 1)       # (3, 3) columns: camera x, y, z
        self.eye, self.step, self.half = eye, pixel / dist, half
        self.front = np.full((2 * half + 1) ** 2, np.inf)

    def locate(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat bin index (N,), -1 outside the window or behind the camera; range (N,) m) of points (N, 3)."""
        rel = pts - self.eye
        c = rel @ self.basis
        ahead = c[:, 2] > 1e-6
        uv = np.floor(c[:, :2] / np.where(ahead, c[:, 2], 1.0)[:, None] / self.step).astype(int) + self.half
        inside = ahead & np.all((uv >= 0) & (uv <= 2 * self.half), axis=1)
        idx = np.where(inside, uv[:, 0] * (2 * self.half + 1) + uv[:, 1], -1)
        return idx, np.linalg.norm(rel, axis=1)

    def add(self, pts: np.ndarray) -> None:
        idx, rng_ = self.locate(pts)
        ok = idx >= 0
        np.minimum.at(self.front, idx[ok], rng_[ok])

    def nearest(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(observed range in each point's bin (N,), inf where nothing was seen; the points' ranges (N,))."""
        idx, rng_ = self.locate(pts)
        return np.where(idx >= 0, self.front[np.maximum(idx, 0)], np.inf), rng_


def _ray_exit(eye: np.ndarray, dirs: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """Range (R,) m at which rays eye + t dirs (R, 3) (unit) leave the convex polytope `planes` (F, 4)
    (n.x + d < 0 inside); the ray is assumed to enter it."""
    nd = dirs @ planes[:, :3].T                                   # (R, F)
    s = eye @ planes[:, :3].T + planes[:, 3]                      # (F,)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(nd > 1e-9, -s[None] / nd, np.inf)
    return t.min(axis=1)


def _fill(eye: np.ndarray, dirs: np.ndarray, start: np.ndarray, length: np.ndarray, step: float,
          table_z: float | None) -> np.ndarray:
    """Points (P, 3) every `step` m along rays eye + t dirs (R, 3) for t in [start, start + length] (R,),
    stopping at the table plane."""
    n = int(np.ceil(max(float(length.max(initial=0.0)), 0.0) / step)) + 1
    t = start[:, None] + np.arange(n)[None] * step                # (R, n)
    ok = t <= (start + length)[:, None] + 1e-9
    pts = eye + t[..., None] * dirs[:, None]
    if table_z is not None:
        ok &= pts[..., 2] >= table_z
    return pts[ok]


def _footprint_walls(points: np.ndarray, table_z: float, step: float) -> np.ndarray:
    """Points (W, 3) on vertical walls from the table up to the top of the object's footprint outline: the
    points (N, 3) are binned on an xy grid of `step` m (small holes closed); every occupied cell on the outline
    gets a column of points every `step` m at its points' mean xy, from table_z to its points' highest z."""
    cell = np.floor(points[:, :2] / step).astype(int)
    lo = cell.min(0) - 2
    cell -= lo
    shape = tuple(cell.max(0) + 3)
    flat = np.ravel_multi_index(cell.T, shape)
    count = np.bincount(flat, minlength=shape[0] * shape[1])
    occ = (count > 0).reshape(shape)
    solid = ndimage.binary_closing(occ, iterations=1) | occ
    outline = occ & ~ndimage.binary_erosion(solid, border_value=0)
    top = np.full(count.shape, -np.inf)
    np.maximum.at(top, flat, points[:, 2])
    sx = np.bincount(flat, points[:, 0], count.size)
    sy = np.bincount(flat, points[:, 1], count.size)
    cells = np.flatnonzero(outline.ravel())
    xy = np.c_[sx[cells], sy[cells]] / count[cells, None]
    heights = top[cells] - table_z
    n = np.maximum(np.floor(heights / step).astype(int), 0)
    rows = np.repeat(np.arange(len(cells)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return np.c_[xy[rows], table_z + (k + 0.5) * step]


def complete_cloud(object_points: np.ndarray, camera_position: np.ndarray, scene_points: np.ndarray | None = None,
                   config: SingleViewConfig | None = None) -> Completion | None:
    """Complete one view's object cloud (N, 3) seen from `camera_position` (3,) (world, m); `scene_points`
    (M, 3): everything else the camera saw (table, other objects). None when fewer than
    `config.min_points` object points remain after downsampling. Raises ConfigError on malformed arrays."""
    cfg = config or SingleViewConfig()
    obj = _array(object_points, "object_points", (None, 3))
    eye = _array(camera_position, "camera_position", (3,))
    scene = np.zeros((0, 3)) if scene_points is None else _array(scene_points, "scene_points", (None, 3))
    pts = downsample(obj, cfg.voxel)
    if len(pts) < cfg.min_points:
        return None
    table_z = cfg.sampler.table_z
    centroid = pts.mean(0)
    # the visibility buffer needs a few points per bin, not every pixel of a dense table; only what lies
    # within the gripper's reach of the object matters
    scene = scene[:: max(1, len(scene) // MAX_BUFFER_POINTS)]
    radius = float(np.max(np.linalg.norm(pts[:, :2] - centroid[:2], axis=1))) + REACH
    scene = scene[np.sum((scene[:, :2] - centroid[:2]) ** 2, axis=1) < radius ** 2]
    # window: the object's angular size plus room for the gripper around it
    dist = float(np.linalg.norm(centroid - eye))
    half = int(np.ceil((np.ptp(pts, axis=0).max() + 0.25) / cfg.pixel))
    buf = _ViewBuffer(eye, centroid, cfg.pixel, half)
    buf.add(pts)
    buf.add(scene)
    centre, _, _ = min_area_rectangle(pts[:, :2])
    guesses = []
    if cfg.completion in ("footprint", "both") and table_z is not None:
        guesses.append(_footprint_walls(obj, table_z, cfg.voxel))
    if cfg.completion in ("symmetry", "both"):
        guesses.append(np.c_[2 * centre - pts[:, :2], pts[:, 2]])
    guess = downsample(np.concatenate(guesses), cfg.voxel) if guesses else np.zeros((0, 3))
    if len(guess):
        seen, rng_ = buf.nearest(guess)
        guess = guess[rng_ >= seen - cfg.visibility_tolerance]   # not in space the camera saw as free
    done = np.concatenate([pts, guess])
    inferred = [np.zeros(len(pts), bool), np.ones(len(guess), bool)]
    # Unseen space behind the completed object, from where each view ray leaves its convex hull (with the
    # hull's shadow on the table) on; the first `free_band` m of it kept apart (`band`).
    shadow = done if table_z is None else np.concatenate([done, np.c_[done[:, :2], np.full(len(done), table_z)]])
    planes = hull_planes(shadow)
    front = downsample(pts, max(cfg.shadow_step, cfg.voxel))
    seen_range = np.linalg.norm(front - eye, axis=1)
    dirs = (front - eye) / seen_range[:, None]
    exit_ = seen_range if planes is None else np.maximum(_ray_exit(eye, dirs, planes), seen_range)
    band = _fill(eye, dirs, exit_, np.full(len(front), cfg.free_band - cfg.shadow_step / 2), cfg.shadow_step,
                 table_z)
    fill = [_fill(eye, dirs, exit_ + cfg.free_band, np.full(len(front), cfg.max_shadow), cfg.shadow_step, table_z)]
    # Unseen space behind other observed surfaces above the table (other objects).
    above = scene if table_z is None else scene[scene[:, 2] > table_z + cfg.sampler.table_clearance + cfg.voxel]
    above = downsample(above, max(cfg.shadow_step, cfg.voxel))
    if len(above):
        r = np.linalg.norm(above - eye, axis=1)
        fill.append(_fill(eye, (above - eye) / r[:, None], r + cfg.voxel, np.full(len(above), cfg.max_shadow),
                          cfg.shadow_step, table_z))
    occupied = downsample(np.concatenate(fill), cfg.shadow_step)
    band = downsample(band, cfg.shadow_step)
    log.debug("completion: %d visible + %d inferred points, %d + %d occupied, %.2f m away", len(pts),
              len(guess), len(band), len(occupied), dist)
    return Completion(done, np.concatenate(inferred), occupied, band, np.asarray(centre, float))


def sampling_tiers(object_points: np.ndarray, camera_position: np.ndarray | None, scene_points: np.ndarray | None,
           cfg: SingleViewConfig) -> tuple[np.ndarray, list[tuple[np.ndarray | None, SamplerConfig]]]:
    """(object cloud for the sampler, the (scene cloud, sampler settings) to try in order until one gives
    grasps): with a camera, the completed cloud with unseen space filled, the band behind the completed back
    face included (default contacts, then `retry_contacts_factor` times as many), then without the band.
    An empty object cloud when there are too few points."""
    points, tiers, _ = completed_tiers(object_points, camera_position, scene_points, cfg)
    return points, tiers


def completed_tiers(object_points: np.ndarray, camera_position: np.ndarray | None, scene_points: np.ndarray | None,
                    cfg: SingleViewConfig) -> tuple[np.ndarray, list[tuple[np.ndarray | None, SamplerConfig]], np.ndarray]:
    """:func:`sampling_tiers` plus the mask (K,) of the returned cloud's points that were inferred (not seen;
    all False without a camera)."""
    if camera_position is None:
        obj = _array(object_points, "object_points", (None, 3))
        scene = None if scene_points is None else _array(scene_points, "scene_points", (None, 3))
        if len(downsample(obj, cfg.voxel)) < cfg.min_points:
            return np.zeros((0, 3)), [(scene, cfg.sampler)], np.zeros(0, bool)
        return obj, [(scene, cfg.sampler)], np.zeros(len(obj), bool)
    comp = complete_cloud(object_points, camera_position, scene_points, cfg)
    if comp is None:
        return np.zeros((0, 3)), [], np.zeros(0, bool)
    scene = np.zeros((0, 3)) if scene_points is None else np.asarray(scene_points, float)
    if cfg.sampler.table_z is not None:
        # The sampler keeps every gripper box corner above table_z + table_clearance, so (boxes being convex)
        # no point below that height can be inside one: dropping them changes no result, only the cost.
        scene = scene[scene[:, 2] >= cfg.sampler.table_z + cfg.sampler.table_clearance]
    relaxed = np.concatenate([scene, comp.occupied])
    strict = np.concatenate([relaxed, comp.band])
    more = replace(cfg.sampler, num_contacts=cfg.sampler.num_contacts * cfg.retry_contacts_factor)
    return comp.points, [(strict, cfg.sampler), (strict, more), (relaxed, more)], comp.inferred


def camera_vouched(grasps: list[Grasp], completion: Completion, scene_points: np.ndarray | None = None,
                   config: SingleViewConfig | None = None) -> np.ndarray:
    """Mask (G,): grasps (world frame) whose fingers and palm (opened to width + clearance) stay out of the
    completed object except at the contacts (its convex hull with its table shadow), out of the unseen space
    behind it including the band just behind its back face, out of the unseen space behind other surfaces,
    off `scene_points` (M, 3) and above the table: the space the camera vouches for (the first, strict tier
    of :func:`single_view_grasps`)."""
    cfg = config or SingleViewConfig()
    if not grasps:
        return np.zeros(0, bool)
    scfg = cfg.sampler
    rot = np.stack([g.pose.rotation.as_matrix() for g in grasps])
    pos = np.stack([g.pose.position for g in grasps])
    opening = np.minimum(np.array([g.width for g in grasps]) + scfg.clearance, MAX_WIDTH)
    own = downsample(completion.points, max(scfg.voxel, 0.004))
    scene = np.zeros((0, 3)) if scene_points is None else _array(scene_points, "scene_points", (None, 3))
    obstacles = np.concatenate([own, scene, completion.occupied, completion.band])
    shadow = own if scfg.table_z is None else np.concatenate([own, np.c_[own[:, :2], np.full(len(own), scfg.table_z)]])
    return collision_free(rot, pos, opening, obstacles, scfg, hull_planes(shadow))


def single_view_grasps(object_points: np.ndarray, camera_position: np.ndarray | None, rng: np.random.Generator,
                       scene_points: np.ndarray | None = None, config: SingleViewConfig | None = None,
                       robot_base: np.ndarray | tuple[float, float, float] | None = (0.0, 0.0, 0.0)) -> list[Grasp]:
    """Collision-free antipodal grasps (TCP poses, world frame) on one object seen from one camera, best first.

    object_points (N, 3): the object's points from that camera (world, m); camera_position (3,): the camera's
    optical centre (world, m), or None when the cloud is already complete (several views: plain sampler);
    scene_points (M, 3): the rest of what the camera saw; robot_base (3,): drop candidates outside the Panda's
    workspace (None: free-floating hand). Returns [] with fewer than `min_points` object points; raises
    :class:`~robot_wm.config.ConfigError` on malformed arrays.
    """
    cfg = config or SingleViewConfig()
    points, scenes = sampling_tiers(object_points, camera_position, scene_points, cfg)
    base = None if robot_base is None else np.asarray(robot_base, float)
    for scene, sampler in scenes if len(points) else []:
        grasps = sample_grasps(points, rng, None, scene, sampler, base)
        if grasps:
            return grasps
    return []


def single_view_grasp_candidates(object_points: np.ndarray, camera_position: np.ndarray | None,
                                 rng: np.random.Generator, scene_points: np.ndarray | None = None,
                                 config: SingleViewConfig | None = None,
                                 robot_base: np.ndarray | tuple[float, float, float] | None = (0.0, 0.0, 0.0),
                                 top_k: int = 10, kinematics=None) -> list[Grasp]:
    """:func:`single_view_grasps` followed by exact Panda IK in rank order (as
    :func:`~robot_wm.grasping.candidates.grasp_candidates`, which it calls): at most `top_k` grasps."""
    cfg = config or SingleViewConfig()
    points, scenes = sampling_tiers(object_points, camera_position, scene_points, cfg)
    base = None if robot_base is None else np.asarray(robot_base, float)
    for scene, sampler in scenes if len(points) else []:
        grasps = grasp_candidates(points, rng, scene, base, top_k, sampler, kinematics)
        if grasps:
            return grasps
    return []
