"""Oracle pick-and-place: clears the default scene, unstacks towers, and is deterministic."""

import json

import numpy as np
import pytest

from robot_wm.cli.main import main
from robot_wm.config import load_scene
from robot_wm.control.demo import run_demo
from robot_wm.control.pick_place import MAX_GRASP_WIDTH, place_slots, top_down_grasps
from robot_wm.geometry import Pose
from robot_wm.perception.estimate import ObjectEstimate


def test_oracle_demo_clears_two_blocks(repo):
    report = run_demo(load_scene(repo / "sim_scenes/two_blocks.yaml"), "oracle")
    assert report["placed"] == report["objects"] == 2
    assert report["success_rate"] == 1.0
    assert report["sim_s"] > 5


def test_same_seed_same_final_poses(repo):
    scene = load_scene(repo / "sim_scenes/two_blocks.yaml").with_seed(4)
    a = run_demo(scene, "oracle")["final_poses"]
    b = run_demo(scene, "oracle")["final_poses"]
    assert a == b  # bit for bit


def test_unstacks_from_the_top(repo):
    report = run_demo(load_scene(repo / "sim_scenes/stacked.yaml"), "oracle")
    order = [a["held"] for a in report["attempts"] if a.get("held")]
    assert order.index("top_a") < order.index("base_a")
    assert order.index("top_b") < order.index("mid_b") < order.index("base_b")
    assert report["success_rate"] >= 0.8


@pytest.mark.parametrize("yaw", [0.0, 0.4, -1.2, 1.57])
def test_top_down_grasp_closes_across_the_narrow_side(yaw):
    pose = Pose([0.5, 0.0, 0.03], [0, 0, np.sin(yaw / 2), np.cos(yaw / 2)])
    est = ObjectEstimate("o", pose, np.array([0.07, 0.04, 0.06]))
    g = top_down_grasps(est)[0]  # the narrow side comes first
    closing = g.pose.rotation.apply([0, 1, 0])
    narrow_axis = pose.rotation.apply([0, 1, 0])
    assert abs(np.dot(closing, narrow_axis)) == pytest.approx(1.0, abs=1e-9)
    assert g.pose.rotation.apply([0, 0, 1])[2] == pytest.approx(-1.0)  # approach straight down
    assert g.pose.position[2] == pytest.approx(0.06 - 0.025)
    assert g.width == pytest.approx(0.06)


def test_too_wide_objects_are_refused():
    est = ObjectEstimate("o", Pose.identity(), np.array([0.1, MAX_GRASP_WIDTH + 0.01, 0.05]))
    assert top_down_grasps(est) == []


def test_wide_side_follows_when_it_fits_and_depths_are_capped():
    est = ObjectEstimate("o", Pose([0.5, 0.0, 0.03], [0, 0, 0, 1]), np.array([0.06, 0.04, 0.06]))
    grasps = top_down_grasps(est, depths=(0.025, 0.04))
    assert [round(g.contact_width, 6) for g in grasps] == [0.04, 0.04, 0.06, 0.06]
    assert [round(g.pose.position[2], 6) for g in grasps] == [0.035, 0.03, 0.035, 0.03]  # 0.04 capped at h/2


def test_place_slots_fill_the_region_row_major():
    from robot_wm.config import PlaceRegion

    region = PlaceRegion(center=[0.45, -0.35, 0.0], size=[0.2, 0.2])
    slots = place_slots(region, 4)
    np.testing.assert_allclose(slots, [[0.4, -0.4], [0.5, -0.4], [0.4, -0.3], [0.5, -0.3]], atol=1e-12)
    assert all(region.contains(s) for s in slots)


def test_cli_demo_writes_report_and_gif(repo, tmp_path, capsys):
    code = main(["demo", "--perception", "oracle", "--out", str(tmp_path), "--seed", "2"])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    for key in ("scene", "seed", "objects", "picked", "placed", "success_rate", "wall_s", "sim_s"):
        assert key in report
    assert report["seed"] == 2 and report["scene"] == "two_blocks" and report["perception"] == "oracle"
    gif = tmp_path / "demo.gif"
    assert gif.is_file() and 10_000 < gif.stat().st_size < 10_000_000
    assert "placed 2/2" in capsys.readouterr().err


def test_cli_demo_defaults_to_rgbd_and_compares_with_oracle(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--no-video"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["perception"] == "rgbd"
    assert report["success_rate"] == 1.0
    assert report["oracle_success_rate"] == 1.0
    assert "video" not in report and not (tmp_path / "demo.gif").exists()
