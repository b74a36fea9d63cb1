"""Random scene generators: contract-valid scenes, goals in reach, the held-out / training object sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
from robot_wm.config.object_sets import HELDOUT_URDF_IDS, TRAIN_URDF_IDS, random_urdf_index
from robot_wm.config.random_scene import (
    PUSH_DISTANCE,
    PUSH_GOAL_MAX_RADIUS,
    PUSH_TURN_DEG,
    push_to_goal_scene,
    singulate_scene,
)
from robot_wm.config.workspace import in_reach, on_table
from robot_wm.geometry.pose import yaw_of


def _yaw_deg(obj: dict) -> float:
    return math.degrees(yaw_of(np.asarray(obj["orientation"], float)))


@pytest.mark.parametrize("heldout", [True, False])
def test_push_to_goal_scenes_are_valid_with_reachable_goals(heldout):
    kinds, yaw_goals = set(), 0
    for seed in range(40):
        data = push_to_goal_scene(seed, heldout=heldout)
        scene = scene_from_dict(data, data["name"], REPO_SCENES_DIR)
        task = scene.config.task
        assert task.kind == "push_to_goal" and len(task.goals) == 1
        goal = task.goals[0]
        target = data["objects"][0]
        assert goal.object == target["name"] == "target"
        x, y = goal.position
        assert on_table(x, y, 0.1) and in_reach(x, y) and math.hypot(x, y) <= PUSH_GOAL_MAX_RADIUS
        dist = math.dist(goal.position, target["position"][:2])
        assert PUSH_DISTANCE[0] - 1e-3 <= dist <= PUSH_DISTANCE[1] + 1e-3
        assert (goal.tolerance_m, goal.tolerance_deg) == (0.02, 10.0)
        kind = target.get("shape", "mesh")
        kinds.add(kind)
        if goal.yaw_deg is not None:
            yaw_goals += 1
            assert kind != "cylinder"
            turn = abs(math.remainder(goal.yaw_deg - _yaw_deg(target), 360.0))
            assert PUSH_TURN_DEG[0] - 0.1 <= turn <= PUSH_TURN_DEG[1] + 0.1
        assert len(data["objects"]) <= 3
        for obj in data["objects"]:  # every object from the requested set, mass and friction randomised
            assert 0.05 <= obj["mass"] <= 0.5 and 0.3 <= obj["friction"] <= 1.0
            if "urdf" in obj:
                ids = HELDOUT_URDF_IDS if heldout else TRAIN_URDF_IDS
                assert random_urdf_index(obj["urdf"]) in ids
                assert (0.5 <= obj["scale"] <= 1.0) if heldout else (0.5 <= obj["scale"] <= 0.8)
            elif heldout and obj["shape"] == "box":  # wider than the gripper: outside the training boxes
                assert max(obj["size"][:2]) > 0.08
            elif heldout and obj["shape"] == "cylinder":
                assert obj["size"][0] > 0.04
        for d in data["objects"][1:]:  # distractors clear of the goal
            assert math.dist(d["position"][:2], goal.position) > 0.05
    assert kinds == {"box", "cylinder", "mesh"}
    assert 10 <= yaw_goals <= 35


def test_push_to_goal_scene_options_and_determinism():
    a = push_to_goal_scene(5, kind="cylinder", yaw_goal=True, distractors=2)
    assert a == push_to_goal_scene(5, kind="cylinder", yaw_goal=True, distractors=2)
    assert a["objects"][0]["shape"] == "cylinder"
    assert "yaw_deg" not in a["task"]["goals"][0]  # never a yaw goal for a cylinder
    b = push_to_goal_scene(5, kind="box", yaw_goal=True, distractors=0)
    assert len(b["objects"]) == 1 and "yaw_deg" in b["task"]["goals"][0]
    with pytest.raises(ValueError, match="unknown object kind"):
        push_to_goal_scene(0, kind="torus")


@pytest.mark.parametrize("heldout", [True, False])
def test_singulate_scenes_are_valid_with_flush_blocks_and_a_wall(heldout):
    for seed in range(20):
        data = singulate_scene(seed, heldout=heldout)
        scene = scene_from_dict(data, data["name"], REPO_SCENES_DIR)
        objs = {o.name: o for o in scene.config.objects}
        assert objs["wall"].fixed and scene.config.task.kind == "pick_place"
        assert "wall" not in scene.config.task.objects
        a, b = objs["pair_0"], objs["pair_1"]
        assert a.color == b.color and a.size == b.size
        gap = (b.position[0] - a.position[0]) - a.size[0]  # flush: side by side along x
        assert 0.0 < gap < 0.002
        w = objs["by_wall"]
        gap = (objs["wall"].position[0] - 0.01) - (w.position[0] + w.size[0] / 2)
        assert 0.0 < gap < 0.002
        assert max(w.size[:2]) > 0.08  # only its narrow side fits the gripper

