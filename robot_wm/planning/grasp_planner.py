"""The grasp planner: candidates on the *perceived* object → collision and reachability filters → ranked by
the world model's P(success) → the top k verified in the shadow world; the first that passes is chosen.

    planner = GraspPlanner(arm.kin, WorldModel.load(), ShadowVerifier(trials=3), seed=0)
    plan = planner.plan(target, estimates)          # target: ObjectEstimate, estimates: the whole scene
    plan.chosen.grasp.pose, plan.chosen.open_width  # or None, with plan.reason
    plan.pick_action()                              # the PickAction a controller executes
    plan.record()                                   # JSON-able account (top candidates, verdicts, timings)

Everything is in the world frame (m, rad, xyzw quaternions); the TCP frame is the Panda's
``panda_grasptarget`` (z = approach, y = closing axis; a top-down grasp has z = world -z).

Candidate sources (``sources``):

* ``sampler`` — the grasping module's antipodal sampler on the target's perceived points (``est.points``,
  downsampled to ``voxel``, PCA normals): any side and any part of the object whose contacts fit the
  gripper (``min_width`` .. ``max_width``), so an object wider than the gripper across both box sides
  still gets grasps on a narrower part (a wedge's narrow end, an L's arm near its tip). Two stages:

  1. top-down: each antipodal pair (:func:`robot_wm.grasping.candidates.antipodal_pairs`) whose closing
     axis is within ``snap_tilt_deg`` of horizontal gives a top-down grasp — TCP at the contacts' centre
     (backed off by ``depth_offsets``), closing along the pair's horizontal direction. That is how the world
     model's grasp data were made (model.collect: sampler candidates within 30 deg of straight down,
     snapped to top-down, then shake-tested), so the model scores exactly what is executed. Duplicates
     (2 mm, 3 deg) are merged;
  2. tilted, lazily: :func:`robot_wm.grasping.sample_grasps` (6-DoF, approach within ``max_tilt_deg`` of
     straight down, its own collision test) — those beyond ``snap_tilt_deg``, keeping their tilt — and the
     box grasps below turned about their closing axis by ±``box_tilts_deg`` (the palm leaning away from a
     wall), also slid along the gripped faces by ``box_escape_slides`` with a pad hanging up to half off a
     face's end (the leaning palm swings the fingertips towards the wall). Made only when the walk down the ranked top-down candidates reaches the tilted prior (below) or
     ends without a chosen grasp.
* ``box`` — :func:`robot_wm.planning.box_grasps.top_down_grasps` of the estimate's oriented box (narrow
  side, then wide side, at ``box_depths`` below the top), at its centre and slid by ``box_slides`` along
  the gripped faces (an object flush against a wall: the palm, 6.3 cm deep, touches the wall over an object
  narrower than that when gripped at the centre, and clears it a few mm off centre). With the tilted
  candidates (only when no top-down grasp is chosen) come *escape* grasps
  (:meth:`GraspPlanner.escape_box_candidates`): slid a few mm further (``box_escape_slides``, the pads
  overhanging a face's end by up to ``box_max_overhang``) and raised until the palm clears the highest
  obstacle point under it (keeping ``box_min_grip`` of the object between the pads) — a box thinner than
  the palm flush against a wall a little taller than the palm's height above the TCP.

Filters: the open hand (contact width + ``open_clearance``), grown by ``collision_margin``, must contain
no obstacle point — the other estimates' points within ``scene_margin`` of the target (downsampled to
``scene_voxel``; an estimate without points contributes its box's faces) and the target's own, each cloud
moved into its estimate's box (:func:`clamp_to_box`: depth noise strays beyond it) — nor put a
finger within ``hull_margin`` of the inside of the target's convex hull extended down to the table (the
object the shadow world collides, so a grasp reaching into a concavity is refused), and its lowest point
stays ``table_clearance`` above the table plane ``table_z``
(:func:`robot_wm.grasping.candidates.collision_free`, the sampler's test). Reachability: exact IK
(:meth:`robot_wm.sim.KinematicModel.ik`) for the pre-grasp pose (``approach`` m back along TCP z) and the
grasp pose (seeded from the pre-grasp answer), only for candidates in rank order until one is chosen or
``max_ik_checks`` were tried (~0.5 ms each when reachable, several ms when not); a candidate unreachable as
posed is tried as its twin, turned half a turn about the approach (the same parallel-jaw grasp, fingers
swapped: a grasp leaning towards the robot is past the wrist's ±166° one way and within it the other).

Ranking: rank = P(success) + ``tie_weight`` x analytic quality. P(success) of top-down candidates: the world
model's grasp head in one batched call (the best ``max_scored`` by quality; ``torch_threads`` threads), the
object as a perceived mesh — its oriented box as the state, the convex hull of its points (extended to its
support, as the shadow world builds it) as the shape descriptor. Tilted candidates cannot be scored by the
model (trained on top-down grasps only): they get ``tilted_prior`` (0.5) just past ``snap_tilt_deg``, falling
linearly by TILT_PENALTY (0.1) to ``max_tilt_deg`` — tried only after every top-down grasp the model rates
above them, the least tilted first. Analytic quality = friction-cone margin / atan(mu) - 0.5 x distance of
the TCP from the points' centroid / 8 cm (the sampler's score; box grasps count as perfectly antipodal,
margin term 1). Without a model (or ``ranking: quality``): top-down before tilted, then by quality.

Verification: reachable candidates in rank order go to ``verifier.verify(target, grasp)`` — the grasp
widened so the shadow hand opens to the candidate's ``open_width``, as the arm will (:meth:`shadow_grasp`) — at most
``verify_top_k`` of them; a candidate within ``diversity_m`` and ``diversity_deg`` of one that already failed
is skipped (it would fail the same way). The first that passes is chosen; without a verifier, the first
reachable one.

Single-view mode (``GraspPlanner(..., cameras=[one position])``, e.g. :func:`camera_positions` of a scene with
one camera; :func:`robot_wm.planning.task_planner.default_task_planner` turns it on for a scene whose only
camera is fixed): the far side of every object is unseen, so the sampler above finds few grasps whose two contacts
it saw. The planner first tries :meth:`GraspPlanner.single_view_candidates` — the hard suite's headline
(``robot-wm bench grasping``, issue 18): the target's cloud completed from the support footprint with unseen
space kept out of the fingers (:mod:`robot_wm.grasping.single_view`), antipodal grasps on it plus top-down
grasps at its centroid (:func:`robot_wm.grasping.quality.candidate_pool`), ranked by the grasp-quality model's
P(stable under the arm) averaged over small pose errors (:func:`robot_wm.grasping.quality.robust_scores`; the
candidate's own P is its ``p_success``), opened to width + 1 cm as that model's trials were. The walk is the same (IK, then the shadow world, which is built from the *completed* cloud: the grasp
may close on a face the camera never saw); only when none of them is chosen do the sources above follow,
sharing the same IK and verification budgets. With no camera list or several cameras, nothing changes.

Seeding: each :meth:`GraspPlanner.plan` call draws from its own generator,
``SeedSequence([seed, crc32(target.id), attempt])``, so a plan depends on the seed, the target's id, the
attempt number and the inputs — never on earlier calls. (The :class:`ShadowVerifier`'s own trials depend on
how often it has been called: see its docstring.)
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

from robot_wm.config.planner_grasp import GraspPlannerConfig
from robot_wm.geometry import Pose, panda
from robot_wm.grasping import Grasp, SamplerConfig, sample_grasps
from robot_wm.grasping.candidates import (
    PALM_X,
    PALM_Y,
    PALM_Z,
    antipodal_pairs,
    collision_free,
    downsample,
    estimate_normals,
    hull_planes,
    workspace_reachable,
)
from robot_wm.grasping.grasp import MAX_WIDTH
from robot_wm.grasping.quality import (
    OPENING_CLEARANCE,
    RANKED_TIERS,
    QualityModel,
    candidate_pool,
    default_model,
    ranked_pool_config,
    robust_scores,
)
from robot_wm.model.shape import PART_VERTS, descriptor_from_hull, farthest_subset
from robot_wm.model.state import grasp_action_from_tcp, object_state
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.box_grasps import MIN_TCP_HEIGHT, PAD_HALF_WIDTH, TopDownGrasp, top_down_grasps
from robot_wm.planning.decision import PickAction
from robot_wm.planning.scene_state import classify_shape
from robot_wm.planning.shadow import MIN_HULL_POINTS, ShadowVerifier, Verdict

if TYPE_CHECKING:
    from robot_wm.model.world_model import WorldModel
    from robot_wm.sim import KinematicModel

log = logging.getLogger(__name__)

COM_WEIGHT = 0.5  # the sampler's centring weight (SamplerConfig.com_weight), also used for box grasps
OWN_VOXEL = 0.004  # m: the target's own points as obstacles (as the sampler downsamples them)
BOX_SURFACE_STEP = 0.01  # m between points sampled on the box of an estimate that has no points
SHAKE_OPENING_CLEARANCE = 0.01  # m: the shake test opens to grasp width + this (planners/shake_test.yaml)
TILT_PENALTY = 0.1  # the prior of a tilted candidate drops by this from snap_tilt_deg to max_tilt_deg
TABLE_STEP = 0.005  # m between the table points the single-view completion is told the camera saw
ROUND_TURNS = tuple(math.radians(d) for d in (15, 30, 45, 60, 75))  # rad: with the box's own two axes, every 15 deg
RAISE_EPS = 0.001  # m: a raised box grasp's palm clears the highest point under it by margin + this
TABLE_MARGIN = 0.2  # m around the target's points over which those table points are laid


@dataclass(eq=False)
class GraspCandidate:
    """One evaluated grasp. `grasp`: TCP pose (world) and contact width (m) — what the shadow verifier
    tests — with the analytic quality as its score; `open_width`: how far the fingers open before the
    approach (m); `source`: "sampler" | "box" | "box_escape" (:meth:`GraspPlanner.escape_box_candidates`) | "single_view"; `tilt`: approach angle from straight down (rad).

    `p_success`: the world model's P(shake test stable) (top-down), `tilted_prior` (tilted), the grasp-quality
    model's P(stable under the arm) (single_view), None when not scored; `rank`: the ranking key (higher first); `collision_free`; `reachable`: IK found for the
    pre-grasp and the grasp pose (None: not checked), with the joint angles `q_pre`, `q` (7,) rad;
    `verdict`: the shadow world's, when verified; `note`: why it was passed over, if it was."""

    grasp: Grasp
    open_width: float
    source: str
    tilt: float = 0.0
    p_success: float | None = None
    rank: float = -math.inf
    collision_free: bool = True
    reachable: bool | None = None
    q_pre: np.ndarray | None = None
    q: np.ndarray | None = None
    verdict: Verdict | None = None
    note: str = ""

    @property
    def quality(self) -> float:
        """Analytic quality (the sampler's score; see the module doc)."""
        return float(self.grasp.score)

    @property
    def contact_width(self) -> float:
        """Width of the object between the fingers (m)."""
        return float(self.grasp.width)

    @property
    def top_down(self) -> bool:
        return self.tilt < 1e-6

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (rounded)."""
        v = self.verdict
        return {
            "source": self.source,
            "p_success": None if self.p_success is None else round(float(self.p_success), 4),
            "quality": round(self.quality, 4),
            "rank": None if not math.isfinite(self.rank) else round(float(self.rank), 4),
            "tilt_deg": round(math.degrees(self.tilt), 2),
            "position": [round(float(x), 5) for x in self.grasp.pose.position],
            "quaternion": [round(float(x), 6) for x in self.grasp.pose.quaternion],
            "contact_width": round(self.contact_width, 5),
            "open_width": round(float(self.open_width), 5),
            "collision_free": bool(self.collision_free),
            "reachable": self.reachable,
            "verdict": None if v is None else {"success_rate": round(float(v.success_rate), 4),
                                               "labels": dict(v.labels), "passed": bool(v.passed)},
            "note": self.note,
        }


@dataclass
class GraspPlan:
    """The outcome of :meth:`GraspPlanner.plan` for one target: the `chosen` candidate (None when nothing
    passed, `reason` says why), every `candidates` evaluated in rank order (collision-free first), the
    number of `shadow_tests` run, `counts` of each stage (``pairs``: antipodal pairs found, ``box``: box-side
    grasps, ``top_down``: top-down candidates after merging duplicates, ``tilted``: tilted ones sampled,
    ``collision_free``, ``scored``: top-down ones the world model rated, ``ik_checked``, ``reachable``),
    `timing_ms` (candidates, rank, reach, verify, total; ms) and the pre-grasp distance `approach` (m)."""

    target: str
    chosen: GraspCandidate | None
    candidates: list[GraspCandidate]
    shadow_tests: int = 0
    timing_ms: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    approach: float = 0.12
    record_top: int = 8

    def pick_action(self) -> PickAction | None:
        """The chosen grasp as the :class:`PickAction` a controller executes (None when nothing was chosen)."""
        c = self.chosen
        if c is None:
            return None
        return PickAction(self.target, c.grasp.pose, float(c.open_width), c.contact_width, self.approach, c.q_pre)

    def record(self) -> dict[str, Any]:
        """JSON-able account: target, chosen (its index in `candidates`, or None) and reason, counts, shadow
        tests, timings (ms) and the best `record_top` candidates (plus the chosen one) as dicts."""
        top = list(range(min(self.record_top, len(self.candidates))))
        chosen = None
        if self.chosen is not None:
            chosen = next(i for i, c in enumerate(self.candidates) if c is self.chosen)
            if chosen not in top:
                top.append(chosen)
        return {
            "target": self.target,
            "chosen": chosen,
            "reason": self.reason,
            "counts": dict(self.counts),
            "shadow_tests": self.shadow_tests,
            "timing_ms": {k: round(float(v), 3) for k, v in self.timing_ms.items()},
            "candidates": [dict(self.candidates[i].to_dict(), index=i) for i in top],
        }


@dataclass
class _Geometry:
    """What the filters need of one target: its downsampled points (N, 3) or None, their centroid (3,),
    the obstacles (M, 3) (others + its own points), its hull planes (F, 4) or None, the others' points."""

    points: np.ndarray | None
    centroid: np.ndarray
    obstacles: np.ndarray
    hull: np.ndarray | None
    scene_points: np.ndarray


