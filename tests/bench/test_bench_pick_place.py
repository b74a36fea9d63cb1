"""The hard pick-and-place suite's scene generator and field assembly (no bench runs here)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from robot_wm.bench.hard_scenes import (
    CLUSTER_GAP,
    HARD_KINDS,
    MAX_NARROW_SIDE,
    footprint,
    hard_scene,
    in_view,
    narrow_side,
    object_kind,
    polygon_gap,
    spawn_conflicts,
)
from robot_wm.bench.pick_place import failure_stage, hard_fields, hard_seeds, scene_summary
from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
from robot_wm.config.object_sets import HELDOUT_URDF_IDS, random_urdf_index
from robot_wm.config.workspace import in_reach, on_table

SEEDS = range(20)


@pytest.fixture(scope="module")
def scenes() -> list[dict]:
    return [hard_scene(s) for s in SEEDS]


def _movable(mapping: dict) -> list[dict]:
    return [o for o in mapping["objects"] if not o.get("fixed")]


# ------------------------------------------------------------------------------------------ generator
def test_scenes_are_contract_valid_with_every_kind(scenes):
    seen = set()
    for m in scenes:
        sc = scene_from_dict(m, m["name"], REPO_SCENES_DIR)
        assert sc.config.task.kind == "pick_place"
        movable = _movable(m)
        assert 3 <= len(movable) <= 5
        kinds = [object_kind(o["name"]) for o in movable]
        assert None not in kinds
        seen.update(kinds)
        for o in m["objects"]:
            if o.get("fixed"):
                assert object_kind(o["name"]) is None
    assert seen == set(HARD_KINDS)


def test_objects_held_out_placeable_in_reach_on_table_and_in_view(scenes):
    for m in scenes:
        for o in _movable(m):
            poly = footprint(o)
            assert all(in_reach(x, y) and on_table(x, y) for x, y in poly), o["name"]
            assert narrow_side(poly) <= MAX_NARROW_SIDE + 1e-9, o["name"]
            assert in_view(o), o["name"]
            assert 0.05 <= o["mass"] <= 0.5 and 0.3 <= o["friction"] <= 1.0
            if "urdf" in o:
                assert random_urdf_index(o["urdf"]) in HELDOUT_URDF_IDS
                assert 0.5 <= o["scale"] <= 1.0
            if object_kind(o["name"]) == "mesh_full_scale":
                assert o["scale"] == 1.0
            if o.get("shape") == "box":  # outside the training boxes (3-8 cm a side) one way or another
                assert min(o["size"]) < 0.03 or max(o["size"]) > 0.08


def test_no_overlaps_at_spawn_and_groups_apart(scenes):
    for m in scenes:
        assert spawn_conflicts(m) == [], m["name"]
        objs = m["objects"]
        for i, a in enumerate(objs):
            for b in objs[i + 1:]:
                ka, kb = object_kind(a["name"]), object_kind(b["name"])
                if ka is not None and kb is not None and ka != kb:
                    assert polygon_gap(footprint(a), footprint(b)) >= CLUSTER_GAP - 1e-6


def test_flush_groups_and_edge_objects_touch(scenes):
    """Group members stand within 2 mm of a neighbour; a wall's object within 2 mm of the wall."""
    checked = set()
    for m in scenes:
        by_kind: dict[str, list[dict]] = {}
        for o in m["objects"]:
            by_kind.setdefault(object_kind(o["name"]) or o["name"], []).append(o)
        for o in by_kind.get("flush_group", []):
            gaps = [polygon_gap(footprint(o), footprint(p)) for p in by_kind["flush_group"] if p is not o]
            assert 0 < min(gaps) < 0.002
            checked.add("flush_group")
        if "fixture_wall" in by_kind:
            wall, obj = by_kind["fixture_wall"][0], by_kind["wall"][0]
            assert 0 < polygon_gap(footprint(wall), footprint(obj)) < 0.002
            checked.add("wall")
    assert checked == {"flush_group", "wall"}


def test_generator_is_deterministic():
    assert hard_scene(7) == hard_scene(7)
    assert hard_scene(7) != hard_scene(8)
    assert hard_seeds(0, 3) == [0, 1, 2] and hard_seeds(1, 2) == [1000, 1001]


