"""Pick-and-place with top-down grasps: pick every object into the task's place region.

The loop observes, estimates objects (oracle or perception), picks the highest remaining object, and
places it in the next free slot of the place region. Success is judged from the simulator's true state
afterwards (that is evaluation, not control).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config import PickPlacePlannerConfig
from robot_wm.control.estimate import ObjectEstimate, ObjectEstimator
from robot_wm.geometry import Pose
from robot_wm.sim import Arm, World, panda

log = logging.getLogger(__name__)

MAX_GRASP_WIDTH = 0.075  # m; the Panda opens to 0.08
MIN_TCP_HEIGHT = 0.012  # m above the table: keeps the fingertips off it


@dataclass
class TopDownGrasp:
    """A vertical grasp: TCP `pose` (world; z down, y = closing axis) and pre-close `width` (m)."""

    pose: Pose
    width: float
    target: str


def top_down_quaternion(yaw: float) -> np.ndarray:
    """TCP orientation pointing straight down with the closing axis at angle `yaw` + pi/2 in the xy plane."""
    return (Rotation.from_euler("z", yaw) * Rotation.from_euler("x", math.pi)).as_quat()


def top_down_grasp(est: ObjectEstimate, depth: float = 0.025) -> TopDownGrasp | None:
    """Grasp the estimate's box from above, closing across its narrower horizontal side.

    `depth` (m): how far below the object's top the TCP goes (at most half the object's height).
    Returns None when neither horizontal side fits between the fingers.
    """
    rot = est.pose.rotation.as_matrix()
    vertical = int(np.argmax(np.abs(rot[2, :])))
    horizontal = [i for i in range(3) if i != vertical]
    # closing axis: the narrower horizontal side (ties: either)
    narrow = min(horizontal, key=lambda i: est.extents[i])
    width = float(est.extents[narrow])
    if width > MAX_GRASP_WIDTH:
        return None
    axis = rot[:, narrow]
    # TCP y (closing axis) = Rz(yaw) @ [0, -1, 0]  =>  yaw = atan2(axis) + pi/2 (sign of axis is irrelevant)
    yaw = math.atan2(axis[1], axis[0]) + math.pi / 2
    yaw = (yaw + math.pi / 2) % math.pi - math.pi / 2  # the gripper is symmetric: keep yaw in [-pi/2, pi/2)
    height = est.top_z - max(0.0, est.pose.position[2] - (est.top_z - est.pose.position[2]))
    z = max(est.top_z - min(depth, height / 2), MIN_TCP_HEIGHT)
    pos = np.array([est.pose.position[0], est.pose.position[1], z])
    return TopDownGrasp(Pose(pos, top_down_quaternion(yaw)), min(width + 0.02, 0.08), est.id)


@dataclass
class PickOutcome:
    target: str
    held: str | None  # true name of the object in hand after lifting (None: nothing)
    placed: bool
    reason: str = ""


@dataclass
class PickPlaceReport:
    outcomes: list[PickOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    sim_s: float = 0.0


class PickPlace:
    """Runs the pick-and-place task of a world's scene with a given estimator."""

    def __init__(self, world: World, arm: Arm, estimator: ObjectEstimator,
                 settings: PickPlacePlannerConfig | None = None) -> None:
        self.world, self.arm, self.estimator = world, arm, estimator
        self.settings = settings or PickPlacePlannerConfig()
        arm.speed = self.settings.joint_speed
        task = world.scene.config.task
        self.region = task.place_region
        names = task.objects if task.objects is not None else [n for n, o in world.objects.items() if not o.fixed]
        self.task_objects = list(names)
        self._slots = self._make_slots(len(self.task_objects))
        self._slot_index = 0

    def _make_slots(self, n: int) -> list[np.ndarray]:
        """Grid of n placement points inside the region (row-major, centred)."""
        cx, cy = self.region.center[:2]
        sx, sy = self.region.size
        cols = max(1, math.ceil(math.sqrt(n * sx / sy)))
        rows = max(1, math.ceil(n / cols))
        xs = cx + (np.arange(cols) + 0.5 - cols / 2) * sx / cols
        ys = cy + (np.arange(rows) + 0.5 - rows / 2) * sy / rows
        return [np.array([x, y]) for y in ys for x in xs][:n] or [np.array([cx, cy])]

    def _in_region(self, est: ObjectEstimate) -> bool:
        return self.region.contains(est.pose.position, margin=-0.005)

    def run(self, max_picks: int | None = None) -> PickPlaceReport:
        report = PickPlaceReport()
        t0, sim0 = time.perf_counter(), self.world.time
        attempts: dict[str, int] = {}
        max_picks = max_picks or self.settings.max_attempts_per_object * max(1, len(self.task_objects)) + 2
        for _ in range(max_picks):
            need_render = self.estimator.name != "oracle"
            estimates = self.estimator.estimate(self.world.observe(render=need_render))
            todo = [e for e in estimates if not e.fixed and not self._in_region(e)
                    and attempts.get(e.id, 0) < self.settings.max_attempts_per_object]
            if self.estimator.name == "oracle":
                todo = [e for e in todo if e.id in self.task_objects]
            if not todo:
                break
            todo.sort(key=lambda e: -e.top_z)  # unstack from the top
            for est in todo:
                grasp = top_down_grasp(est, self.settings.grasp_depth)
                attempts[est.id] = attempts.get(est.id, 0) + 1
                if grasp is None:
                    report.outcomes.append(PickOutcome(est.id, None, False, "too wide for the gripper"))
                    continue
                report.outcomes.append(self.pick_and_place(grasp, est))
                break
        self.arm.move_joints(panda.HOME)
        report.wall_s, report.sim_s = time.perf_counter() - t0, self.world.time - sim0
        return report

    def held_object(self) -> str | None:
        return next((n for n in self.world.objects if self.arm.is_holding(n)), None)

    def pick_and_place(self, grasp: TopDownGrasp, est: ObjectEstimate) -> PickOutcome:
        s, arm = self.settings, self.arm
        pre = Pose(grasp.pose.position + [0, 0, s.approach], grasp.pose.quaternion)
        if not arm.move_to_pose(pre).ok:
            return PickOutcome(grasp.target, None, False, "pre-grasp unreachable")
        arm.open_gripper(grasp.width)
        if not arm.move_linear(grasp.pose, s.linear_speed).ok:
            arm.move_to_pose(pre)
            return PickOutcome(grasp.target, None, False, "approach unreachable")
        arm.close_gripper()
        lift = Pose([grasp.pose.position[0], grasp.pose.position[1], s.lift], grasp.pose.quaternion)
        arm.move_linear(lift, s.linear_speed)
        held = self.held_object()
        if held is None:
            arm.open_gripper()
            return PickOutcome(grasp.target, None, False, "nothing in hand after lift")
        # TCP height above the object's bottom, from the estimate: keeps the release gentle
        grasp_above_bottom = grasp.pose.position[2] - (est.pose.position[2] - (est.top_z - est.pose.position[2]))
        slot = self._slots[self._slot_index % len(self._slots)]
        self._slot_index += 1
        place_yaw = 0.0
        above = Pose([slot[0], slot[1], s.lift], top_down_place_quaternion(grasp.pose, place_yaw))
        if not arm.move_to_pose(above).ok:
            arm.open_gripper()
            return PickOutcome(grasp.target, held, False, "place pose unreachable")
        release_z = max(grasp_above_bottom + s.place_clearance + self.region.center[2], MIN_TCP_HEIGHT + 0.005)
        arm.move_linear(Pose([slot[0], slot[1], release_z], above.quaternion), s.linear_speed)
        arm.open_gripper()
        arm.move_linear(above, s.linear_speed)
        self.world.settle(1.0)
        placed = self.region.contains(self.world.object_pose(held).position)
        return PickOutcome(grasp.target, held, placed, "" if placed else "released outside the region")


def top_down_place_quaternion(grasp_pose: Pose, yaw: float) -> np.ndarray:
    """Carry orientation: keep the grasp's yaw (the object keeps its heading); `yaw` adds a turn."""
    r = grasp_pose.rotation.as_euler("xyz")
    return top_down_quaternion(r[2] + yaw)


def evaluate_task(world: World, task_objects: list[str]) -> dict[str, bool]:
    """Ground truth for reports: for each task object, is it at rest inside the place region?"""
    region = world.scene.config.task.place_region
    return {n: region.contains(world.object_pose(n).position) for n in task_objects}