@dataclass
class _ChoiceState:
    """Budgets and timings of one plan's reach-and-verify walk."""

    tests: int = 0
    ik: int = 0
    reach_s: float = 0.0
    verify_s: float = 0.0
    failed: list[GraspCandidate] = field(default_factory=list)


class GraspPlanner:
    """Plans one grasp of a perceived object (see the module doc for the pipeline).

    kin: the arm's kinematic model for IK (None: reachability is only the sampler's workspace test);
    model: the world model ranking top-down grasps (None: analytic quality); verifier: the shadow-world
    verifier (None: the best reachable candidate is chosen unverified); config: settings
    (planners/grasp_planner.yaml); seed: see the module doc. cameras: the optical-centre positions (3,) (world,
    m) of the fixed cameras the estimates come from (:func:`camera_positions` of a scene); with exactly one,
    the planner is in single-view mode (module doc). quality: the grasp-quality model of that mode (default:
    the shipped one, loaded when first needed).
    """

    def __init__(self, kin: KinematicModel | None, model: WorldModel | None = None,
                 verifier: ShadowVerifier | None = None, config: GraspPlannerConfig | None = None,
                 seed: int = 0, cameras: Sequence[np.ndarray] | None = None,
                 quality: QualityModel | None = None) -> None:
        self.kin, self.model, self.verifier = kin, model, verifier
        self._lines = None  # the controller's straight-line planner on `kin`, made when first needed
        self.config = config or GraspPlannerConfig()
        self.seed = int(seed)
        self.cameras = None if cameras is None else [np.asarray(c, float).reshape(3) for c in cameras]
        if self.cameras is not None and not all(np.all(np.isfinite(c)) for c in self.cameras):
            raise ValueError("GraspPlanner: cameras: positions must be finite")
        self.quality = quality
        c = self.config
        self.sampler_config = SamplerConfig(
            num_contacts=c.num_contacts, approach_angles=c.approach_angles, depth_offsets=tuple(c.depth_offsets),
            friction=c.friction, voxel=c.voxel, min_width=c.min_width, max_width=c.max_width,
            clearance=c.open_clearance, collision_tolerance=-c.collision_margin, table_z=c.table_z,
            table_clearance=c.table_clearance,
            com_weight=COM_WEIGHT, max_approach_tilt=math.radians(c.max_tilt_deg))
        self._hull_config = replace(self.sampler_config, collision_tolerance=-c.hull_margin)

    # ------------------------------------------------------------------ the one call
    def plan(self, target: ObjectEstimate, scene: list[ObjectEstimate], attempt: int = 0,
             q_seed: np.ndarray | None = None) -> GraspPlan:
        """A grasp of `target` given everything perceived (`scene`: all estimates; the target itself, matched
        by id, is left out of the obstacles). `attempt` (0, 1, ...) varies the random draw for a retry of
        the same object; `q_seed` (7,) rad: the arm's current joints, IK's first starting point (None: HOME).
        """
        c = self.config
        t0 = time.perf_counter()
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, zlib.crc32(target.id.encode()), int(attempt)]))
        geo = self._geometry(target, scene)
        state = _ChoiceState()
        single: list[GraspCandidate] = []
        chosen = None
        sv_s = 0.0
        if self.single_view_camera is not None and geo.points is not None:
            t = time.perf_counter()
            single, completed = self.single_view_candidates(target, rng, geo)
            sv_s = time.perf_counter() - t
            # verified on the completed object (the camera never saw the far side the grasp may close on)
            chosen, _ = self._choose(completed, single, q_seed, state)
        if chosen is not None:
            cands, counts = [], {"pairs": 0, "box": 0, "tilted": 0, "top_down": 0}
            rank_s = 0.0
        else:
            cands, counts = self.candidates(target, scene, rng, geo)
            t1 = time.perf_counter()
            self.rank(target, cands)
            rank_s = time.perf_counter() - t1
            # tilted candidates rank at most tilted_prior + tie_weight (their quality is <= 1): walk the
            # top-down ones above that first, and sample tilted ones only when no grasp was chosen by then
            floor = c.tilted_prior + c.tie_weight if self._uses_model else -math.inf
            chosen, rest = self._choose(target, cands, q_seed, state, floor)
        counts["single_view"] = len(single)
        if chosen is None and self._budget_left(state):
            tilted = self.tilted_candidates(target, scene, rng, geo)
            counts["tilted"] = len(tilted)
            t = time.perf_counter()
            self.rank(target, tilted)
            rank_s += time.perf_counter() - t
            cands += tilted
            chosen, _ = self._choose(target, sorted(rest + tilted, key=_rank_key), q_seed, state)
            cands.sort(key=_rank_key)
        total = (time.perf_counter() - t0) * 1e3
        cands = single + cands
        counts["collision_free"] = sum(g.collision_free for g in cands)
        counts["scored"] = sum(g.p_success is not None and g.top_down and g.source != "single_view" for g in cands)
        counts |= {"ik_checked": state.ik, "reachable": sum(g.reachable is True for g in cands)}
        timing = {"rank": rank_s * 1e3, "reach": state.reach_s * 1e3, "verify": state.verify_s * 1e3, "total": total}
        timing = {"candidates": total - timing["rank"] - timing["reach"] - timing["verify"]} | timing
        if self.single_view_camera is not None:
            timing["single_view"] = sv_s * 1e3
        reason = "" if chosen is not None else self._reason(target, cands, counts, state.tests)
        if chosen is None:
            log.info("no grasp for %s: %s", target.id, reason)
        return GraspPlan(target.id, chosen, cands, state.tests, timing, reason, counts, c.approach, c.record_top)

    # ------------------------------------------------------------------ single view
    @property
    def single_view_camera(self) -> np.ndarray | None:
        """The one camera's position (3,) (world, m) in single-view mode, else None."""
        return self.cameras[0] if self.cameras is not None and len(self.cameras) == 1 else None

    def single_view_candidates(self, target: ObjectEstimate, rng: np.random.Generator, geo: _Geometry | None = None,
                               scene: list[ObjectEstimate] | None = None) -> tuple[list[GraspCandidate], ObjectEstimate]:
        """Candidates from the one camera's view (single-view mode): the grasp-quality module's pool
        (:func:`robot_wm.grasping.quality.candidate_pool`: antipodal grasps on the completed cloud, unseen space
        kept out of the fingers, plus top-down grasps at the completed cloud's centroid) with the hard suite's
        settings, each scored by the grasp-quality model (``p_success``; ``rank``: its robust score, the mean
        P over small pose errors, :func:`robot_wm.grasping.quality.robust_scores`; best first), collision-free
        when the hand, opened as the model assumes (width + OPENING_CLEARANCE), grown by ``collision_margin``,
        holds none of the other objects' points and stays above the table. The completion is told the camera
        saw the other objects' points and the table plane around the target. Returns the candidates (sorted,
        colliding ones last) and the target's estimate with the completed cloud as its points and the box
        around it (what the shadow world verifies them on). `geo` / `scene`: the target's geometry (or the
        scene to compute it from)."""
        c = self.config
        cam = self.single_view_camera
        if cam is None:
            raise ValueError("single_view_candidates: the planner has not exactly one camera")
        geo = geo or self._geometry(target, scene or [])
        if geo.points is None:
            return [], target
        pts = np.asarray(target.points, float).reshape(-1, 3)
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        base = np.zeros(3) if self.kin is None else np.asarray(self.kin.base_position, float)
        seen = np.concatenate([geo.scene_points, _table_grid(pts, c.table_z)])
        pool = candidate_pool(pts, cam, rng, seen, ranked_pool_config(c.table_z), robot_base=base, tiers=RANKED_TIERS)
        if not pool.grasps:
            return [], target
        model = self.quality or default_model()
        p, robust = robust_scores(model, pool.grasps, pool.cloud, pool.prior, c.table_z, base)
        rot = np.stack([g.pose.rotation.as_matrix() for g in pool.grasps])
        pos = np.stack([g.pose.position for g in pool.grasps])
        opening = np.minimum(np.array([g.width for g in pool.grasps]) + OPENING_CLEARANCE, panda.MAX_OPENING)
        free = collision_free(rot, pos, opening, geo.scene_points, self.sampler_config)
        out = []
        for i, g in enumerate(pool.grasps):
            tilt = math.acos(float(np.clip(-rot[i, 2, 2], -1.0, 1.0)))
            prior = float(pool.prior[i]) if np.isfinite(pool.prior[i]) else 0.0
            out.append(GraspCandidate(Grasp(g.pose, g.width, prior), float(opening[i]), "single_view", tilt,
                                      p_success=float(p[i]), rank=float(robust[i]), collision_free=bool(free[i])))
        out.sort(key=_rank_key)
        return out, _completed_estimate(target, pool.cloud)

    # ------------------------------------------------------------------ candidates
    def candidates(self, target: ObjectEstimate, scene: list[ObjectEstimate], rng: np.random.Generator,
                   geo: _Geometry | None = None) -> tuple[list[GraspCandidate], dict[str, int]]:
        """Top-down candidates from the configured sources with their collision flags, and counts per stage
        (tilted ones come from :meth:`tilted_candidates`, only when no top-down one is chosen)."""
        c = self.config
        geo = geo or self._geometry(target, scene)
        counts = {"pairs": 0, "box": 0, "tilted": 0}
        poses: list[np.ndarray] = []  # each (G, 4): x, y, z, TCP yaw
        widths: list[np.ndarray] = []
        quality: list[np.ndarray] = []
        sources: list[str] = []
        if "sampler" in c.sources and geo.points is not None:
            xyzt, w, q, counts["pairs"] = self._pair_grasps(geo, rng)
            poses.append(xyzt)
            widths.append(w)
            quality.append(q)
            sources += ["sampler"] * len(w)
        if "box" in c.sources:
            boxes = self._box_grasps([target], c.box_slides)
            if boxes:
                pos = np.stack([b.pose.position for b in boxes])
                yaw = np.array([_top_down_yaw(b.pose.quaternion) for b in boxes])
                poses.append(np.c_[pos, yaw])
                widths.append(np.array([b.contact_width for b in boxes]))
                quality.append(_box_quality(pos, geo.centroid))
                sources += ["box"] * len(boxes)
                counts["box"] = len(boxes)
        if not sources:
            counts |= {"top_down": 0, "collision_free": 0}
            return [], counts
        xyzt, w, q = np.concatenate(poses), np.concatenate(widths), np.concatenate(quality)
        opening = np.minimum(w + c.open_clearance, panda.MAX_OPENING)
        free = self._collision_free(_top_down_matrices(xyzt[:, 3]), xyzt[:, :3], opening, geo)
        quats = _top_down_quats(xyzt[:, 3])
        out = [GraspCandidate(Grasp(Pose(xyzt[i, :3], quats[i]), float(w[i]), float(q[i])), float(opening[i]),
                              sources[i], 0.0, collision_free=bool(free[i])) for i in range(len(w))]
        counts |= {"top_down": len(out), "collision_free": int(free.sum())}
        return out, counts

    def _collision_free(self, rot: np.ndarray, pos: np.ndarray, opening: np.ndarray, geo: _Geometry) -> np.ndarray:
        """Mask (G,) of hands (TCP rotations (G, 3, 3), positions (G, 3), openings (G,) m) clear of the
        obstacles and the table, with the fingers out of the target's hull (its own, smaller margin)."""
        free = collision_free(rot, pos, opening, geo.obstacles, self.sampler_config)
        idx = np.flatnonzero(free)
        if geo.hull is not None and len(idx):  # survivors only
            free[idx] = collision_free(rot[idx], pos[idx], opening[idx], np.zeros((0, 3)), self._hull_config, geo.hull)
        return free

    def _geometry(self, target: ObjectEstimate, scene: list[ObjectEstimate]) -> _Geometry:
        """The target's points (None when fewer than 10), their centroid, the obstacles (other objects'
        points near the target + the target's own, downsampled) and its hull extended to the table."""
        cfg = self.sampler_config
        pts = None if target.points is None else np.asarray(target.points, float).reshape(-1, 3)
        scene_pts = self._scene_points(target, scene)
        if pts is None or len(pts) < 10:
            return _Geometry(None, np.asarray(target.pose.position, float), scene_pts, None, scene_pts)
        pts = downsample(pts, cfg.voxel)
        own = downsample(clamp_to_box(target, pts), OWN_VOXEL)
        obstacles = np.concatenate([own, scene_pts]) if len(scene_pts) else own
        hull = hull_planes(np.concatenate([own, np.c_[own[:, :2], np.full(len(own), cfg.table_z)]]))
        return _Geometry(pts, pts.mean(0), obstacles, hull, scene_pts)

    def _pair_grasps(self, geo: _Geometry, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Top-down grasps from the sampler's antipodal pairs whose closing axis is within snap_tilt_deg
        of horizontal (a top-down approach within snap_tilt_deg of theirs exists), snapped: TCP at the
        pair's centre (backed off by each depth offset, at least MIN_TCP_HEIGHT high), closing along the
        pair's horizontal direction. Returns (x, y, z, TCP yaw) (G, 4), contact widths (G,), quality (G,)
        and the number of pairs; duplicates (2 mm, 3 deg) merged, best quality kept."""
        cfg = self.sampler_config
        pts = geo.points
        if len(pts) < 10:
            return np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0
        nrm = estimate_normals(pts, cfg.normal_neighbours)
        i1, i2, margin = antipodal_pairs(pts, nrm, rng, cfg)
        d = pts[i2] - pts[i1]
        width = np.linalg.norm(d, axis=1)
        y = d / np.maximum(width, 1e-12)[:, None]
        keep = np.abs(y[:, 2]) <= math.sin(math.radians(self.config.snap_tilt_deg))
        centre, width, margin, y = (pts[i1] + pts[i2])[keep] / 2, width[keep], margin[keep], y[keep]
        yaw = np.arctan2(y[:, 1], y[:, 0]) + math.pi / 2  # top_down_quaternion(yaw) closes along heading yaw - pi/2
        yaw = (yaw + math.pi / 2) % math.pi - math.pi / 2  # the gripper is symmetric: yaw in [-pi/2, pi/2)
        offs = np.asarray(cfg.depth_offsets, float)
        pos = np.repeat(centre, len(offs), 0) + np.c_[np.zeros((len(centre) * len(offs), 2)), np.tile(offs, len(centre))]
        pos[:, 2] = np.maximum(pos[:, 2], MIN_TCP_HEIGHT)
        yaw, width, margin = np.repeat(yaw, len(offs)), np.repeat(width, len(offs)), np.repeat(margin, len(offs))
        quality = margin / math.atan(cfg.friction) - cfg.com_weight * np.linalg.norm(pos - geo.centroid, axis=1) / MAX_WIDTH
        base = None if self.kin is None else np.asarray(self.kin.base_position, float)
        ok = workspace_reachable(_top_down_matrices(yaw), pos, cfg, np.zeros(3) if base is None else base)
        order = [i for i in np.argsort(-quality, kind="stable") if ok[i]]
        seen: set[tuple[int, ...]] = set()
        out = []
        for i in order:
            key = (*np.round(pos[i] / 0.002).astype(int).tolist(), int(round((yaw[i] % math.pi) / math.radians(3))) % 60)
            if key not in seen:
                seen.add(key)
                out.append(i)
        idx = np.asarray(out, int)
        return np.c_[pos[idx], yaw[idx]], width[idx], quality[idx], len(i1)

    def tilted_candidates(self, target: ObjectEstimate, scene: list[ObjectEstimate], rng: np.random.Generator,
                          geo: _Geometry | None = None) -> list[GraspCandidate]:
        """Tilted candidates: the sampler's 6-DoF ones approaching between snap_tilt_deg and max_tilt_deg from
        straight down (collision-free by the sampler's own test), best quality first; then the box grasps
        turned about their closing axis by ``box_tilts_deg`` (:meth:`tilted_box_candidates`)."""
        geo = geo or self._geometry(target, scene)
        out = []
        if geo.points is not None and "sampler" in self.config.sources:
            base = np.zeros(3) if self.kin is None else np.asarray(self.kin.base_position, float)
            snap = math.radians(self.config.snap_tilt_deg)
            for g in sample_grasps(geo.points, rng, None, geo.scene_points, self.sampler_config, base):
                tilt = math.acos(float(np.clip(-g.approach[2], -1.0, 1.0)))
                if tilt > snap:
                    out.append(GraspCandidate(g, self._opening(g.width), "sampler", tilt))
        return out + self.escape_box_candidates(target, geo) + self.tilted_box_candidates(target, geo)

    def escape_box_candidates(self, target: ObjectEstimate, geo: _Geometry) -> list[GraspCandidate]:
        """Top-down box grasps for an object whose ordinary ones all touch something (made with the tilted
        candidates, only when no top-down grasp is chosen): the box grasps at ``box_slides`` and
        ``box_escape_slides``, the pads overhanging a gripped face's end by up to ``box_max_overhang`` (a
        2.3 cm box flush against a wall leaves the 2.1 cm fingers closing along the wall 2 mm from it at the
        centre; slid 4 mm away, 6 mm), each at ``box_depths`` and *raised* until the palm (PALM_X x PALM_Y,
        grown by ``collision_margin``) is above every other obstacle point under it (``geo.scene_points``),
        where that keeps at least ``box_min_grip`` of the object between the pads (the palm spans 4.7-13.1
        cm above the TCP: over an object beside a 6-7 cm wall a grasp 2.5 cm below the top puts it on the
        wall, one 1-1.5 cm below clears it). An upright cylinder (:func:`~robot_wm.planning.scene_state.classify_shape`)
        is gripped across its diameter whichever way the fingers close: its box grasps are also turned by
        :data:`ROUND_TURNS` (its perceived box's axes are arbitrary, and one of them may point a finger's corner
        at the wall). Collision flags and quality as for the top-down box grasps; source "box_escape"."""
        c = self.config
        if "box" not in c.sources:
            return []
        slides = list(dict.fromkeys((*c.box_slides, *c.box_escape_slides)))
        boxes = self._box_grasps(_round_turns(target), slides, c.box_max_overhang)
        if not boxes:
            return []
        pos = np.stack([b.pose.position for b in boxes])
        yaw = np.array([_top_down_yaw(b.pose.quaternion) for b in boxes])
        width = np.array([b.contact_width for b in boxes])
        mats = _top_down_matrices(yaw)  # (G, 3, 3), columns: the TCP axes in the world
        if c.box_min_grip > 0 and len(geo.scene_points):
            local = np.einsum("gij,gpi->gpj", mats, geo.scene_points[None] - pos[:, None])  # (G, P, 3)
            m = c.collision_margin
            under = ((local[..., 0] > PALM_X[0] - m) & (local[..., 0] < PALM_X[1] + m)
                     & (local[..., 1] > PALM_Y[0] - m) & (local[..., 1] < PALM_Y[1] + m))
            top = np.where(under, geo.scene_points[None, :, 2], -np.inf).max(1)  # highest point under the palm
            z = top + PALM_Z[1] + m + RAISE_EPS  # the TCP height whose palm underside (-PALM_Z[1] above it) clears it
            up = np.isfinite(z) & (z > pos[:, 2] + RAISE_EPS) & (z <= target.top_z - c.box_min_grip)
            if up.any():
                raised = pos[up].copy()
                raised[:, 2] = z[up]
                pos, yaw = np.concatenate([pos, raised]), np.concatenate([yaw, yaw[up]])
                width, mats = np.concatenate([width, width[up]]), np.concatenate([mats, mats[up]])
        _, keep = np.unique(np.round(np.c_[pos, yaw], 5), axis=0, return_index=True)
        keep = np.sort(keep)
        pos, yaw, width, mats = pos[keep], yaw[keep], width[keep], mats[keep]
        opening = np.minimum(width + c.open_clearance, panda.MAX_OPENING)
        free = self._collision_free(mats, pos, opening, geo)
        quality = _box_quality(pos, geo.centroid)
        quats = _top_down_quats(yaw)
        return [GraspCandidate(Grasp(Pose(pos[k], quats[k]), float(width[k]), float(quality[k])), float(opening[k]),
                               "box_escape", 0.0, collision_free=bool(free[k])) for k in range(len(pos))]

    def _box_grasps(self, targets: list[ObjectEstimate], slides: list[float], overhang: float = 0.0) -> list[TopDownGrasp]:
        """The box-side grasps of each estimate at ``box_depths`` and `slides` (`overhang`: see
        :func:`~robot_wm.planning.box_grasps.top_down_grasps`) whose contact width is within
        ``min_width`` .. ``max_width``."""
        c = self.config
        return [b for e in targets for b in top_down_grasps(e, depths=tuple(c.box_depths), slides=tuple(slides),
                                                            overhang=overhang)
                if c.min_width <= b.contact_width <= c.max_width]

    def tilted_box_candidates(self, target: ObjectEstimate, geo: _Geometry) -> list[GraspCandidate]:
        """The box grasps turned about their closing axis (TCP y, through the TCP) by ±``box_tilts_deg``: the
        same two faces gripped, the palm leaning away from one side — an object flush against a wall or a
        taller neighbour whose top-down hand touches it. Turning the palm away swings the fingertips towards
        the wall (13 mm from the TCP at 30 deg), so the grasps are also slid along the gripped faces by
        ``box_slides`` and ``box_escape_slides``, a pad hanging up to half off a face's end (a 2.4 cm box
        flush against a wall is gripped 4 mm off its centre line); an upright cylinder's also close every
        15 deg (:data:`ROUND_TURNS`). Collision flags as for the top-down candidates; quality as the box
        grasps'."""
        c = self.config
        if "box" not in c.sources or not c.box_tilts_deg:
            return []
        # slid as far as half a pad past a face's end: a palm leaning away from a wall swings the fingertips
        # towards it, so the fingers must grip the end faces off centre, away from the wall
        boxes = self._box_grasps(_round_turns(target), list(dict.fromkeys((*c.box_slides, *c.box_escape_slides))),
                                 max(c.box_max_overhang, PAD_HALF_WIDTH))
        if not boxes:
            return []
        turns = [Rotation.from_euler("y", s * math.radians(t)) for t in c.box_tilts_deg for s in (1.0, -1.0)]
        rots = [b.pose.rotation * turn for b in boxes for turn in turns]
        pos = np.repeat(np.stack([b.pose.position for b in boxes]), len(turns), axis=0)
        width = np.repeat([b.contact_width for b in boxes], len(turns))
        quality = _box_quality(pos, geo.centroid)
        tilts = np.tile([math.radians(t) for t in c.box_tilts_deg for _ in (1, -1)], len(boxes))
        opening = np.minimum(width + c.open_clearance, panda.MAX_OPENING)
        mats = np.stack([r.as_matrix() for r in rots])
        free = self._collision_free(mats, pos, opening, geo)
        return [GraspCandidate(Grasp(Pose(pos[i], rots[i].as_quat()), float(width[i]), float(quality[i])),
                               float(opening[i]), "box", float(tilts[i]), collision_free=bool(free[i]))
                for i in range(len(rots))]

    def _opening(self, width: float) -> float:
        return float(min(width + self.config.open_clearance, panda.MAX_OPENING))

    def _scene_points(self, target: ObjectEstimate, scene: list[ObjectEstimate]) -> np.ndarray:
        """Other objects' points (M, 3) within `scene_margin` of the target's box, downsampled; estimates
        without points contribute their box surfaces."""
        c = self.config
        corners = target.corners()
        lo, hi = corners.min(0) - c.scene_margin, corners.max(0) + c.scene_margin
        chunks = []
        for e in scene:
            if e.id == target.id or e is target:
                continue
            p = box_surface(e) if e.points is None or len(e.points) == 0 else clamp_to_box(e, e.points)
            p = p[np.all((p >= lo) & (p <= hi), axis=1)]
            if len(p):
                chunks.append(p)
        if not chunks:
            return np.zeros((0, 3))
        return downsample(np.concatenate(chunks), c.scene_voxel)

    # ------------------------------------------------------------------ ranking
    def rank(self, target: ObjectEstimate, cands: list[GraspCandidate]) -> None:
        """Set each candidate's p_success and rank, and sort `cands` in place (best first; colliding ones
        last, unranked)."""
        c = self.config
        free = [g for g in cands if g.collision_free]
        if self._uses_model:
            top = sorted((g for g in free if g.top_down), key=lambda g: -g.quality)[:c.max_scored]
            if top:
                for g, p in zip(top, self.grasp_probabilities(target, [g.grasp for g in top]), strict=True):
                    g.p_success = float(p)
            snap, span = math.radians(c.snap_tilt_deg), max(math.radians(c.max_tilt_deg - c.snap_tilt_deg), 1e-9)
            for g in free:
                if not g.top_down:  # the prior, less up to TILT_PENALTY at max_tilt_deg: prefer the least tilt
                    g.p_success = c.tilted_prior - TILT_PENALTY * float(np.clip((g.tilt - snap) / span, 0.0, 1.0))
                if g.p_success is not None:
                    g.rank = g.p_success + c.tie_weight * g.quality
                else:  # top-down beyond max_scored: after every scored one
                    g.rank = -1.0 + c.tie_weight * g.quality
        else:
            for g in free:
                g.rank = g.quality - (0.0 if g.top_down else 10.0)
        cands.sort(key=_rank_key)

    @property
    def _uses_model(self) -> bool:
        return self.model is not None and self.config.ranking == "world_model"

    def grasp_probabilities(self, target: ObjectEstimate, grasps: list[Grasp]) -> np.ndarray:
        """World-model P(stable) (R,) of top-down grasps (TCP poses, contact widths) on the perceived target:
        its oriented box as the object state ("mesh"), the hull of its points as the shape descriptor."""
        if self.model is None:
            raise ValueError("no world model to score grasps with")
        est = target
        actions = np.stack([grasp_action_from_tcp(g.pose.position, g.pose.quaternion, g.width) for g in grasps])
        state = object_state(est.pose.position, est.pose.quaternion, est.extents, "mesh")
        states = np.broadcast_to(state, (len(grasps), 1, state.shape[0])).copy()
        desc = perceived_descriptor(est)
        threads = self.config.torch_threads
        old = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            _, p, _ = self.model.predict(states, actions, None, None if desc is None else desc[None])
        finally:
            if threads:
                torch.set_num_threads(old)
        return np.asarray(p, float)

    # ------------------------------------------------------------------ reach + verify
    def _budget_left(self, st: _ChoiceState) -> bool:
        c = self.config
        return (self.verifier is None or st.tests < c.verify_top_k) and (self.kin is None or st.ik < c.max_ik_checks)

    def _choose(self, target: ObjectEstimate, cands: list[GraspCandidate], q_seed: np.ndarray | None,
                st: _ChoiceState, floor: float = -math.inf) -> tuple[GraspCandidate | None, list[GraspCandidate]]:
        """Walk the ranked, collision-free candidates: IK (pre-grasp, grasp), then the shadow world; the
        first that passes (the first reachable one without a verifier). Stops at a candidate ranked below
        `floor` and returns it and the ones after it (collision-free, not yet visited) as the second item.
        Budgets and timings live in `st` (shared by both stages of a plan)."""
        c = self.config
        for i, g in enumerate(cands):
            if not g.collision_free:
                break
            if g.rank < floor:
                return None, [h for h in cands[i:] if h.collision_free]
            if not self._budget_left(st):
                break
            if self.verifier is not None:
                if any(_near(g, f, c.diversity_m, math.radians(c.diversity_deg)) for f in st.failed):
                    g.note = "near a candidate that failed verification"
                    continue
            if self.kin is not None:
                st.ik += 1
                t = time.perf_counter()
                self._reach(g, q_seed)
                st.reach_s += time.perf_counter() - t
                if not g.reachable:
                    continue
            if self.verifier is None:
                return g, []
            t = time.perf_counter()
            g.verdict = self.verifier.verify(target, self.shadow_grasp(g))
            st.verify_s += time.perf_counter() - t
            st.tests += 1
            if g.verdict.passed:
                return g, []
            st.failed.append(g)
        return None, []

    def shadow_grasp(self, g: GraspCandidate) -> Grasp:
        """What the shadow world tests for a candidate: its pose, with the width that makes the shake test
        open the fingers to the candidate's `open_width` (the test opens to width + its opening clearance),
        so the hand is verified as it will move."""
        clearance = SHAKE_OPENING_CLEARANCE
        cfg = getattr(self.verifier, "config", None)
        if cfg is not None and hasattr(cfg, "close"):
            clearance = float(cfg.close.opening_clearance)
        return Grasp(g.grasp.pose, max(g.contact_width, g.open_width - clearance), g.quality)

    def _reach(self, g: GraspCandidate, q_seed: np.ndarray | None) -> None:
        """IK for the pre-grasp pose (`approach` m back along TCP z), then the straight approach from that
        solution to the grasp pose, waypoint by waypoint as the controller will move it
        (:meth:`~robot_wm.sim.trajectory.TrajectoryPlanner.line_waypoints`: every centimetre reachable, no IK
        branch flip); when that fails, the same for the candidate's twin — the pose turned half a turn about
        the approach axis, the same grasp for a parallel-jaw hand (fingers swapped), which the wrist's ±166°
        joint may reach when the first is past its limit (a grasp tilted towards the base) — and the
        candidate takes the twin's pose. `q_pre` is what the controller moves to (the line is checked from
        there, not from whatever solution the arm would find from elsewhere); `q` ends the line."""
        if self._lines is None:
            from robot_wm.sim.trajectory import TrajectoryPlanner

            self._lines = TrajectoryPlanner(self.kin)
        for pose in (g.grasp.pose, twin_pose(g.grasp.pose)):
            pre = Pose(pose.position - self.config.approach * pose.rotation.as_matrix()[:, 2], pose.quaternion)
            g.q_pre = self.kin.ik(pre, q_seed)
            path = None if g.q_pre is None else self._lines.line_waypoints(g.q_pre, pose)
            g.q = None if path is None else path[-1]
            if g.q is not None:
                if pose is not g.grasp.pose:
                    g.grasp = replace(g.grasp, pose=pose)
                    g.note = "reached as its twin (turned half a turn about the approach)"
                break
        g.reachable = g.q is not None
        if not g.reachable:
            g.note = "unreachable (IK)"

    def _reason(self, target: ObjectEstimate, cands: list[GraspCandidate], counts: dict[str, int], tests: int) -> str:
        c = self.config
        if not cands:
            vertical = int(np.argmax(np.abs(target.pose.rotation.as_matrix()[2, :])))
            ext = sorted(float(e) for i, e in enumerate(target.extents) if i != vertical)
            return (f"no grasp fits the gripper: box sides {ext[0]:.3f} / {ext[1]:.3f} m and no antipodal pair "
                    f"on the points within {c.max_width:.3f} m")
        if counts["collision_free"] == 0:
            return f"all {len(cands)} candidates collide with the perceived scene or the table"
        if tests:
            return f"no candidate passed the shadow-world test ({tests} tested)"
        if self.kin is not None and counts.get("reachable", 0) == 0:
            return (f"none of the {counts.get('ik_checked', 0)} best collision-free candidates is reachable "
                    "(IK of the pre-grasp and the straight approach)")
        return "no candidate left to verify"


