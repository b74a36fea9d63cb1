"""``bench generalization``: its scene generators make what they say, the quick run emits every field in
range, and the same seed gives the same numbers whatever the number of worker processes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.bench import generalization as gen
from robot_wm.bench.hard_scenes import TOUCH_GAP, footprint, polygon_gap, spawn_conflicts
from robot_wm.bench.perception import _true_on
from robot_wm.config import ConfigError
from robot_wm.config.object_sets import HELDOUT_URDF_IDS, random_urdf_index
from robot_wm.config.random_camera import VIEW_REGION_X, VIEW_REGION_Y
from robot_wm.sim import World

FLAT_FIELDS = ("scenes", "object_count_exact_rate", "overlap_f", "on_precision", "on_recall",
               "centroid_err_mm_median_noisy", "extent_err_mm_median_noisy", "verifier_precision_clean",
               "verifier_precision_noisy", "verifier_recall_noisy", "pick_success_rgbd", "pick_success_oracle",
               "pick_success_ratio_min")


def _first(kind: str, start: int = 0) -> gen.SceneSpec:
    return next(gen.scene_spec(0, i) for i in range(start, 400) if gen.scene_spec(0, i).kind == kind)


def _settled(spec: gen.SceneSpec, tmp_path: Path) -> tuple[dict, set]:
    """name -> settled (position, quaternion) and the true "on" pairs of the spec's scene."""
    with World(gen.build_scene(spec, tmp_path)) as world:
        return {n: world.object_pose(n) for n in world.objects}, _true_on(world)


# ------------------------------------------------------------------------------------------ scenes
def test_specs_cover_every_kind_and_cell_twice_in_a_full_run():
    specs = [gen.scene_spec(3, i) for i in range(gen.SCENES)]
    combos = {}
    for s in specs:
        combos[(s.kind, s.family, s.noise)] = combos.get((s.kind, s.family, s.noise), 0) + 1
    assert len(combos) == len(gen.KINDS) * len(gen.CELLS) and set(combos.values()) == {2}
    assert [s.seed for s in specs] == [3 * gen.SEED_STRIDE + i for i in range(gen.SCENES)]
    assert len({s.cell for s in specs[:gen.SCENES_QUICK]}) == 8


def test_layouts_are_deterministic_held_out_in_view_and_apart():
    for i in range(24):
        spec = gen.scene_spec(0, i)
        objs = gen.layout(spec.kind, spec.seed)
        assert objs == gen.layout(spec.kind, spec.seed)
        for o in objs:
            assert o["name"].rsplit("_", 1)[0] in (spec.kind, "heldout") or spec.kind == "tilted"
            if "urdf" in o:
                assert random_urdf_index(o["urdf"]) in HELDOUT_URDF_IDS and 0.5 <= o["scale"] <= 1.0
            poly = footprint(o)
            assert np.all((poly[:, 0] > VIEW_REGION_X[0]) & (poly[:, 0] < VIEW_REGION_X[1])
                          & (poly[:, 1] > VIEW_REGION_Y[0]) & (poly[:, 1] < VIEW_REGION_Y[1]))
        if spec.kind != "stack":  # nothing overlaps at spawn (a stack's boxes stand on each other)
            assert spawn_conflicts({"objects": objs}) == []
        else:
            for o in objs:
                if o["name"].startswith("stack"):
                    assert all(gen.BOX_SIDE[0] <= v <= gen.BOX_SIDE[1] for v in o["size"])


def test_flush_pair_touches_and_shares_its_colour(tmp_path):
    spec = _first("flush_pair")
    objs = gen.layout(spec.kind, spec.seed)
    pair = [o for o in objs if o["name"].startswith("flush_pair")][:2]
    assert pair[0]["color"] == pair[1]["color"]
    assert polygon_gap(footprint(pair[0]), footprint(pair[1])) == pytest.approx(TOUCH_GAP, abs=2e-4)
    poses, _ = _settled(spec, tmp_path)
    settled = [{**o, "position": poses[o["name"]].position.tolist(), "orientation": poses[o["name"]].quaternion.tolist()}
               for o in pair]
    gap = polygon_gap(footprint(settled[0]), footprint(settled[1]))
    assert -5e-4 < gap < 2.5e-3  # still flush after the scene settles


def test_stack_stacks(tmp_path):
    spec = _first("stack")
    objs = gen.layout(spec.kind, spec.seed)
    stack = [o["name"] for o in objs if o["name"].startswith("stack")]
    assert len(stack) >= 2
    _, on = _settled(spec, tmp_path)
    # each box of a stack rests on the box listed before it (a stack is listed bottom to top)
    tops = {a: b for a, b in on}
    bottoms = [n for n in stack if tops.get(n) == "table"]
    assert bottoms
    on_box = [n for n in stack if tops.get(n, "table") != "table"]
    assert len(on_box) == len(stack) - len(bottoms)
    for n in on_box:
        assert stack.index(tops[n]) == stack.index(n) - 1


