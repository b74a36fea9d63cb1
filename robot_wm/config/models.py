"""Pydantic models of the file contracts in design.md. All forbid unknown keys."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robot_wm.config.workspace import (
    CONTACT_TOLERANCE,
    MAX_OBJECT_EXTENT,
    REACH_MAX,
    REACH_MIN,
    WORKSPACE_Z_MAX,
    in_reach,
    on_table,
)
from robot_wm.geometry.polytope import primitive_polytope

# A quaternion further than this from unit length is an error; a closer one is normalised.
QUAT_NORM_TOLERANCE = 0.05
MAX_SEED = 2**32 - 1  # seeds are non-negative and fit numpy's and PyBullet's 32-bit seeding
MAX_IMAGE_SIDE = 8192  # px: a larger camera image is a typo, and would exhaust memory when rendered
MAX_FOCAL_PX = 100_000.0  # px
MAX_CAMERA_FAR = 100.0  # m
MAX_CAMERA_DISTANCE = 20.0  # m from the world origin
MIN_OBJECT_EXTENT = 0.001  # m: a primitive thinner than this is a unit mistake (mm for m)
MAX_MASS = 100.0  # kg (the Panda lifts 3 kg)
MAX_FRICTION = 10.0
MAX_SCALE = 10.0
MAX_BASE_OFFSET = 1.0  # m: the robot base stays within this of the world origin (the table is built around it)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]
Quat = Annotated[list[float], Field(min_length=4, max_length=4)]
Rgba = Annotated[list[float], Field(min_length=4, max_length=4)]


def normalised_quaternion(q: list[float]) -> list[float]:
    norm = math.sqrt(sum(c * c for c in q))
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        raise ValueError(f"quaternion must have unit length (got norm {norm:.3g})")
    return [c / norm for c in q]


class PoseConfig(StrictModel):
    position: Vec3
    orientation: Quat = [0.0, 0.0, 0.0, 1.0]

    _norm = field_validator("orientation")(lambda cls, q: normalised_quaternion(q))


class LookAt(StrictModel):
    eye: Vec3
    target: Vec3
    up: Vec3 = [0.0, 0.0, 1.0]

    @model_validator(mode="after")
    def _distinct(self) -> LookAt:
        d = np.subtract(self.target, self.eye)
        if np.linalg.norm(d) < 1e-6:
            raise ValueError("eye and target must differ")
        if np.linalg.norm(np.cross(d, self.up)) < 1e-9 * max(1.0, np.linalg.norm(d)):
            raise ValueError("up must not be parallel to target - eye")
        return self


class CalibrationConfig(StrictModel):
    """A calibrated pinhole RGB-D camera (calibration/*.yaml)."""

    name: str = Field(min_length=1)
    width: int = Field(gt=0, le=MAX_IMAGE_SIDE)
    height: int = Field(gt=0, le=MAX_IMAGE_SIDE)
    fx: float = Field(gt=0, le=MAX_FOCAL_PX)
    fy: float = Field(gt=0, le=MAX_FOCAL_PX)
    cx: float
    cy: float
    near: float = Field(gt=0)
    far: float = Field(gt=0, le=MAX_CAMERA_FAR)
    camera2world: PoseConfig | None = None
    look_at: LookAt | None = None
    depth_noise: Literal["none", "nguyen2012", "nguyen2012_dropout"] = "none"

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationConfig:
        if not 0 <= self.cx < self.width:
            raise ValueError(f"cx: principal point must lie inside the image [0, {self.width}) (got {self.cx})")
        if not 0 <= self.cy < self.height:
            raise ValueError(f"cy: principal point must lie inside the image [0, {self.height}) (got {self.cy})")
        if self.far <= self.near:
            raise ValueError(f"far: must be > near ({self.near}) (got {self.far})")
        if (self.camera2world is None) == (self.look_at is None):
            raise ValueError("give exactly one of camera2world and look_at")
        eye, key = ((self.camera2world.position, "camera2world.position") if self.camera2world is not None
                    else (self.look_at.eye, "look_at.eye"))
        if np.linalg.norm(eye) > MAX_CAMERA_DISTANCE:
            raise ValueError(f"{key}: the camera must be within {MAX_CAMERA_DISTANCE:g} m of the world origin "
                             f"(got {eye})")
        return self


class RobotConfig(StrictModel):
    urdf: str = Field(default="franka_panda/panda.urdf", min_length=1)
    base_position: Vec3 = [0.0, 0.0, 0.0]

    @field_validator("base_position")
    @classmethod
    def _near_origin(cls, p: list[float]) -> list[float]:
        if any(abs(v) > MAX_BASE_OFFSET for v in p):
            raise ValueError(f"must lie within {MAX_BASE_OFFSET:g} m of the world origin (got {p})")
        return p


class CameraRef(StrictModel):
    """A scene's camera: its calibration file and where it is mounted. ``world`` (default): a fixed camera, the
    calibration's ``camera2world`` is the optical frame's pose in the world. ``hand``: a wrist camera carried by
    the arm, the calibration's ``camera2world`` (or ``look_at``) is then the optical frame's pose in the
    flange frame (``panda_link8``), i.e. camera2flange; its world pose follows the arm."""

    calibration: str = Field(min_length=1)
    mount: Literal["world", "hand"] = "world"


class ObjectConfig(StrictModel):
    name: str = Field(min_length=1)
    shape: Literal["box", "cylinder", "sphere"] | None = None
    size: list[float] | None = None
    urdf: str | None = Field(default=None, min_length=1)
    scale: float = Field(default=1.0, gt=0, le=MAX_SCALE)
    mass: float | None = Field(default=None, gt=0, le=MAX_MASS)
    friction: float | None = Field(default=None, ge=0, le=MAX_FRICTION)
    fixed: bool = False  # a static obstacle (wall, tray, fixture): never moves, never a task object
    color: Rgba | None = None
    position: Vec3
    orientation: Quat = [0.0, 0.0, 0.0, 1.0]

    _norm = field_validator("orientation")(lambda cls, q: normalised_quaternion(q))

    @field_validator("color")
    @classmethod
    def _rgba(cls, c: list[float] | None) -> list[float] | None:
        if c is not None and any(not 0.0 <= v <= 1.0 for v in c):
            raise ValueError(f"rgba values must lie in [0, 1] (got {c})")
        return c

    @model_validator(mode="after")
    def _shape_or_urdf(self) -> ObjectConfig:
        if (self.shape is None) == (self.urdf is None):
            raise ValueError("give exactly one of shape and urdf")
        if self.shape is not None:
            expected = {"box": 3, "cylinder": 2, "sphere": 1}[self.shape]
            if self.size is None:
                raise ValueError(f"size: required for shape {self.shape}")
            if len(self.size) != expected:
                raise ValueError(f"size: {self.shape} takes {expected} values (got {len(self.size)})")
            if any(not (s > 0 and math.isfinite(s)) for s in self.size):
                raise ValueError(f"size: values must be > 0 (got {self.size})")
            extents = self.extents()
            if min(extents) < MIN_OBJECT_EXTENT or max(extents) > MAX_OBJECT_EXTENT:
                raise ValueError(f"size: extents must lie in [{MIN_OBJECT_EXTENT:g}, {MAX_OBJECT_EXTENT:g}] m "
                                 f"(got {self.size}; box: full extents, cylinder: [radius, height], sphere: [radius])")
            if self.mass is None and not self.fixed:
                raise ValueError("mass: required for primitive shapes (or fixed: true for a static obstacle)")
        elif self.size is not None:
            raise ValueError("size: only for primitive shapes; use scale with urdf")
        return self

    def placement_problem(self) -> str | None:
        """Why this object cannot be spawned where it is (its origin not over the table or too high, or the
        object under the table top), or None."""
        x, y, z = self.position
        if not on_table(x, y):
            return f"must lie over the table (outside the workspace: got {self.position})"
        if z > WORKSPACE_Z_MAX:
            return f"must lie at most {WORKSPACE_Z_MAX:g} m above the table (outside the workspace: got {self.position})"
        low = self.lowest_point()
        if low < -CONTACT_TOLERANCE:
            what = "its lowest point" if self.shape is not None else "its origin"
            return f"under the table ({what} at z = {low:.4g} m; the table top is z = 0)"
        return None

    def extents(self) -> tuple[float, float, float]:
        """Full extents (m) of a primitive in its own frame (x, y, z; cylinder axis z)."""
        s = self.size or []
        if self.shape == "box":
            return (s[0], s[1], s[2])
        if self.shape == "cylinder":
            return (2 * s[0], 2 * s[0], s[1])
        return (2 * s[0],) * 3

    def vertices(self, shrink: float = 0.0) -> np.ndarray:
        """World-frame vertices (V, 3) m of the convex polytope of a primitive (robot_wm.geometry.polytope),
        every face moved inwards by `shrink` m. Primitives only."""
        s = np.maximum(np.asarray(self.size, float) - np.asarray(
            {"box": [2, 2, 2], "cylinder": [1, 2], "sphere": [1]}[self.shape]) * shrink, 1e-6)
        rot = _rotation_matrix(self.orientation)
        return primitive_polytope(self.shape, tuple(s)) @ rot.T + np.asarray(self.position)

    def lowest_point(self) -> float:
        """z (m, world) of a primitive's lowest point; of the origin for a URDF object (its extent is unknown
        here)."""
        if self.shape is None:
            return self.position[2]
        if self.shape == "sphere":
            return self.position[2] - self.size[0]
        return float(self.vertices()[:, 2].min())


def _rotation_matrix(q: list[float]) -> np.ndarray:
    """3x3 rotation matrix of a unit quaternion xyzw."""
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def primitives_overlap(a: ObjectConfig, b: ObjectConfig, tolerance: float = CONTACT_TOLERANCE) -> bool:
    """True when two primitive objects interpenetrate by more than `tolerance` m (touching and resting on each
    other is not overlapping): their solids, each shrunk by tolerance / 2 on every side, intersect. Spheres
    exactly; otherwise a linear program on the convex polytopes (cylinders as 32-sided prisms)."""
    pa, pb = np.asarray(a.position), np.asarray(b.position)
    ra, rb = np.linalg.norm(a.extents()) / 2, np.linalg.norm(b.extents()) / 2
    gap = float(np.linalg.norm(pa - pb))
    if gap >= ra + rb - tolerance:
        return False  # bounding spheres apart
    if a.shape == "sphere" and b.shape == "sphere":
        return gap < a.size[0] + b.size[0] - tolerance
    from scipy.optimize import linprog  # only here: a scene with objects close together

    va, vb = a.vertices(tolerance / 2), b.vertices(tolerance / 2)
    na, nb = len(va), len(vb)
    eq = np.zeros((5, na + nb))
    eq[0, :na], eq[1, na:], eq[2:, :na], eq[2:, na:] = 1.0, 1.0, va.T, -vb.T
    res = linprog(np.zeros(na + nb), A_eq=eq, b_eq=[1.0, 1.0, 0.0, 0.0, 0.0], bounds=(0, None), method="highs")
    return bool(res.status == 0)  # a common point of the two hulls: they intersect


class PlaceRegion(StrictModel):
    center: Vec3
    size: Annotated[list[float], Field(min_length=2, max_length=2)]

    @field_validator("center")
    @classmethod
    def _on_table(cls, c: list[float]) -> list[float]:
        if not on_table(c[0], c[1]) or abs(c[2]) > WORKSPACE_Z_MAX:
            raise ValueError(f"must lie on the table (outside the workspace: got {c})")
        return c

    @field_validator("size")
    @classmethod
    def _positive(cls, s: list[float]) -> list[float]:
        if any(v <= 0 for v in s):
            raise ValueError(f"values must be > 0 (got {s})")
        if any(v > MAX_OBJECT_EXTENT for v in s):
            raise ValueError(f"values must be <= {MAX_OBJECT_EXTENT:g} m, the table's size (got {s})")
        return s

    def contains(self, xy: np.ndarray, margin: float = 0.0) -> bool:
        half = np.asarray(self.size) / 2 + margin
        return bool(np.all(np.abs(np.asarray(xy)[:2] - np.asarray(self.center[:2])) <= half))


Vec2 = Annotated[list[float], Field(min_length=2, max_length=2)]


class GoalConfig(StrictModel):
    """Where one object should end up: a table position (x, y) m in the world frame and optionally a heading
    (yaw about world z, degrees), each with a tolerance."""

    object: str = Field(min_length=1)
    position: Vec2
    yaw_deg: float | None = None
    tolerance_m: float = Field(default=0.02, gt=0, le=0.2)
    tolerance_deg: float = Field(default=10.0, gt=0, le=180)

    @field_validator("position")
    @classmethod
    def _reachable(cls, p: list[float]) -> list[float]:
        if not on_table(p[0], p[1]):
            raise ValueError(f"must lie on the table (got {p})")
        if not in_reach(p[0], p[1]):
            raise ValueError(f"must lie within the arm's reach, {REACH_MIN}-{REACH_MAX} m from the base (got {p})")
        return p

    @property
    def yaw(self) -> float | None:
        """Goal heading in rad, or None when any heading will do."""
        return None if self.yaw_deg is None else math.radians(self.yaw_deg)


class TaskConfig(StrictModel):
    """What the robot should do: pick objects into a region (pick_place), push objects to goal poses
    (push_to_goal), or clear the table into the region (clear: every movable object, whatever task.objects
    says)."""

    kind: Literal["pick_place", "push_to_goal", "clear"] = "pick_place"
    place_region: PlaceRegion = PlaceRegion(center=[0.45, -0.35, 0.0], size=[0.2, 0.2])
    objects: list[str] | None = None  # which objects to pick; default: all
    goals: list[GoalConfig] = []


class SceneConfig(StrictModel):
    """A world (sim_scenes/*.yaml)."""

    name: str = Field(min_length=1)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    robot: RobotConfig = RobotConfig()
    cameras: list[CameraRef] = Field(min_length=1)
    objects: list[ObjectConfig] = []
    task: TaskConfig = TaskConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> SceneConfig:
        seen: set[str] = set()
        for i, obj in enumerate(self.objects):
            if obj.name in seen:
                raise ValueError(f"objects[{i}].name: duplicate object name {obj.name!r}")
            seen.add(obj.name)
        fixed = {o.name for o in self.objects if o.fixed}
        if self.task.objects is not None:
            for name in self.task.objects:
                if name not in seen:
                    raise ValueError(f"task.objects: unknown object {name!r}")
                if name in fixed:
                    raise ValueError(f"task.objects: {name!r} is a fixed obstacle and cannot be moved")
        goal_objects: set[str] = set()
        for i, goal in enumerate(self.task.goals):
            if goal.object not in seen:
                raise ValueError(f"task.goals[{i}].object: unknown object {goal.object!r}")
            if goal.object in fixed:
                raise ValueError(f"task.goals[{i}].object: {goal.object!r} is a fixed obstacle and cannot be moved")
            if goal.object in goal_objects:
                raise ValueError(f"task.goals[{i}].object: a second goal for {goal.object!r}")
            goal_objects.add(goal.object)
        if self.task.kind == "push_to_goal" and not self.task.goals:
            raise ValueError("task.goals: push_to_goal needs at least one goal")
        return self

    def placement_problem(self) -> tuple[str, str] | None:
        """(key path, what is wrong) for the first object that cannot be spawned where the scene puts it:
        outside the workspace, under the table, or interpenetrating another primitive by more than
        CONTACT_TOLERANCE (touching, stacked and leaning objects are fine); None when all can. Scene files
        are checked with this before anything runs (``load_scene``); scenes recorded mid-episode (objects
        fallen off the table) are not."""
        for i, obj in enumerate(self.objects):
            problem = obj.placement_problem()
            if problem is not None:
                return f"objects[{i}].position", problem
        prims = [(i, o) for i, o in enumerate(self.objects) if o.shape is not None]
        for k, (i, a) in enumerate(prims):
            for j, b in prims[k + 1:]:
                if primitives_overlap(a, b):
                    return (f"objects[{j}].position", f"{b.name!r} overlaps {a.name!r} (objects[{i}]) by more than "
                            f"{CONTACT_TOLERANCE * 1e3:g} mm")
        return None


class PickPlacePlannerConfig(StrictModel):
    """Pick-and-place motion settings (planners/pick_place.yaml). Distances in m, speeds in m/s."""

    name: str = "pick_place"
    approach: float = Field(default=0.12, gt=0, le=0.3)
    lift: float = Field(default=0.18, gt=0.05, le=0.5)
    place_clearance: float = Field(default=0.012, ge=0, le=0.05)
    max_attempts_per_object: int = Field(default=2, ge=1, le=10)
    linear_speed: float = Field(default=0.2, gt=0, le=1.0)
    joint_speed: float = Field(default=0.6, gt=0, le=1.0)  # fraction of the joint velocity limits
    grasp_depth: float = Field(default=0.025, gt=0, le=0.06)  # how far below the top the TCP goes
    # placing (planned controller): the last `set_down_height` m down at `set_down_speed` m/s to the
    # release, the object's bottom `set_down_clearance` m above the region (the scripted controller drops it
    # from `place_clearance`), then hold `release_settle_s` s before opening — a held object that lands fast
    # (a lying cylinder pinched across) takes a kick that rolls it out of the region
    set_down_clearance: float = Field(default=0.003, ge=0, le=0.05)
    set_down_height: float = Field(default=0.04, ge=0, le=0.2)
    set_down_speed: float = Field(default=0.04, gt=0, le=1.0)
    release_settle_s: float = Field(default=0.3, ge=0, le=5.0)
    verify_grasps: bool = True  # shake-test each grasp in a shadow world built from perception first
    verify_trials: int = Field(default=3, ge=1, le=50)  # robust-mode trials per verified grasp
    verify_min_success: float = Field(default=0.6, gt=0, le=1)  # fraction of trials that must hold (2 of 3)
    # perception, planning and IK in a background thread so that a control tick never waits for them (the arm
    # holds meanwhile); off by default: the simulated demo and benchmarks stay bit-for-bit repeatable
    background_planning: bool = False
    # the planner thread's nice value (Linux: per thread, 0-19, raising it needs no privilege): the control
    # thread then wins the CPU whenever both want one, so a busy machine delays plans, not ticks; 0 leaves it
    planner_nice: int = Field(default=10, ge=0, le=19)


class LaunchConfig(StrictModel):
    """Which scene, perception and planner run together (launch/*.yaml). Paths resolve against the launch
    file's folder, then the repository."""

    name: str = Field(min_length=1)
    scene: str
    perception: Literal["rgbd", "oracle"] = "rgbd"
    planner: str | None = None
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    out: str | None = None