# ---------------------------------------------------------------------------------------------- helpers
def candidate_arrays(cands: Sequence[GraspCandidate]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TCP rotations (G, 3, 3), positions (G, 3), openings (G,) m) of grasp candidates (world frame): what
    :func:`robot_wm.grasping.candidates.collision_free` takes."""
    return (np.stack([c.grasp.pose.rotation.as_matrix() for c in cands]),
            np.stack([c.grasp.pose.position for c in cands]), np.array([float(c.open_width) for c in cands]))


def twin_pose(pose: Pose) -> Pose:
    """The TCP pose turned by pi about its own z (the approach axis): the same parallel-jaw grasp with the
    fingers swapped (world frame)."""
    return Pose(pose.position, (pose.rotation * Rotation.from_euler("z", math.pi)).as_quat())


def camera_positions(scene: Any) -> list[np.ndarray]:
    """Optical-centre positions (3,) (world, m) of a :class:`robot_wm.config.Scene`'s cameras, in file order
    (``camera2world.position`` or ``look_at.eye`` of each calibration): the planner's `cameras`."""
    out = []
    for cal in scene.calibrations:
        eye = cal.camera2world.position if cal.camera2world is not None else cal.look_at.eye
        out.append(np.asarray(eye, float))
    return out


def _table_grid(points: np.ndarray, table_z: float) -> np.ndarray:
    """Points (M, 3) every TABLE_STEP m on the table plane over the xy box of `points` (N, 3) grown by
    TABLE_MARGIN: the table the camera saw around the object (the completion drops inferred points in front
    of it; where the object or another one hid it, their nearer points win)."""
    lo, hi = points[:, :2].min(0) - TABLE_MARGIN, points[:, :2].max(0) + TABLE_MARGIN
    gx, gy = (np.arange(a, b + 1e-9, TABLE_STEP) for a, b in zip(lo, hi, strict=True))
    xx, yy = np.meshgrid(gx, gy, indexing="ij")
    return np.c_[xx.ravel(), yy.ravel(), np.full(xx.size, table_z)]


