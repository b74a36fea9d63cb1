"""A Gymnasium environment of the pick-and-place task on any contract scene.

Action (8,) in [-1, 1]: joint position increments (scaled by `max_joint_step` rad per env step) for the
7 arm joints, and the gripper opening (-1 closed .. 1 fully open, panda.MAX_OPENING = 0.08 m). Each env step holds the action
for `frame_skip` physics steps (default 24: 10 Hz control at 240 Hz physics).

Observation (dict): ``joints`` (7,) rad, ``gripper`` (1,) m, ``tcp`` (7,) position + xyzw quaternion,
``rgb`` (H, W, 3) uint8 and ``depth`` (H, W) float32 m from the scene's first camera, rendered at
`image_scale` of its calibrated size.

Reward: +1 for each task object newly inside the place region, -1 when one leaves it (judged from the
simulator's true state, ``robot_wm.sim.truth``); the episode terminates when every task object is placed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from robot_wm.config import REPO_SCENES_DEFAULT, Scene, load_scene
from robot_wm.geometry import panda
from robot_wm.sim import Arm, Camera, World
from robot_wm.sim.recorder import OVERVIEW
from robot_wm.sim.truth import evaluate_task, task_objects


class PickPlaceEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, scene: str | Path | Scene | None = None, render_mode: str | None = None,
                 frame_skip: int = 24, max_joint_step: float = 0.05, image_scale: float = 0.25) -> None:
        self.scene = scene if isinstance(scene, Scene) else load_scene(scene or REPO_SCENES_DEFAULT,
                                                                        require_objects=True)
        self.render_mode = render_mode
        self.frame_skip, self.max_joint_step, self.image_scale = frame_skip, max_joint_step, image_scale
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
        scene = self.scene.with_seed(episode_seed)
        if self.world is None:
            self.world = World(scene)
            self.arm = Arm(self.world)
        else:
            self.world.scene = scene
            self.world.reset(episode_seed)
        self._q_target = panda.HOME.copy()
        self._placed = evaluate_task(self.world, task_objects(self.world))
        return self._obs(), {"placed": sum(self._placed.values())}

    def step(self, action: np.ndarray):
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
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