def test_spawn_conflicts_finds_an_overlap(scenes):
    m = copy.deepcopy(scenes[0])
    a, b = _movable(m)[:2]
    b["position"] = list(a["position"])
    assert spawn_conflicts(m)


def test_polygon_gap():
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    assert polygon_gap(sq, sq + [1.5, 0]) == pytest.approx(0.5)
    assert polygon_gap(sq, sq + [2, 2]) == pytest.approx(math.sqrt(2))
    assert polygon_gap(sq, sq + [0.5, 0.5]) <= 0
    assert narrow_side(np.array([[0, 0], [3, 0], [3, 1], [0, 1]], float)) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ fields
def _report(scene: str, controller: str, per_object: dict[str, bool], attempts=(), final=None) -> dict:
    return {"scene": scene, "controller": controller, "objects": len(per_object),
            "placed": sum(per_object.values()), "per_object": {n: {"placed": v} for n, v in per_object.items()},
            "attempts": list(attempts), "finish_reason": "x",
            "final_poses": {n: [list(p) + [0.02], [0, 0, 0, 1]] for n, p in (final or {}).items()}}


def _decision(kind: str, failure: str = "", ms: float = 100.0, target: str | None = None, plans=(),
              seen=None) -> dict:
    return {"kind": kind, "executed": None if kind == "done" else failure == "", "failure": failure,
            "decision_ms": ms, "target": target, "record": {"grasp_plans": list(plans)}, "seen": seen or {}}


def test_hard_fields_from_made_up_reports():
    # scene A: two flush blocks placed (the first pick lifted flush_group_1 although run_demo's nearest box
    # said flush_group_0), the wall object slipped on its only pick; one push
    a_report = _report("hard_s0", "planned", {"flush_group_0": True, "flush_group_1": True, "wall_0": False}, [
        {"target": "o1", "target_true": "flush_group_0", "held": "flush_group_1"},
        {"target": "o2", "target_true": "wall_0", "held": None},
        {"target": "o0", "target_true": "flush_group_0", "held": "flush_group_0"}])
    plan = {"target": "o1", "shadow_tests": 2, "chosen": 0}
    a_dec = [_decision("push", ms=300.0, target="o2"), _decision("pick", ms=100.0, plans=[plan]),
             _decision("pick", "nothing in hand after lift", ms=200.0, plans=[{"shadow_tests": 1}]),
             _decision("pick", ms=400.0, plans=[{"shadow_tests": 1}]), _decision("done", ms=5.0)]
    # scene B: a wide box picked on the second try (the first dropped it while carrying), a tilted slab
    # never picked: perception saw it and found no candidate
    seen = {"t": {"xy_yaw": [0.5, 0.1, 0.0], "extents": [0.06, 0.02, 0.05], "fixed": False}}
    b_report = _report("hard_s1", "planned", {"wide_0": True, "tilted_0": False}, [
        {"target": "w", "target_true": "wide_0", "held": "wide_0"},
        {"target": "w", "target_true": "wide_0", "held": "wide_0"}], final={"wide_0": (0.4, -0.4), "tilted_0": (0.5, 0.1)})
    b_dec = [_decision("pick", "dropped while carrying", ms=50.0), _decision("pick", ms=60.0),
             _decision("done", ms=5.0, seen=seen, plans=[{"target": "t", "shadow_tests": 0, "chosen": None}])]
    mpc = [scene_summary(a_report, a_dec) | {"scene_seed": 0}, scene_summary(b_report, b_dec) | {"scene_seed": 1}]
    scripted = [scene_summary(_report("hard_s0", "scripted", {"flush_group_0": False, "flush_group_1": True,
                                                              "wall_0": False}), []) | {"scene_seed": 0},
                scene_summary(_report("hard_s1", "scripted", {"wide_0": False, "tilted_0": True}), [])
                | {"scene_seed": 1}]
    assert mpc[0]["failures"] == {"wall_0": "grasp_slipped"}
    assert mpc[1]["failures"] == {"tilted_0": "no_candidate"}

    out = hard_fields({"rank_verify": mpc, "scripted": scripted, "verify_only": [], "rank_only": []}, [0, 1])
    assert out["hard_scenes"] == 2 and out["hard_objects"] == 5
    assert out["hard_placed_mpc"] == pytest.approx(3 / 5)
    assert out["hard_placed_scripted"] == pytest.approx(2 / 5)
    # first pick held: flush_group_1, flush_group_0 (A); wide_0's first pick held it at the lift (B)
    assert out["hard_first_attempt_success"] == pytest.approx(3 / 3)
    assert out["hard_grasps_per_placed"] == pytest.approx(5 / 3)
    assert out["hard_decision_ms_median"] == pytest.approx(150.0)  # of 300, 100, 200, 400, 50, 60
    assert out["hard_pushes_per_scene"] == pytest.approx(0.5)
    assert out["hard_drags_per_scene"] == pytest.approx(0.0)
    dragged = scene_summary(a_report, [a_dec[0] | {"record": {"grasp_plans": [], "drag": {"fixture": "wall"}}},
                                       *a_dec[1:]])
    assert dragged["drags"] == 1 and dragged["pushes"] == 1 and mpc[0]["drags"] == 0
    assert out["hard_scenes_fully_cleared_mpc"] == 0 and out["hard_scenes_fully_cleared_scripted"] == 0
    kinds = out["hard_by_kind"]
    assert kinds["flush_group"] == {"objects": 2, "placed_mpc": 1.0, "placed_scripted": 0.5}
    assert kinds["wall"] == {"objects": 1, "placed_mpc": 0.0, "placed_scripted": 0.0}
    assert kinds["tilted"] == {"objects": 1, "placed_mpc": 0.0, "placed_scripted": 1.0}
    assert kinds["tray"] == {"objects": 0, "placed_mpc": None, "placed_scripted": None}
    assert out["hard_failures_mpc"] == {"grasp_slipped": 1, "no_candidate": 1}
    # executed grasps: 3 (A) + 2 (B); held through lift and carry: 2 (A) + 1 (B)
    assert out["grasp_precision_rank_verify"] == pytest.approx(3 / 5)
    assert out["grasp_executed_rank_verify"] == 5
    assert out["shadow_tests_per_pick"] == pytest.approx(4 / 5)
    assert out["grasp_precision_verify_only"] is None and out["grasp_scenes"] == 2
    # the grasp-choice subset: scene 0 only
    sub = hard_fields({"rank_verify": mpc, "scripted": scripted}, [0])
    assert sub["grasp_precision_rank_verify"] == pytest.approx(2 / 3)
    assert sub["hard_placed_mpc"] == pytest.approx(3 / 5)


