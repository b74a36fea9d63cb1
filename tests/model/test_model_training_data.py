"""Training tensors from collected arrays: action-frame targets, the mirror augmentation, normalisation,
the episode split."""

import numpy as np
import torch

from robot_wm.model.state import PUSH
from robot_wm.model.training_data import delta_targets, fit_normalisation, mirror, prepare, split_by_episode
from tests.model.synthetic import synthetic


def test_delta_targets_action_frame():
    d = synthetic(8, 3)
    y = delta_targets(d["before"], d["after"], d["action"])
    push = d["action"][:, 0] == PUSH
    assert np.all(y[push, 0, 0] > 0) and np.allclose(y[push, 0, 1], 0, atol=1e-5)
    assert np.allclose(y[:, 1], 0)


def test_prepare_shapes_and_grasp_labels():
    d = synthetic(16, 5)
    p = prepare(d)
    assert len(p) == 16 and p.feats.shape[:2] == (16, 2) and p.y.shape == (16, 2, 4)
    grasp = d["action"][:, 0] != PUSH
    np.testing.assert_array_equal(p.grasp.numpy(), np.where(grasp, d["grasp_ok"], -1))
    assert (p.gx[~torch.as_tensor(grasp)] == 0).all() and (p.gx[torch.as_tensor(grasp)] != 0).any()
    sub = p.subset(np.array([1, 3]), grasp_inputs=False)
    assert len(sub) == 2 and len(sub.gx) == 0 and list(sub.episode) == [0, 0]


def test_mirror_matches_reflected_scene():
    """Mirroring prepared features equals preparing the physically reflected transitions."""
    d = synthetic(16, 5)
    r = {k: v.copy() for k, v in d.items()}
    for key in ("before", "after"):
        r[key][..., 1] *= -1  # y -> -y: position, and the quaternion (x, y, z, w) -> (-x, y, -z, w)
        r[key][..., 3] *= -1
        r[key][..., 5] *= -1
    r["action"][:, 2] *= -1
    r["action"][:, 4] *= -1
    r["action"][:, 6] *= -1  # a tilted pad face mirrors to the other tilt
    p, q = prepare(d), prepare(r)
    m = mirror(p, torch.ones(len(p), dtype=torch.bool))
    torch.testing.assert_close(m.feats, q.feats, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(m.y, q.y, atol=1e-4, rtol=1e-4)


def test_normalisation_leaves_flags_alone():
    p = prepare(synthetic(32, 6))
    norm = fit_normalisation(p)
    f = p.feats.reshape(-1, p.feats.shape[-1])[p.mask.reshape(-1)]
    flags = ((f == 0) | (f == 1)).all(0)
    assert flags.any() and (norm.feat_mean[flags] == 0).all() and (norm.feat_std[flags] == 1).all()
    assert (norm.out_scale >= 1e-4).all() and norm.out_scale.shape == (4,)


def test_split_keeps_episodes_whole():
    episodes = np.repeat(np.arange(20), 3)
    tr, va = split_by_episode(episodes, 0.1, np.random.default_rng(0))
    assert len(set(episodes[va])) == 2 and not set(episodes[va]) & set(episodes[tr])
    assert sorted(np.r_[tr, va]) == list(range(60))
    tr, va = split_by_episode(np.zeros(5, int), 0.1, np.random.default_rng(0))  # one episode: no validation
    assert len(va) == 0 and len(tr) == 5
