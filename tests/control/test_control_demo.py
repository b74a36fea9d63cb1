"""The demo around the controllers: the planned controller by default (plan.jsonl, the report's decision
summary), a clear error without a task planner, goals judged from the true state, and the GIF's overlays."""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest

from robot_wm.cli.main import main
from robot_wm.config import load_scene
from robot_wm.control.demo import (
    GOAL_COLOR,
    PLAN_COLOR,
    REGION_COLOR,
    PlannerUnavailable,
    goal_results,
    imagined,
    run_demo,
    scene_shapes,
)
from robot_wm.geometry import Pose, yaw_quaternion
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.box_grasps import top_down_grasps
from robot_wm.planning.decision import Decision, PickAction, PushAction
from robot_wm.sim import World
from robot_wm.sim.push import set_object_pose


class BoxPicker:
    """A TaskPlanner test double: the highest object outside the place region, with its first box grasp;
    "done" when there is none."""

    def __init__(self, region):
        self.region = region
        self.outcomes = []

    def decide(self, estimates, obs):
        todo = [e for e in estimates if not e.fixed and not self.region.contains(e.pose.position, margin=-0.005)]
        if not todo:
            return Decision("done", reason="every object placed")
        est = max(todo, key=lambda e: e.top_z)
        g = top_down_grasps(est)[0]
        return Decision("pick", pick=PickAction(est.id, g.pose, g.width, g.contact_width), reason="highest first",
                        predicted={"p_success": 0.9, "shadow": {"success_rate": 1.0, "passed": True}},
                        record={"candidates": 1, "grasp_pose": g.pose})

    def outcome(self, decision, estimates, succeeded):
        self.outcomes.append(succeeded)
        return {"held_and_placed": succeeded}


def test_cli_demo_runs_the_planned_controller_by_default_and_logs_each_decision(tmp_path, monkeypatch, capsys):
    made = []
    fake = types.ModuleType("robot_wm.planning.task_planner")

    def default_task_planner(scene, kin, seed, settings=None):
        made.append(BoxPicker(scene.config.task.place_region))
        return made[-1]

    fake.default_task_planner = default_task_planner
    monkeypatch.setitem(sys.modules, "robot_wm.planning.task_planner", fake)
    code = main(["demo", "--perception", "oracle", "--out", str(tmp_path), "--no-compare", "--no-video"])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["controller"] == "planned" and report["placed"] == report["objects"] == 2
    lines = (tmp_path / "plan.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert report["decisions"] == len(entries) == 4  # pick, pick, done, and done again after the look from home
    assert [e["kind"] for e in entries] == ["pick", "pick", "done", "done"]
    assert [e["outcome"] for e in entries[:2]] == [{"held_and_placed": True}] * 2 and made[0].outcomes == [True, True]
    assert entries[0]["predicted"]["p_success"] == 0.9 and entries[0]["record"]["candidates"] == 1
    assert all(e["decision_ms"] > 0 for e in entries)
    assert report["picks"] == 2 and report["pushes"] == 0
    assert report["first_attempt_success"] == 1.0 and report["grasps_per_placed"] == 1.0
    assert report["decision_ms_median"] > 0 and report["finish_reason"] == "every object placed"
    assert sorted(a["held"] for a in report["attempts"]) == ["blue_block", "red_block"]
    assert "4 decisions (2 picks, 0 pushes)" in capsys.readouterr().err


def test_planned_without_a_task_planner_is_a_clear_error(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "robot_wm.planning.task_planner", None)  # import fails
    with pytest.raises(PlannerUnavailable, match="controller 'scripted'"):
        run_demo(load_scene(repo / "sim_scenes/two_blocks.yaml"), "oracle")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --controller planned:") and "\n" not in err
    with pytest.raises(ValueError, match="unknown controller"):
        run_demo(load_scene(repo / "sim_scenes/two_blocks.yaml"), "oracle", controller="telepathy")


def test_goals_are_judged_from_the_true_pose_modulo_the_box_symmetry(repo):
    with World(load_scene(repo / "sim_scenes/push_to_goal.yaml")) as world:
        goal = world.scene.config.task.goals[0]
        before = goal_results(world)["wide_box"]
        assert not before["reached"]
        assert before["position_error_m"] == pytest.approx(math.hypot(0.56 - 0.52, 0.10 + 0.02), abs=2e-3)
        assert before["yaw_error_deg"] == pytest.approx(30.0, abs=1.0)
        z = world.object_pose("wide_box").position[2]
        set_object_pose(world, "wide_box", Pose([0.565, 0.10, z], yaw_quaternion(goal.yaw + math.pi + 0.05)))
        after = goal_results(world)["wide_box"]  # a half turn looks the same for a box
        assert after["reached"] and after["yaw_error_deg"] == pytest.approx(math.degrees(0.05), abs=1e-6)
        set_object_pose(world, "wide_box", Pose([0.56, 0.10, z], yaw_quaternion(goal.yaw + math.pi / 2)))
        assert not goal_results(world)["wide_box"]["reached"]  # a quarter turn does not


def test_overlays_show_the_region_goals_and_what_the_planner_imagined(repo):
    pick_scene = load_scene(repo / "sim_scenes/two_blocks.yaml").config
    assert [s.color for s in scene_shapes(pick_scene)] == [REGION_COLOR]
    push_shapes = scene_shapes(load_scene(repo / "sim_scenes/push_to_goal.yaml").config)
    assert REGION_COLOR not in [s.color for s in push_shapes] and GOAL_COLOR in [s.color for s in push_shapes]

    est = ObjectEstimate("t1", Pose([0.5, 0.0, 0.025], [0, 0, 0, 1]), np.array([0.12, 0.09, 0.05]))
    ctrl = types.SimpleNamespace(current=None, estimates=[est])
    assert imagined(ctrl) is None  # nothing under way
    ctrl.current = Decision("push", push=PushAction("t1", np.array([0.43, 0.0, 0.02]), 0.0, 0.05),
                            predicted={"end_xy_yaw": {"t1": [0.55, 0.0, 0.3]}, "p_success": 0.8})
    ann = imagined(ctrl)
    predicted = [s for s in ann.inset if s.color == PLAN_COLOR]
    assert len(predicted) == 1 and predicted[0].closed
    np.testing.assert_allclose(predicted[0].points[:, :2].mean(0), [0.55, 0.0], atol=1e-9)
    assert ann.inset_text == ["push t1 5.0 cm", "P(success) 0.80"]
    pick = PickAction("t1", Pose([0.5, 0.0, 0.03], [1, 0, 0, 0]), 0.07, 0.04)
    ctrl.current = Decision("pick", pick=pick, record={"shadow": [{"success_rate": 0.33, "passed": False},
                                                                  {"success_rate": 0.67, "passed": True}]})
    assert imagined(ctrl).inset_text == ["pick t1", "shadow 0.67 passed"]
