"""What the controller checks with its cameras when a sensor or the world may have let it down.

Two checks, both on calibrated depth alone (no perception pass, no tracker update), cheap enough for a tick:

:class:`TargetWatch` — the target of a pick, remembered at the decision as the pixels where each camera saw
its surface (perceived points, or samples of its box when the estimator gives none) and their depth then.

* :meth:`TargetWatch.at_place` — is it still where the plan assumed? Each remembered pixel now shows the same
  surface (|depth - depth then| <= `tol`: *present*), something behind it (deeper: *gone*, the table where
  the object was) or something in front of it (shallower: *occluded*, e.g. the arm). Used when the arm arrives
  above the target (an object moved during execution: re-plan instead of grasping air) and after the lift
  (still on the table: the grasp missed, whatever the gripper sensor says).
* :meth:`TargetWatch.in_hand` — is it in the hand? The remembered surface points are moved with the hand
  (TCP now x TCP at the grasp^-1) and projected: the camera sees them where expected (*present*), sees past
  them (*gone*: the object is not there) or sees something in front (*occluded*: fingers, its own other side).

A verdict needs `min_seen` present-or-gone pixels (else ``unknown``: the view is blocked).

:class:`CalibrationMonitor` — does each camera still agree with its calibration? The camera's depth, put into
the world frame with its calibrated ``camera2world``, is compared with what a camera there should see:

* the table top (z = 0 by the world frame's contract): the dominant horizontal surface near z = 0 is fitted
  as a plane; its height (m) and tilt (deg) should be 0;
* the robot: the arm at its measured joint positions, rendered from the calibrated pose in a model of the
  static workcell (robot + table, no objects: what a user's URDF describes), is aligned to the observed points
  near it (translation-only ICP with a median step); the offset (3,) m should be 0. A camera that does not see
  the robot (fewer than `min_robot_points`) is checked on the table only.

* the camera's pose: the camera's points are registered to the model's surface (table and robot, rendered from
  the calibrated pose) by 6-DoF point-to-plane ICP (:func:`robot_wm.geometry.registration.point_to_plane_icp`;
  the robot pins the three directions a table plane leaves free, where the camera sees it); the rigid
  motion that aligns them moves what the camera sees (the centroid of its points, where the fit is best
  determined and where a calibration error costs grasps) by `pose_shift` (m) and turns it by `pose_turn_deg`.

A camera moved by a few cm (or turned by a degree or two) shows up in all of them; a 1 cm / 1 deg bump in the
pose fit (limits `shift_m`, default 4 mm, and `turn_deg`, 0.5 deg, each exceeded by 2 sigmas of the fit, and
widened with the depth noise the fit measures: :data:`POSE_FIT_NOISE_SHIFT`; `robot-wm bench calibration`
measures detection and false alarms). With correct calibrations on the shipped cameras, noise-free or with calibrated
depth noise, offsets stay below a few mm (tests/control/test_control_faults.py); the table and robot-offset
limits are `tol_m` (default 15 mm) and `tilt_deg` (1 deg). A direction the camera's view does not constrain
(no robot in view: the table alone leaves its in-plane motion free) is not judged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from robot_wm.geometry import Intrinsics, Pose, panda
from robot_wm.geometry.registration import depth_surface, point_to_plane_icp
from robot_wm.interface import CameraFrame, Observation
from robot_wm.perception.estimate import ObjectEstimate

log = logging.getLogger(__name__)

LOOK = "?look"  # what a check returns when it needs camera frames before it can answer

PRESENT, GONE, PARTLY, UNKNOWN = "present", "gone", "partly", "unknown"
RENDER_REUSE_RAD = 1e-3  # a workcell render is reused while every joint is within this of its pose then
RENDER_CACHE_SIZE = 8  # renders kept (one per camera and arm pose)
POSE_FIT_MAX_INCIDENCE_DEG = 60.0  # model surface seen more obliquely than this is left out of the pose fit
POSE_FIT_POINTS = 20000  # the camera's points are thinned to about this many for the pose fit (a 640x480 frame at the
# monitor's stride 4 has 19,200: fewer made its noisy-camera false alarms more frequent)
POSE_FIT_SIGMAS = 2.0  # the pose fit flags a camera only when its error exceeds a limit by this many sigmas
# depth noise biases the fit (fraying silhouettes, grazing surfaces): its limits widen with the noise the fit measures
# (the robust sigma of its residuals): + 2 mm and + 0.25 deg per mm of noise (chosen on bench generalization's seed-0
# scenes, 262 looks with correct calibrations: without it 3 false alarms, all with Nguyen-2012 noise of 1.6-3.3 mm)
POSE_FIT_NOISE_SHIFT = 2.0  # m of shift limit per m of residual sigma
POSE_FIT_NOISE_TURN_DEG = 250.0  # deg of turn limit per m of residual sigma


@dataclass
class Verdict:
    """Counts of remembered pixels by what they show now, and the verdict: ``present`` (gone fraction <=
    `gone_low`), ``gone`` (>= `gone_high`), ``partly`` in between, or ``unknown`` (too few seen)."""

    present: int = 0
    gone: int = 0
    occluded: int = 0
    state: str = UNKNOWN

    @property
    def seen(self) -> int:
        return self.present + self.gone

    @property
    def gone_fraction(self) -> float:
        return self.gone / self.seen if self.seen else math.nan

    def describe(self) -> str:
        return (f"{self.present} of the object's pixels as before, {self.gone} showing what was behind it, "
                f"{self.occluded} hidden")


@dataclass
class _View:
    camera2world: Pose
    shape: tuple[int, int]
    rows: np.ndarray  # (M,) int pixel rows of the remembered surface
    cols: np.ndarray
    depth: np.ndarray  # (M,) their depth at the decision, m
    points: np.ndarray  # (M, 3) the world points seen there, m


def box_surface_points(est: ObjectEstimate, spacing: float = 0.01) -> np.ndarray:
    """Points (N, 3) on the top and the four sides of an estimate's box (world frame, m), about `spacing` apart."""
    ext = np.maximum(np.asarray(est.extents, float), 1e-3)
    half = ext / 2
    out = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        n0 = max(2, int(math.ceil(ext[others[0]] / spacing)) + 1)
        n1 = max(2, int(math.ceil(ext[others[1]] / spacing)) + 1)
        g0, g1 = np.meshgrid(np.linspace(-half[others[0]], half[others[0]], n0),
                             np.linspace(-half[others[1]], half[others[1]], n1), indexing="ij")
        for sign in (-1.0, 1.0):
            if axis == 2 and sign < 0:
                continue  # the bottom face is never seen
            face = np.zeros((g0.size, 3))
            face[:, axis] = sign * half[axis]
            face[:, others[0]], face[:, others[1]] = g0.ravel(), g1.ravel()
            out.append(face)
    return est.pose.transform_points(np.concatenate(out))


