"""A learned grasp-quality model: P(success) of a grasp executed by the Panda arm, from the grasp pose and the
object's (completed) cloud.

Features (:func:`grasp_features`, :data:`FEATURES`; world frame in, metres and radians out): the cloud is
expressed in each grasp's TCP frame (x palm axis, y closing axis, z approach) with the fingers opened to the
trial's opening (width + :data:`OPENING_CLEARANCE`, at most the gripper's), and summarised by what decides a
grasp under the arm: the object's extent across the closing axis between the pads against the opening (a
width beyond it lands a finger on the object), points inside the fingers / palm, the pads' overlap with the
object along the approach and the palm's gap to it, the contact zones' normals against the closing axis and
their flatness, the approach tilt and how vertical the closing axis is, heights of the TCP / fingertips /
object above the table, the cloud centroid in the TCP frame (torque proxy), the sampler's score when the
grasp came from it, and reachability proxies of the pre-grasp (distance from the Panda's shoulder, height,
approach along the base's radial direction). Everything but the reachability proxies depends only on the
grasp relative to the cloud and the table: invariant to a rigid motion of the scene about any vertical axis;
the proxies are invariant about the robot base's vertical axis.

Model (:class:`QualityModel`): an ensemble of small MLPs (ReLU, standardised inputs) whose mean logit is
mapped by a Platt fit (a * logit + b) on out-of-fold logits of the training objects (cross-fitting); a grasp with
no point of the object between its pads gets P = 0; inference is NumPy only. File: safetensors
(``robot_wm/assets/grasp_quality.safetensors``), tensors ``w1 b1 w2 b2 w3 b3 mean std``, metadata key
``robot_wm`` = JSON header with ``format`` :data:`FORMAT`, ``version`` :data:`VERSION`, the feature names,
the Platt parameters and training info. Loading never unpickles; a bad file raises
:class:`~robot_wm.config.ConfigError` with one line naming the file and the field.

Ranking (:func:`rank_grasps`): grasps ordered by their robust score (:func:`robust_scores`: the mean P(success)
over the grasp and 12 neighbours 5 mm / 0.1 rad away, :func:`pose_stencil`), each scored with its own
P(success); ties keep the input order.
Candidates (:func:`candidate_pool`): the single-view sampler's grasps on the completed cloud plus top-down
grasps at the cloud's centroid (:func:`topdown_grasps`), so that objects without an antipodal candidate still
get one; :func:`ranked_single_view_grasps` ranks that pool. Training (:func:`train_quality_model`, torch):
labels from ``robot_wm.bench.grasping_hard.quality_samples`` (arm trials on training objects only).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_wm.config import ConfigError
from robot_wm.geometry import Pose, panda, top_down_quaternion
from robot_wm.grasping.candidates import (
    FINGER_HALF_X,
    FINGER_THICK,
    FINGER_Z,
    PALM_X,
    PALM_Y,
    PALM_Z,
    SHOULDER,
    downsample,
    estimate_normals,
    sample_grasps,
)
from robot_wm.grasping.grasp import Grasp

if TYPE_CHECKING:
    from robot_wm.grasping.single_view import SingleViewConfig

log = logging.getLogger(__name__)

FORMAT = "robot_wm.grasp_quality"
VERSION = 1
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "grasp_quality.safetensors"
OPENING_CLEARANCE = 0.01   # m the fingers open beyond a grasp's width (the arm trial's and shake test's)
APPROACH = 0.12            # m pre-grasp distance along -approach (planners/pick_place.yaml `approach`)
FEATURE_VOXEL = 0.004      # m: the cloud is downsampled to this before the features
CONTACT_BAND = 0.004       # m: points this close to the extreme along the closing axis form a contact zone
SLAB_MARGIN = 0.004        # m added to the finger half-width for the region between the pads
TIP_CLEARANCE = 0.004      # m the top-down candidates' fingertips stay above the table

FEATURES = (
    "opening",            # m, finger opening before the close
    "span_ratio",         # object's extent along the closing axis between the pads / opening
    "span_offset",        # m, |centre of that extent| from the TCP along the closing axis
    "grip_points",        # log(1 + points between the pads)
    "finger_points",      # log(1 + points inside the opened finger boxes)
    "palm_points",        # log(1 + points inside the palm box)
    "pad_overlap",        # m, overlap of the object between the pads with the pads' extent along the approach
    "palm_gap",           # m, nearest object point between the pads to the palm along the approach (capped)
    "approach_tilt",      # rad, approach axis from straight down
    "closing_vertical",   # |closing axis . world z|
    "tcp_height",         # m above the table
    "tip_height",         # m, lowest gripper box corner above the table
    "object_height",      # m, highest cloud point above the table
    "com_x",              # m, |cloud centroid x| in the TCP frame (along the palm)
    "com_y",              # m, |cloud centroid y| (along the closing axis)
    "com_z",              # m, cloud centroid z (along the approach; > 0 beyond the TCP)
    "normal_align",       # min over the two contact zones of the mean |normal . closing axis|
    "contact_spread",     # m, mean std along the closing axis of the contact zones' points (0 flat)
    "extent_x",           # m, the cloud's extent along the TCP x axis
    "extent_y",           # m, the cloud's extent along the closing axis
    "prior",              # the sampler's score (0 for grasps it did not propose)
    "sampled",            # 1 when the sampler proposed the grasp, else 0
    "reach",              # m, pre-grasp distance from the Panda's shoulder
    "pre_height",         # m, pre-grasp height above the table
    "radial_approach",    # approach . horizontal unit vector from the base to the TCP
)
N_FEATURES = len(FEATURES)
_GRIP = FEATURES.index("grip_points")
PALM_GAP_CAP = 0.05       # m: palm_gap with nothing between the pads, and its upper bound
ROBUST_STEP = 0.005       # m: the robust score's TCP offsets (+-, along each TCP axis)
ROBUST_TURN = 0.1         # rad: its turns (+-, about each TCP axis)
ROBUST_TOP = 6            # grasps (best P first) that get the robust score; the rest follow them by P
RANKED_CONTACTS = 100     # first contacts of the ranked pool's sampler (its first tier only, RANKED_TIERS)
RANKED_TIERS = 1          # (the top-down candidates cover objects it finds nothing on; the sampler is most of the time)


def ranked_pool_config(table_z: float | None = 0.0) -> SingleViewConfig:
    """The :class:`~robot_wm.grasping.single_view.SingleViewConfig` of the ranked pool (the hard suite's
    headline, the grasp planner's single-view mode and the quality labels): the sampler with
    :data:`RANKED_CONTACTS` first contacts, the table plane at `table_z` (m, world z)."""
    from robot_wm.grasping.candidates import SamplerConfig
    from robot_wm.grasping.single_view import SingleViewConfig

    return SingleViewConfig(sampler=SamplerConfig(num_contacts=RANKED_CONTACTS, table_z=table_z))


# ---------------------------------------------------------------------------------------------- features
def _grasp_arrays(grasps: list[Grasp]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rotations (G, 3, 3) columns x, y, z; positions (G, 3); widths (G,)) of `grasps`."""
    if not grasps:
        return np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0)
    rot = np.stack([g.pose.rotation.as_matrix() for g in grasps])
    pos = np.stack([np.asarray(g.pose.position, float) for g in grasps])
    return rot, pos, np.array([g.width for g in grasps], float)