def _completed_estimate(est: ObjectEstimate, cloud: np.ndarray) -> ObjectEstimate:
    """`est` with the completed `cloud` (K, 3) (world) as its points and the box of `est`'s orientation
    around it (at least 1 mm a side)."""
    local = est.pose.inverse().transform_points(cloud)
    lo, hi = local.min(0), local.max(0)
    centre = est.pose.transform_points(((lo + hi) / 2)[None])[0]
    return ObjectEstimate(est.id, Pose(centre, est.pose.quaternion), np.maximum(hi - lo, 1e-3), np.asarray(cloud, float),
                          est.color, est.fixed, dict(est.extra))


def perceived_descriptor(est: ObjectEstimate) -> np.ndarray | None:
    """Shape descriptor (SHAPE_DIM,) of a perceived object in its estimate's frame: the convex hull of its
    points extended down to its support (what :func:`robot_wm.planning.shadow.shadow_model` builds), thinned
    to PART_VERTS hull vertices (~15 ms instead of ~150 ms for the full hull). None with too few points (the
    model then uses the filled box)."""
    if est.points is None or len(est.points) < MIN_HULL_POINTS:
        return None
    pts = np.asarray(est.points, float).reshape(-1, 3)
    foot = pts.copy()
    foot[:, 2] = est.bottom_z
    local = est.pose.inverse().transform_points(downsample(np.vstack([pts, foot]), OWN_VOXEL))
    try:
        hull = ConvexHull(local)
    except (QhullError, ValueError):
        return None
    v = hull.points[hull.vertices]
    if len(v) > PART_VERTS:
        v = farthest_subset(v, PART_VERTS)
    return descriptor_from_hull(v)


