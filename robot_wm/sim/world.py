"""The simulated world built from a scene file: table, Panda, objects and calibrated cameras.

Each World owns its own physics client, so any number of worlds (the real one, shadow worlds,
parallel evaluations) live in one process without interfering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from robot_wm.config import Scene
from robot_wm.config.workspace import TABLE_CENTER_XY, TABLE_SIZE
from robot_wm.geometry import Pose, panda
from robot_wm.interface import CameraFrame, Observation
from robot_wm.sim.camera import Camera
from robot_wm.sim.client import TIME_STEP, configure_client, make_client, pybullet
from robot_wm.sim.kinematics import Obstacle, primitive_collision_shape, primitive_visual_shape

log = logging.getLogger(__name__)

TABLE_COLOR = (0.76, 0.66, 0.52, 1.0)
DEFAULT_COLOR = (0.6, 0.6, 0.6, 1.0)
SETTLE_MAX_S = 2.0
REST_LINEAR = 2e-3  # m/s
REST_ANGULAR = 2e-2  # rad/s
ROLLING_FRICTION = 1e-4  # m: an object's rolling friction (Bullet: the torque it resists a roll with, per N)
# m: ... a cylinder's or a sphere's. Bullet's cylinder-box contact feeds energy into a lying cylinder that rolls
# faster than a few mm/s at 1e-4 (8 -> 29 mm/s in 5 s, 31 -> 202 mm/s; docs/ARCHITECTURE.md): at 1e-3 a roll
# started at 31 mm/s ends within 6 mm and one at 94 mm/s within 45 mm, as a real cylinder's on a table does
ROUND_ROLLING_FRICTION = 1e-3
FLANGE_LINK = panda.FLANGE_LINK  # the arm's flange link (see robot_wm.geometry.panda)


@dataclass
class ObjectInfo:
    """A scene object as loaded. `size` follows the scene contract (box extents, cylinder [r, h], sphere [r])."""

    name: str
    body: int
    shape: str | None
    size: tuple[float, ...]
    urdf: str | None
    scale: float
    mass: float
    friction: float
    color: tuple[float, float, float, float]
    fixed: bool


@dataclass
class Contact:
    """One contact point between bodies `a` and `b` (scene object names, or "table" / "robot").

    All vectors are in the world frame. `position_on_a` / `position_on_b` (3,) m: the closest points on
    each body's surface; `normal_on_b` (3,): unit contact normal on b, pointing from b towards a;
    `distance` m: signed separation along the normal (negative = penetration); `normal_force` N: the
    normal force the solver applied in the last step.
    """

    a: str
    b: str
    position_on_a: np.ndarray
    position_on_b: np.ndarray
    normal_on_b: np.ndarray
    distance: float
    normal_force: float


class World:
    """A PyBullet world from a :class:`~robot_wm.config.Scene`. Call :meth:`reset` to (re)build it.

    World frame: z up, robot base at the origin, table top at z = 0.
    """

    def __init__(self, scene: Scene, gui: bool = False, seed: int | None = None) -> None:
        self.scene = scene
        self.gui = gui
        self.client = make_client(gui=gui)
        mounts = scene.mounts if len(scene.config.cameras) == len(scene.calibrations) else ["world"] * len(
            scene.calibrations)
        self.cameras = [Camera(c, m) for c, m in zip(scene.calibrations, mounts, strict=True)]
        self.objects: dict[str, ObjectInfo] = {}
        self.robot = -1
        self.table = -1
        self.time = 0.0
        self.step_count = 0
        self.rng = np.random.default_rng(scene.config.seed if seed is None else seed)
        self._step_hooks: list[Callable[[World], None]] = []
        self.reset(seed)

    # ------------------------------------------------------------------ building
    def reset(self, seed: int | None = None, settle: bool = True) -> None:
        """Rebuild everything from the scene (bit-for-bit repeatable) and let objects settle."""
        seed = self.scene.config.seed if seed is None else seed
        self.rng = np.random.default_rng(seed)
        c = self.client
        c.resetSimulation()
        configure_client(c)
        if self.gui:
            c.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 0)
        self.time, self.step_count = 0.0, 0
        self.table = self._load_table()
        cfg = self.scene.config
        self.robot = c.loadURDF(str(self.scene.robot_urdf), cfg.robot.base_position, useFixedBase=True)
        self.reset_arm(panda.HOME)
        self.objects = {}
        for obj in cfg.objects:
            self.objects[obj.name] = self._load_object(obj)
        if self.gui:
            c.configureDebugVisualizer(pybullet.COV_ENABLE_RENDERING, 1)
        if settle:
            self.settle()

    def reset_arm(self, q: np.ndarray, finger_opening: float = panda.MAX_FINGER_OPENING) -> None:
        """Teleport the arm to joint angles q (7,) and hold it there with the motors."""
        c = self.client
        for j, v in zip(panda.ARM_JOINTS, q, strict=True):
            c.resetJointState(self.robot, j, float(v))
        for j in panda.FINGER_JOINTS:
            c.resetJointState(self.robot, j, finger_opening)
        c.setJointMotorControlArray(self.robot, list(panda.ARM_JOINTS), pybullet.POSITION_CONTROL,
                                    targetPositions=list(map(float, q)), forces=panda.EFFORT_LIMIT.tolist())
        c.setJointMotorControlArray(self.robot, list(panda.FINGER_JOINTS), pybullet.POSITION_CONTROL,
                                    targetPositions=[finger_opening] * 2, forces=[panda.FINGER_FORCE] * 2)

    def _load_table(self) -> int:
        c = self.client
        col = primitive_collision_shape(c, "box", TABLE_SIZE)
        vis = primitive_visual_shape(c, "box", TABLE_SIZE, TABLE_COLOR)
        pos = [TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], -TABLE_SIZE[2] / 2]
        body = c.createMultiBody(0, col, vis, pos)
        c.changeDynamics(body, -1, lateralFriction=0.6)
        return body

    def _load_object(self, obj) -> ObjectInfo:
        c = self.client
        pos, orn = obj.position, obj.orientation
        if obj.shape is not None:
            color = tuple(obj.color or DEFAULT_COLOR)
            col = primitive_collision_shape(c, obj.shape, obj.size)
            vis = primitive_visual_shape(c, obj.shape, obj.size, color)
            body = c.createMultiBody(0.0 if obj.fixed else obj.mass, col, vis, pos, orn)
            size = tuple(obj.size)
        else:
            body = c.loadURDF(str(self.scene.urdf_paths[obj.name]), pos, orn, globalScaling=obj.scale,
                              useFixedBase=obj.fixed)
            if obj.fixed:
                c.changeDynamics(body, -1, mass=0.0)
            elif obj.mass is not None:
                c.changeDynamics(body, -1, mass=obj.mass)
            if obj.color is not None:
                for link in range(-1, c.getNumJoints(body)):
                    c.changeVisualShape(body, link, rgbaColor=obj.color)
            size = ()
        if obj.friction is not None:
            c.changeDynamics(body, -1, lateralFriction=obj.friction)
        rolling = ROUND_ROLLING_FRICTION if obj.shape in ("cylinder", "sphere") else ROLLING_FRICTION
        c.changeDynamics(body, -1, rollingFriction=rolling, spinningFriction=1e-3)
        dyn = c.getDynamicsInfo(body, -1)
        mass, friction = float(dyn[0]), float(dyn[1])
        if obj.color is not None or obj.shape is not None:
            color = tuple(obj.color or DEFAULT_COLOR)
        else:
            vis = c.getVisualShapeData(body)
            color = tuple(vis[0][7]) if vis else DEFAULT_COLOR
        return ObjectInfo(obj.name, body, obj.shape, size, obj.urdf, obj.scale, mass, friction, color, mass == 0.0)

    # ------------------------------------------------------------------ stepping
    def add_step_hook(self, hook: Callable[[World], None]) -> None:
        """Call `hook(world)` after every simulation step (e.g. a video recorder)."""
        self._step_hooks.append(hook)

    def remove_step_hook(self, hook: Callable[[World], None]) -> None:
        self._step_hooks.remove(hook)

    def step(self, n: int = 1) -> None:
        """Advance the physics by n steps of TIME_STEP seconds."""
        step, hooks = self.client.stepSimulation, self._step_hooks
        for _ in range(n):
            step()
            self.step_count += 1
            for hook in hooks:
                hook(self)
        self.time = self.step_count * TIME_STEP

    def step_raw(self, n: int = 1) -> None:
        """n bare physics steps: no step hooks, and `time` / `step_count` are NOT advanced.

        Only for measuring what :meth:`step`'s bookkeeping costs (``robot-wm bench sim``); anything else
        should call :meth:`step`.
        """
        step = self.client.stepSimulation
        for _ in range(n):
            step()

    def at_rest(self) -> bool:
        """True when no movable object moves faster than the rest thresholds."""
        for info in self.objects.values():
            if info.fixed:
                continue
            lin, ang = self.client.getBaseVelocity(info.body)
            if np.linalg.norm(lin) > REST_LINEAR or np.linalg.norm(ang) > REST_ANGULAR:
                return False
        return True

    def settle(self, max_s: float = SETTLE_MAX_S) -> float:
        """Step until objects are at rest (checked every 0.05 s) or `max_s` passes; returns seconds stepped."""
        chunk = 12
        steps = 0
        while steps * TIME_STEP < max_s:
            self.step(chunk)
            steps += chunk
            if self.at_rest():
                break
        return steps * TIME_STEP

    # ------------------------------------------------------------------ state
    def object_pose(self, name: str) -> Pose:
        """World pose of an object's base frame (its centre of mass frame in PyBullet)."""
        pos, orn = self.client.getBasePositionAndOrientation(self.objects[name].body)
        return Pose(pos, orn)

    def object_poses(self) -> dict[str, Pose]:
        return {n: self.object_pose(n) for n in self.objects}

    def object_aabb(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World-frame axis-aligned bounds (min (3,), max (3,)) of an object, all links."""
        c, body = self.client, self.objects[name].body
        lo, hi = (np.array(v) for v in c.getAABB(body, -1))
        for link in range(c.getNumJoints(body)):
            a, b = c.getAABB(body, link)
            lo, hi = np.minimum(lo, a), np.maximum(hi, b)
        return lo, hi

    def object_vertices(self, name: str) -> np.ndarray | None:
        """World-frame collision-mesh vertices (N, 3) of a mesh object (all links), or None for primitives."""
        c, body = self.client, self.objects[name].body
        chunks = []
        for link in range(-1, c.getNumJoints(body)):
            if not any(d[2] == pybullet.GEOM_MESH for d in c.getCollisionShapeData(body, link)):
                continue
            count, verts = c.getMeshData(body, link)
            if count:
                if link == -1:
                    pos, orn = c.getBasePositionAndOrientation(body)
                else:
                    st = c.getLinkState(body, link)
                    pos, orn = st[4], st[5]
                chunks.append(Pose(pos, orn).transform_points(np.asarray(verts)))
        return np.concatenate(chunks) if chunks else None

    def body_names(self) -> dict[int, str]:
        """Simulator body id -> name, for ground-truth segmentation ("table", "robot", objects)."""
        out = {self.table: "table", self.robot: "robot"}
        out.update({info.body: name for name, info in self.objects.items()})
        return out

    def num_bodies(self) -> int:
        """Bodies in the physics world: table, robot and every object."""
        return int(self.client.getNumBodies())

    def contacts(self, a: str, b: str) -> list[Contact]:
        """Contact points between two objects (or "table" / "robot"), from the last simulation step."""
        ids = {"table": self.table, "robot": self.robot} | {n: o.body for n, o in self.objects.items()}
        return [Contact(a, b, np.array(cp[5]), np.array(cp[6]), np.array(cp[7]), float(cp[8]), float(cp[9]))
                for cp in self.client.getContactPoints(ids[a], ids[b])]

    def obstacles(self) -> list[Obstacle]:
        """Snapshot of the table and objects as static obstacles for motion checks."""
        out = [Obstacle("table", Pose([TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], -TABLE_SIZE[2] / 2], [0, 0, 0, 1]),
                        "box", TABLE_SIZE)]
        for name, info in self.objects.items():
            pose = self.object_pose(name)
            if info.shape is not None:
                out.append(Obstacle(name, pose, info.shape, info.size))
            else:
                out.append(Obstacle(name, pose, urdf=str(self.scene.urdf_paths[name]), scale=info.scale))
        return out

    def joint_positions(self) -> np.ndarray:
        return np.array([s[0] for s in self.client.getJointStates(self.robot, list(panda.ARM_JOINTS))])

    def gripper_width(self) -> float:
        return float(sum(s[0] for s in self.client.getJointStates(self.robot, list(panda.FINGER_JOINTS))))

    def flange_pose(self) -> Pose:
        """World pose of the arm's flange (:data:`FLANGE_LINK`) at the current joint positions."""
        st = self.client.getLinkState(self.robot, FLANGE_LINK, computeForwardKinematics=True)
        return Pose(st[4], st[5])

    def camera_pose(self, camera: Camera | str) -> Pose:
        """Current world pose of `camera`'s optical frame: its calibrated pose for a fixed camera, the flange pose
        composed with its camera2flange for a hand-mounted one (whose `camera2world` is updated to it)."""
        if isinstance(camera, str):
            camera = next(c for c in self.cameras if c.name == camera)
        if getattr(camera, "mount", "world") == "hand":
            camera.camera2world = self.flange_pose() @ camera.camera2flange
        return camera.camera2world

    def render(self, camera: Camera | str, scale: float = 1.0, segmentation: bool = True,
               noise: bool = True) -> CameraFrame:
        """Render one frame of `camera` (one of :attr:`cameras`, by name, or any other :class:`Camera`).

        A hand-mounted camera is rendered from the arm's current flange pose (:meth:`camera_pose`); the frame's
        `camera2world` is that true pose. `scale` < 1 renders a smaller image with matching intrinsics
        (previews, videos). `noise`: apply the camera's calibrated depth noise, drawn from the world's seeded
        generator (this advances :attr:`rng`); False renders a noise-free frame and leaves the generator alone.
        `segmentation`: add the ground-truth body-id image (simulator body ids, see :meth:`body_names`).
        """
        if isinstance(camera, str):
            camera = next(c for c in self.cameras if c.name == camera)
        self.camera_pose(camera)
        return camera.render(self.client, self.rng if noise else None, scale, segmentation=segmentation)

    def observe(self, render: bool = True, segmentation: bool = True) -> Observation:
        """Joint state, gripper width and time, plus (`render`) a frame of every camera, with calibrated
        noise drawn from the world's seeded generator."""
        frames = {}
        if render:
            for cam in self.cameras:
                frames[cam.name] = self.render(cam, segmentation=segmentation)
        return Observation(frames, self.joint_positions(), self.gripper_width(), self.time)

    def close(self) -> None:
        try:
            self.client.disconnect()
        except pybullet.error:
            pass

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
