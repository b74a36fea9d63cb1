"""``robot-wm bench sim``: World stepping against bare PyBullet, rendering, IK, reset, determinism."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from robot_wm.bench.timing import median_seconds
from robot_wm.config import REPO_SCENES_DIR, load_scene
from robot_wm.control.demo import run_demo
from robot_wm.geometry import Pose, top_down_quaternion
from robot_wm.sim import Arm, World

STEPS = 480


def run(scenes: list[Path] | None, seed: int, quick: bool) -> dict[str, Any]:
    scene_path = scenes[0] if scenes else REPO_SCENES_DIR / "clutter.yaml"
    scene = load_scene(scene_path).with_seed(seed)
    rounds = 3 if quick else 7
    with World(scene) as world:
        # Interleave World.step and bare stepSimulation (World.step_raw) on the same bodies so machine noise
        # hits both alike.
        world_t, raw_t = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            world.step(STEPS)
            world_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            world.step_raw(STEPS)
            raw_t.append(time.perf_counter() - t0)
        cam = next(c for c in world.cameras if c.intrinsics.width == 640 and c.intrinsics.height == 480)
        render_s = median_seconds(lambda: world.render(cam), 3 if quick else 10)
        reset_s = median_seconds(world.reset, 2 if quick else 5)
        arm = Arm(world)
        rng = np.random.default_rng(seed)
        targets = [Pose([rng.uniform(0.3, 0.7), rng.uniform(-0.3, 0.3), rng.uniform(0.05, 0.4)],
                        top_down_quaternion(rng.uniform(-1.5, 1.5)))
                   for _ in range(20 if quick else 100)]
        ik_times, ik_fail = [], 0
        for t in targets:
            t0 = time.perf_counter()
            ik_fail += arm.ik(t) is None
            ik_times.append(time.perf_counter() - t0)
        arm.close()
        n_bodies = world.num_bodies()
    det_scene = load_scene(REPO_SCENES_DIR / "two_blocks.yaml").with_seed(seed)
    a = run_demo(det_scene, "oracle", controller="scripted")["final_poses"]
    b = run_demo(det_scene, "oracle", controller="scripted")["final_poses"]
    return {
        "scene": scene.name,
        "bodies": n_bodies,
        "steps_per_s": STEPS / statistics.median(world_t),
        "raw_steps_per_s": STEPS / statistics.median(raw_t),
        "step_ratio": statistics.median(raw_t) / statistics.median(world_t),
        "render_ms_640x480": render_s * 1e3,
        "ik_ms": statistics.median(ik_times) * 1e3,
        "ik_unreachable": ik_fail,
        "reset_ms": reset_s * 1e3,
        "deterministic": a == b,
    }
