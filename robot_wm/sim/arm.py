"""The Panda arm in a World: IK, smooth joint motion under velocity limits, straight-line Cartesian moves,
a force-limited gripper, an is-holding query and collision checks of planned motions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_wm.geometry import Pose
from robot_wm.sim import panda
from robot_wm.sim.client import TIME_STEP, pybullet
from robot_wm.sim.kinematics import KinematicModel
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


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling of s in [0, 1]: zero velocity and acceleration at both ends."""
    return 10 * s**3 - 15 * s**4 + 6 * s**5


class Arm:
    """Controls the World's Panda through PyBullet's joint motors (position control at 240 Hz)."""

    def __init__(self, world: World, speed: float = 0.6) -> None:
        self.world = world
        self.speed = speed  # fraction of the joint velocity limits used for joint-space moves
        cfg = world.scene.config.robot
        self.kin = KinematicModel(str(world.scene.robot_urdf), np.asarray(cfg.base_position))

    def close(self) -> None:
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
    def _command(self, q: np.ndarray, dq: np.ndarray | None = None) -> None:
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
            self._command(q, dq)
            self.world.step()
        self._command(setpoints[-1])
        for _ in range(120):
            self.world.step()
            if np.max(np.abs(self.q() - setpoints[-1])) < SETTLE_TOL:
                break

    @staticmethod
    def timed_path(path: np.ndarray, duration: float) -> np.ndarray:
        """Setpoints (T, 7) along the waypoints `path` (N+1, 7) (equally spaced in progress) with a single
        minimum-jerk profile over `duration` seconds."""
        n_steps = max(2, int(np.ceil(duration / TIME_STEP)))
        progress = min_jerk(np.arange(1, n_steps + 1) / n_steps) * (len(path) - 1)
        idx = np.minimum(progress.astype(int), len(path) - 2) if len(path) > 1 else np.zeros(n_steps, int)
        if len(path) == 1:
            return np.repeat(path, n_steps, axis=0)
        frac = (progress - idx)[:, None]
        return path[idx] * (1 - frac) + path[idx + 1] * frac

    def segment_duration(self, q0: np.ndarray, q1: np.ndarray, speed: float | None = None) -> float:
        """Time (s) for a min-jerk move whose peak joint speed is `speed` x the velocity limit."""
        speed = self.speed if speed is None else speed
        return float(max(0.05, np.max(np.abs(q1 - q0) / (speed * panda.VELOCITY_LIMIT)) * 1.875))

    def move_joints(self, q_target: np.ndarray, speed: float | None = None) -> MotionResult:
        """Smooth joint-space move to q_target (7,) at `speed` x the velocity limits."""
        q_target = np.asarray(q_target, float)
        if np.any(q_target < panda.LOWER - 1e-6) or np.any(q_target > panda.UPPER + 1e-6):
            return MotionResult(False, "joint target outside limits")
        q0 = self.q()
        t0 = self.world.time
        self.track(self.timed_path(np.stack([q0, q_target]), self.segment_duration(q0, q_target, speed)))
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

    def plan_linear(self, target: Pose, step: float = 0.01) -> np.ndarray | None:
        """Joint waypoints (N+1, 7) for a straight TCP line to `target` with slerped orientation."""
        start = self.tcp_pose()
        dist = np.linalg.norm(target.position - start.position)
        ang = (start.rotation.inv() * target.rotation).magnitude()
        n = max(1, int(np.ceil(max(dist / step, ang / 0.05))))
        from scipy.spatial.transform import Rotation, Slerp

        slerp = Slerp([0, 1], Rotation.concatenate([start.rotation, target.rotation]))
        path = [self.q()]
        for i in range(1, n + 1):
            a = i / n
            q = self.kin.ik(Pose(start.position + a * (target.position - start.position), slerp(a).as_quat()), path[-1])
            if q is None or np.max(np.abs(q - path[-1])) > 0.5:  # unreachable, or a branch flip
                return None
            path.append(q)
        return np.stack(path)

    def move_linear(self, target: Pose, speed: float = 0.15) -> MotionResult:
        """Straight-line Cartesian move of the TCP to `target` at `speed` m/s (min-jerk overall)."""
        path = self.plan_linear(target)
        if path is None:
            return MotionResult(False, "no straight-line IK path")
        t0 = self.world.time
        dist = np.linalg.norm(target.position - self.tcp_pose().position)
        joint_time = max(self.segment_duration(a, b) for a, b in zip(path[:-1], path[1:], strict=True)) * (len(path) - 1)
        self.track(self.timed_path(path, max(0.2, 1.875 * dist / speed, joint_time)))
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

    def open_gripper(self, width: float = 0.08, max_s: float = 1.0) -> float:
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