def test_tilted_objects_are_tilted(tmp_path):
    spec = _first("tilted")
    poses, _ = _settled(spec, tmp_path)
    up = {n: abs(float(Rotation.from_quat(p.quaternion).apply([0.0, 0.0, 1.0])[2])) for n, p in poses.items()}
    tilts = [math.degrees(math.acos(min(1.0, c))) for n, c in up.items() if n.startswith("tilted")]
    assert tilts and max(tilts) > 15.0  # a lying cylinder is at 90 deg, a leaning slab 20-35 deg


def test_cameras_of_each_family(tmp_path):
    assert gen.scene_cameras("default", "none", 5, tmp_path) == ["front.yaml", "side.yaml"]
    noisy = gen.scene_cameras("default", "nguyen2012_dropout", 5, tmp_path)
    assert all((tmp_path / n).exists() for n in noisy) and len(noisy) == 2
    assert len(gen.scene_cameras("random_1", "nguyen2012", 5, tmp_path)) == 1
    counts = {len(gen.scene_cameras("random_2_3", "none", s, tmp_path)) for s in range(12)}
    assert counts == {2, 3}
    with pytest.raises(ValueError):
        gen.scene_cameras("ceiling", "none", 5, tmp_path)


def test_given_scene_files_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="--scenes"):
        gen.run([Path("x.yaml")], 0, True)


def test_an_object_no_camera_sees_is_not_counted_against_perception():
    """Count and "on" truth hold the objects some camera sees (>= MIN_MASK_PX pixels); the `_all` fields keep
    every object, so a scene with a slab hidden behind its box reads exact, and not exact over all."""
    from types import SimpleNamespace

    seg = np.zeros((8, 10), int)
    seg[:4] = 5  # body 5: 40 pixels; body 6: none (hidden)
    obs = SimpleNamespace(frames={"cam": SimpleNamespace(segmentation=seg)})
    assert gen.visible_objects(obs, {"a": 5, "b": 6}) == {"a"}
    seg_small = np.zeros((1, 2 * gen.MIN_MASK_PX), int)
    seg_small[0, : gen.MIN_MASK_PX - 1] = 5  # one pixel short of being seen
    assert gen.visible_objects(SimpleNamespace(frames={"c": SimpleNamespace(segmentation=seg_small)}), {"a": 5}) == set()
    ext = np.array([0.04, 0.04, 0.04])
    truth = {"boxes": {"a": (np.array([0.5, 0.0, 0.02]), ext), "b": (np.array([0.6, 0.0, 0.02]), ext)},
             "on": {("a", "table"), ("b", "table")}, "bodies": {"a": 5, "b": 6}, "visible": {"a"}}
    est = SimpleNamespace(id="obj_0", pose=SimpleNamespace(position=np.array([0.5, 0.0, 0.02])), extents=ext)
    graph = SimpleNamespace(objects=[], relations_of=lambda kind: [SimpleNamespace(subject="obj_0", object="table")])
    out = gen.score_perception(obs, truth, graph, [est])
    assert out["count_exact"] and not out["count_exact_all"]
    assert out["on"] == (1, 1, 1) and out["on_all"] == (1, 1, 2)
    fields = gen.perception_fields([out])
    assert fields["object_count_exact_rate"] == 1.0 and fields["object_count_exact_rate_all"] == 0.0
    assert fields["on_recall"] == 1.0 and fields["on_recall_all"] == 0.5 and fields["hidden_objects"] == 1


# ------------------------------------------------------------------------------------------ runs
def test_quick_run_emits_every_field_in_range():
    out = gen.run(None, 0, True, workers=1)
    for key in FLAT_FIELDS:
        assert out[key] is not None, key
    assert out["scenes"] == gen.SCENES_QUICK
    for key in FLAT_FIELDS[1:5] + FLAT_FIELDS[7:12]:
        assert 0.0 <= out[key] <= 1.0, key
    assert out["centroid_err_mm_median_noisy"] >= 0 and out["extent_err_mm_median_noisy"] >= 0
    assert out["pick_success_ratio_min"] >= 0
    assert out["verifier_grasps"] > 0 and out["pick_scenes"] == gen.PICK_SCENES_QUICK
    assert 0.0 <= out["object_count_exact_rate_all"] <= 1.0 and 0.0 <= out["on_recall_all"] <= 1.0
    assert out["hidden_objects"] >= 0
    assert set(out["by_family"]) == set(gen.FAMILIES) and set(out["by_kind"]) == set(gen.KINDS)
    assert set(out["by_noise"]) == set(gen.NOISES)
    assert sum(e["scenes"] for e in out["by_cell"].values()) == gen.SCENES_QUICK


def test_same_seed_same_numbers_whatever_the_workers():
    a = gen.run(None, 7, True, workers=1, n_scenes=3, verify_scenes=0, pick_scenes=0)
    b = gen.run(None, 7, True, workers=2, n_scenes=3, verify_scenes=0, pick_scenes=0)
    drop = ("wall_s", "workers", "load_average_1min", "perceive_s_median", "pick_s_median")
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert a["scenes"] == 3 and a["pick_success_rgbd"] is None
