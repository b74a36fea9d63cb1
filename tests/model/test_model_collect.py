"""Data generation in PyBullet: physically meaningful pushes, shake-tested grasps, the scenes they happen in,
grasp actions <-> the grasping module's Grasp; CLI errors. (`collected`: tests/model/conftest.py.)"""

import json
from pathlib import Path

import numpy as np

from robot_wm.cli.main import main
from robot_wm.model.collect import (
    action_from_grasp,
    grasp_from_action,
    sample_collection_scene,
    scene_descriptors,
)
from robot_wm.model.dataset import clean, load_dataset, load_scenes, target_descriptors
from robot_wm.model.state import grasp_action


def test_collect_records_transitions(collected: Path):
    m = json.loads((collected / "manifest.json").read_text())
    assert m["episodes"] == 2 and len(m["shards"]) == 2 and m["transitions"] > 0
    d = load_dataset(collected)
    T = len(d["action"])
    assert d["before"].shape == (T, 6, 15) and d["mask"].any(1).all()
    push = d["action"][:, 0] == 0
    assert push.any()
    moved = np.linalg.norm(d["after"][..., :2] - d["before"][..., :2], axis=-1)
    assert moved[push][np.arange(push.sum()), d["target"][push]].max() > 0.01  # pushes move things
    assert np.all(d["action"][push, 5] >= 0.02) and np.all(d["action"][push, 5] <= 0.19)
    g = d["action"][:, 0] == 1
    assert np.all(np.isin(d["grasp_ok"][g], [0, 1])) and np.all(d["grasp_ok"][push] == -1)
    # grasps: shake-test labels, the three sampling modes, the scene undisturbed but for the lift on success
    from robot_wm.grasping import LABELS

    assert np.all(d["grasp_ok"][g] == (d["grasp_class"][g] == LABELS.index("stable")))
    assert set(d["grasp_mode"][g]) <= {0, 1, 2} and np.all(d["grasp_mode"][push] == -1)
    assert np.all((d["action"][g, 5] >= 0.005) & (d["action"][g, 5] <= 0.07)) and np.all(d["action"][g, 3] >= 0.012)
    lift = d["after"][g] - d["before"][g]
    t = d["target"][g].astype(int)
    np.testing.assert_allclose(lift[np.arange(g.sum()), t, 2], 0.1 * d["grasp_ok"][g], atol=1e-6)
    lift[np.arange(g.sum()), t, 2] = 0
    assert np.all(lift == 0)
    # one shape descriptor per episode and object slot, real objects non-empty
    from robot_wm.model.shape import OCC_DIM, PARTS_DIM, SHAPE_DIM

    assert d["ep_shape_occ"].shape == (2, 6, OCC_DIM) and list(d["ep_index"]) == [0, 1]
    assert d["ep_shape_parts"].shape == (2, 6, PARTS_DIM)
    desc = target_descriptors(d, np.flatnonzero(g))
    assert desc.shape == (g.sum(), SHAPE_DIM) and np.all(desc[:, 6:6 + OCC_DIM].sum(1) > 10)
    assert np.all((d["friction"][d["mask"]] >= 0.3) & (d["friction"][d["mask"]] <= 1.0))
    assert set(load_scenes(collected)) == {0, 1}
    assert len(clean(d)["action"]) <= T


def test_scene_sampling_uses_the_right_objects():
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = sample_collection_scene(rng, "test")
        assert 1 <= len(s["objects"]) <= 6
        assert all(700 <= int(o["urdf"].split("/")[1]) <= 999 for o in s["objects"])
        s = sample_collection_scene(rng, "train")
        assert all("shape" in o or int(o["urdf"].split("/")[1]) < 700 for o in s["objects"])


def test_cli_bad_input(tmp_path: Path, capsys):
    assert main(["collect", "--episodes", "1", "--out", str(tmp_path / "x"), "--backend", "spark"]) == 2
    assert main(["collect", "--episodes", "0", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m.safetensors")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("error: ") for line in err)
    assert "no manifest.json" in err[-1]


def test_cli_ray_missing(tmp_path: Path, monkeypatch, capsys):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    assert main(["collect", "--episodes", "1", "--out", str(tmp_path / "x"), "--backend", "ray"]) == 2
    assert "robot-wm[ray]" in capsys.readouterr().err


def test_shards_without_convex_parts_get_the_descriptors_the_collector_writes(collected: Path, tmp_path: Path):
    """A shard written before descriptors had convex parts (no ep_shape_parts, a stale grid) loads with
    descriptors recomputed from its recorded scenes: the same arrays the collector writes now."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(collected, old)
    for f in old.glob("shard_*.npz"):
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "ep_shape_parts"}
        arrays["ep_shape_occ"] = np.zeros_like(arrays["ep_shape_occ"])  # stale
        np.savez_compressed(f, **arrays)
    new, recomputed = load_dataset(collected), load_dataset(old, scene_descriptors)
    for key in ("ep_shape_box", "ep_shape_occ", "ep_shape_parts"):
        np.testing.assert_array_equal(recomputed[key], new[key])


def test_grasp_actions_and_grasps_convert_both_ways():
    """A grasp action's Grasp: TCP at (x, y, z) pointing straight down, closing axis (TCP y) at the yaw;
    back to the same action. A tilted Grasp comes back snapped to top-down (its closing axis's heading)."""
    from scipy.spatial.transform import Rotation

    from robot_wm.geometry import Pose
    from robot_wm.grasping import Grasp

    a = grasp_action(0.5, -0.1, 0.03, 2.5, 0.04)
    g = grasp_from_action(a)
    np.testing.assert_allclose(g.pose.position, a[1:4], rtol=0, atol=0)
    np.testing.assert_allclose(g.approach, [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(g.closing_axis, [np.cos(2.5), np.sin(2.5), 0], atol=1e-7)
    assert g.width == np.float32(0.04)
    np.testing.assert_allclose(action_from_grasp(g), a, rtol=0, atol=1e-6)
    tilted = Grasp(Pose([0.5, 0, 0.03], (Rotation.from_euler("z", 0.4) * Rotation.from_euler("xy", [np.pi, 0.3]))
                        .as_quat()), 0.05)
    back = action_from_grasp(tilted)
    assert back.dtype == np.float32 and back[0] == 1
    assert abs(back[4] - np.arctan2(tilted.closing_axis[1], tilted.closing_axis[0])) < 1e-6
