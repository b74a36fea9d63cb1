"""The pick-and-place demo as a function: build the world, run the task, report from ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_wm.config import PickPlacePlannerConfig, Scene
from robot_wm.control.estimate import ObjectEstimator, OracleEstimator
from robot_wm.control.pick_place import PickPlace, evaluate_task
from robot_wm.sim import Arm, World
from robot_wm.sim.recorder import VideoRecorder

PERCEPTION_MODES = ("oracle",)


def make_estimator(mode: str, world: World) -> ObjectEstimator:
    if mode == "oracle":
        return OracleEstimator(world)
    raise ValueError(f"unknown perception mode {mode!r}")


def run_demo(scene: Scene, perception: str = "oracle", gui: bool = False, video_path: Path | None = None,
             planner: PickPlacePlannerConfig | None = None) -> dict[str, Any]:
    """Run pick-and-place on `scene`; returns the report (see docs/ARCHITECTURE.md for its fields)."""
    with World(scene, gui=gui) as world:
        arm = Arm(world)
        recorder = VideoRecorder(world) if video_path is not None else None
        task = PickPlace(world, arm, make_estimator(perception, world), planner)
        result = task.run()
        truth = evaluate_task(world, task.task_objects)
        picked = sorted({o.held for o in result.outcomes if o.held in truth})
        report: dict[str, Any] = {
            "scene": scene.name,
            "scene_file": scene.source,
            "seed": scene.config.seed,
            "perception": perception,
            "objects": len(truth),
            "picked": len(picked),
            "placed": int(sum(truth.values())),
            "success_rate": float(sum(truth.values()) / max(1, len(truth))),
            "sim_s": result.sim_s,
            "plan_wall_s": result.wall_s,
            "attempts": [vars(o) for o in result.outcomes],
            "per_object": {n: {"picked": n in picked, "placed": ok} for n, ok in truth.items()},
            "final_poses": {n: world.object_pose(n).as_list() for n in world.objects},
        }
        if recorder is not None:
            recorder.detach()
            report["video"] = str(recorder.save(video_path))
        arm.close()
    return report