def _rank_key(g: GraspCandidate) -> tuple[bool, float]:
    """Sort key: collision-free first, by rank; colliding ones after, by quality."""
    return (not g.collision_free, -g.rank if g.collision_free else -g.quality)


def _box_quality(pos: np.ndarray, centroid: np.ndarray) -> np.ndarray:
    """Analytic quality (G,) of box grasps at TCP positions `pos` (G, 3): perfectly antipodal, less the
    sampler's centring term (COM_WEIGHT x distance from the points' `centroid` / MAX_WIDTH)."""
    return 1.0 - COM_WEIGHT * np.linalg.norm(pos - centroid, axis=1) / MAX_WIDTH


def _round_turns(target: ObjectEstimate) -> list[ObjectEstimate]:
    """The target, and when it is an upright cylinder also its box turned about world z by each of
    :data:`ROUND_TURNS` (the escape grasps' closing directions)."""
    if classify_shape(target) != "cylinder":
        return [target]
    p, r = target.pose, target.pose.rotation
    return [target] + [replace(target, pose=Pose(p.position, (Rotation.from_euler("z", t) * r).as_quat()))
                       for t in ROUND_TURNS]


def _top_down_quats(yaw: np.ndarray) -> np.ndarray:
    """Quaternions (G, 4) xyzw of top-down TCPs turned by `yaw` (G,) rad: ``Rz(yaw) Rx(pi)`` =
    (cos(yaw/2), sin(yaw/2), 0, 0) (:func:`robot_wm.geometry.top_down_quaternion`, vectorised)."""
    yaw = np.asarray(yaw, float)
    return np.stack([np.cos(yaw / 2), np.sin(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw)], axis=1)


