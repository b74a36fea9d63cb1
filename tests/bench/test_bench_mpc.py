"""``bench mpc``: its episodes (valid, reachable, the same for every variant) and its ground-truth scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_wm.bench import AREAS
from robot_wm.bench import mpc as bench
from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
from robot_wm.config.workspace import in_reach, on_table
from robot_wm.geometry import Pose, yaw_quaternion


def test_mpc_is_a_bench_area():
    assert "mpc" in AREAS


def test_episodes_cycle_object_kinds_with_yaw_goals_in_half():
    scenes = [bench.episode_scene(0, e) for e in range(bench.EPISODES)]
    kinds = [s["objects"][0].get("shape", "mesh") for s in scenes]
    assert kinds[:3] == ["box", "cylinder", "mesh"] and kinds.count("cylinder") == bench.EPISODES // 3
    yaw = [bench._has_yaw_goal(s) for s in scenes]
    assert sum(yaw) == bench.EPISODES // 2
    assert not any(y for y, k in zip(yaw, kinds, strict=True) if k == "cylinder")
    for s in scenes:
        sc = scene_from_dict(s, s["name"], REPO_SCENES_DIR)
        (g,) = sc.config.task.goals
        assert on_table(*g.position) and in_reach(*g.position)
        for o in s["objects"]:  # held-out only
            if "urdf" in o:
                assert int(o["urdf"].split("/")[1]) >= 700 and 0.5 <= o["scale"] <= 1.0
    assert bench.episode_scene(0, 4) == bench.episode_scene(0, 4) != bench.episode_scene(1, 4)


def test_settled_scene_keeps_goal_and_turns_the_yaw_goal_with_its_object():
    data = bench.episode_scene(0, 0)  # a box with a yaw goal
    data["objects"][0]["position"][2] += 0.01  # dropped from 1 cm: it settles on the table
    settled = bench.settle_scene(data)
    obj = settled["objects"][0]
    assert obj["position"][2] == pytest.approx(data["objects"][0]["size"][2] / 2, abs=2e-3)
    assert settled["task"]["goals"][0]["position"] == data["task"]["goals"][0]["position"]
    turn0 = data["task"]["goals"][0]["yaw_deg"] - math.degrees(
        bench._yaw_turned(bench.Rotation.identity(), bench.Rotation.from_quat(data["objects"][0]["orientation"])))
    turn1 = settled["task"]["goals"][0]["yaw_deg"] - math.degrees(
        bench._yaw_turned(bench.Rotation.identity(), bench.Rotation.from_quat(obj["orientation"])))
    assert math.remainder(turn1 - turn0, 360.0) == pytest.approx(0.0, abs=1e-2)  # the same turn to make
    scene_from_dict(settled, settled["name"], REPO_SCENES_DIR)


def pose(x, y, yaw_deg) -> Pose:
    return Pose([x, y, 0.02], yaw_quaternion(math.radians(yaw_deg)))


def test_score_position_and_yaw_modulo_symmetry():
    goal = {"position": [0.6, 0.1], "yaw_deg": 40.0, "tolerance_m": 0.02, "tolerance_deg": 10.0}
    start = pose(0.5, 0.0, 10.0)  # the scene file says 10 deg: the goal is a 30 deg turn
    ok = bench.score(start, pose(0.61, 0.1, 38.0), goal, 10.0, math.pi)
    assert ok["success"] and ok["pos_err_m"] == pytest.approx(0.01)
    assert ok["yaw_err_rad"] == pytest.approx(math.radians(2.0), abs=1e-6)
    assert bench.score(start, pose(0.61, 0.1, 38.0 + 180.0), goal, 10.0, math.pi)["success"]  # box: mod pi
    assert not bench.score(start, pose(0.61, 0.1, 38.0 + 180.0), goal, 10.0, 2 * math.pi)["success"]  # mesh
    assert not bench.score(start, pose(0.61, 0.1, 55.0), goal, 10.0, math.pi)["success"]  # 15 deg off
    assert not bench.score(start, pose(0.63, 0.1, 40.0), goal, 10.0, math.pi)["success"]  # 3 cm off
    round_ = bench.score(start, pose(0.6, 0.1, 120.0), goal, 10.0, math.inf)  # a cylinder: no yaw to judge
    assert round_["success"] and round_["yaw_err_rad"] is None
    no_yaw = bench.score(start, pose(0.6, 0.1, 120.0), {"position": [0.6, 0.1]}, 10.0, math.pi)
    assert no_yaw["success"] and no_yaw["yaw_err_rad"] is None


def test_yaw_symmetry_of_scene_objects():
    assert bench.yaw_symmetry({"shape": "box", "size": [0.1, 0.05, 0.04]}) == pytest.approx(math.pi)
    assert bench.yaw_symmetry({"shape": "box", "size": [0.06, 0.058, 0.04]}) == pytest.approx(math.pi / 2)
    assert math.isinf(bench.yaw_symmetry({"shape": "cylinder", "size": [0.05, 0.04]}))
    assert bench.yaw_symmetry({"urdf": "random_urdfs/700/700.urdf"}) == pytest.approx(2 * math.pi)


def test_summary_and_plan_rate_scene():
    rows = {0: {"success": True, "pushes": 2, "pos_err_m": 0.01, "yaw_err_rad": None, "plan_s": [0.1, 0.2]},
            1: {"success": False, "pushes": 10, "pos_err_m": 0.05, "yaw_err_rad": 0.5, "plan_s": [0.3]}}
    s = bench._summary(rows)
    assert s["push_success"] == 0.5 and s["mean_pushes"] == 6.0 and s["episodes"] == 2
    assert s["pos_err_mm_median"] == pytest.approx(30.0) and s["plan_ms_median"] == pytest.approx(200.0)
    assert s["yaw_err_deg_median"] == pytest.approx(math.degrees(0.5))
    states, mask = bench.plan_rate_scene(8)
    assert states.shape == (8, 15) and mask.all()
    xy = states[:, 0:2]
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(8)
    assert d.min() >= 0.089  # apart: a real 8-object scene, not one object 8 times


def test_variants_build_their_pushers():
    from robot_wm.planning.baselines import RandomShootingPlanner, ScriptedPusher
    from robot_wm.planning.push_loop import ExecutablePushes, MPCPusher

    assert isinstance(bench.make_pusher("scripted_pusher", 0), ScriptedPusher)
    rs = bench.make_pusher("random_shooting", 0)
    assert isinstance(rs.planner, RandomShootingPlanner)
    assert rs.planner.config.samples == bench.REPLANS * bench.load_mpc_config().samples  # same model calls
    mean_only = bench.make_pusher("mpc_mean_only", 0)
    assert isinstance(mean_only, MPCPusher) and mean_only.planner.config.cost.kappa == 0.0
    assert isinstance(mean_only.planner.dynamics, ExecutablePushes)
    phys = bench.make_pusher("mpc_physics", 0)
    assert phys.planner.config.samples == bench.PHYSICS_SETTINGS["samples"]
    with pytest.raises(ValueError, match="unknown variant"):
        bench.make_pusher("teleport", 0)
