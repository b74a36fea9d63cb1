"""The hard suite of ``bench grasping`` (issue 18): fields and ranges of the quick suite, seeding, the
objects it draws, and the judge's behaviour on two objects whose outcome for a trivial grasp is clear."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_wm.bench import grasping_hard as hard
from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
from robot_wm.config.random_scene import scene_mapping

FIELDS = ("hard_objects", "hard_objects_with_candidate", "hard_top1_success", "hard_top5_success",
          "hard_trivial_top1", "hard_box_topdown_top1", "hard_multiview_top1", "hard_top1_calibration_ece",
          "hard_plan_ms_median")
RATES = FIELDS[1:7]


@pytest.fixture(scope="module")
def quick() -> dict:
    return hard.hard_fields(0, quick=True, workers=2)


def test_quick_suite_emits_every_field_in_range(quick: dict) -> None:
    for f in FIELDS:
        assert f in quick, f
    assert quick["hard_objects"] == hard.OBJECTS_QUICK
    for f in RATES:
        assert 0.0 <= quick[f] <= 1.0, (f, quick[f])
    assert quick["hard_top5_success"] >= quick["hard_top1_success"]
    assert 0.0 <= quick["hard_top1_calibration_ece"] <= 1.0 or math.isnan(quick["hard_top1_calibration_ece"])
    assert quick["hard_plan_ms_median"] > 0.0
    for name in hard.PLANNERS:
        assert quick[f"hard_{name}_top5"] >= quick[f"hard_{name}_top1"]
        assert quick[f"hard_{name}_plan_ms_median"] >= 0.0
    assert quick["hard_top1_success"] == quick[f"hard_{hard.HEADLINE}_top1"]
    if hard.HEADLINE in hard.PROBABILISTIC:  # its ECE comes from its own P(success), no fit on the tuning split
        assert 0.0 <= quick["hard_top1_mean_probability"] <= 1.0
        assert "hard_calibration_fit" not in quick
    assert len(quick["hard_per_object"]) == hard.OBJECTS_QUICK
    labels = {lab for row in quick["hard_per_object"] for n in hard.PLANNERS for lab in row[n]}
    assert labels <= {"stable", "slipped", "dropped", "no_contact", "table_collision", "collision", "unreachable"}
    # the headline's top-1 executed 1 + TOP1_REPEATS times; the first of them is the top-1 trial itself
    reps = [row["headline_top1_repeats"] for row in quick["hard_per_object"]]
    for row, rep in zip(quick["hard_per_object"], reps, strict=True):
        if row[hard.HEADLINE]:
            assert len(rep) == 1 + hard.TOP1_REPEATS and rep[0] == (row[hard.HEADLINE][0] == "stable")
    assert quick["hard_top1_expected"] == pytest.approx(np.mean([np.mean(r) if r else 0.0 for r in reps]))
    assert quick["hard_top1_mixed_objects"] == sum(0 < sum(r) < len(r) for r in reps)


def test_same_seed_same_numbers_whatever_the_worker(quick: dict) -> None:
    """The suite ran on 2 worker processes; the first object evaluated again here, in this process, after
    other work, gives the same labels for every planner."""
    obj = hard.suite_objects(0, 1)[0]
    hard.warm_up()
    again = hard.evaluate_object(obj, 0, tuple(hard.PLANNERS), hard.TOP_K, hard.TOP1_REPEATS)
    row = quick["hard_per_object"][0]
    assert row["index"] == obj.index
    assert {n: again["planners"][n]["labels"] for n in hard.PLANNERS} == {n: row[n] for n in hard.PLANNERS}
    assert [int(b) for b in again["planners"][hard.HEADLINE].get("top1_repeats", [])] == row["headline_top1_repeats"]


def test_objects_are_drawn_from_the_seed_and_fit_the_gripper() -> None:
    a, b = hard.suite_objects(3, 6), hard.suite_objects(3, 6)
    assert a == b and a != hard.suite_objects(4, 6)
    tune = hard.suite_objects(3, 4, "tuning")
    assert all(700 <= o.index < 1000 for o in a) and all(o.index < 700 for o in tune)
    for o in a + tune:
        assert hard.narrow_width(o.index) * o.scale <= hard.MAX_NARROW_SIDE
        assert 0.6 <= o.scale <= 1.0 and 0.05 <= o.mass <= 0.5 and 0.3 <= o.friction <= 1.0
    # a kind filter keeps the draws and drops the other kinds
    upright = hard.suite_objects(3, 4, "tuning", ("upright",))
    assert all(o.kind == "upright" for o in upright)
    assert all(o == hard.draw_object(o.index, 3, "tuning") for o in upright)
    with pytest.raises(ValueError, match="lying"):
        hard.suite_objects(3, 4, "tuning", ("lying",))
    # the size filter rejects something: some draws at scale 0.6-1.0 are too wide for the gripper
    assert any(hard.draw_object(i, 3, "heldout") is None for i in range(700, 760))


def _primitive_scene(shape: str, size: list[float], z: float):
    obj = {"name": "target", "shape": shape, "size": size, "mass": 0.2, "friction": 0.6,
           "position": [0.5, 0.05, z], "orientation": [0, 0, 0, 1]}
    return scene_from_dict(scene_mapping("t", [obj], cameras=("front.yaml",)), "t", REPO_SCENES_DIR)


def test_trivial_grasp_holds_a_small_cube_and_fails_on_a_big_lying_slab() -> None:
    hard.warm_up()
    cube = hard.evaluate_scene(_primitive_scene("box", [0.04, 0.04, 0.04], 0.021), 1, 0, ("trivial_topdown",))
    assert cube["planners"]["trivial_topdown"]["top1"]
    # 10 x 9 cm lying flat, 2.5 cm thick: only a side grasp across its thickness fits the 8 cm gripper
    slab = hard.evaluate_scene(_primitive_scene("box", [0.10, 0.09, 0.025], 0.0135), 1, 0, ("trivial_topdown",))
    res = slab["planners"]["trivial_topdown"]
    assert len(res["labels"]) == hard.TOP_K and not res["topk"]


def test_logistic_calibration_and_ece() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    y = (rng.uniform(size=400) < 1 / (1 + np.exp(-2 * x))).astype(float)
    fit = hard.fit_logistic(x, y)
    p = hard.calibrated(np.array([-1.0, 0.0, 1.0]), fit)
    assert np.all(np.diff(p) > 0) and abs(p[1] - 0.5) < 0.1
    assert hard.ece(hard.calibrated(x, fit), y) < 0.08
    one_class = hard.fit_logistic(np.array([0.3, 0.5]), np.array([1.0, 1.0]))
    assert np.all(np.isfinite(one_class))
    assert hard.ece(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0


def test_quality_labels_come_from_training_objects_only() -> None:
    """The grasp-quality model's labels: arm trials on training objects (random_urdfs 000-699), never on a
    held-out one; arrays of one length, features of the model's width."""
    from robot_wm.grasping.quality import N_FEATURES
    from robot_wm.sim.arm_grasp_trial import TRIAL_LABELS

    held = hard.suite_objects(0, 1)[0]
    with pytest.raises(ValueError, match="held out"):
        hard.quality_object(held, 0)
    data = hard.quality_samples(0, 1, per_object=2, workers=0)
    n = len(data["success"])
    assert 1 <= n <= 2 and data["features"].shape == (n, N_FEATURES)
    assert all(len(data[k]) == n for k in ("label", "object", "sampled"))
    assert np.all(data["object"] < 700) and set(data["label"].tolist()) <= set(TRIAL_LABELS)
    np.testing.assert_array_equal(data["success"], data["label"] == "stable")
    np.testing.assert_array_equal(data["candidate"], np.arange(n))


