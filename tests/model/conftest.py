"""A tiny collected data folder shared by the collection tests (collecting is the slow part)."""

from pathlib import Path

import pytest

from robot_wm.model.collect import CollectConfig
from robot_wm.model.collect_jobs import collect

CFG = CollectConfig(seed=3, pushes_per_episode=2, grasps_per_episode=4, episodes_per_shard=1)


@pytest.fixture(scope="session")
def collected(tmp_path_factory) -> Path:
    """Two episodes of CFG, one shard each (do not modify: copy it first)."""
    out = tmp_path_factory.mktemp("wm_data")
    collect(out, 2, CFG, workers=1)
    return out
