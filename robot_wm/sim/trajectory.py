"""Joint-space and straight-line Cartesian trajectories as per-step joint setpoints.

Pure planning: needs only the kinematic model, never a World, so a controller driving a real robot uses
the same code as the simulated arm.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from robot_wm.geometry import Pose, panda
from robot_wm.sim.client import TIME_STEP
from robot_wm.sim.kinematics import KinematicModel

MAX_BRANCH_JUMP = 0.5  # rad between consecutive IK waypoints of a line: larger means an IK branch flip


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk time scaling of s in [0, 1]: zero velocity and acceleration at both ends."""
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def timed_path(path: np.ndarray, duration: float, dt: float = TIME_STEP) -> np.ndarray:
    """Setpoints (T, 7), one per `dt`, along waypoints `path` (N+1, 7) taken as equally spaced in progress,
    with a single minimum-jerk profile over `duration` seconds. The last setpoint is path[-1]."""
    n_steps = max(2, int(np.ceil(duration / dt)))
    if len(path) == 1:
        return np.repeat(path, n_steps, axis=0)
    progress = min_jerk(np.arange(1, n_steps + 1) / n_steps) * (len(path) - 1)
    idx = np.minimum(progress.astype(int), len(path) - 2)
    frac = (progress - idx)[:, None]
    return path[idx] * (1 - frac) + path[idx + 1] * frac


class TrajectoryPlanner:
    """Plans Panda motions as setpoint arrays at `dt`; `speed` is the fraction of the joint velocity limits."""

    def __init__(self, kin: KinematicModel, speed: float = 0.6, dt: float = TIME_STEP) -> None:
        self.kin, self.speed, self.dt = kin, speed, dt

    def duration(self, q0: np.ndarray, q1: np.ndarray, speed: float | None = None) -> float:
        """Time (s) of a min-jerk move whose peak joint speed is `speed` x the velocity limit."""
        speed = self.speed if speed is None else speed
        return float(max(0.05, np.max(np.abs(q1 - q0) / (speed * panda.VELOCITY_LIMIT)) * 1.875))

    def joint_move(self, q0: np.ndarray, q1: np.ndarray, speed: float | None = None) -> np.ndarray:
        """Setpoints (T, 7) of a smooth joint-space move from q0 to q1."""
        q0, q1 = np.asarray(q0, float), np.asarray(q1, float)
        return timed_path(np.stack([q0, q1]), self.duration(q0, q1, speed), self.dt)

    def line_waypoints(self, q0: np.ndarray, target: Pose, step: float = 0.01) -> np.ndarray | None:
        """Joint waypoints (N+1, 7) for a straight TCP line from FK(q0) to `target` with slerped
        orientation, IK seeded along the way; None if a point is unreachable or the IK branch flips."""
        start = self.kin.fk(q0)
        dist = np.linalg.norm(target.position - start.position)
        ang = (start.rotation.inv() * target.rotation).magnitude()
        n = max(1, int(np.ceil(max(dist / step, ang / 0.05))))
        slerp = Slerp([0, 1], Rotation.concatenate([start.rotation, target.rotation]))
        path = [np.asarray(q0, float)]
        for i in range(1, n + 1):
            a = i / n
            q = self.kin.ik(Pose(start.position + a * (target.position - start.position), slerp(a).as_quat()),
                            path[-1], restarts=0)
            if q is None or np.max(np.abs(q - path[-1])) > MAX_BRANCH_JUMP:
                return None
            path.append(q)
        return np.stack(path)

    def linear_move(self, q0: np.ndarray, target: Pose, speed: float = 0.15) -> np.ndarray | None:
        """Setpoints (T, 7) moving the TCP on a straight line to `target` at about `speed` m/s (min-jerk
        overall, never faster than the joint limits allow), or None if the line is not feasible."""
        path = self.line_waypoints(q0, target)
        if path is None:
            return None
        dist = np.linalg.norm(target.position - self.kin.fk(q0).position)
        joint_time = max(self.duration(a, b) for a, b in zip(path[:-1], path[1:], strict=True)) * (len(path) - 1)
        return timed_path(path, max(0.2, 1.875 * dist / speed, joint_time), self.dt)
