"""A light physics world for grasp shake tests: a free-floating Panda hand and one object, nothing else.

No arm, no table, no cameras: the hand's base is driven by a stiff fixed constraint (a "mocap" hand),
the two fingers are prismatic joints under force-limited position control. Each :meth:`HandWorld.build`
calls ``resetSimulation`` and rebuilds everything, so a trial's outcome depends only on its inputs
(bit-for-bit, whatever ran before in the same process).

Frames: TCP = 0.105 m along z of the base (hand) frame of ``robot_wm/assets/panda_hand/panda_hand.urdf``
(= Panda ``panda_grasptarget``), origin between the fingertip pads, z = approach, y = finger closing axis. All poses are world frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet
import pybullet_data
from pybullet_utils.bullet_client import BulletClient
from scipy.spatial.transform import Rotation

from robot_wm.geometry import Pose, panda
from robot_wm.sim.client import SafeBulletClient, quiet_stdio
from robot_wm.sim.kinematics import primitive_collision_shape

log = logging.getLogger(__name__)

HAND_URDF = Path(__file__).resolve().parents[1] / "assets" / "panda_hand" / "panda_hand.urdf"
HAND_TO_TCP = 0.105  # m along the hand z axis
FINGER_JOINTS = (0, 1)
TCP_LINK = -1  # the TCP is no link of the hand URDF: base frame + HAND_TO_TCP along z
MAX_OPENING = panda.MAX_OPENING  # m
GRIP_SPEED = 10.0  # m/s, finger velocity target of `grip`: unreachable, so the motor presses at its force cap
# Runs of steps with constant inputs go to Bullet as one stepSimulation call of up to this many substeps
# (a power of two, so k * dt / k == dt exactly); bit-identical to one call per step (docs/grasping.md).
MAX_SUBSTEPS = 32


def _substep_runs(n: int) -> list[int]:
    """`n` steps as runs of power-of-two lengths, largest first (60 -> [32, 16, 8, 4])."""
    runs, k = [], MAX_SUBSTEPS
    while n > 0:
        while k > n:
            k //= 2
        runs.append(k)
        n -= k
    return runs


def _farthest_corner(aabb: tuple, point: np.ndarray) -> float:
    """Largest distance (m) from `point` to a corner of the axis-aligned box `aabb` (lo, hi)."""
    lo, hi = np.asarray(aabb[0], float), np.asarray(aabb[1], float)
    far = np.maximum(np.abs(lo - point), np.abs(hi - point))
    return float(np.linalg.norm(far))


@dataclass(frozen=True)
class ObjectModel:
    """Geometry and physical properties of one rigid object.

    Either a primitive (`shape` box | cylinder | sphere with `size` as in the scene contract: box full
    extents, cylinder [radius, height], sphere [radius]; or `hull` with `size` the flattened (N, 3)
    object-frame vertices of a convex hull, e.g. perceived geometry) or a URDF file (`urdf`, absolute
    path) at `scale`.
    `mass` (kg) and `friction` (lateral coefficient) override the URDF's values when given; primitives
    default to 0.1 kg and 0.8.
    """

    name: str
    shape: str | None = None
    size: tuple[float, ...] = ()
    urdf: str | None = None
    scale: float = 1.0
    mass: float | None = None
    friction: float | None = None


class HandWorld:
    """One isolated DIRECT physics client holding the hand and one object."""

    def __init__(self, time_step: float = 1.0 / 240.0, solver_iterations: int = 20,
                 rolling_friction: float = 1e-4) -> None:
        self.time_step = float(time_step)
        self.rolling_friction = float(rolling_friction)
        self.solver_iterations = int(solver_iterations)
        with quiet_stdio():  # pybullet prints "argv[0]=" on fd 1 at every connect
            self.client = SafeBulletClient(connection_mode=pybullet.DIRECT)
        self.hand = -1
        self.obj = -1
        self.finger_joints = FINGER_JOINTS
        self.tcp_link = TCP_LINK
        self.reachable = True
        self._cid = -1
        self._hand_force = 0.0
        self.object_mass = 0.0
        self._dt = self.time_step
        self._batch = False  # whether step()/pull() may batch substeps (see _steps)
        self._force_at_com = False  # whether the object's base frame is its centre of mass
        # Bounds for object_fell_clear (inf: never): hand geometry within hand_reach of the TCP, object
        # geometry within object_reach of its base origin, base origin object_com_offset from the COM (m).
        self.hand_reach = float("inf")
        self.object_reach = float("inf")
        self.object_com_offset = 0.0

    def close(self) -> None:
        try:
            self.client.disconnect()
        except pybullet.error:
            pass

    def __enter__(self) -> HandWorld:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ building
    def build(self, obj: ObjectModel, object_pose: Pose, tcp_pose: Pose, opening: float,
              hand_max_force: float = 500.0, finger_friction: float = 1.0,
              mass_scale: float = 1.0, friction_scale: float = 1.0) -> None:
        """Fresh simulation: object at `object_pose` (its URDF/primitive frame), hand with its TCP at
        `tcp_pose` and the fingers open to `opening` (m). Gravity starts off (see :meth:`set_gravity`).
        `mass_scale`/`friction_scale` multiply the object's own values (robust-mode perturbations)."""
        c = self._reset()
        hand_pose = tcp_pose @ Pose([0.0, 0.0, -HAND_TO_TCP], [0, 0, 0, 1])
        self.hand = c.loadURDF(str(HAND_URDF), hand_pose.position.tolist(), hand_pose.quaternion.tolist(),
                               flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        self._setup_fingers(opening, finger_friction)
        self._hand_force = hand_max_force
        self._cid = c.createConstraint(self.hand, -1, -1, -1, pybullet.JOINT_FIXED, [0, 0, 0], [0, 0, 0],
                                       hand_pose.position.tolist(), [0, 0, 0, 1], hand_pose.quaternion.tolist())
        c.changeConstraint(self._cid, maxForce=hand_max_force)
        self._add_object(obj, object_pose, mass_scale, friction_scale)
        # Only this world batches substeps: its hand has no joint damping (which pybullet applies once per
        # stepSimulation call, not per substep) and nothing else in it changes between steps.
        self._batch = True
        # The fingers only close from here, inside the convex hull of their open boxes: every hand point stays
        # within the distance from the TCP to the farthest corner of the open hand's bounding box.
        self.hand_reach = max(_farthest_corner(c.getAABB(self.hand, link), tcp_pose.position)
                              for link in (-1, *self.finger_joints))
        self.object_reach = _farthest_corner(c.getAABB(self.obj, -1), object_pose.position)

    def _reset(self) -> BulletClient:
        c = self.client
        self.hand_reach = self.object_reach = float("inf")
        c.resetSimulation()
        c.setAdditionalSearchPath(pybullet_data.getDataPath())
        c.setPhysicsEngineParameter(fixedTimeStep=self.time_step, numSolverIterations=self.solver_iterations,
                                    deterministicOverlappingPairs=1, enableFileCaching=1)
        c.setGravity(0.0, 0.0, 0.0)
        self.reachable = True
        self._dt = self.time_step
        self._batch = False
        return c

    def _setup_fingers(self, opening: float, finger_friction: float) -> None:
        c = self.client
        half = float(np.clip(opening / 2, 0.0, MAX_OPENING / 2))
        for j in self.finger_joints:
            c.resetJointState(self.hand, j, half)
            c.changeDynamics(self.hand, j, lateralFriction=finger_friction)
        self.set_fingers(opening, 0.0)
        # The Panda's fingers are mechanically coupled: keep them symmetric with a gear constraint.
        j0, j1 = self.finger_joints
        gear = c.createConstraint(self.hand, j0, self.hand, j1, pybullet.JOINT_GEAR, [1, 0, 0], [0, 0, 0], [0, 0, 0])
        c.changeConstraint(gear, gearRatio=-1, erp=0.2, maxForce=1000)

    def _add_object(self, obj: ObjectModel, pose: Pose, mass_scale: float, friction_scale: float) -> None:
        c = self.client
        self.obj = self._load_object(obj, pose)
        if mass_scale != 1.0 or friction_scale != 1.0:
            dyn = c.getDynamicsInfo(self.obj, -1)
            c.changeDynamics(self.obj, -1, mass=float(dyn[0]) * mass_scale,
                             lateralFriction=float(dyn[1]) * friction_scale)
        # Rolling friction adds 2 solver rows per contact point (~25 % of a step while holding); 0 is faster
        # but changes marginal labels (docs/grasping.md), so the reference keeps 1e-4 (physics.rolling_friction).
        c.changeDynamics(self.obj, -1, rollingFriction=self.rolling_friction, spinningFriction=1e-3)
        dyn = c.getDynamicsInfo(self.obj, -1)
        self.object_mass = float(dyn[0])
        # A pull applied at the base origin is a pure force (no torque) when the base frame is the centre of
        # mass; only then is a force held over several substeps the same as one re-applied at every step.
        self._force_at_com = all(v == 0.0 for v in dyn[3])
        self.object_com_offset = float(np.linalg.norm(dyn[3]))

    def _load_object(self, obj: ObjectModel, pose: Pose) -> int:
        # A single rigid body in maximal coordinates (btRigidBody), not a one-link btMultiBody: the same
        # physics, ~10 % cheaper contacts with the hand; labels agree with the multibody object as well as
        # the multibody object agrees with itself under a 1 nm grasp shift (docs/grasping.md).
        c = self.client
        pos, orn = pose.position.tolist(), pose.quaternion.tolist()
        if obj.shape is not None:
            col = primitive_collision_shape(c, obj.shape, obj.size)
            body = c.createMultiBody(0.1 if obj.mass is None else obj.mass, col, -1, pos, orn,
                                     useMaximalCoordinates=True)
            c.changeDynamics(body, -1, lateralFriction=0.8 if obj.friction is None else obj.friction)
            return body
        # Visual shapes play no part in the physics (nothing renders this world): not loaded.
        body = c.loadURDF(str(obj.urdf), pos, orn, globalScaling=obj.scale, useMaximalCoordinates=True,
                          flags=pybullet.URDF_IGNORE_VISUAL_SHAPES)
        if obj.mass is not None:
            c.changeDynamics(body, -1, mass=obj.mass)
        if obj.friction is not None:
            c.changeDynamics(body, -1, lateralFriction=obj.friction)
        return body

    # ------------------------------------------------------------------ control
    def set_time_step(self, time_step: float) -> None:
        """Change the physics time step (s) from the next step on."""
        self._dt = float(time_step)
        self.client.setPhysicsEngineParameter(fixedTimeStep=self._dt)

    def _steps(self, n: int, before: Callable[[], None] | None = None, batch: bool = True) -> None:
        """`n` steps with constant inputs (`before`, if given, is called before every Bullet call).

        A run of k steps goes to Bullet as one call of k substeps of the same dt: forces, gravity and motor
        targets persist over the substeps of one call, and k * dt / k == dt for k a power of two, so this is
        bit-identical to k calls of one step (checked on the tuning set, docs/grasping.md). Worlds that do not
        batch (see build) step one call per step."""
        step, cid = pybullet.stepSimulation, self.client._client
        runs = _substep_runs(n) if batch and self._batch else [1] * n
        current = 1
        for k in runs:
            if k != current:
                pybullet.setPhysicsEngineParameter(fixedTimeStep=self._dt * k, numSubSteps=k if k > 1 else 0,
                                                   physicsClientId=cid)
                current = k
            if before is not None:
                before()
            step(physicsClientId=cid)
        if current != 1:
            pybullet.setPhysicsEngineParameter(fixedTimeStep=self._dt, numSubSteps=0, physicsClientId=cid)

    def set_gravity(self, g: float = 9.81) -> None:
        self.client.setGravity(0.0, 0.0, -float(g))

    def set_tcp_target(self, tcp_pose: Pose) -> None:
        """Drive the hand (through its constraint) so that its TCP goes to `tcp_pose` (world)."""
        hand_pose = tcp_pose @ Pose([0.0, 0.0, -HAND_TO_TCP], [0, 0, 0, 1])
        self.client.changeConstraint(self._cid, hand_pose.position.tolist(), hand_pose.quaternion.tolist(),
                                     maxForce=self._hand_force)

    def follow(self, positions: np.ndarray, quaternions: np.ndarray) -> None:
        """Step once per row, driving the TCP to positions (n, 3) / quaternions (n, 4, xyzw), world frame."""
        positions = np.asarray(positions, float).reshape(-1, 3)
        rot = Rotation.from_quat(np.asarray(quaternions, float).reshape(-1, 4))
        hand_pos = positions - rot.apply(np.array([0.0, 0.0, HAND_TO_TCP]))
        hand_quat = rot.as_quat()
        change, step, cid, fmax = pybullet.changeConstraint, pybullet.stepSimulation, self._cid, self._hand_force
        client = self.client._client
        for p, q in zip(hand_pos.tolist(), hand_quat.tolist(), strict=True):
            change(cid, p, q, maxForce=fmax, physicsClientId=client)
            step(physicsClientId=client)

    def pull(self, force: np.ndarray, n: int) -> None:
        """Step `n` times with an external force (3,) N, world frame, at the object's base origin (its centre
        of mass for primitives and URDFs without an inertial offset), re-applied before every Bullet call."""
        body, f, cid, frame = self.obj, [float(v) for v in force], self.client._client, pybullet.WORLD_FRAME
        # pybullet's own functions, bound once (BulletClient looks each one up again at every call)
        get_pose, apply = pybullet.getBasePositionAndOrientation, pybullet.applyExternalForce

        def push() -> None:
            apply(body, -1, f, get_pose(body, physicsClientId=cid)[0], frame, physicsClientId=cid)

        self._steps(n, push, batch=self._force_at_com)

    def set_fingers(self, width: float, force: float) -> None:
        """Finger motors to opening `width` (m) with at most `force` N per finger (position control)."""
        half = float(np.clip(width / 2, 0.0, MAX_OPENING / 2))
        self.client.setJointMotorControlArray(self.hand, list(self.finger_joints), pybullet.POSITION_CONTROL,
                                              targetPositions=[half, half], forces=[force, force],
                                              positionGains=[0.3, 0.3])

    def squeeze(self, force: float, speed: float = 0.1) -> None:
        """Close the fingers at up to `speed` m/s each until blocked, then press with `force` N per finger."""
        gain = float(np.clip(speed * self.time_step / 0.01, 0.01, 1.0))  # ~speed m/s for 1 cm of travel left
        self.client.setJointMotorControlArray(self.hand, list(self.finger_joints), pybullet.POSITION_CONTROL,
                                              targetPositions=[0.0, 0.0], forces=[force, force],
                                              positionGains=[gain, gain])

    def grip(self, force: float) -> None:
        """Hold the fingers closed with `force` N each (after `squeeze` has brought them into contact).

        A velocity target far beyond reach (-10 m/s) with the force cap: the motor then sits at its cap,
        so each finger presses with `force` N at any solver iteration count. A position target with a
        small gain (as in `squeeze`) delivers only a fraction of its cap at 20 iterations (16 of 40 N,
        docs/grasping.md "Finger force").
        """
        self.client.setJointMotorControlArray(self.hand, list(self.finger_joints), pybullet.VELOCITY_CONTROL,
                                              targetVelocities=[-GRIP_SPEED, -GRIP_SPEED],
                                              forces=[force, force])

    def step(self, n: int = 1) -> None:
        """`n` physics steps with the current inputs."""
        self._steps(n)

    # ------------------------------------------------------------------ queries
    def _tcp_state(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Actual TCP (position, xyzw quaternion), world: link `tcp_link`, or (-1) the base frame + HAND_TO_TCP."""
        c = self.client
        if self.tcp_link >= 0:
            st = c.getLinkState(self.hand, self.tcp_link, computeForwardKinematics=True)
            return st[4], st[5]
        pos, orn = c.getBasePositionAndOrientation(self.hand)
        return c.multiplyTransforms(pos, orn, [0.0, 0.0, HAND_TO_TCP], [0.0, 0.0, 0.0, 1.0])

    def tcp_pose(self) -> Pose:
        """Actual TCP pose (world)."""
        return Pose(*self._tcp_state())

    def object_in_tcp(self) -> np.ndarray:
        """Object centre-of-mass position (3,) in the actual TCP frame (m); cheap, called at every phase end."""
        c = self.client
        tcp_pos, tcp_quat = self._tcp_state()
        pos, _ = c.getBasePositionAndOrientation(self.obj)
        rot = np.asarray(c.getMatrixFromQuaternion(tcp_quat)).reshape(3, 3)
        return rot.T @ (np.asarray(pos) - np.asarray(tcp_pos))

    def object_fell_clear(self, hand_tcp_z_min: float, margin: float) -> bool:
        """Whether the object is out of reach of the hand for good, given that the TCP stays above
        `hand_tcp_z_min` (m, world) and no net upward force acts on the object from now on: no contact
        point with the hand, the centre of mass not rising, and the object's highest possible point more
        than `margin` below the hand's lowest possible point. Only this world (hand and object, nothing
        else) qualifies; conservative bounds from build (inf elsewhere: never true)."""
        c = self.client
        if c.getContactPoints(self.hand, self.obj):
            return False
        (_, _, z), _ = c.getBasePositionAndOrientation(self.obj)
        (_, _, vz), _ = c.getBaseVelocity(self.obj)
        top = z + 2.0 * self.object_com_offset + self.object_reach  # the COM never rises while vz <= 0
        return vz <= 0.0 and top + margin < hand_tcp_z_min - self.hand_reach

    def object_pose(self) -> Pose:
        """Object centre-of-mass frame (world)."""
        pos, orn = self.client.getBasePositionAndOrientation(self.obj)
        return Pose(pos, orn)

    def gripper_width(self) -> float:
        return float(sum(s[0] for s in self.client.getJointStates(self.hand, list(self.finger_joints))))

    def finger_contacts(self) -> tuple[bool, bool]:
        """Whether each finger (left, right) touches the object."""
        c = self.client
        return tuple(bool(c.getContactPoints(self.hand, self.obj, j, -1)) for j in self.finger_joints)  # type: ignore[return-value]

    def hand_object_penetration(self, probe: float = 0.0) -> float:
        """Deepest penetration (m, >= 0) between any hand link and the object (0 when apart)."""
        pts = self.client.getClosestPoints(self.hand, self.obj, distance=probe)
        return float(max([0.0] + [-p[8] for p in pts]))

    def object_aabb(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.client.getAABB(self.obj, -1)
        return np.asarray(lo), np.asarray(hi)
