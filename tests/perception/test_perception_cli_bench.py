"""`robot-wm perceive` outputs, and the benchmark's metric and scene helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robot_wm.bench.perception import TIERS, overlap_prf, tier_scene
from robot_wm.cli.main import main
from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
from robot_wm.perception import SceneGraph


def test_perceive_writes_graph_overlay_and_cloud(tmp_path):
    out = tmp_path / "p"
    assert main(["perceive", "--scene", str(REPO_SCENES_DIR / "stacked.yaml"), "--out", str(out), "--seed", "0"]) == 0
    data = json.loads((out / "scene_graph.json").read_text())
    assert data["schema_version"] == 1 and len(data["objects"]) == 5
    graph = SceneGraph.from_dict(data)
    assert sum(1 for r in graph.relations if r.kind == "on" and r.object != "table") == 3
    head = (out / "cloud.ply").read_bytes()[:200]
    assert head.startswith(b"ply\nformat binary_little_endian 1.0\nelement vertex ")
    import imageio.v2 as imageio

    img = imageio.imread(out / "overlay.png")
    assert img.shape == (480, 640, 3)


def test_perceive_bad_input_exits_2(tmp_path, capsys):
    assert main(["perceive", "--scene", str(tmp_path / "missing.yaml"), "--out", str(tmp_path)]) == 2
    assert main(["perceive", "--scene", str(REPO_SCENES_DIR / "stacked.yaml"), "--out", str(tmp_path),
                 "--camera", "nope"]) == 2
    assert "no camera named 'nope'" in capsys.readouterr().err


def test_overlap_prf_uois_protocol():
    a, b = np.arange(0, 100), np.arange(100, 200)
    assert overlap_prf([a, b], [a, b])[:3] == (1.0, 1.0, 1.0)
    # a merge of two true objects: precision of the matched part 0.5, recall 0.5
    p, r, f, per = overlap_prf([np.arange(0, 200)], [a, b])
    assert p == pytest.approx(0.5) and r == pytest.approx(0.5) and sorted(per) == pytest.approx([0.0, 2 / 3])
    assert overlap_prf([], [a])[2] == 0.0


@pytest.mark.parametrize("tier", TIERS)
def test_tier_scenes_are_valid_and_seeded(tier):
    d1 = tier_scene(tier, np.random.default_rng(3), 0)
    d2 = tier_scene(tier, np.random.default_rng(3), 0)
    assert d1 == d2
    d1["cameras"] = [{"calibration": "front.yaml"}]
    scene = scene_from_dict(d1)
    urdfs = [o.urdf for o in scene.config.objects if o.urdf and "random_urdfs" in o.urdf]
    assert all(700 <= int(u.split("/")[1]) <= 999 for u in urdfs)  # held-out objects only


def test_evaluate_scene_scores_perception_and_baseline():
    from robot_wm.bench.perception import evaluate_scene
    from robot_wm.perception import Perceiver

    data = tier_scene("stacked", np.random.default_rng(1), 0)
    data["cameras"] = [{"calibration": "front.yaml"}, {"calibration": "side.yaml"}]
    r = evaluate_scene(scene_from_dict(data), 1, Perceiver(), timing_repeats=1)
    assert r["F"] > 0.95 and r["n_matched"] == r["n_true"]
    tp, n_pred, n_true = r["on"]
    assert n_true >= 4 and tp == n_true == n_pred
    assert 0.0 <= r["baseline_F"] <= 1.0 and r["ms"][0] > 0 and r["baseline_ms"][0] > 0
