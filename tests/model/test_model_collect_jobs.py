"""Collecting into a folder: seeded, sharded, resumable; the same data on any backend or worker count.
(`collected`: tests/model/conftest.py.)"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from robot_wm.model.collect import CollectConfig
from robot_wm.model.collect_jobs import collect
from robot_wm.model.dataset import load_dataset
from tests.model.conftest import CFG


def test_collect_is_seeded_and_resumable(collected: Path, tmp_path: Path):
    before = {p.name: p.stat().st_mtime_ns for p in collected.glob("shard_*.npz")}
    collect(collected, 2, CFG, workers=1)  # nothing left to do
    assert before == {p.name: p.stat().st_mtime_ns for p in collected.glob("shard_*.npz")}
    # an interrupted run (shard 1 missing) redone gives the same data as the uninterrupted one
    other = tmp_path / "again"
    shutil.copytree(collected, other)
    (other / "shard_00001.npz").unlink()
    collect(other, 2, CFG, workers=1)
    a, b = load_dataset(collected), load_dataset(other)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with pytest.raises(ValueError, match="different config"):
        collect(collected, 2, CollectConfig(seed=4, episodes_per_shard=1), workers=1)
    with pytest.raises(ValueError, match="different config"):  # same draws, other physics: not mixed in
        collect(collected, 2, CollectConfig(**{**CFG.__dict__, "push_speed": 0.12}), workers=1)


def test_more_episodes_extend_a_folder_and_progress_counts_them(collected: Path, tmp_path: Path):
    """Asking for more episodes keeps the shards that still end at a shard boundary and adds the rest;
    `progress` hears the episodes already there, then each new shard's."""
    other = tmp_path / "more"
    shutil.copytree(collected, other)
    seen: list[int] = []
    manifest = collect(other, 3, CFG, workers=1, progress=seen.append)
    assert seen == [2, 1] and manifest["episodes"] == 3 and sorted(manifest["shards"], key=int) == ["0", "1", "2"]
    a, b = load_dataset(collected), load_dataset(other)
    first_two = b["episode"] < 2
    np.testing.assert_array_equal(a["action"], b["action"][first_two])


def test_ray_backend_gives_the_same_data(tmp_path: Path):
    pytest.importorskip("ray")
    cfg = CollectConfig(seed=9, pushes_per_episode=1, grasps_per_episode=0, episodes_per_shard=1)
    collect(tmp_path / "ray", 2, cfg, workers=2, backend="ray")
    collect(tmp_path / "local", 2, cfg, workers=1)
    a, b = load_dataset(tmp_path / "ray"), load_dataset(tmp_path / "local")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