def test_failure_stage_perception():
    seen = {"m": {"xy_yaw": [0.5, 0.0, 0.0], "extents": [0.1, 0.05, 0.05], "fixed": False},
            "tray": {"xy_yaw": [0.6, 0.2, 0.0], "extents": [0.3, 0.3, 0.07], "fixed": True}}
    report = _report("s", "planned", {"a": False, "b": False, "c": False, "d": False},
                     final={"a": (0.48, 0.0), "b": (0.52, 0.0), "c": (0.9, 0.9), "d": (0.6, 0.25)})
    decisions = [_decision("done", seen=seen)]
    assert failure_stage("a", report, decisions) == "perception_merged"
    seen_b = {"m": seen["m"] | {"xy_yaw": [0.56, 0.0, 0.0]}}  # holds b only
    room = _decision("push", target="other") | {"record": {"target": "m"}}  # a push made to free m
    assert failure_stage("b", report, [room, _decision("done", seen=seen_b)]) == "push_did_not_help"
    assert failure_stage("b", report, [_decision("done", seen=seen_b, plans=[{"target": "m", "shadow_tests": 2}])]) \
        == "verification_refused"
    assert failure_stage("c", report, decisions) == "unseen"
    assert failure_stage("d", report, decisions) == "seen_as_fixture"


def test_grasp_choice_variants():
    from robot_wm.bench.pick_place import variant_planner
    from robot_wm.sim import KinematicModel

    m = hard_scene(0)
    scene, kin = scene_from_dict(m, m["name"], REPO_SCENES_DIR), KinematicModel()
    both = variant_planner(scene, kin, 0, "rank_verify").grasps
    assert both.model is not None and both.verifier is not None
    verify = variant_planner(scene, kin, 0, "verify_only").grasps
    assert verify.model is None and verify.verifier is not None
    rank = variant_planner(scene, kin, 0, "rank_only").grasps
    assert rank.model is not None and rank.verifier is None
    with pytest.raises(ValueError):
        variant_planner(scene, kin, 0, "oracle")
