"""Training on tiny synthetic transitions: learns, is seeded, early-stops, refits, writes a curve."""

from pathlib import Path

import numpy as np
import pytest
import torch

from robot_wm.model.state import GRASP, PUSH
from robot_wm.model.train import (
    TrainConfig,
    fit_temperature,
    losses,
    plot_curves,
    refit,
    train,
    train_and_refit,
)
from robot_wm.model.training_data import prepare
from tests.model.synthetic import synthetic

CFG = TrainConfig(k=2, hidden=16, edge=8, head=8, max_epochs=15, patience=15, batch=64, lr=1e-2)


def test_training_learns_and_is_deterministic(tmp_path: Path):
    data = synthetic(256, 0)
    m1, h1 = train(data, CFG, seed=5)
    m2, _ = train(data, CFG, seed=5)
    for (k, a), b in zip(m1.net.state_dict().items(), m2.net.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert h1["val"][-1] < h1["val"][0]  # (what it learnt: tests/bench/test_bench_model_eval.py)
    plot_curves(h1, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000
    m3, _ = train(data, CFG, seed=6)
    assert not torch.equal(m3.net.enc1.weight, m1.net.enc1.weight)


def test_early_stopping_stops():
    data = synthetic(96, 2)
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=200, patience=2, batch=32, lr=0.3)
    _, h = train(data, cfg, seed=0)
    assert h["epochs"] < 200 and 0 <= h["best_epoch"] < h["epochs"]


def test_fit_temperature():
    assert fit_temperature(np.array([8.0, -8.0] * 10), np.array([1, 0] * 9 + [0, 1])) > 1.0  # overconfident
    assert fit_temperature(np.array([1.0, -1.0]), np.array([1, 0])) == 1.0  # too few labels


def test_given_validation_episodes_are_not_trained_on():
    data = synthetic(96, 6)
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=2, batch=32)
    _, h = train(data, cfg, seed=0, val_episodes={0, 1, 2})
    assert h["n_val"] == 24 and h["n_train"] == 72


def test_grasp_head_does_not_depend_on_the_push_network_size():
    """The two parts share no parameters and draw their initial weights from their own seeds: resizing
    the push network leaves the trained grasp head bit-identical."""
    from dataclasses import replace

    data = synthetic(96, 7)
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=3, patience=10, batch=32)
    m1, _ = train(data, cfg, seed=0)
    m2, _ = train(data, replace(cfg, hidden=12, edge=6), seed=0)
    assert m1.net.enc1.weight.shape != m2.net.enc1.weight.shape
    for (k, a), b in zip(m1.grasp_head.state_dict().items(), m2.grasp_head.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_refit_trains_on_every_episode_for_the_validated_epochs():
    data = synthetic(96, 8)
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=6, patience=10, batch=32)
    model, h = train_and_refit(data, cfg, seed=0, val_episodes={0, 1, 2})
    validated, hv = train(data, cfg, seed=0, val_episodes={0, 1, 2})
    assert h["n_val"] == 24 and h["refit"]["n_train"] == 96
    assert h["refit"]["epochs"] == [hv["best_epoch"] + 1, hv["best_epoch_grasp"] + 1]
    assert model.info["validated"]["n_val"] == 24 and model.info["n_train"] == 96
    assert model.temperature == validated.temperature  # fitted on the validation episodes only
    assert not torch.equal(model.net.enc1.weight, validated.net.enc1.weight)
    again, _ = refit(data, cfg, 0, tuple(h["refit"]["epochs"]), model.temperature)
    for (k, a), b in zip(model.grasp_head.state_dict().items(), again.grasp_head.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    # the refit in a second process, alongside the validated run, gives the same model as one after it
    sequential, hs = train_and_refit(data, cfg, seed=0, val_episodes={0, 1, 2}, parallel=False)
    parallel, hp = train_and_refit(data, cfg, seed=0, val_episodes={0, 1, 2}, parallel=True)
    assert hs["refit"]["epochs"] == hp["refit"]["epochs"] and hs["refit"]["n_train"] == hp["refit"]["n_train"]
    assert sequential.header() == parallel.header()
    for part in ("net", "grasp_head"):
        a, b = getattr(sequential, part).state_dict(), getattr(parallel, part).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), part
    assert all(torch.equal(x, y) for x, y in zip(vars(sequential.norm).values(), vars(parallel.norm).values(), strict=True))


def test_a_batch_without_pushes_trains_the_grasp_head_only():
    """A batch may hold no push at all (say a short last batch of grasps): the push loss is then zero and
    training goes on (the push network is not run on zero rows)."""
    data = synthetic(40, 9)
    grasps = np.flatnonzero(data["action"][:, 0] == GRASP)
    data = {k: v[np.r_[np.flatnonzero(data["action"][:, 0] == PUSH)[:32], grasps]] for k, v in data.items()}
    data["episode"] = np.arange(len(data["action"])) // 8
    # 32 pushes and 10 grasps in batches of 2: some batches are grasps only
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=3, patience=10, batch=2)
    model, h = refit(data, cfg, 0, (3, 3))
    assert h["epochs"] == 3 and np.isfinite(h["train"]).all()
    p = prepare({k: v[32:] for k, v in data.items()})
    total, d, g = losses(model.net, model.grasp_head, model.norm, p, cfg)
    assert torch.equal(d, torch.zeros(2)) and (g > 0).all()


def test_a_refit_process_that_dies_is_an_error_not_a_hang(monkeypatch):
    import multiprocessing
    import os

    from robot_wm.model import train as train_module

    real = multiprocessing.get_context("spawn")

    class DyingRefit:  # a spawn context whose refit process exits at once with status 3
        def Pipe(self):  # noqa: N802 (multiprocessing's name)
            return real.Pipe()

        def Process(self, target, args, daemon):  # noqa: N802
            return real.Process(target=os._exit, args=(3,), daemon=daemon)

    monkeypatch.setattr(train_module.multiprocessing, "get_context", lambda method: DyingRefit())
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=2, patience=10, batch=32)
    with pytest.raises(RuntimeError, match="refit process ended without a result .exit code 3"):
        train_and_refit(synthetic(48, 9), cfg, seed=0, val_episodes={0, 1}, parallel=True)


def test_a_finished_grasp_head_stops_training_without_changing_the_push_network():
    data = synthetic(64, 11)
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=5, patience=10, batch=16)
    short_head, hs = refit(data, cfg, 0, (5, 2))
    long_head, hl = refit(data, cfg, 0, (5, 5))
    assert hs["grasp_head_trained_epochs"] == 2 and hl["grasp_head_trained_epochs"] == 5
    a, b = short_head.net.state_dict(), long_head.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit for bit: the head's work was all it saved
    two, _ = refit(data, cfg, 0, (2, 2))
    a, b = short_head.grasp_head.state_dict(), two.grasp_head.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # validated: the head stops once its validation BCE has not improved for `patience` epochs
    cfg = TrainConfig(k=2, hidden=8, edge=4, head=4, max_epochs=25, patience=3, batch=8, lr=3e-2)
    done: list[int] = []
    _, h = train(synthetic(24, 11), cfg, seed=0, val_episodes={0, 1}, on_head_done=done.append)
    assert done == [h["best_epoch_grasp"] + 1] and h["best_epoch"] > h["best_epoch_grasp"]  # head first
    assert h["grasp_head_trained_epochs"] == h["best_epoch_grasp"] + 1 + cfg.patience < h["epochs"]
    assert len(set(h["val_grasp"][h["grasp_head_trained_epochs"]:])) == 1  # frozen from then on