def grasp_features(grasps: list[Grasp], cloud: np.ndarray, prior: np.ndarray | None = None, table_z: float = 0.0,
                   robot_base: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Features (G, :data:`N_FEATURES`) of `grasps` (TCP poses, world frame) on the object's `cloud` (N, 3),
    world frame, m (completed or not). `prior` (G,): the sampler's score, NaN for grasps it did not propose
    (None: all NaN); `table_z`: table plane height; `robot_base` (3,): the Panda's base position. Units in
    the comments of :data:`FEATURES`. Raises ConfigError on a malformed cloud."""
    rot, pos, width = _grasp_arrays(grasps)
    return features_from_arrays(rot, pos, width, feature_cloud(cloud), prior, table_z, robot_base)


def feature_cloud(cloud: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points (N', 3), unit normals (N', 3)): the object's cloud (N, 3) (world, m) as the features see it,
    downsampled to :data:`FEATURE_VOXEL` with PCA normals. Raises ConfigError on a malformed cloud."""
    pts = np.asarray(cloud, float)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 3 or not np.all(np.isfinite(pts)):
        raise ConfigError("grasp_features", "cloud", f"expected a finite (N >= 3, 3) array (got shape {pts.shape})")
    pts = downsample(pts, FEATURE_VOXEL)
    return pts, (estimate_normals(pts, 16) if len(pts) >= 5 else np.zeros_like(pts))


def features_from_arrays(rot: np.ndarray, pos: np.ndarray, width: np.ndarray, cloud: tuple[np.ndarray, np.ndarray],
                         prior: np.ndarray | None = None, table_z: float = 0.0,
                         robot_base: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """:func:`grasp_features` of grasps given as TCP rotations (G, 3, 3) (columns x, y, z), positions (G, 3)
    and widths (G,) (world, m) on a :func:`feature_cloud` `cloud`."""
    pts, nrm = cloud
    g = len(pos)
    if g == 0:
        return np.zeros((0, N_FEATURES))
    prior = np.full(g, np.nan) if prior is None else np.asarray(prior, float)
    opening = np.minimum(width + OPENING_CLEARANCE, panda.MAX_OPENING)
    half = opening[:, None] / 2
    local = np.matmul(pts[None] - pos[:, None], rot)                       # (G, N, 3) TCP frame
    lx, ly, lz = local[..., 0], local[..., 1], local[..., 2]
    slab = np.abs(lx) < FINGER_HALF_X + SLAB_MARGIN
    depth = (lz > FINGER_Z[0]) & (lz < FINGER_Z[1])
    between = slab & (np.abs(ly) < half)
    grip = between & depth
    finger = (np.abs(lx) < FINGER_HALF_X) & depth & (np.abs(ly) >= half) & (np.abs(ly) < half + FINGER_THICK)
    palm = ((lx > PALM_X[0]) & (lx < PALM_X[1]) & (ly > PALM_Y[0]) & (ly < PALM_Y[1]) & (lz > PALM_Z[0])
            & (lz < PALM_Z[1]))
    # the object's extent along the closing axis at the pads' depth (whatever the opening)
    at_pads = slab & depth
    any_pad = at_pads.any(1)
    ymax = np.where(at_pads, ly, -np.inf).max(1)
    ymin = np.where(at_pads, ly, np.inf).min(1)
    ymax, ymin = np.where(any_pad, ymax, 0.0), np.where(any_pad, ymin, 0.0)
    span = ymax - ymin
    offset = np.abs(ymax + ymin) / 2
    zlo = np.where(between, lz, np.inf).min(1)
    zhi = np.where(between, lz, -np.inf).max(1)
    overlap = np.clip(np.minimum(zhi, FINGER_Z[1]) - np.maximum(zlo, FINGER_Z[0]), 0.0, None)
    palm_gap = np.where(between.any(1), np.clip(zlo - FINGER_Z[0], -PALM_GAP_CAP, PALM_GAP_CAP), PALM_GAP_CAP)
    # contact zones: points at the pads' depth within CONTACT_BAND of the extremes along the closing axis
    yaxis = rot[:, :, 1]                                                     # (G, 3) closing axis, world
    align = np.abs(np.einsum("nd,gd->gn", nrm, yaxis))
    zones = []
    for zone in (at_pads & (ly >= ymax[:, None] - CONTACT_BAND), at_pads & (ly <= ymin[:, None] + CONTACT_BAND)):
        k = np.maximum(zone.sum(1), 1)
        mean_align = np.where(zone, align, 0.0).sum(1) / k
        m = np.where(zone, ly, 0.0).sum(1) / k
        spread = np.sqrt(np.maximum(np.where(zone, (ly - m[:, None]) ** 2, 0.0).sum(1) / k, 0.0))
        zones.append((np.where(zone.any(1), mean_align, 0.0), spread))
    normal_align = np.minimum(zones[0][0], zones[1][0])
    contact_spread = (zones[0][1] + zones[1][1]) / 2
    # gripper heights: every corner of the finger and palm boxes
    corners = np.array([[x, y, z] for x in (PALM_X[0], PALM_X[1]) for y in (PALM_Y[0], PALM_Y[1])
                        for z in (PALM_Z[0], PALM_Z[1])])
    fx = np.array([-FINGER_HALF_X, FINGER_HALF_X])
    fz = np.array(FINGER_Z)
    fy = np.stack([half[:, 0] + FINGER_THICK, -half[:, 0] - FINGER_THICK], 1)  # outer faces (G, 2)
    finger_z = (rot[:, 2, 0, None, None, None] * fx[None, :, None, None]
                + rot[:, 2, 1, None, None, None] * fy[:, None, :, None]
                + rot[:, 2, 2, None, None, None] * fz[None, None, None, :]).reshape(g, -1)
    palm_z = corners @ rot[:, 2, :].T                                        # (8, G)
    low = np.minimum(finger_z.min(1), palm_z.min(0)) + pos[:, 2]
    centroid = np.matmul(pts.mean(0)[None, None] - pos[:, None], rot)[:, 0]   # (G, 3)
    approach = rot[:, :, 2]
    base = np.asarray(robot_base, float)
    pre = pos - APPROACH * approach
    radial = pos[:, :2] - base[:2]
    radial = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    sampled = np.isfinite(prior)
    out = np.stack([
        opening,
        span / opening,
        offset,
        np.log1p(grip.sum(1)),
        np.log1p(finger.sum(1)),
        np.log1p(palm.sum(1)),
        overlap,
        palm_gap,
        np.arccos(np.clip(-approach[:, 2], -1.0, 1.0)),
        np.abs(yaxis[:, 2]),
        pos[:, 2] - table_z,
        low - table_z,
        np.full(g, float(pts[:, 2].max()) - table_z),
        np.abs(centroid[:, 0]),
        np.abs(centroid[:, 1]),
        centroid[:, 2],
        normal_align,
        contact_spread,
        np.ptp(lx, axis=1),
        np.ptp(ly, axis=1),
        np.where(sampled, prior, 0.0),
        sampled.astype(float),
        np.linalg.norm(pre - (base + SHOULDER), axis=1),
        pre[:, 2] - table_z,
        np.sum(approach[:, :2] * radial, axis=1),
    ], 1)
    return out


# ---------------------------------------------------------------------------------------------- candidates
def topdown_grasps(cloud: np.ndarray, rng: np.random.Generator, yaws: int = 8, table_z: float = 0.0) -> list[Grasp]:
    """Top-down grasps (world frame) at the cloud's (N, 3) centroid, fingers fully open (width =
    :data:`~robot_wm.geometry.panda.MAX_OPENING`): `yaws` closing directions over 180 deg (a seeded random
    offset) at two heights, the centroid's and 3 cm below the top, never with a fingertip closer than
    :data:`TIP_CLEARANCE` m to the table. 2 x `yaws` grasps, score 0."""
    pts = np.asarray(cloud, float)
    c = pts.mean(0)
    floor = table_z + FINGER_Z[1] + TIP_CLEARANCE
    heights = sorted({round(max(float(c[2]), floor), 6), round(max(float(pts[:, 2].max()) - 0.03, floor), 6)})
    offset = float(rng.uniform(0.0, np.pi / yaws))
    out = []
    for z in heights:
        for k in range(yaws):
            out.append(Grasp(Pose(np.array([c[0], c[1], z]), top_down_quaternion(offset + k * np.pi / yaws)),
                             panda.MAX_OPENING, 0.0))
    return out


@dataclass(frozen=True)
class CandidatePool:
    """Candidates of one object (world frame): `grasps`, `prior` (G,) the sampler's score (NaN for top-down
    ones), `cloud` (N, 3) the completed object cloud the features are computed on, `inferred` (N,) its points
    that were inferred rather than seen (None: all seen)."""

    grasps: list[Grasp]
    prior: np.ndarray
    cloud: np.ndarray
    inferred: np.ndarray | None = None


def candidate_pool(object_points: np.ndarray, camera_position: np.ndarray | None, rng: np.random.Generator,
                   scene_points: np.ndarray | None = None, config=None, sampled: int = 24, yaws: int = 8,
                   robot_base: np.ndarray | tuple[float, float, float] | None = (0.0, 0.0, 0.0),
                   tiers: int | None = None) -> CandidatePool:
    """The single-view sampler's first `sampled` grasps (its tiers as
    :func:`~robot_wm.grasping.single_view.single_view_grasps`, on the completed cloud; only the first `tiers`
    of them when given) and :func:`topdown_grasps` at the completed cloud's centroid (`yaws` directions, two
    heights). `config`: a :class:`~robot_wm.grasping.single_view.SingleViewConfig`. An empty pool when the
    object has too few points."""
    from robot_wm.grasping.single_view import SingleViewConfig, completed_tiers

    cfg = config or SingleViewConfig()
    points, scenes, inferred = completed_tiers(object_points, camera_position, scene_points, cfg)
    if len(points) == 0:
        return CandidatePool([], np.zeros(0), np.zeros((0, 3)), np.zeros(0, bool))
    base = None if robot_base is None else np.asarray(robot_base, float)
    grasps: list[Grasp] = []
    for scene, sampler in scenes[:tiers]:
        grasps = sample_grasps(points, rng, None, scene, sampler, base)[:sampled]
        if grasps:
            break
    table_z = 0.0 if cfg.sampler.table_z is None else cfg.sampler.table_z
    top = topdown_grasps(points, rng, yaws, table_z)
    prior = np.concatenate([[g.score for g in grasps], np.full(len(top), np.nan)])
    return CandidatePool(grasps + top, prior, points, inferred)


# ---------------------------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class QualityModel:
    """An ensemble of K MLPs (F -> H -> H -> 1, ReLU) on standardised features, mean logit mapped by Platt
    (a, b). Arrays: w1 (K, F, H), b1 (K, H), w2 (K, H, H), b2 (K, H), w3 (K, H), b3 (K,), mean / std (F,)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    platt: tuple[float, float] = (1.0, 0.0)
    info: dict[str, Any] = field(default_factory=dict)

    def member_logits(self, features: np.ndarray) -> np.ndarray:
        """Raw logits (K, G) of each member for features (G, F)."""
        x = (np.asarray(features, float) - self.mean) / self.std
        h = np.maximum(np.einsum("gf,kfh->kgh", x, self.w1) + self.b1[:, None], 0.0)
        h = np.maximum(np.einsum("kgh,khj->kgj", h, self.w2) + self.b2[:, None], 0.0)
        return np.einsum("kgh,kh->kg", h, self.w3) + self.b3[:, None]

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Calibrated P(success) (G,) for features (G, F); 0 for a grasp with no point of the object between
        its pads (``grip_points`` 0: the fingers close on nothing; the networks, which rarely see one,
        extrapolate there)."""
        a, b = self.platt
        x = np.asarray(features, float)
        z = a * self.member_logits(x).mean(0) + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
        return np.where(x[:, _GRIP] > 0.0, p, 0.0) if len(x) else p

    def header(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "features": list(FEATURES), "members": int(self.w1.shape[0]),
                "hidden": int(self.w1.shape[2]), "platt_a": float(self.platt[0]), "platt_b": float(self.platt[1]),
                "train": self.info}

    def save(self, path: Path | str) -> None:
        """Write the model as safetensors (atomic), the JSON header in the metadata key ``robot_wm``."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: np.ascontiguousarray(getattr(self, k), dtype=np.float32) for k in _TENSORS}
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file(tensors, str(tmp), metadata={"robot_wm": json.dumps(self.header())})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str | None = None) -> QualityModel:
        """Read a model file (default: the shipped one). Raises ConfigError (one line: file, field, reason)."""
        from safetensors import SafetensorError, safe_open

        path = Path(path) if path is not None else DEFAULT_MODEL
        src = str(path)
        if not path.is_file():
            raise ConfigError(src, "", "grasp-quality model file not found")
        try:
            with safe_open(src, framework="np") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items)
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise ConfigError(src, "", f"not a readable safetensors file ({msg})") from None
        if "robot_wm" not in meta:
            raise ConfigError(src, "robot_wm", "no robot_wm header (not a grasp-quality model file)")
        try:
            h = json.loads(meta["robot_wm"])
        except (json.JSONDecodeError, RecursionError):
            raise ConfigError(src, "robot_wm", "corrupt header (invalid JSON)") from None
        if not isinstance(h, dict):
            raise ConfigError(src, "robot_wm", f"header is a JSON {type(h).__name__}, expected an object")
        if h.get("format") != FORMAT:
            raise ConfigError(src, "format", f"is {h.get('format')!r}, expected {FORMAT!r}")
        if h.get("version") != VERSION:
            raise ConfigError(src, "version", f"is {h.get('version')!r}, this code reads {VERSION}")
        if h.get("features") != list(FEATURES):
            raise ConfigError(src, "features", "differ from this code's feature list (retrain the model)")
        missing = [k for k in _TENSORS if k not in tensors]
        if missing:
            raise ConfigError(src, missing[0], "tensor missing")
        t = {k: np.asarray(tensors[k], float) for k in _TENSORS}
        k, f, hid = t["w1"].shape if t["w1"].ndim == 3 else (0, 0, 0)
        want = {"w1": (k, N_FEATURES, hid), "b1": (k, hid), "w2": (k, hid, hid), "b2": (k, hid), "w3": (k, hid),
                "b3": (k,), "mean": (N_FEATURES,), "std": (N_FEATURES,)}
        for name, shape in want.items():
            if t[name].shape != shape or k == 0:
                raise ConfigError(src, name, f"shape {t[name].shape} does not fit the header (want {shape})")
            if not np.all(np.isfinite(t[name])):
                raise ConfigError(src, name, "tensor holds NaN or infinite values")
        if not np.all(t["std"] > 0):
            raise ConfigError(src, "std", "must be > 0")
        platt = []
        for key in ("platt_a", "platt_b"):
            v = h.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise ConfigError(src, key, f"missing or not a finite number (got {v!r})")
            platt.append(float(v))
        if not isinstance(h.get("train") or {}, dict):
            raise ConfigError(src, "train", f"must be a mapping (got {type(h['train']).__name__})")
        return cls(**t, platt=(platt[0], platt[1]), info=dict(h.get("train") or {}))


_TENSORS = ("w1", "b1", "w2", "b2", "w3", "b3", "mean", "std")


@cache
def default_model() -> QualityModel:
    """The shipped model (:data:`DEFAULT_MODEL`), loaded once per process."""
    return QualityModel.load(DEFAULT_MODEL)


def quick_reachable(kinematics, grasp: Grasp, approach: float = APPROACH) -> bool:
    """Whether the Panda reaches `grasp` (TCP, world) and its pre-grasp `approach` m back along the approach
    axis by IK from the home pose and then from the grasp's solution alone (no random restarts, no straight
    line: a cheap, conservative subset of the arm trial's ``unreachable`` test). `kinematics`: a
    :class:`robot_wm.sim.KinematicModel`."""
    q = kinematics.ik(grasp.pose, restarts=0)
    if q is None:
        return False
    pre = Pose(grasp.pose.position - approach * grasp.approach, grasp.pose.quaternion)
    return kinematics.ik(pre, q, restarts=0) is not None


def pose_stencil(step: float = ROBUST_STEP, turn: float = ROBUST_TURN) -> tuple[np.ndarray, np.ndarray]:
    """The robust score's 13 pose perturbations in the TCP frame: (offsets (13, 3) m, rotations (13, 3, 3)):
    the grasp itself, then +-`step` m along each TCP axis, then +-`turn` rad about each."""
    from scipy.spatial.transform import Rotation

    eye = np.eye(3)
    off = np.concatenate([np.zeros((1, 3)), *[s * step * eye[[a]] for a in range(3) for s in (-1.0, 1.0)],
                          np.zeros((6, 3))])
    vec = np.concatenate([np.zeros((7, 3)), *[s * turn * eye[[a]] for a in range(3) for s in (-1.0, 1.0)]])
    return off, Rotation.from_rotvec(vec).as_matrix()


def robust_scores(model: QualityModel, grasps: list[Grasp], cloud: np.ndarray, prior: np.ndarray | None = None,
                  table_z: float = 0.0, robot_base: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
                  top: int = ROBUST_TOP) -> tuple[np.ndarray, np.ndarray]:
    """(P(success) (G,), robust score (G,)) of `grasps` (world frame) on the object's `cloud` (N, 3) under
    `model`. The robust score of the `top` most likely grasps is the mean P over the grasp and its
    :func:`pose_stencil` neighbours (+-5 mm, +-0.1 rad): the expected success under small pose errors, which
    prefers grasps in a region that holds over a lone peak of the model (a ranker that takes the single
    highest P picks the candidates whose P is most overestimated). On the 299 training objects of the shipped
    model (5-fold cross-validation grouped by mesh, 3 fold seeds) top-1 0.941 -> 0.952, better in each seed;
    on the held-out hard suite the same 0.9375 either way. The others' robust score is their P - 1 (after
    every smoothed one, in P order)."""
    rot, pos, width = _grasp_arrays(grasps)
    if len(pos) == 0:
        return np.zeros(0), np.zeros(0)
    fc = feature_cloud(cloud)
    prior = np.full(len(pos), np.nan) if prior is None else np.asarray(prior, float)
    p = model.probability(features_from_arrays(rot, pos, width, fc, prior, table_z, robot_base))
    idx = np.argsort(-p, kind="stable")[: max(int(top), 0)]
    robust = p - 1.0
    if len(idx):
        off, turns = pose_stencil()
        k = len(off)
        r = np.matmul(rot[idx][:, None], turns[None]).reshape(-1, 3, 3)                  # (G' k, 3, 3)
        x = (pos[idx][:, None] + np.einsum("gij,kj->gki", rot[idx], off)).reshape(-1, 3)
        pp = model.probability(features_from_arrays(r, x, np.repeat(width[idx], k), fc, np.repeat(prior[idx], k),
                                                    table_z, robot_base)).reshape(len(idx), k)
        robust[idx] = pp.mean(1)
    return p, robust


def rank_grasps(grasps: list[Grasp], cloud: np.ndarray, model: QualityModel | None = None,
                prior: np.ndarray | None = None, table_z: float = 0.0,
                robot_base: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0), kinematics=None,
                max_checks: int = 4) -> list[Grasp]:
    """`grasps` (world frame) ordered by their :func:`robust_scores` robust score, best first (ties keep the
    input order), each with ``score`` = its own P(success) under the arm protocol. `cloud` (N, 3): the
    object's (completed) cloud; `prior` (G,): the sampler's scores (NaN: not proposed by it; None: take each
    grasp's own score as the sampler's); `model`: default the shipped one. With `kinematics` (a
    :class:`robot_wm.sim.KinematicModel` at `robot_base`), the best grasps are tested in order with
    :func:`quick_reachable` until one passes (at most `max_checks`): it goes first, the ones that failed go
    last."""
    if not grasps:
        return []
    model = model or default_model()
    if prior is None:
        prior = np.array([g.score for g in grasps], float)
    p, robust = robust_scores(model, grasps, cloud, prior, table_z, robot_base)
    order = [int(i) for i in np.argsort(-robust, kind="stable")]
    if kinematics is not None:
        failed = []
        for i in order[:max_checks]:
            if quick_reachable(kinematics, grasps[i]):
                order = [i] + [j for j in order if j != i and j not in failed] + failed
                break
            failed.append(i)
    return [Grasp(grasps[i].pose, grasps[i].width, float(p[i])) for i in order]


def ranked_single_view_grasps(object_points: np.ndarray, camera_position: np.ndarray | None,
                              rng: np.random.Generator, scene_points: np.ndarray | None = None,
                              model: QualityModel | None = None, config=None,
                              robot_base: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 0.0),
                              tiers: int | None = None, kinematics=None) -> list[Grasp]:
    """:func:`candidate_pool` (`config`, `tiers`) ranked by :func:`rank_grasps` (`kinematics`: its
    reachability check): grasps (world frame) with ``score`` = P(success) under the arm protocol, best
    first; [] when the object has too few points."""
    pool = candidate_pool(object_points, camera_position, rng, scene_points, config, robot_base=robot_base,
                          tiers=tiers)
    if not pool.grasps:
        return []
    table_z = 0.0 if config is None or config.sampler.table_z is None else config.sampler.table_z
    return rank_grasps(pool.grasps, pool.cloud, model, pool.prior, table_z, robot_base, kinematics)


# ---------------------------------------------------------------------------------------------- training
def _platt(z: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[float, float]:
    """(a, b) minimising the NLL of sigmoid(a z + b) against labels y (L-BFGS-B, a in [0.01, 20], b in
    [-20, 20], an L2 pull of `l2` per sample towards (1, 0), so separable or one-class data stay finite)."""
    from scipy.optimize import minimize

    n = max(1, len(z))

    def nll(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = w[0] * z + w[1]
        p = 1 / (1 + np.exp(-np.clip(s, -50, 50)))
        loss = np.sum(np.logaddexp(0.0, s) - y * s) + l2 * n * ((w[0] - 1) ** 2 + w[1] ** 2)
        grad = np.array([np.sum((p - y) * z), np.sum(p - y)]) + 2 * l2 * n * np.array([w[0] - 1, w[1]])
        return float(loss), grad

    res = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.01, 20.0), (-20.0, 20.0)])
    return float(res.x[0]), float(res.x[1])


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE with `bins` equal-width bins of probabilities p (n,) against outcomes y (n,) in {0, 1}."""
    p, y = np.asarray(p, float), np.asarray(y, float)
    if len(p) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return float(err)


def _fit_member(xs, yt, wts, hidden: int, epochs: int, lr: float, weight_decay: float) -> dict[str, np.ndarray]:
    """One MLP fitted full-batch (Adam) to inputs xs (S, F) / labels yt (S,) with per-sample weights wts (S,)
    (torch tensors); its parameters as NumPy arrays in :class:`QualityModel`'s layout."""
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    norm = wts.sum().clamp(min=1.0)
    for _ in range(epochs):
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(net(xs).squeeze(1), yt, reduction="none")
                * wts).sum() / norm
        loss.backward()
        opt.step()
    log.debug("member fitted: loss %.4f", float(loss.detach()))
    l1, l2, l3 = (m.weight.detach().numpy() for m in (net[0], net[2], net[4]))
    b1, b2, b3 = (m.bias.detach().numpy() for m in (net[0], net[2], net[4]))
    return {"w1": l1.T.copy(), "b1": b1.copy(), "w2": l2.T.copy(), "b2": b2.copy(), "w3": l3[0].copy(),
            "b3": np.array(float(b3[0]))}


