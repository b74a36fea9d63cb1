"""Depth noise models: structured-light dropout (~1 % of pixels, depth edges first), seeded, invalid = 0."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from robot_wm.config import scene_from_dict
from robot_wm.geometry import Intrinsics
from robot_wm.sim import World
from robot_wm.sim.depth_noise import (
    DEPTH_NOISE_MODELS,
    DROPOUT_RATE,
    depth_edges,
    dropout_mask,
    incidence_angles,
    nguyen2012,
    nguyen2012_dropout,
)
from tests.conftest import REPO, box_scene_dict

K = Intrinsics(640, 480, 554.26, 554.26, 319.5, 239.5)


@pytest.fixture(scope="module")
def frame():
    """The front camera's clean frame of a cluttered scene (objects, a stack, the table, the robot)."""
    data = yaml.safe_load((REPO / "sim_scenes/clutter.yaml").read_text())
    with World(scene_from_dict(data, "clutter", REPO / "sim_scenes")) as w:
        yield w.render("front", noise=False)


def test_dropout_rate_is_one_percent_and_seeded(frame):
    d = frame.depth
    valid = d > 0
    a = nguyen2012_dropout(d, frame.intrinsics, np.random.default_rng(3))
    b = nguyen2012_dropout(d, frame.intrinsics, np.random.default_rng(3))
    c = nguyen2012_dropout(d, frame.intrinsics, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32 and a.shape == d.shape and np.isfinite(a).all() and (a >= 0).all()
    mask = dropout_mask(d, frame.intrinsics, np.random.default_rng(3))
    assert mask.sum() == round(DROPOUT_RATE * valid.sum()) and not (mask & ~valid).any()
    lost = (valid & (a == 0)).mean() / valid.mean()  # invalid = 0, the depth convention
    lateral_only = (valid & (nguyen2012(d, frame.intrinsics, np.random.default_rng(3)) == 0)).mean() / valid.mean()
    assert 0.009 < lost < 0.014 and lost - lateral_only > 0.008, (lost, lateral_only)


def test_dropout_hits_depth_edges_first(frame):
    d = frame.depth
    valid = d > 0
    far, near = depth_edges(d)
    edge = far | near
    assert 0 < edge.sum() < 0.02 * valid.sum()
    rates = []
    for seed in range(3):
        mask = dropout_mask(d, frame.intrinsics, np.random.default_rng(seed))
        p_edge, p_rest = mask[edge].mean(), mask[valid & ~edge].mean()
        rates.append(p_edge)
        assert p_edge > 30 * p_rest, (p_edge, p_rest)
        assert mask[edge].sum() > 0.3 * mask.sum()  # a third of the budget at edges, < 2 % of the pixels
        assert mask[far].mean() > mask[near].mean()  # the shadow side of a jump before the occluder's rim
    assert np.mean(rates) > 0.3


def test_depth_edges_on_a_step():
    """A 0.8 m square in front of a 1.0 m wall: the near side is the square's rim, the far side a band
    SHADOW_BAND_PX wide around it; nothing else is an edge."""
    d = np.full((60, 80), 1.0, np.float32)
    d[20:40, 30:50] = 0.8
    far, near = depth_edges(d)
    rim = np.zeros_like(near)
    rim[20:40, 30:50] = True
    rim[21:39, 31:49] = False
    np.testing.assert_array_equal(near, rim)
    assert far[19, 40] and far[18, 40] and not far[17, 40] and not far[30, 40] and not far[5, 5]
    assert not (far & near).any()


def test_dropout_edge_cases():
    empty = np.zeros((48, 64), np.float32)
    k = Intrinsics(64, 48, 60.0, 60.0, 31.5, 23.5)
    assert (nguyen2012_dropout(empty, k, np.random.default_rng(0)) == 0).all()  # all invalid: no crash
    flat = np.full((48, 64), 1.0, np.float32)
    assert not dropout_mask(flat, k, np.random.default_rng(0), rate=0.0).any()
    assert dropout_mask(flat, k, np.random.default_rng(0), rate=1.0).all()
    with pytest.raises(ValueError, match="rate"):
        dropout_mask(flat, k, np.random.default_rng(0), rate=1.5)


def test_nguyen2012_unchanged_by_a_given_theta(frame):
    d, k = frame.depth, frame.intrinsics
    a = nguyen2012(d, k, np.random.default_rng(9))
    b = nguyen2012(d, k, np.random.default_rng(9), incidence_angles(d, k))
    np.testing.assert_array_equal(a, b)
    assert set(DEPTH_NOISE_MODELS) == {"nguyen2012", "nguyen2012_dropout"}


def test_calibration_with_dropout_renders_it(tmp_path):
    cal = yaml.safe_load((REPO / "calibration/front.yaml").read_text())
    (tmp_path / "drop.yaml").write_text(yaml.safe_dump({**cal, "name": "drop", "depth_noise": "nguyen2012_dropout"}))
    data = box_scene_dict(cameras=[{"calibration": "drop.yaml"}])
    with World(scene_from_dict(data, "drop", tmp_path), seed=5) as w:
        clean = w.render("drop", noise=False).depth
        d1 = w.observe().frames["drop"].depth
        w.reset(seed=5)
        d2 = w.observe().frames["drop"].depth
    np.testing.assert_array_equal(d1, d2)  # the world's seed drives the noise
    valid = clean > 0
    assert 0.009 < (valid & (d1 == 0)).sum() / valid.sum() < 0.014
