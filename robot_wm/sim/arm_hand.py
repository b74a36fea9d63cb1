"""The shake-test world with the full Panda arm instead of a free-floating hand (an option).

Same interface as :class:`~robot_wm.sim.hand.HandWorld`: the grasp pose is reached by IK (joints reset
there, so the approach itself is not simulated), and every TCP target of the protocol is tracked by
per-step IK and the arm's position-controlled joint motors under their effort limits, so the arm's own
compliance and torque limits are part of the test. A grasp without an IK solution leaves
``reachable`` False (label ``unreachable``).
"""

from __future__ import annotations

import numpy as np
import pybullet
import pybullet_data

from robot_wm.geometry import Pose, panda
from robot_wm.sim.hand import HandWorld, ObjectModel
from robot_wm.sim.kinematics import KinematicModel

PANDA_URDF = "franka_panda/panda.urdf"


class ArmWorld(HandWorld):
    """A fixed-base Panda at `base_position` (world) and one object."""

    def __init__(self, time_step: float = 1.0 / 120.0, solver_iterations: int = 20, rolling_friction: float = 1e-4,
                 base_position: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        super().__init__(time_step, solver_iterations, rolling_friction)
        self.base_position = np.asarray(base_position, float)
        self.kin = KinematicModel(PANDA_URDF, self.base_position)
        self.finger_joints = panda.FINGER_JOINTS
        self.tcp_link = panda.TCP_LINK
        self._q = panda.HOME.copy()

    def close(self) -> None:
        self.kin.close()
        super().close()

    def build(self, obj: ObjectModel, object_pose: Pose, tcp_pose: Pose, opening: float,
              hand_max_force: float = 500.0, finger_friction: float = 1.0,
              mass_scale: float = 1.0, friction_scale: float = 1.0) -> None:
        c = self._reset()
        q = self.kin.ik(tcp_pose)
        self.hand = c.loadURDF(str(pybullet_data.getDataPath() + "/" + PANDA_URDF), self.base_position.tolist(),
                               useFixedBase=True)
        if q is None:
            self.reachable = False
            q = panda.HOME
        self._q = np.asarray(q, float)
        for j, v in zip(panda.ARM_JOINTS, self._q, strict=True):
            c.resetJointState(self.hand, j, float(v))
        self._hold(self._q)
        self._setup_fingers(opening, finger_friction)
        for j in self.finger_joints:  # panda.urdf's soft finger contacts sink ~4 mm under 40 N: stiffen them
            c.changeDynamics(self.hand, j, contactStiffness=1e6, contactDamping=2e3)
        self._add_object(obj, object_pose, mass_scale, friction_scale)

    def _hold(self, q: np.ndarray) -> None:
        self.client.setJointMotorControlArray(self.hand, list(panda.ARM_JOINTS), pybullet.POSITION_CONTROL,
                                              targetPositions=[float(v) for v in q],
                                              forces=panda.EFFORT_LIMIT.tolist())

    def _track(self, position: list[float], quaternion: list[float]) -> None:
        sol = self.client.calculateInverseKinematics(
            self.hand, panda.TCP_LINK, position, quaternion, lowerLimits=panda.LOWER.tolist(),
            upperLimits=panda.UPPER.tolist(), jointRanges=(panda.UPPER - panda.LOWER).tolist(),
            restPoses=self._q.tolist(), maxNumIterations=20, residualThreshold=1e-5)
        self._hold(np.clip(np.asarray(sol[:7]), panda.LOWER, panda.UPPER))

    def set_tcp_target(self, tcp_pose: Pose) -> None:
        self._track(tcp_pose.position.tolist(), tcp_pose.quaternion.tolist())

    def follow(self, positions: np.ndarray, quaternions: np.ndarray) -> None:
        positions = np.asarray(positions, float).reshape(-1, 3)
        quaternions = np.asarray(quaternions, float).reshape(-1, 4)
        for p, q in zip(positions.tolist(), quaternions.tolist(), strict=True):
            self._track(p, q)
            self.client.stepSimulation()
