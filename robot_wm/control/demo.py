"""The pick-and-place demo: a World, the controller loop, and a report judged from ground truth
(``robot_wm.sim.truth``; the controller itself never sees it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from robot_wm.config import PickPlacePlannerConfig, Scene
from robot_wm.control.controller import PickPlaceController
from robot_wm.control.estimate import ObjectEstimator, OracleEstimator
from robot_wm.control.rgbd_estimator import RgbdEstimator
from robot_wm.planning import ShadowVerifier
from robot_wm.sim import Arm, World
from robot_wm.sim.recorder import VideoRecorder
from robot_wm.sim.truth import evaluate_task, held_object, task_objects, true_poses

PERCEPTION_MODES = ("rgbd", "oracle")  # the first is the default
SIM_S_PER_OBJECT = 40.0  # budget of simulated time per task object before the run is cut off


def make_estimator(mode: str, world: World) -> ObjectEstimator:
    """The estimator of a perception mode: "rgbd" (perception from the cameras) or "oracle" (true state)."""
    if mode == "oracle":
        return OracleEstimator(world)
    if mode == "rgbd":
        return RgbdEstimator()
    raise ValueError(f"unknown perception mode {mode!r}")


def run_controller(world: World, arm: Arm, controller: PickPlaceController, max_sim_s: float) -> dict[str, str | None]:
    """Drive the simulated robot with `controller` until it reports done or `max_sim_s` passes.

    Returns, for each pick the controller checked, the true name of the object in the hand (ground truth,
    for the report only)."""
    held: dict[str, str | None] = {}
    obs = world.observe(render=controller.wants_images)
    t_end = world.time + max_sim_s
    gripper = None
    while world.time < t_end:
        cmd = controller.step(obs)
        for event in cmd.events:
            if event.startswith("grasp_checked:"):
                held[f"{len(held)}:{event.split(':', 1)[1]}"] = held_object(arm)
        if cmd.done:
            break
        arm.command(cmd.joint_positions, cmd.joint_velocities)
        if gripper != (cmd.gripper_width, cmd.gripper_force):  # motor targets persist in PyBullet
            gripper = (cmd.gripper_width, cmd.gripper_force)
            arm.set_gripper(*gripper)
        world.step()
        obs = world.observe(render=controller.wants_images)
    return held


def run_demo(scene: Scene, perception: str = PERCEPTION_MODES[0], gui: bool = False, video_path: Path | None = None,
             planner: PickPlacePlannerConfig | None = None) -> dict[str, Any]:
    """Run pick-and-place on `scene` with `perception` (one of PERCEPTION_MODES, default "rgbd"); returns
    the report (fields in docs/ARCHITECTURE.md), judged from the simulator's true state."""
    with World(scene, gui=gui) as world:
        arm = Arm(world)
        recorder = VideoRecorder(world) if video_path is not None else None
        names = task_objects(world)
        planner = planner or PickPlacePlannerConfig()
        verifier = (ShadowVerifier(trials=planner.verify_trials, min_success=planner.verify_min_success,
                                   seed=scene.config.seed) if planner.verify_grasps else None)
        oracle = perception == "oracle"  # the oracle's ids are object names and it needs no images
        controller = PickPlaceController(make_estimator(perception, world), arm.kin,
                                         scene.config.task.place_region, planner, names if oracle else None,
                                         n_slots=len(names), verifier=verifier, request_images=not oracle)
        t0, sim0 = time.perf_counter(), world.time
        held = run_controller(world, arm, controller, SIM_S_PER_OBJECT * max(1, len(names)))
        wall, sim_s = time.perf_counter() - t0, world.time - sim0
        truth = evaluate_task(world, names)
        picked = sorted({h for h in held.values() if h in truth})
        held_list = list(held.values())
        attempts = []
        for a in controller.attempts:
            entry = {"target": a.target, "grasped": a.grasped, "reason": a.reason, "shadow": a.shadow}
            if a.grasped or a.reason == "nothing in hand after lift":
                entry["held"] = held_list.pop(0) if held_list else None
            attempts.append(entry)
        report: dict[str, Any] = {
            "scene": scene.name,
            "scene_file": scene.source,
            "seed": scene.config.seed,
            "perception": perception,
            "objects": len(truth),
            "picked": len(picked),
            "placed": int(sum(truth.values())),
            "success_rate": float(sum(truth.values()) / max(1, len(truth))),
            "sim_s": sim_s,
            "plan_wall_s": wall,
            "finished": controller.phase == "done",
            "shadow_verified": verifier is not None,
            "attempts": attempts,
            "per_object": {n: {"picked": n in picked, "placed": ok} for n, ok in truth.items()},
            "final_poses": true_poses(world),
        }
        if recorder is not None:
            recorder.detach()
            report["video"] = str(recorder.save(video_path))
        arm.close()
    return report
