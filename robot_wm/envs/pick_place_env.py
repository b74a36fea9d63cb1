"""A Gymnasium environment of the pick-and-place task on any contract scene.

Action (8,) in [-1, 1]: joint position increments (scaled by `max_joint_step` rad per env step) for the
7 arm joints, and the gripper opening (-1 closed .. 1 fully open, panda.MAX_OPENING = 0.08 m). Each env step holds the action
for `frame_skip` physics steps (default 24: 10 Hz control at 240 Hz physics).

Observation (dict): ``joints`` (7,) rad, ``gripper`` (1,) m, ``tcp`` (7,) position + xyzw quaternion,
``rgb`` (H, W, 3) uint8 and ``depth`` (H, W) float32 m from the scene's first camera, rendered at
`image_scale` of its calibrated size.

Reward: +1 for each task object newly inside the place region, -1 when one leaves it (judged from the
simulator's true state, ``robot_wm.sim.truth``); the episode terminates when every task object is placed.

Seeding: ``reset(seed=s)`` draws the episode's scene from s — each movable object moved by up to
`jitter_xy` m and turned about the vertical by up to `jitter_yaw` rad from where the scene file puts it, never
into another object (an object is only moved within half the free gap to its nearest neighbour, so stacked or
touching objects stay put) nor off the table — and seeds the world's depth noise with s. Same seed, same
episode, bit for bit; different seeds, different initial scenes. `jitter_xy=0` gives the scene file's layout.

Actions must be finite: a NaN or infinite action raises ValueError and never reaches the simulator.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from scipy.spatial.transform import Rotation

from robot_wm.config import REPO_SCENES_DEFAULT, Scene, load_scene
from robot_wm.config.workspace import on_table
from robot_wm.geometry import panda
from robot_wm.sim import Arm, Camera, World
from robot_wm.sim.recorder import OVERVIEW
from robot_wm.sim.truth import evaluate_task, task_objects

JITTER_XY = 0.02  # m, most an object is moved from its place in the scene file at reset
JITTER_YAW = 0.3  # rad, most it is turned about the vertical
JITTER_CLEARANCE = 0.003  # m kept free between two objects' bounding circles


class PickPlaceEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, scene: str | Path | Scene | None = None, render_mode: str | None = None,
                 frame_skip: int = 24, max_joint_step: float = 0.05, image_scale: float = 0.25,
                 jitter_xy: float = JITTER_XY, jitter_yaw: float = JITTER_YAW) -> None:
        self.scene = scene if isinstance(scene, Scene) else load_scene(scene or REPO_SCENES_DEFAULT,
                                                                        require_objects=True)
        self.render_mode = render_mode
        self.frame_skip, self.max_joint_step, self.image_scale = frame_skip, max_joint_step, image_scale
        if not (math.isfinite(jitter_xy) and jitter_xy >= 0 and math.isfinite(jitter_yaw) and jitter_yaw >= 0):
            raise ValueError(f"jitter_xy and jitter_yaw must be finite and >= 0 (got {jitter_xy}, {jitter_yaw})")
        self.jitter_xy, self.jitter_yaw = jitter_xy, jitter_yaw
        self._radius: dict[str, float] = {}  # object name -> m: horizontal reach of the object from its origin
        self.world: World | None = None
        self.arm: Arm | None = None
        cal = self.scene.calibrations[0]
        h, w = round(cal.height * image_scale), round(cal.width * image_scale)
        self.observation_space = spaces.Dict({
            "joints": spaces.Box(panda.LOWER.astype(np.float32), panda.UPPER.astype(np.float32), dtype=np.float32),
            "gripper": spaces.Box(0.0, 0.081, (1,), dtype=np.float32),
            "tcp": spaces.Box(-2.0, 2.0, (7,), dtype=np.float32),
            "rgb": spaces.Box(0, 255, (h, w, 3), dtype=np.uint8),
            "depth": spaces.Box(0.0, np.float32(cal.far), (h, w), dtype=np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (8,), dtype=np.float32)
        self._viewer = Camera(OVERVIEW)
        self._placed: dict[str, bool] = {}
        self._q_target = panda.HOME.copy()

    def _obs(self) -> dict[str, np.ndarray]:
        frame = self.world.render(self.world.cameras[0], self.image_scale, segmentation=False)
        tcp = self.arm.tcp_pose()
        return {
            "joints": self.arm.q().astype(np.float32),
            "gripper": np.array([self.world.gripper_width()], np.float32),
            "tcp": np.r_[tcp.position, tcp.quaternion].astype(np.float32),
            "rgb": frame.rgb,
            "depth": np.minimum(frame.depth, self.scene.calibrations[0].far).astype(np.float32),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        if self.world is None:  # built once from the scene file, to measure each object's footprint
            self.world = World(self.scene.with_seed(episode_seed))
            self.arm = Arm(self.world)
            self._radius = {name: self._reach(name) for name in self.world.objects}
        self.world.scene = self._episode_scene(episode_seed)
        self.world.reset(episode_seed)
        self._q_target = panda.HOME.copy()
        self._placed = evaluate_task(self.world, task_objects(self.world))
        return self._obs(), {"placed": sum(self._placed.values())}

    def _reach(self, name: str) -> float:
        """Horizontal distance (m) from the object's origin to the farthest corner of its bounding box: a
        circle that holds the object however it is turned about the vertical through its origin."""
        lo, hi = self.world.object_aabb(name)
        origin = self.world.object_pose(name).position[:2]
        corners = np.array([[x, y] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
        return float(np.max(np.linalg.norm(corners - origin, axis=1)))

    def _episode_scene(self, seed: int) -> Scene:
        """The scene with each movable object's spawn pose jittered, drawn from `seed` (see the module
        docstring). Every object draws its offsets whether or not it may move, so the draws never shift."""
        rng = np.random.default_rng(seed)
        objects = self.scene.config.objects
        centres = np.array([o.position[:2] for o in objects], float)
        radii = np.array([self._radius.get(o.name, 0.0) for o in objects])
        out = []
        for i, obj in enumerate(objects):
            offset, turn = rng.uniform(-1.0, 1.0, 2), rng.uniform(-1.0, 1.0)
            gaps = np.linalg.norm(centres - centres[i], axis=1) - radii - radii[i]
            gaps[i] = np.inf
            room = min(self.jitter_xy, 0.5 * float(gaps.min()) - JITTER_CLEARANCE) if len(objects) > 1 \
                else self.jitter_xy
            if obj.fixed or room <= 0:
                out.append(obj)
                continue
            x, y = centres[i] + offset * room / math.sqrt(2.0)  # within a disc of radius `room`
            if not on_table(x, y, margin=radii[i]):
                out.append(obj)
                continue
            quat = (Rotation.from_euler("z", turn * self.jitter_yaw) * Rotation.from_quat(obj.orientation)).as_quat()
            out.append(obj.model_copy(update={"position": [float(x), float(y), obj.position[2]],
                                              "orientation": [float(v) for v in quat]}))
        config = self.scene.config.model_copy(update={"objects": out, "seed": seed})
        return Scene(config, self.scene.source, self.scene.calibrations, self.scene.robot_urdf,
                     dict(self.scene.urdf_paths))

    def step(self, action: np.ndarray):
        """Apply `action` (8,) in [-1, 1] (values outside are clipped) for `frame_skip` physics steps.
        Raises ValueError for an action of another shape or with a NaN or infinite value."""
        try:
            a = np.asarray(action, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"action must be 8 numbers (got {action!r})") from None
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape} (got {a.shape})")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite (got {a.tolist()}); it was not applied")
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        a = np.clip(a, -1.0, 1.0)
        self._q_target = np.clip(self._q_target + a[:7] * self.max_joint_step, panda.LOWER, panda.UPPER)
        self.arm.command(self._q_target)
        self.arm.set_gripper((a[7] + 1.0) / 2.0 * panda.MAX_OPENING)
        self.world.step(self.frame_skip)
        placed = evaluate_task(self.world, list(self._placed))
        reward = float(sum(placed.values()) - sum(self._placed.values()))
        self._placed = placed
        terminated = all(placed.values())
        return self._obs(), reward, terminated, False, {"placed": sum(placed.values())}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self.world is None:
            return None
        return self.world.render(self._viewer, segmentation=False, noise=False).rgb

    def close(self) -> None:
        if self.arm is not None:
            self.arm.close()
        if self.world is not None:
            self.world.close()
        self.world, self.arm = None, None
