"""The planned controller in the simulator, with a fault injected: it notices (its own events and reasons) and
survives (the block still placed, or the run stopped with a message). Oracle estimates, real camera frames for
its looks, a scripted top-down planner: what is tested is the controller."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robot_wm.config import REPO_SCENES_DIR, PickPlacePlannerConfig, scene_from_dict
from robot_wm.control.estimate import OracleEstimator
from robot_wm.control.planned import PlanningController
from robot_wm.geometry import Pose
from robot_wm.interface import Observation
from robot_wm.planning.box_grasps import top_down_grasps
from robot_wm.planning.decision import Decision, PickAction
from robot_wm.sim import Arm, World
from robot_wm.sim.push import set_object_pose
from robot_wm.sim.truth import evaluate_task

SCENE = {"name": "one_block", "cameras": [{"calibration": "front.yaml"}, {"calibration": "side.yaml"}],
         "objects": [{"name": "red", "shape": "box", "size": [0.05, 0.04, 0.05], "mass": 0.1, "friction": 0.8,
                      "color": [0.9, 0.1, 0.1, 1.0], "position": [0.5, 0.1, 0.025]}],
         "task": {"place_region": {"center": [0.45, -0.35, 0.0], "size": [0.2, 0.2]}}}


class TopDown:
    """Picks the first object outside the region with a top-down grasp; done when there is none."""

    def __init__(self, region):
        self.region = region

    def decide(self, estimates, obs):
        todo = [e for e in estimates if not self.region.contains(e.pose.position, margin=-0.005)]
        if not todo:
            return Decision("done", reason="all placed")
        g = top_down_grasps(todo[0])[0]
        return Decision("pick", pick=PickAction(todo[0].id, g.pose, min(g.width + 0.02, 0.08), g.contact_width))

    def outcome(self, decision, estimates, succeeded):
        return {}


def run(fault=None, max_ticks: int = 12_000):
    """Run the one-block scene; `fault(world, ctrl, obs) -> obs` may change the world or the observation."""
    scene = scene_from_dict(SCENE, "one_block", REPO_SCENES_DIR)
    region = scene.config.task.place_region
    with World(scene) as world:
        arm = Arm(world)
        ctrl = PlanningController(OracleEstimator(world), arm.kin, TopDown(region), PickPlacePlannerConfig(), region,
                                  request_images=True, n_slots=1)
        obs = world.observe(segmentation=False)
        for _ in range(max_ticks):
            if fault is not None:
                obs = fault(world, ctrl, obs)
            cmd = ctrl.step(obs)
            if cmd.done:
                break
            arm.command(cmd.joint_positions, cmd.joint_velocities)
            arm.set_gripper(cmd.gripper_width, cmd.gripper_force)
            world.step()
            obs = world.observe(render=ctrl.wants_images, segmentation=False)
        placed = evaluate_task(world, ["red"])["red"]
        ctrl.close()
        arm.close()
    return ctrl, placed


@pytest.mark.slow  # ~5 s; bench control's fault runs cover it (stuck_gripper)
def test_a_gripper_sensor_stuck_at_zero_is_cross_checked_with_the_cameras():
    ctrl, placed = run(lambda world, ctrl, obs: dataclasses.replace(obs, gripper_width=0.0))
    assert placed and "fault:gripper_sensor" in ctrl.faults
    assert ctrl.decisions[0]["executed"] is True  # one pick: no opening at lift height, no endless retries


@pytest.mark.slow  # ~5 s; bench control's fault runs cover it (object_moved)
def test_an_object_moved_during_execution_is_noticed_above_it_and_re_planned():
    moved = []

    def move_once(world, ctrl, obs):
        if not moved and ctrl.phase == "pre-grasp":
            pose = world.object_pose("red")
            set_object_pose(world, "red", Pose(pose.position + [0.0, -0.08, 0.0], pose.quaternion))
            moved.append(True)
        return obs

    ctrl, placed = run(move_once)
    assert moved and placed
    assert ctrl.decisions[0]["failure"].startswith("target moved since the plan")
    assert "fault:target_moved" in ctrl.faults and ctrl.decisions[1]["executed"] is True


@pytest.mark.parametrize("offset", [[0.03, 0.0, 0.0], [0.0, 0.0, 0.03]])
def test_a_camera_that_moved_stops_the_run_with_a_message(offset):
    def moved_camera(world, ctrl, obs):
        f = obs.frames.get("front")
        if f is None:
            return obs
        pose = Pose(f.camera2world.position + np.array(offset), f.camera2world.quaternion)
        return Observation({**obs.frames, "front": dataclasses.replace(f, camera2world=pose)}, obs.joint_positions,
                           obs.gripper_width, obs.time)

    ctrl, placed = run(moved_camera, max_ticks=100)
    assert not placed and ctrl.finished and not ctrl.decisions
    assert ctrl.finish_reason.startswith("camera 'front' no longer agrees with its calibration")