def _top_down_matrices(yaw: np.ndarray) -> np.ndarray:
    """Rotation matrices (G, 3, 3) of top-down TCPs: x = (cos, sin, 0), y = (sin, -cos, 0), z = (0, 0, -1)."""
    c, s = np.cos(yaw), np.sin(yaw)
    z = np.zeros_like(c)
    return np.stack([np.stack([c, s, z], 1), np.stack([s, -c, z], 1), np.stack([z, z, z - 1.0], 1)], axis=2)


def _top_down_yaw(quaternion: np.ndarray) -> float:
    """Yaw (rad) of a top-down TCP quaternion: heading of its x axis."""
    m = Rotation.from_quat(quaternion).as_matrix()
    return math.atan2(m[1, 0], m[0, 0])


def _near(a: GraspCandidate, b: GraspCandidate, dist: float, angle: float) -> bool:
    """Whether two grasps are within `dist` m and `angle` rad (the gripper's half-turn symmetry counted)."""
    pa, pb = a.grasp.pose, b.grasp.pose
    if np.linalg.norm(pa.position - pb.position) > dist:
        return False
    rel = pa.rotation.inv() * pb.rotation
    flip = rel * Rotation.from_euler("z", math.pi)  # TCP z turned by pi: the same grasp
    return min(rel.magnitude(), flip.magnitude()) <= angle


