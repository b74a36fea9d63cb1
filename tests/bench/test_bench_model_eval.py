"""The world-model bench's metrics: AUC, ECE, the kinematic-follow baseline, and evaluate() on a tiny model."""

import numpy as np
import pytest

from robot_wm.bench.model_eval import auc, ece, evaluate, follow_baseline
from robot_wm.model.state import PUSH
from robot_wm.model.train import TrainConfig, train
from tests.model.synthetic import synthetic


def test_auc_and_ece():
    y = np.array([0, 0, 1, 1])
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), y) == 0.5  # ties count half
    assert np.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))  # one class only
    assert ece(np.array([0.0, 0.0, 1.0, 1.0]), y) == 0.0
    assert ece(np.array([1.0, 1.0, 0.0, 0.0]), y) == pytest.approx(1.0)


def test_follow_baseline_moves_the_pushed_box_with_the_pusher():
    d = synthetic(8, 4)
    f = follow_baseline(d["before"], d["mask"], d["action"], d["target"].astype(int))
    push = d["action"][:, 0] == PUSH
    err = np.linalg.norm(f[push, 0, :3] - d["after"][push, 0, :3], axis=-1)
    nomo = np.linalg.norm(d["before"][push, 0, :3] - d["after"][push, 0, :3], axis=-1)
    assert np.all(err < 0.012) and np.all(err < nomo)  # follow misses the slide and the box-size estimate
    np.testing.assert_array_equal(f[~push], d["before"][~push])  # grasps: nothing moves
    np.testing.assert_array_equal(f[:, 1], d["before"][:, 1])  # nor does the object not aimed at


def test_evaluate_a_trained_model_beats_no_motion():
    cfg = TrainConfig(k=2, hidden=16, edge=8, head=8, max_epochs=15, patience=15, batch=64, lr=1e-2)
    model, _ = train(synthetic(256, 0), cfg, seed=5)
    res = evaluate(model, synthetic(160, 1))
    assert res["n_push"] == 120 and res["n_grasp"] == 40
    assert res["push_pos_err_mm_median"] < 0.5 * res["no_motion_pos_err_mm_median"]
    assert res["grasp_auc"] > 0.8
    assert 0.0 <= res["grasp_ece"] <= 1.0 and np.isfinite(res["uncertainty_error_spearman"])
    assert res["n_rollouts"] == 0  # every fourth step is a grasp: no five pushes in a row
