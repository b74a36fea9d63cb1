"""The Panda arm in a World: IK, smooth joint motion under velocity limits, straight-line Cartesian moves,
a force-limited gripper, an is-holding query and collision checks of planned motions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_wm.geometry import Pose, panda
from robot_wm.sim.client import TIME_STEP, pybullet
from robot_wm.sim.kinematics import KinematicModel
from robot_wm.sim.trajectory import TrajectoryPlanner
from robot_wm.sim.world import World

SETTLE_TOL = 1e-3  # rad, joint error at which a motion counts as arrived


@dataclass
class MotionResult:
    """Outcome of a commanded motion. pos_err (m) and rot_err (rad) are measured TCP errors at the end."""

    ok: bool
    reason: str = ""
    pos_err: float = 0.0
    rot_err: float = 0.0
    duration: float = 0.0


class Arm:
    """Controls the World's Panda through PyBullet's joint motors (position control at 240 Hz)."""

    def __init__(self, world: World, speed: float = 0.6, kin: KinematicModel | None = None) -> None:
        """`kin`: a kinematic model of this robot (same URDF and base) to share, e.g. across the episodes
        of a data collector; it stays open when the arm closes. Default: the arm makes and owns one."""
        self.world = world
        cfg = world.scene.config.robot
        self._owns_kin = kin is None
        self.kin = kin or KinematicModel(str(world.scene.robot_urdf), np.asarray(cfg.base_position))
        self.planner = TrajectoryPlanner(self.kin, speed)

    @property
    def speed(self) -> float:
        """Fraction of the joint velocity limits used for joint-space moves."""
        return self.planner.speed

    @speed.setter
    def speed(self, value: float) -> None:
        self.planner.speed = value

    def close(self) -> None:
        if self._owns_kin:
            self.kin.close()

    # ------------------------------------------------------------------ state
    def q(self) -> np.ndarray:
        return self.world.joint_positions()

    def tcp_pose(self) -> Pose:
        st = self.world.client.getLinkState(self.world.robot, panda.TCP_LINK, computeForwardKinematics=True)
        return Pose(st[4], st[5])

    def ik(self, target: Pose, q_seed: np.ndarray | None = None) -> np.ndarray | None:
        """Joint angles reaching `target` (TCP, world frame), or None if unreachable within limits."""
        return self.kin.ik(target, self.q() if q_seed is None else q_seed)

    # ------------------------------------------------------------------ motion
    def command(self, q: np.ndarray, dq: np.ndarray | None = None) -> None:
        """Set the arm's joint motor targets: positions q (7,) rad, optional feed-forward velocities (7,)."""
        kwargs = {"targetVelocities": dq.tolist()} if dq is not None else {}
        self.world.client.setJointMotorControlArray(
            self.world.robot, list(panda.ARM_JOINTS), pybullet.POSITION_CONTROL,
            targetPositions=q.tolist(), forces=panda.EFFORT_LIMIT.tolist(), **kwargs,
        )

    def track(self, setpoints: np.ndarray) -> None:
        """Command one joint setpoint (7,) per simulation step from `setpoints` (T, 7), with feed-forward
        velocities from their differences; then hold the last one until the joints settle (<= 0.5 s)."""
        vel = np.gradient(setpoints, TIME_STEP, axis=0) if len(setpoints) > 1 else np.zeros_like(setpoints)
        for q, dq in zip(setpoints, vel, strict=True):
            self.command(q, dq)
            self.world.step()
        self.command(setpoints[-1])
        for _ in range(120):
            self.world.step()
            if np.max(np.abs(self.q() - setpoints[-1])) < SETTLE_TOL:
                break

    def move_joints(self, q_target: np.ndarray, speed: float | None = None) -> MotionResult:
        """Smooth joint-space move to q_target (7,) at `speed` x the velocity limits."""
        q_target = np.asarray(q_target, float)
        if np.any(q_target < panda.LOWER - 1e-6) or np.any(q_target > panda.UPPER + 1e-6):
            return MotionResult(False, "joint target outside limits")
        t0 = self.world.time
        self.track(self.planner.joint_move(self.q(), q_target, speed))
        target = self.kin.fk(q_target)
        dp, dr = self.tcp_pose().distance(target)
        return MotionResult(True, "", dp, dr, self.world.time - t0)

    def move_to_pose(self, target: Pose, speed: float | None = None) -> MotionResult:
        """Joint-space move that ends with the TCP at `target` (world frame)."""
        q = self.ik(target)
        if q is None:
            return MotionResult(False, "unreachable")
        res = self.move_joints(q, speed)
        res.pos_err, res.rot_err = self.tcp_pose().distance(target)
        return res

    def move_linear(self, target: Pose, speed: float = 0.15) -> MotionResult:
        """Straight-line Cartesian move of the TCP to `target` at `speed` m/s (min-jerk overall)."""
        setpoints = self.planner.linear_move(self.q(), target, speed)
        if setpoints is None:
            return MotionResult(False, "no straight-line IK path")
        t0 = self.world.time
        self.track(setpoints)
        dp, dr = self.tcp_pose().distance(target)
        return MotionResult(True, "", dp, dr, self.world.time - t0)

    # ------------------------------------------------------------------ gripper
    def set_gripper(self, width: float, force: float = panda.FINGER_FORCE) -> None:
        """Command the finger motors to an opening `width` (m, 0-0.08) under `force` N per finger."""
        half = float(np.clip(width / 2, 0.0, panda.MAX_FINGER_OPENING))
        self.world.client.setJointMotorControlArray(
            self.world.robot, list(panda.FINGER_JOINTS), pybullet.POSITION_CONTROL,
            targetPositions=[half, half], forces=[force, force],
        )

    def open_gripper(self, width: float = panda.MAX_OPENING, max_s: float = 1.0) -> float:
        self.set_gripper(width)
        return self._wait_fingers(max_s)

    def close_gripper(self, force: float = panda.FINGER_FORCE, max_s: float = 1.0) -> float:
        """Close until the fingers stop (on an object or each other); returns the final width (m)."""
        self.set_gripper(0.0, force)
        return self._wait_fingers(max_s)

    def _wait_fingers(self, max_s: float) -> float:
        c, robot = self.world.client, self.world.robot
        for i in range(int(max_s / TIME_STEP)):
            self.world.step()
            if i > 10:
                vel = [s[1] for s in c.getJointStates(robot, list(panda.FINGER_JOINTS))]
                if max(abs(v) for v in vel) < 1e-3:
                    break
        return self.world.gripper_width()

    def is_holding(self, name: str) -> bool:
        """True when both fingers touch object `name`."""
        c, body = self.world.client, self.world.objects[name].body
        return all(c.getContactPoints(self.world.robot, body, link, -1) for link in panda.FINGER_LINKS)

    # ------------------------------------------------------------------ checks
    def check_motion(self, path: np.ndarray, ignore: tuple[str, ...] = (), margin: float = 0.0,
                     gripper_width: float | None = None) -> tuple[int, str] | None:
        """Collision check of a joint path (N, 7) against a snapshot of the table and objects.

        Returns (waypoint index, obstacle name) of the first contact, or None when the motion is free.
        """
        self.kin.set_obstacles(self.world.obstacles())
        fingers = (self.world.gripper_width() if gripper_width is None else gripper_width) / 2
        return self.kin.path_collision(path, fingers, margin, ignore)