def clamp_to_box(est: ObjectEstimate, points: np.ndarray) -> np.ndarray:
    """`points` (N, 3) (world) moved into the estimate's oriented box, each to its nearest point there. An
    object's cloud cannot reach beyond its own box: under depth noise a few percent of it does (a face seen
    obliquely scatters along the rays, ~1 cm at 1.4 m), and as obstacles those strays refused every grasp of
    the box stacked on it; the box's extents are robust to them (trimmed percentiles, perception)."""
    p = np.asarray(points, float).reshape(-1, 3)
    rot = est.pose.rotation.as_matrix()
    half = np.asarray(est.extents, float) / 2
    local = np.clip((p - est.pose.position) @ rot, -half, half)
    return local @ rot.T + est.pose.position


def box_surface(est: ObjectEstimate) -> np.ndarray:
    """Points (M, 3) on the faces of an estimate's oriented box, about BOX_SURFACE_STEP apart (world)."""
    h = np.asarray(est.extents, float) / 2
    out = []
    for axis in range(3):
        u, v = [i for i in range(3) if i != axis]
        gu = np.linspace(-h[u], h[u], max(2, int(np.ceil(2 * h[u] / BOX_SURFACE_STEP)) + 1))
        gv = np.linspace(-h[v], h[v], max(2, int(np.ceil(2 * h[v] / BOX_SURFACE_STEP)) + 1))
        uu, vv = np.meshgrid(gu, gv, indexing="ij")
        for sign in (-1.0, 1.0):
            p = np.zeros((uu.size, 3))
            p[:, u], p[:, v], p[:, axis] = uu.ravel(), vv.ravel(), sign * h[axis]
            out.append(p)
    return est.pose.transform_points(np.concatenate(out))