def test_repeated_quality_trials_execute_each_candidate_with_small_pose_errors() -> None:
    """--repeats: every candidate runs `repeats` times, the first trial at its own pose (the rows of a single
    run), the others jittered 2 mm / 0.03 rad, each with the features of the pose it ran."""
    from robot_wm.geometry import Pose
    from robot_wm.grasping import Grasp

    one = hard.quality_samples(0, 1, per_object=1, workers=0)
    rep = hard.quality_samples(0, 1, per_object=1, workers=0, repeats=3)
    n = len(one["success"])
    assert n >= 1 and len(rep["success"]) == 3 * n
    np.testing.assert_array_equal(rep["candidate"], np.repeat(np.arange(n), 3))
    np.testing.assert_allclose(rep["features"][::3], one["features"])
    np.testing.assert_array_equal(rep["label"][::3], one["label"])
    assert not np.allclose(rep["features"][1], rep["features"][0])

    g = Grasp(Pose(np.array([0.5, 0.0, 0.1]), np.array([1.0, 0.0, 0.0, 0.0])), 0.04, 0.7)
    rng = np.random.default_rng(3)
    for _ in range(5):
        j = hard.jittered(g, rng)
        assert np.linalg.norm(j.pose.position - g.pose.position) == pytest.approx(hard.JITTER_M)
        turn = (j.pose.rotation * g.pose.rotation.inv()).magnitude()
        assert turn == pytest.approx(hard.JITTER_RAD)
        assert (j.width, j.score) == (g.width, g.score)
