"""The data set on disk, without the simulator: packing episodes and shards, loading several folders,
cleaning, descriptors per transition, validation episodes; importing it loads no physics."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robot_wm.model.dataset import (
    NMAX,
    Transition,
    clean,
    load_dataset,
    load_scenes,
    pack_episode,
    pack_shard,
    per_episode_keys,
    shard_path,
    target_descriptors,
    transition_descriptors,
    unseen_object_episodes,
    write_manifest,
    write_shard,
)
from robot_wm.model.shape import SHAPE_DIM, box_descriptor, unpack
from robot_wm.model.state import grasp_action, object_state, push_action


def _scene(urdf_ids: list[int]) -> dict:
    return {"name": "s", "objects": [{"name": f"o{i}", "urdf": f"random_urdfs/{k:03d}/{k:03d}.urdf"}
                                     for i, k in enumerate(urdf_ids)]}


def _episode(e: int, n: int = 2) -> tuple[dict[str, np.ndarray], dict]:
    """Episode e with n boxes: a push of box 0 (touching it), then a stable grasp lifting box 1."""
    states = np.stack([object_state([0.5, 0.1 * i, 0.02], [0, 0, 0, 1], [0.04 + 0.01 * i] * 3, "box")
                       for i in range(n)])
    pushed = states.copy()
    pushed[0, 0] += 0.03
    lifted = pushed.copy()
    lifted[1, 2] += 0.1
    rows = [Transition(states, pushed, push_action(0.45, 0.0, 0.02, 0.0, 0.05), 0, 0, touched={0}),
            Transition(pushed, lifted, grasp_action(0.5, 0.1, 0.03, 0.0, 0.04), 1, 1, grasp_class=0, grasp_ok=1,
                       grasp_mode=2)]
    descriptors = [box_descriptor(s[7:10]) for s in states]
    arrays = pack_episode(e, rows, np.full(n, 0.1 + e, np.float32), np.full(n, 0.5, np.float32), descriptors)
    return arrays, _scene([10 * e + i + 1 for i in range(n)])


def _write_folder(out: Path, first: int, n_episodes: int, per_shard: int = 1) -> None:
    out.mkdir(parents=True)
    shards = {}
    for s, lo in enumerate(range(first, first + n_episodes, per_shard)):
        eps = [_episode(e) for e in range(lo, min(lo + per_shard, first + n_episodes))]
        arrays = pack_shard(eps, lo)
        write_shard(out, s, arrays)
        shards[str(s)] = {"file": shard_path(out, s).name, "episodes": len(eps), "transitions": len(arrays["action"])}
    write_manifest(out, {"config": {}, "episodes": n_episodes, "shards": shards})


def test_pack_episode_layout():
    arrays, _ = _episode(3)
    assert arrays["before"].shape == (2, NMAX, 15) and arrays["before"].dtype == np.float32
    assert arrays["mask"].tolist() == [[True, True] + [False] * (NMAX - 2)] * 2
    np.testing.assert_array_equal(arrays["before"][:, 2:, 6], 1.0)  # padding: identity quaternions
    assert arrays["touched"][0].tolist() == [True] + [False] * (NMAX - 1) and not arrays["touched"][1].any()
    assert arrays["grasp_ok"].tolist() == [-1, 1] and arrays["grasp_class"].tolist() == [-1, 0]
    assert arrays["grasp_mode"].tolist() == [-1, 2] and arrays["episode"].tolist() == [3, 3]
    assert arrays["step"].tolist() == [0, 1] and arrays["target"].dtype == np.int16
    np.testing.assert_allclose(arrays["mass"][:, :2], 3.1)
    assert arrays["ep_shape_box"].shape == (1, NMAX, 6) and arrays["ep_shape_occ"].dtype == np.uint8
    desc = unpack(arrays["ep_shape_box"][0, :2], arrays["ep_shape_occ"][0, :2], arrays["ep_shape_parts"][0, :2])
    np.testing.assert_allclose(desc, [box_descriptor([0.04] * 3), box_descriptor([0.05] * 3)], atol=1 / 255)


def test_folders_load_in_order_with_episodes_renumbered(tmp_path: Path):
    _write_folder(tmp_path / "a", 0, 3, per_shard=2)
    _write_folder(tmp_path / "b", 0, 2)
    one = load_dataset(tmp_path / "a")
    assert one["ep_index"].tolist() == [0, 1, 2] and one["episode"].tolist() == [0, 0, 1, 1, 2, 2]
    assert "scenes" not in one and "scene_episode" not in one
    both = load_dataset([tmp_path / "a", tmp_path / "b"])
    assert both["ep_index"].tolist() == [0, 1, 2, 3, 4] and both["episode"].tolist()[6:] == [3, 3, 4, 4]
    assert per_episode_keys(both) == {"ep_index", "ep_shape_box", "ep_shape_occ", "ep_shape_parts"}
    assert set(load_scenes(tmp_path / "a")) == {0, 1, 2}
    # descriptors per transition follow the renumbered episodes
    rows = np.arange(len(both["action"]))
    assert transition_descriptors(both, rows).shape == (10, NMAX, SHAPE_DIM)
    tgt = target_descriptors(both, rows)
    np.testing.assert_array_equal(tgt[7], transition_descriptors(both, rows[7:8])[0, 1])  # grasp of slot 1


def test_unseen_object_episodes(tmp_path: Path):
    _write_folder(tmp_path / "a", 0, 3)  # urdf ids: episode 0: 1, 2; 1: 11, 12; 2: 21, 22
    assert unseen_object_episodes(tmp_path / "a", 11) == {1, 2}
    assert unseen_object_episodes(tmp_path / "a", 2) == {0, 1, 2}
    assert unseen_object_episodes(tmp_path / "a", 1000) == set()


def test_clean_drops_objects_and_transitions_off_the_table():
    arrays, _ = _episode(0, n=3)
    arrays["before"][0, 2, 2] = -0.2  # slot 2 fell off before the push: masked out
    arrays["after"][1, 0, 2] = -0.2  # slot 0 falls off during the grasp: that transition is dropped
    out = clean(arrays)
    assert len(out["action"]) == 1 and out["mask"][0].tolist()[:3] == [True, True, False]
    assert out["ep_shape_box"].shape == arrays["ep_shape_box"].shape  # per-episode arrays are kept whole


def test_load_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="no manifest.json"):
        load_dataset(tmp_path)
    write_manifest(tmp_path, {"config": {}, "episodes": 0, "shards": {}})
    with pytest.raises(ValueError, match="no shards collected yet"):
        load_dataset(tmp_path)
    _write_folder(tmp_path / "old", 0, 1)
    f = tmp_path / "old" / "shard_00000.npz"
    with np.load(f, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "ep_shape_parts"}
    np.savez_compressed(f, **arrays)  # written before the descriptors had convex parts
    with pytest.raises(ValueError, match="without convex-part descriptors"):
        load_dataset(tmp_path / "old")
    seen = []

    def descriptors(scene: dict) -> np.ndarray:
        seen.append(json.dumps(scene))
        return np.stack([box_descriptor([0.03] * 3)] * NMAX)

    data = load_dataset(tmp_path / "old", descriptors)
    assert seen == [json.dumps(_scene([1, 2]))]
    np.testing.assert_allclose(target_descriptors(data, np.arange(2)), [box_descriptor([0.03] * 3)] * 2, atol=1 / 255)


def test_dataset_train_and_world_model_load_no_physics():
    """The data set, training and the model need neither PyBullet, the simulator nor the grasping module."""
    code = ("import sys, robot_wm.model.dataset, robot_wm.model.train, robot_wm.model.world_model; "
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    leaked = [m for m in loaded if m.split(".")[0] in ("pybullet", "pybullet_utils")
              or m.startswith(("robot_wm.sim", "robot_wm.grasping"))]
    assert not leaked