def _fit_ensemble(x: np.ndarray, y: np.ndarray, groups: np.ndarray, rng: np.random.Generator, members: int,
                  hidden: int, epochs: int, lr: float, weight_decay: float) -> QualityModel:
    """An uncalibrated ensemble fitted to features x (S, F) / labels y (S,) (standardised on x; each member on
    a bootstrap of the objects `groups` (S,) drawn from `rng`)."""
    import torch

    mean = x.mean(0)
    std = x.std(0)
    std = np.where(std > 1e-6, std, 1.0)
    xs = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    objs = np.unique(groups)
    params: dict[str, list[np.ndarray]] = {k: [] for k in ("w1", "b1", "w2", "b2", "w3", "b3")}
    for _ in range(members):
        boot = rng.choice(objs, len(objs), replace=True) if members > 1 else objs
        counts = dict(zip(*np.unique(boot, return_counts=True), strict=True))
        wts = torch.tensor([counts.get(gr, 0) for gr in groups.tolist()], dtype=torch.float32)
        for key, value in _fit_member(xs, yt, wts, hidden, epochs, lr, weight_decay).items():
            params[key].append(value)
    arr = {k: np.stack([np.asarray(v, float) for v in vs]) for k, vs in params.items()}
    return QualityModel(**arr, mean=mean, std=std)


