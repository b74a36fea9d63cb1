"""The task planner's choices: pick what has a grasp, make room around what is hemmed in, push to goals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_wm.config import load_mpc_config, scene_from_dict
from robot_wm.geometry import Pose, yaw_quaternion
from robot_wm.interface import Observation
from robot_wm.model.world_model import WorldModel
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.dynamics import WorldModelDynamics
from robot_wm.planning.grasp_planner import GraspPlanner
from robot_wm.planning.mpc import MPCPlanner, blocked_starts
from robot_wm.planning.push_loop import ExecutablePushes
from robot_wm.planning.scene_state import estimate_state
from robot_wm.planning.task_planner import PlanningTaskPlanner, TaskPlannerSettings
from robot_wm.sim import KinematicModel

HOME_OBS = Observation({}, np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785]), 0.08, 0.0)


@pytest.fixture(scope="module")
def parts():
    model = WorldModel.load()
    kin = KinematicModel()
    yield model, kin
    kin.close()


def box(name: str, x: float, y: float, ext=(0.05, 0.05, 0.05), yaw: float = 0.0, fixed: bool = False) -> ObjectEstimate:
    return ObjectEstimate(name, Pose([x, y, ext[2] / 2], yaw_quaternion(yaw)), np.array(ext, float), fixed=fixed)


def planner(parts, task: dict, objects: list[dict], **settings) -> PlanningTaskPlanner:
    model, kin = parts
    data = {"name": "t", "cameras": [{"calibration": "front.yaml"}], "objects": objects, "task": task}
    cfg = scene_from_dict(data, "t.yaml").config
    mpc_cfg = load_mpc_config().model_copy(update={"samples": 300, "horizon": 3})
    mpc = MPCPlanner(ExecutablePushes(WorldModelDynamics(model)), mpc_cfg, seed=0)  # as default_task_planner
    return PlanningTaskPlanner(cfg, GraspPlanner(kin, model, None, seed=0), mpc, TaskPlannerSettings(**settings))


def obj(name: str, x: float, y: float, size=(0.05, 0.05, 0.05), **kw) -> dict:
    return {"name": name, "shape": "box", "size": list(size), "mass": 0.1, "position": [x, y, size[2] / 2], **kw}


def test_picks_the_highest_graspable_object(parts):
    tp = planner(parts, {}, [obj("a", 0.5, 0.1), obj("b", 0.6, -0.1, (0.04, 0.04, 0.07))])
    d = tp.decide([box("a", 0.5, 0.1), box("b", 0.6, -0.1, (0.04, 0.04, 0.07))], HOME_OBS)
    assert d.kind == "pick" and d.pick.target == "b"
    assert 0.0 <= d.predicted["p_success"] <= 1.0 and d.record["grasp_plans"]
    assert d.pick.open_width <= 0.08 and d.pick.grasp_pose.position[2] > 0.0


def test_hemmed_in_pair_gets_a_push_that_starts_outside_everything(parts):
    """Two 9 cm long blocks flush along their 5 cm sides: neither can be grasped (the long side is wider
    than the gripper, the short one blocked by the other block), so the planner pushes one to make room."""
    ext = (0.05, 0.09, 0.05)
    ests = [box("a", 0.445, 0.15, ext), box("b", 0.495, 0.15, ext)]
    tp = planner(parts, {}, [obj("a", 0.445, 0.15, ext), obj("b", 0.495, 0.15, ext)])
    d = tp.decide(ests, HOME_OBS)
    assert d.kind == "push", d.reason
    assert "make room" in d.reason and d.record["free_spot"] and d.record["mpc"]["model_calls"] > 0
    states = np.stack([estimate_state(e) for e in ests])
    slot = [e.id for e in ests].index(d.push.target)
    import torch

    action = torch.tensor([[0.0, *d.push.start, d.push.yaw, d.push.distance]], dtype=torch.float32)
    assert not blocked_starts(torch.from_numpy(states)[None], torch.tensor([slot]), action,
                              torch.ones(2, dtype=torch.bool), 0.0)
    assert d.push.target in d.predicted["end_xy_yaw"]


def test_making_room_never_pushes_what_is_already_placed(parts):
    """A push that makes room around a hemmed-in block treats the objects already in the place region as
    fixed obstacles: the MPC may not move them (a placed lying cylinder was once pushed out of the region
    by a push meant for a block against a wall)."""
    ext = (0.05, 0.09, 0.05)
    tp = planner(parts, {}, [obj("a", 0.445, 0.15, ext), obj("b", 0.495, 0.15, ext), obj("c", 0.45, -0.35)])
    region = tp.task.place_region
    ests = [box("a", 0.445, 0.15, ext), box("b", 0.495, 0.15, ext), box("c", *region.center[:2])]
    seen = []
    plan = tp.mpc.plan

    def spy(states, mask=None, goals=(), shift=True, fixed=None):
        seen.append(np.asarray(fixed, bool).copy())
        return plan(states, mask, goals, shift, fixed)

    tp.mpc.plan = spy
    d = tp.decide(ests, HOME_OBS)
    assert d.kind == "push" and "make room" in d.reason, d.reason
    assert d.push.target in ("a", "b")
    ids = [e.id for e in ests]
    assert seen and all(f[ids.index("c")] and not f[ids.index("a")] and not f[ids.index("b")] for f in seen)
    assert np.allclose(d.predicted["end_xy_yaw"]["c"][:2], region.center[:2], atol=1e-4)


def test_fixture_is_never_picked(parts):
    wall = {"name": "wall", "shape": "box", "size": [0.02, 0.3, 0.08], "fixed": True, "position": [0.72, 0.1, 0.04]}
    tp = planner(parts, {}, [wall, obj("a", 0.5, -0.1)])
    ests = [box("w", 0.72, 0.1, (0.02, 0.3, 0.08)), box("a", 0.5, -0.1)]  # perception does not know the wall is fixed
    d = tp.decide(ests, HOME_OBS)
    assert d.kind == "pick" and d.pick.target == "a"


def test_push_to_goal_pushes_then_stops_at_the_goal(parts):
    wide = (0.12, 0.09, 0.05)
    task = {"kind": "push_to_goal", "goals": [{"object": "w", "position": [0.56, 0.06]}]}
    tp = planner(parts, task, [obj("w", 0.52, -0.02, wide)])
    d = tp.decide([box("o7", 0.52, -0.02, wide)], HOME_OBS)
    assert d.kind == "push" and d.push.target == "o7"
    end = d.predicted["end_xy_yaw"]["o7"]
    assert np.hypot(end[0] - 0.56, end[1] - 0.06) < np.hypot(0.52 - 0.56, -0.02 - 0.06)  # predicted closer
    note = tp.outcome(d, [box("o7", 0.9, 0.5, wide)], True)  # nowhere near the prediction
    assert note["surprise"] and note["prediction_error_mm"] > 100
    d2 = tp.decide([box("o7", 0.56, 0.06, wide)], HOME_OBS)
    assert d2.kind == "done" and "reached" in d2.reason


def test_push_to_goal_pushes_further_after_a_push_that_moved_nothing(parts):
    wide = (0.12, 0.09, 0.05)
    task = {"kind": "push_to_goal", "goals": [{"object": "w", "position": [0.6, 0.06]}]}
    tp = planner(parts, task, [obj("w", 0.52, -0.02, wide)])
    ests = [box("o7", 0.52, -0.02, wide)]
    d = tp.decide(ests, HOME_OBS)
    assert d.kind == "push"
    tp.outcome(d, ests, True)  # it ran, but the object is where it was
    d2 = tp.decide(ests, HOME_OBS)
    assert d2.kind == "push" and tp._reach == {"o7": pytest.approx(0.02)}
    first = np.r_[d.push.start[:2], d.push.yaw]
    again = np.r_[d2.push.start[:2], d2.push.yaw]
    assert np.linalg.norm(again[:2] - first[:2]) > 0.01 or abs(np.remainder(again[2] - first[2] + np.pi, 2 * np.pi) - np.pi) > 0.26


def still_planner(parts, goal_xy, yaw_deg: float, size) -> PlanningTaskPlanner:
    """A push_to_goal planner for one box "w" at (0.52, -0.02) whose MPC sees nothing ever move."""
    from robot_wm.planning.dynamics import NoMotionDynamics

    model, kin = parts
    task = {"kind": "push_to_goal", "goals": [{"object": "w", "position": list(goal_xy), "yaw_deg": yaw_deg}]}
    data = {"name": "t", "cameras": [{"calibration": "front.yaml"}], "objects": [obj("w", 0.52, -0.02, size)],
            "task": task}
    mpc = MPCPlanner(NoMotionDynamics(), load_mpc_config().model_copy(update={"samples": 100, "horizon": 2}), seed=0)
    return PlanningTaskPlanner(scene_from_dict(data, "t.yaml").config, GraspPlanner(kin, model, None, seed=0), mpc)


def test_push_to_goal_finishes_a_turned_objects_position_with_a_straight_push(parts):
    wide = (0.12, 0.07, 0.05)
    tp = still_planner(parts, [0.545, -0.02], 0.0, wide)
    d = tp.decide([box("o7", 0.52, -0.02, wide)], HOME_OBS)  # yaw met, 2.5 cm short along x
    assert d.kind == "push" and d.record.get("finish"), d.reason
    assert abs(d.push.yaw) < 1e-6 and d.push.tilt == 0.0


def test_push_to_goal_turns_an_object_at_its_goal_position(parts):
    """At its goal position, 40 degrees off its goal yaw: the turning push (a tilted pad) is made (the MPC
    is not asked: the model cannot predict turns); once the yaw is met the planner is done, and while the
    position is off (and no turning push heads towards it) it does not turn blindly (here nothing ever
    moves, so no push helps)."""
    wide = (0.12, 0.07, 0.05)
    tp = still_planner(parts, [0.52, -0.02], 40.0, wide)
    d = tp.decide([box("o7", 0.52, -0.02, wide)], HOME_OBS)
    assert d.kind == "push" and d.record.get("turn") and d.push.target == "o7", d.reason
    assert abs(d.push.tilt) > 0.3
    assert tp.decide([box("o7", 0.52, -0.02, wide, yaw=np.radians(38.0))], HOME_OBS).kind == "done"
    tp.reset()
    # 7 cm off its start, so ~5 cm off its goal (the offset turns with the goal's yaw), the goal not along a
    # turning push's heading: no turn, and no push helps
    d = tp.decide([box("o7", 0.52, -0.09, wide)], HOME_OBS)
    assert d.kind == "done" and "no push" in d.reason


def test_budgets_end_the_run(parts):
    tp = planner(parts, {}, [obj("a", 0.5, 0.1)], max_attempts_per_object=1)
    assert tp.decide([box("a", 0.5, 0.1)], HOME_OBS).kind == "pick"
    d = tp.decide([box("a", 0.5, 0.1)], HOME_OBS)  # the pick failed: the object is still there
    assert d.kind == "done" and "attempts" in d.reason
    tp = planner(parts, {}, [obj("a", 0.5, 0.1)], max_decisions=1)
    tp.decide([box("a", 0.5, 0.1)], HOME_OBS)
    assert "decision budget" in tp.decide([box("a", 0.5, 0.1)], HOME_OBS).reason


def test_the_pick_budget_follows_the_object_not_its_tracker_id(parts):
    """An object that fell back after a failed pick and is re-detected under a new tracker id (a little moved)
    keeps the attempts it used; a different object (other size) under a new id gets its own."""
    tp = planner(parts, {}, [obj("a", 0.5, 0.1)], max_attempts_per_object=2)
    assert tp.decide([box("t1", 0.5, 0.1)], HOME_OBS).kind == "pick"
    assert tp.decide([box("t2", 0.52, 0.09)], HOME_OBS).kind == "pick"  # same object, new id: 2nd attempt
    d = tp.decide([box("t3", 0.51, 0.11)], HOME_OBS)
    assert d.kind == "done" and "out of attempts" in d.reason and "t3" in d.reason
    other = tp.decide([box("t3", 0.51, 0.11), box("t4", 0.5, -0.12, ext=(0.03, 0.06, 0.05))], HOME_OBS)
    assert other.kind == "pick" and other.pick.target == "t4"


def test_object_too_wide_both_ways_gets_one_split_probe(parts):
    """Perception may see two flush blocks as one 10 x 9 cm object: one push across one end tells."""
    ext = (0.10, 0.09, 0.05)
    tp = planner(parts, {}, [obj("a", 0.47, 0.15, ext)])
    d = tp.decide([box("m", 0.47, 0.15, ext)], HOME_OBS)
    assert d.kind == "push" and d.record.get("probe") and d.push.target == "m"
    assert abs(abs(np.cos(d.push.yaw)) - 0.0) < 1e-3  # across the long (x) side
    assert abs(d.push.start[0] - 0.47) > 0.015  # at one end, not through the middle
    assert tp.decide([box("m", 0.47, 0.15, ext)], HOME_OBS).kind == "done"  # one probe per object


def test_singulation_episode_end_to_end(repo, tmp_path):
    """sim_scenes/singulate.yaml with rgbd perception and the default planner: blocks a top-down grasp
    cannot take as they lie get pushes (the block against the wall dragged away from it, a probe across the
    pair seen as one), objects are picked — the dragged block among them — and the run ends by itself with a
    reason within the decision cap."""
    import json

    from robot_wm.config import load_scene
    from robot_wm.control.demo import run_demo

    plan = tmp_path / "plan.jsonl"
    report = run_demo(load_scene(repo / "sim_scenes/singulate.yaml"), "rgbd", controller="planned", plan_path=plan)
    assert report["pushes"] >= 1 and report["picks"] >= 1
    assert report["placed"] >= 1
    assert report["finish_reason"] and report["decisions"] <= 3 * 4 + 10
    decisions = [json.loads(line) for line in plan.read_text().splitlines() if line.strip()]
    assert any("drag" in (d.get("record") or {}) for d in decisions if d["kind"] == "push")
    assert report["per_object"]["by_wall"]["placed"]


@pytest.mark.parametrize("cameras, single", [
    ([{"calibration": "front.yaml"}], True),
    ([{"calibration": "front.yaml"}, {"calibration": "side.yaml"}], False),
    ([{"calibration": "front.yaml"}, {"calibration": "hand/wrist.yaml", "mount": "hand"}], False),
])
def test_default_planner_grasps_from_one_view_when_the_scene_has_one_fixed_camera(parts, cameras, single):
    from robot_wm.config import REPO_SCENES_DIR
    from robot_wm.planning.task_planner import default_task_planner

    _, kin = parts
    data = {"name": "t", "cameras": cameras, "objects": [obj("a", 0.5, 0.1)]}
    tp = default_task_planner(scene_from_dict(data, "t.yaml", REPO_SCENES_DIR), kin, 0)
    cam = tp.grasps.single_view_camera
    assert (cam is not None) == single
    if single:  # the front camera's optical centre
        assert np.allclose(cam, tp.grasps.cameras[0]) and cam[0] > 0.8


def test_a_block_pressed_against_a_wall_is_dragged_away_from_it(parts):
    """A 9 cm block (wider than the gripper along the wall) 1 mm from a fixed wall along its long side: no
    grasp fits (its 5 cm side is blocked by the wall) and no push can start between the two, so the planner
    drags it — the closed fingertips pressed on its top, moved straight away from the wall."""
    wall = {"name": "wall", "shape": "box", "size": [0.02, 0.3, 0.08], "fixed": True, "position": [0.72, 0.1, 0.04]}
    ext = (0.05, 0.09, 0.05)
    tp = planner(parts, {}, [wall, obj("by_wall", 0.684, 0.05, ext)])
    ests = [box("w", 0.72, 0.1, (0.02, 0.3, 0.08)), box("b", 0.684, 0.05, ext)]
    d = tp.decide(ests, HOME_OBS)
    assert d.kind == "push" and "drag b away from w" in d.reason, d.reason
    assert d.push.target == "b" and d.record["drag"]["fixture"] == "w"
    assert abs(math.remainder(d.push.yaw - math.pi, 2 * math.pi)) < 1e-6  # away from the wall (at +x)
    assert d.push.start[2] > 0.05 - 0.01  # on the block's top, not beside it
    end = d.predicted["end_xy_yaw"]["b"]
    assert end[0] == pytest.approx(0.684 - d.push.distance) and end[1] == pytest.approx(0.05)


def test_a_low_box_with_room_for_the_fingers_but_not_the_hand_is_dragged_away_from_an_oblique_wall(parts):
    """A 2 cm low box 3.9 cm from a 7.4 cm wall at 45 degrees to its faces: a finger's gap all round, so nothing
    is hemmed in, yet every grasp puts the hand across the wall. The planner drags it until one would clear."""
    yaw = math.radians(45)
    normal = np.array([-math.sin(yaw), math.cos(yaw)])
    wall_xy = np.array([0.45, 0.10]) + 0.09 * normal
    wall = {"name": "wall", "shape": "box", "size": [0.25, 0.02, 0.074], "fixed": True,
            "position": [*wall_xy, 0.037], "orientation": list(yaw_quaternion(yaw))}
    ext = (0.06, 0.055, 0.02)
    tp = planner(parts, {}, [wall, obj("low", 0.45, 0.10, ext)])
    ests = [box("w", *wall_xy, (0.25, 0.02, 0.074), yaw, fixed=True), box("b", 0.45, 0.10, ext)]
    d = tp.decide(ests, HOME_OBS)
    assert d.kind == "push" and "drag b away from w" in d.reason, d.reason
    assert np.dot([math.cos(d.push.yaw), math.sin(d.push.yaw)], normal) < -0.8  # away from the wall


def test_an_object_on_a_trays_floor_near_its_middle_is_not_the_tray(parts):
    """A URDF fixture's footprint is a guessed square around its origin; an object perceived resting on the
    tray (its support is the perceived container) is the tray's content there, not part of the tray."""
    tray = {"name": "tray", "urdf": "tray/traybox.urdf", "scale": 0.5, "fixed": True, "position": [0.5, 0.1, 0.0]}
    tp = planner(parts, {}, [tray, obj("a", 0.5, 0.12)])
    container = box("container_0", 0.5, 0.1, (0.3, 0.25, 0.02), fixed=True)
    inside = box("obj_1", 0.51, 0.11, (0.04, 0.04, 0.04))
    inside.extra["support"] = "container_0"
    unsupported = box("obj_2", 0.49, 0.09, (0.04, 0.04, 0.04))  # a piece of the tray itself, or nothing known
    movable, fixed = tp._split([container, inside, unsupported])
    assert [e.id for e in movable] == ["obj_1"] and {e.id for e in fixed} == {"container_0", "obj_2"}