def _project(frame_pose: Pose, k: Intrinsics, shape: tuple[int, int], points: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, z in the camera m, mask of the points that fall inside the image in front of it)."""
    cam = frame_pose.inverse().transform_points(points)
    z = cam[:, 2]
    ok = z > 0.02
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k.fx * cam[:, 0] / z + k.cx
        v = k.fy * cam[:, 1] / z + k.cy
    cols, rows = np.rint(u), np.rint(v)
    ok &= np.isfinite(cols) & np.isfinite(rows)
    ok &= (cols >= 0) & (cols < shape[1]) & (rows >= 0) & (rows < shape[0])
    cols = np.where(ok, cols, 0).astype(np.int64)
    rows = np.where(ok, rows, 0).astype(np.int64)
    return rows, cols, z, ok


class TargetWatch:
    """The target of a pick as the cameras saw it at the decision (see the module docstring).

    tol: depth agreement (m) of a remembered pixel; min_seen: pixels that must be present or gone for a
    verdict; gone_low / gone_high: gone fractions at or below which the object is ``present``, at or above
    which it is ``gone``.
    """

    def __init__(self, target: str, views: dict[str, _View], tol: float = 0.012, min_seen: int = 15,
                 gone_low: float = 0.25, gone_high: float = 0.5) -> None:
        self.target, self.views = target, views
        self.tol, self.min_seen, self.gone_low, self.gone_high = tol, min_seen, gone_low, gone_high

    @classmethod
    def from_estimate(cls, est: ObjectEstimate, frames: dict[str, CameraFrame], max_points: int = 400,
                      visible_tol: float = 0.012, **kw: Any) -> TargetWatch:
        """Remember where each of `frames` sees `est`: its perceived points (or box surface samples), kept
        where the frame's depth agrees with them within `visible_tol` m (the surface really seen), at most
        `max_points` per camera (evenly strided)."""
        pts = est.points if est.points is not None and len(est.points) >= 30 else box_surface_points(est)
        pts = np.asarray(pts, float).reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        views: dict[str, _View] = {}
        for name, frame in frames.items():
            depth = frame.depth
            rows, cols, z, ok = _project(frame.camera2world, frame.intrinsics, depth.shape, pts)
            d = np.where(ok, depth[rows, cols], 0.0)
            seen = ok & (d > 0) & (np.abs(d - z) <= visible_tol)
            idx = np.flatnonzero(seen)
            if len(idx) > max_points:
                idx = idx[np.linspace(0, len(idx) - 1, max_points).astype(int)]
            if len(idx):
                views[name] = _View(frame.camera2world, depth.shape, rows[idx], cols[idx], d[idx].astype(float),
                                    pts[idx])
        return cls(est.id, views, **kw)

    @property
    def pixels(self) -> int:
        """Remembered pixels over all cameras (0: the cameras did not see the target at the decision)."""
        return sum(len(v.rows) for v in self.views.values())

    def _usable(self, name: str, frame: CameraFrame) -> _View | None:
        view = self.views.get(name)
        if view is None or frame.depth.shape != view.shape:
            return None
        p, q = frame.camera2world, view.camera2world
        if (np.abs(np.asarray(p.position) - q.position).max() > 1e-4
                or np.abs(np.asarray(p.quaternion) - q.quaternion).max() > 1e-4):
            return None  # a camera that moved with the hand sees other pixels now
        return view

    def _verdict(self, present: int, gone: int, occluded: int) -> Verdict:
        v = Verdict(present, gone, occluded)
        if v.seen < self.min_seen:
            v.state = UNKNOWN
        elif v.gone_fraction >= self.gone_high:
            v.state = GONE
        elif v.gone_fraction <= self.gone_low:
            v.state = PRESENT
        else:
            v.state = PARTLY
        return v

    def at_place(self, frames: dict[str, CameraFrame]) -> Verdict:
        """Is the target still where it was seen at the decision?"""
        present = gone = occluded = 0
        for name, frame in frames.items():
            view = self._usable(name, frame)
            if view is None:
                continue
            d = frame.depth[view.rows, view.cols]
            valid = d > 0
            present += int(np.count_nonzero(valid & (np.abs(d - view.depth) <= self.tol)))
            gone += int(np.count_nonzero(valid & (d > view.depth + self.tol)))
            occluded += int(np.count_nonzero(valid & (d < view.depth - self.tol)))
        return self._verdict(present, gone, occluded)

    def in_hand(self, frames: dict[str, CameraFrame], moved: Pose, tol: float | None = None) -> Verdict:
        """Is the target where the hand would have taken it? `moved`: the world-frame motion of the hand since
        the grasp (TCP now @ TCP at the grasp^-1); `tol` (default 1.5 x the watch's): depth agreement, m (an
        object settles a little in the fingers)."""
        tol = 1.5 * self.tol if tol is None else tol
        present = gone = occluded = 0
        for name, frame in frames.items():
            view = self.views.get(name)
            if view is None or frame.depth.shape != view.shape:
                continue
            pts = moved.transform_points(view.points)
            rows, cols, z, ok = _project(frame.camera2world, frame.intrinsics, frame.depth.shape, pts)
            d = np.where(ok, frame.depth[rows, cols], 0.0)
            valid = ok & (d > 0)
            present += int(np.count_nonzero(valid & (np.abs(d - z) <= tol)))
            gone += int(np.count_nonzero(valid & (d > z + tol)))
            occluded += int(np.count_nonzero(valid & (d < z - tol)))
        return self._verdict(present, gone, occluded)


# ---------------------------------------------------------------------------------------------- calibration
@dataclass
class CameraAgreement:
    """How one camera's depth agrees with its calibration: the table plane's height (m, at the centroid of its
    inliers) and tilt (deg), the robot's offset (3,) m (observed - model) and the robot points it rests on;
    None where the camera does not see enough table or robot."""

    camera: str
    table_height: float | None = None
    table_tilt_deg: float | None = None
    robot_offset: np.ndarray | None = None
    robot_points: int = 0
    pose_shift: float | None = None
    pose_turn_deg: float | None = None
    pose_shift_sigma: float = 0.0
    pose_turn_sigma_deg: float = 0.0
    depth_noise: float = 0.0
    notes: list[str] = field(default_factory=list)

    def problem(self, tol_m: float, tilt_deg: float, shift_m: float | None = None, turn_deg: float | None = None
                ) -> str:
        """"" when within the limits, else what disagrees (`shift_m` / `turn_deg`: limits of the pose fit, None:
        not judged)."""
        out = []
        z = POSE_FIT_SIGMAS
        if shift_m is not None:
            shift_m = shift_m + POSE_FIT_NOISE_SHIFT * self.depth_noise
        if turn_deg is not None:
            turn_deg = turn_deg + POSE_FIT_NOISE_TURN_DEG * self.depth_noise
        if (shift_m is not None and self.pose_shift is not None
                and self.pose_shift - z * self.pose_shift_sigma > shift_m):
            out.append(f"its depth fits the robot and table {1000 * self.pose_shift:.1f} +- "
                       f"{1000 * self.pose_shift_sigma:.1f} mm from where the calibrated pose puts them")
        if (turn_deg is not None and self.pose_turn_deg is not None
                and self.pose_turn_deg - z * self.pose_turn_sigma_deg > turn_deg):
            out.append(f"its depth fits the robot and table turned {self.pose_turn_deg:.2f} +- "
                       f"{self.pose_turn_sigma_deg:.2f} deg from the calibrated pose")
        if self.robot_offset is not None and float(np.linalg.norm(self.robot_offset)) > tol_m:
            o = self.robot_offset
            out.append(f"the robot is seen {100 * float(np.linalg.norm(o)):.1f} cm from where its joint readings "
                       f"put it (offset x {100 * o[0]:+.1f}, y {100 * o[1]:+.1f}, z {100 * o[2]:+.1f} cm)")
        if self.table_height is not None and abs(self.table_height) > tol_m:
            out.append(f"the table top is seen at z = {100 * self.table_height:+.1f} cm instead of 0")
        if self.table_tilt_deg is not None and self.table_tilt_deg > tilt_deg:
            out.append(f"the table top is seen tilted by {self.table_tilt_deg:.1f} deg")
        return "; ".join(out)

    def as_dict(self) -> dict[str, Any]:
        return {"camera": self.camera, "table_height": self.table_height, "table_tilt_deg": self.table_tilt_deg,
                "robot_offset": None if self.robot_offset is None else [float(v) for v in self.robot_offset],
                "robot_points": self.robot_points, "pose_shift": self.pose_shift, "pose_turn_deg": self.pose_turn_deg,
                "pose_shift_sigma": self.pose_shift_sigma, "pose_turn_sigma_deg": self.pose_turn_sigma_deg}


class WorkcellModel:
    """The static workcell — the robot (its URDF at its base position) and the table, no objects — in its own
    simulated world, to render what a calibrated camera should see of it at given joint positions."""

    def __init__(self, urdf: str = "franka_panda/panda.urdf", base_position: np.ndarray | None = None) -> None:
        from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
        from robot_wm.sim import World

        base = [0.0, 0.0, 0.0] if base_position is None else [float(v) for v in base_position]
        scene = scene_from_dict({"name": "workcell", "robot": {"urdf": urdf, "base_position": base},
                                 "cameras": [{"calibration": "front.yaml"}], "objects": []}, "workcell",
                                REPO_SCENES_DIR)
        self.world = World(scene)
        self._robot_id = next(i for i, n in self.world.body_names().items() if n == "robot")
        self._cache: dict[tuple, tuple[np.ndarray, float, tuple[np.ndarray, np.ndarray, Intrinsics]]] = {}

    def render(self, frame: CameraFrame, q: np.ndarray, width: float, scale: float
               ) -> tuple[np.ndarray, np.ndarray, Intrinsics]:
        """(depth (h, w) m, robot mask (h, w) bool, intrinsics) of `frame`'s camera at its calibrated pose,
        rendered at `scale` of its resolution with the arm at `q` (7,) rad and the fingers `width` m apart."""
        from robot_wm.config.models import CalibrationConfig
        from robot_wm.sim import Camera

        k = frame.intrinsics
        pose = frame.camera2world
        cal = CalibrationConfig(name=str(frame.name), width=int(k.width), height=int(k.height), fx=float(k.fx),
                                fy=float(k.fy), cx=float(k.cx), cy=float(k.cy), near=0.05, far=3.0,
                                camera2world={"position": [float(v) for v in pose.position],
                                              "orientation": [float(v) for v in pose.quaternion]})
        fingers = float(np.clip(width / 2, 0.0, panda.MAX_FINGER_OPENING)) if math.isfinite(width) else 0.0
        # the arm looks from the same pose (home) most of the time: a render is reused while the camera, its
        # calibration and the arm (to RENDER_REUSE_RAD per joint, 1 mm of finger) have not changed
        key = (str(frame.name), k.width, k.height, k.fx, k.fy, k.cx, k.cy, scale,
               tuple(np.round(pose.position, 6)), tuple(np.round(pose.quaternion, 6)))
        q = np.asarray(q, float)
        hit = self._cache.get(key)
        if hit is not None and np.max(np.abs(hit[0] - q)) <= RENDER_REUSE_RAD and abs(hit[1] - fingers) <= 1e-3:
            return hit[2]
        self.world.reset_arm(q, fingers)
        out = self.world.render(Camera(cal), scale=scale, segmentation=True, noise=False)
        result = (out.depth, out.segmentation == self._robot_id, out.intrinsics)
        if len(self._cache) >= RENDER_CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (q.copy(), fingers, result)
        return result

    def close(self) -> None:
        self.world.close()


def _world_points(depth: np.ndarray, k: Intrinsics, pose: Pose, stride: int) -> np.ndarray:
    """World points (N, 3) of the valid pixels of `depth` on a `stride` grid."""
    rows = np.arange(0, depth.shape[0], stride)
    cols = np.arange(0, depth.shape[1], stride)
    d = depth[np.ix_(rows, cols)].astype(float)
    valid = np.isfinite(d) & (d > 0)
    vv, uu = np.meshgrid(rows, cols, indexing="ij")
    z = d[valid]
    cam = np.stack([(uu[valid] - k.cx) / k.fx * z, (vv[valid] - k.cy) / k.fy * z, z], axis=1)
    return pose.transform_points(cam)


class CalibrationMonitor:
    """Checks each camera frame against its calibration (see the module docstring).

    tol_m: largest table height or robot offset (m) that still agrees; tilt_deg: largest table tilt; shift_m /
    turn_deg: largest camera displacement (m) / turn (deg) of the pose fit (None: not judged); scale: resolution
    of the model render (of the camera's); min_robot_points: model points the robot check needs; min_side_px:
    smaller frames are not checked (test doubles).
    """

    def __init__(self, urdf: str = "franka_panda/panda.urdf", base_position: np.ndarray | None = None,
                 tol_m: float = 0.015, tilt_deg: float = 1.0, scale: float = 0.25, min_robot_points: int = 60,
                 min_side_px: int = 64, shift_m: float | None = 0.004, turn_deg: float | None = 0.5) -> None:
        self.urdf, self.base_position = urdf, base_position
        self.tol_m, self.tilt_deg, self.scale = tol_m, tilt_deg, scale
        self.shift_m, self.turn_deg = shift_m, turn_deg
        self.min_robot_points, self.min_side_px = min_robot_points, min_side_px
        self._model: WorkcellModel | None = None

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None

    def check(self, obs: Observation) -> list[CameraAgreement]:
        """One :class:`CameraAgreement` per camera frame of `obs` large enough to check."""
        out = []
        for name, frame in obs.frames.items():
            k = frame.intrinsics
            if min(int(k.width), int(k.height)) < self.min_side_px:
                continue
            out.append(self._camera(name, frame, obs))
        return out

    def disagreement(self, obs: Observation) -> str:
        """"" when every camera agrees with its calibration, else a one-line message naming the camera(s)."""
        problems = [f"camera {a.camera!r} no longer agrees with its calibration: {p}"
                    for a in self.check(obs)
                    if (p := a.problem(self.tol_m, self.tilt_deg, self.shift_m, self.turn_deg))]
        return "; ".join(problems) + ("; stopping: recalibrate the camera" if problems else "")

    def _camera(self, name: str, frame: CameraFrame, obs: Observation) -> CameraAgreement:
        res = CameraAgreement(str(name))
        k, pose = frame.intrinsics, frame.camera2world
        stride = max(1, int(round(1 / self.scale)))
        observed = _world_points(frame.depth, k, pose, stride)
        if self._model is None:
            self._model = WorkcellModel(self.urdf, self.base_position)
        depth_m, mask, k_m = self._model.render(frame, obs.joint_positions, obs.gripper_width, self.scale)
        robot = _world_points(np.where(mask, depth_m, 0.0), k_m, pose, 1)
        tree = cKDTree(robot) if len(robot) >= self.min_robot_points else None
        near_robot = np.zeros(len(observed), bool)
        if tree is not None:
            dist, _ = tree.query(observed, distance_upper_bound=0.08)
            near_robot = np.isfinite(dist)
        self._table(res, observed[~near_robot])
        if tree is not None:
            res.robot_points = len(robot)
            res.robot_offset = self._robot_offset(tree, robot, observed[near_robot & (observed[:, 2] > 0.02)])
        if self.shift_m is not None or self.turn_deg is not None:
            self._pose_fit(res, observed, depth_m, mask, k_m, pose)
        return res

    @staticmethod
    def _pose_fit(res: CameraAgreement, observed: np.ndarray, depth_m: np.ndarray, mask: np.ndarray,
                  k_m: Intrinsics, pose: Pose) -> None:
        """The camera's pose error from registering its points (N, 3) to the model's surface (table + robot)."""
        model, normals, robot = depth_surface(depth_m, k_m, pose, mask)
        # surfaces seen at grazing incidence (silhouette rims) are where depth noise biases a fit: left out
        rays = model - pose.position
        cos = np.abs(np.sum(rays * normals, 1)) / np.maximum(np.linalg.norm(rays, axis=1), 1e-9)
        keep = cos >= math.cos(math.radians(POSE_FIT_MAX_INCIDENCE_DEG))
        step = max(1, len(observed) // POSE_FIT_POINTS)
        fit = point_to_plane_icp(observed[::step], model[keep], normals[keep], robot[keep])
        if fit is None:
            res.notes.append("too little of the workcell in view for the pose fit")
            return
        fit = fit.constrained()  # a direction the view does not constrain is not judged
        centre = observed.mean(0)
        res.pose_shift, res.pose_turn_deg = fit.displacement(centre), fit.angle_deg
        res.pose_shift_sigma, res.pose_turn_sigma_deg = fit.displacement_sigma(centre), fit.angle_sigma_deg
        res.depth_noise = fit.residual_sigma

    @staticmethod
    def _table(res: CameraAgreement, pts: np.ndarray, min_inliers: int = 300) -> None:
        """Fit the dominant surface near z = 0 (histogram mode, then least squares on its inliers)."""
        band = pts[np.abs(pts[:, 2]) < 0.08]
        if len(band) < min_inliers:
            res.notes.append("too little table in view")
            return
        hist, edges = np.histogram(band[:, 2], bins=np.arange(-0.08, 0.0801, 0.002))
        i = int(np.argmax(hist))
        mode = 0.5 * (edges[i] + edges[i + 1])
        inl = band[np.abs(band[:, 2] - mode) < 0.006]
        if len(inl) < min_inliers:
            res.notes.append("too little table in view")
            return
        a = np.column_stack([inl[:, 0] - inl[:, 0].mean(), inl[:, 1] - inl[:, 1].mean(), np.ones(len(inl))])
        coef, *_ = np.linalg.lstsq(a, inl[:, 2], rcond=None)
        res.table_height = float(coef[2])
        res.table_tilt_deg = float(math.degrees(math.atan(math.hypot(coef[0], coef[1]))))

    def _robot_offset(self, tree: cKDTree, robot: np.ndarray, observed: np.ndarray, iters: int = 12
                      ) -> np.ndarray | None:
        """Translation (3,) m that best maps the model's robot points onto the observed ones near them
        (observed - model): ICP with median steps and a shrinking match radius."""
        if len(observed) < self.min_robot_points // 2:
            return None
        t = np.zeros(3)
        for it in range(iters):
            gate = 0.06 if it < 3 else 0.03 if it < 6 else 0.02
            dist, idx = tree.query(observed - t, distance_upper_bound=gate)
            ok = np.isfinite(dist)
            if ok.sum() < self.min_robot_points // 2:
                return None
            step = np.median(observed[ok] - t - robot[idx[ok]], axis=0)
            t = t + step
            if np.linalg.norm(step) < 1e-4 and it >= 6:
                break
        return t


__all__ = ["LOOK", "CalibrationMonitor", "CameraAgreement", "TargetWatch", "Verdict", "WorkcellModel",
           "box_surface_points"]