def train_quality_model(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int = 0,
                        members: int = 5, hidden: int = 32, epochs: int = 200, lr: float = 3e-3,
                        weight_decay: float = 0.01, calibration_folds: int = 4) -> QualityModel:
    """Fit the ensemble on features (S, F) / labels (S,) in {0, 1} of all objects, then its Platt map by
    cross-fitting.

    `groups` (S,): the object each sample comes from. The objects are split (seeded) into
    `calibration_folds` folds; an ensemble fitted without each fold gives that fold's out-of-fold mean logits,
    and the Platt map is fitted on all of them (so the probabilities are calibrated on objects the networks
    never saw, and no object is withheld from the shipped networks). ``info`` records the cross-validated
    (grouped by object) AUC / ECE / NLL of those out-of-fold probabilities. `calibration_folds` < 2 (or
    fewer than 4 objects): no calibration (a = 1, b = 0). Each member trains full-batch (Adam) on a bootstrap
    of the objects. Same seed, same data -> same model.
    """
    import torch

    x = np.asarray(features, float)
    y = np.asarray(labels, float)
    groups = np.asarray(groups)
    if x.ndim != 2 or x.shape[1] != N_FEATURES or len(y) != len(x) or len(groups) != len(x):
        raise ConfigError("train_quality_model", "features", f"expected (S, {N_FEATURES}) with S labels and groups")
    rng = np.random.default_rng(seed)
    objs = np.unique(groups)
    folds = calibration_folds if calibration_folds >= 2 and len(objs) > 3 else 0
    fold_of = dict(zip(rng.permutation(objs).tolist(), [k % max(folds, 1) for k in range(len(objs))], strict=True))
    fold = np.array([fold_of[gr] for gr in groups.tolist()])
    hp = {"members": members, "hidden": hidden, "epochs": epochs, "lr": lr, "weight_decay": weight_decay}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny full-batch steps: threads cost more than they give
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            oof = np.zeros(len(y))
            for k in range(folds):
                test = fold == k
                part = _fit_ensemble(x[~test], y[~test], groups[~test], rng, **hp)
                oof[test] = part.member_logits(x[test]).mean(0)
            model = _fit_ensemble(x, y, groups, rng, **hp)
    finally:
        torch.set_num_threads(threads)
    info: dict[str, Any] = {"samples": int(len(y)), "objects": int(len(objs)), "positive_rate": float(y.mean()),
                            "seed": int(seed), "members": members, "hidden": hidden, "epochs": epochs,
                            "weight_decay": weight_decay,
                            "calibration": "cross-fitted Platt", "calibration_folds": int(folds),
                            "calibration_samples": int(len(y)) if folds else 0}
    platt = (1.0, 0.0)
    if folds:
        a, b = _platt(oof, y)
        platt = (a, b)
        raw = 1 / (1 + np.exp(-oof))
        p = 1 / (1 + np.exp(-(a * oof + b)))
        info.update({"cv_auc": _auc(p, y), "calibration_ece_raw": expected_calibration_error(raw, y),
                     "calibration_ece": expected_calibration_error(p, y),
                     "calibration_nll": float(-np.mean(y * np.log(np.clip(p, 1e-9, 1))
                                                       + (1 - y) * np.log(np.clip(1 - p, 1e-9, 1))))})
    return QualityModel(model.w1, model.b1, model.w2, model.b2, model.w3, model.b3, model.mean, model.std, platt,
                        info)


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of scores p (n,) for outcomes y (n,) in {0, 1} (ties averaged); NaN with one
    class only."""
    from scipy.stats import rankdata

    n1 = float(np.sum(y))
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[np.asarray(y) == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
