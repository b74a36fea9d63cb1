"""The expected turn: a second yaw readout of the world model's members, fitted after training.

The network's yaw output is mode-seeking (a Cauchy loss, :mod:`robot_wm.model.train`): where a push may or
may not turn an object, it predicts the most likely outcome — no turn — and scales the turns it does
predict down to about 1/20 of their size (docs/world_model.md). A planner asked to turn an object then sees
no push that does. The expected turn is the conditional *mean* of the yaw change instead: per member k,
a linear map of that member's hidden layer z_k (``head`` values, :meth:`EnsembleInteractionNet.decoder_hidden`)
to the normalised yaw change, fitted by ridge least squares on the pushes of collected data (real objects
whose yaw is defined: not cylinders or spheres) with the trained network frozen — so every other output
of the model, and every number of ``bench model``, stays exactly as it was. Closed form in float64: the
same data gives the same readout.

The readout is stored in the model file as the tensor ``turn.readout`` (K, head + 1) (weights, then the
bias; normalised units: multiply by ``norm.out_scale[3]`` for radians). The MPC's dynamics use it with
``turn: expected`` (planners/mpc.yaml).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robot_wm.model.training_data import Prepared, prepare, split_by_episode

RIDGE = 100.0  # ridge penalty on the readout weights (not the bias), in squared normalised units x rows
VAL_FRACTION = 0.2  # episodes held out to report how well the readout predicts, before the final fit on all
BIG_TURN_DEG = 10.0  # turns at least this large are reported on their own
CHUNK = 4096  # transitions per forward pass


def member_hidden(model, p: Prepared) -> torch.Tensor:
    """The members' hidden layers (T, N, K, head) of `model` (a WorldModel) on prepared transitions `p`."""
    net, norm = model.net, model.norm
    out = []
    with torch.no_grad():
        for lo in range(0, len(p), CHUNK):
            sl = slice(lo, lo + CHUNK)
            x = (p.feats[sl] - norm.feat_mean) / norm.feat_std
            b, n, _ = x.shape
            z = net.decoder_hidden(x, p.rel[sl], p.mask[sl], p.target[sl])
            out.append(z.reshape(b, n, net.k, net.head))
    return torch.cat(out) if out else torch.zeros(0, 0, net.k, net.head)


def has_turn_target(p: Prepared) -> torch.Tensor:
    """(T, N) bool: real objects whose yaw change is a target (not a cylinder or a sphere: their yaw is
    unobservable; the same rule as the training loss)."""
    return p.mask & ((1.0 - p.feats[..., 15] - p.feats[..., 16]) > 0.5)


def expected_turn(readout: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Each member's expected yaw change (..., K) in normalised units from hidden layers z (..., K, head)
    and a readout (K, head + 1)."""
    r = readout.to(z.dtype)
    return (z * r[:, :-1]).sum(-1) + r[:, -1]


def _ridge(z: torch.Tensor, y: torch.Tensor, ridge: float) -> torch.Tensor:
    """Ridge least squares (head + 1,) of y (S,) on [z, 1] (S, head), the bias unpenalised (float64)."""
    x = torch.cat([z.double(), torch.ones(len(z), 1, dtype=torch.float64)], 1)
    a = x.T @ x + ridge * torch.diag(torch.cat([torch.ones(z.shape[1]), torch.zeros(1)]).double())
    return torch.linalg.solve(a, x.T @ y.double())


def _fit(z: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, ridge: float) -> torch.Tensor:
    """Readout (K, head + 1) from hidden layers z (T, N, K, head), targets y (T, N), rows (T, N) bool."""
    zs, ys = z[rows], y[rows]  # (S, K, head), (S,)
    return torch.stack([_ridge(zs[:, k], ys, ridge) for k in range(z.shape[2])]).float()


def _scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Agreement of predicted and true yaw changes (deg): median / mean absolute error, correlation, the
    least-squares slope of true on predicted (1 = calibrated; > 1: turns predicted too small) and the
    mean error on turns of at least BIG_TURN_DEG."""
    big = np.abs(true) >= BIG_TURN_DEG
    denom = float(np.sum(pred * pred))
    return {"median_abs_err_deg": float(np.median(np.abs(pred - true))),
            "mean_abs_err_deg": float(np.mean(np.abs(pred - true))),
            "corr": float(np.corrcoef(pred, true)[0, 1]) if np.std(pred) > 0 and np.std(true) > 0 else 0.0,
            "slope_true_on_pred": float(np.sum(pred * true) / denom) if denom > 0 else 0.0,
            "big_turn_mean_abs_err_deg": float(np.mean(np.abs(pred[big] - true[big]))) if big.any() else 0.0}


def fit_turn_readout(model, data: dict[str, np.ndarray], ridge: float = RIDGE, seed: int = 0
                     ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Fit the expected-turn readout (K, head + 1) of `model` (a WorldModel, frozen) on collected arrays
    `data` (:func:`robot_wm.model.dataset.load_dataset`, cleaned). First on all but a seeded VAL_FRACTION
    of the episodes, to report on those how the expected turn and the network's own (mode) yaw output
    predict the yaw change (:func:`_scores`, deg, per object with a yaw; "targets": the pushed objects only;
    no-motion for reference); then on every episode (the returned readout). ValueError without pushes."""
    p = prepare(data)
    push = (p.grasp < 0).nonzero().squeeze(1).numpy()
    if len(push) == 0:
        raise ValueError("no push transitions to fit the expected turn on")
    p = p.subset(push, grasp_inputs=False)
    z = member_hidden(model, p)
    y = p.y[..., 3] / model.norm.out_scale[3]
    rows = has_turn_target(p)
    tr, va = split_by_episode(p.episode, VAL_FRACTION, np.random.default_rng(seed))
    info: dict[str, Any] = {"ridge": ridge, "seed": seed, "pushes": int(len(p)), "objects": int(rows.sum()),
                            "val_fraction": VAL_FRACTION}
    if len(tr) and len(va):
        in_tr = torch.zeros(len(p), dtype=torch.bool)
        in_tr[torch.as_tensor(tr)] = True
        part = _fit(z, y, rows & in_tr[:, None], ridge)
        t, n = z.shape[:2]
        with torch.no_grad():  # the network's own (mode) yaw, from the same hidden layers: (T, N) ensemble mean
            mode = model.net.member_outputs(z.reshape(t * n, -1), t, n)[..., 3].mean(0)
        expected = expected_turn(part, z).mean(-1)
        deg = float(model.norm.out_scale[3]) * 180.0 / np.pi
        for name, sel in (("objects", rows & ~in_tr[:, None]), ("targets", rows & ~in_tr[:, None] & (p.target > 0.5))):
            true = y[sel].numpy() * deg
            info[f"val_{name}"] = {"n": int(sel.sum()), "no_motion_median_abs_deg": float(np.median(np.abs(true))),
                                   "mode": _scores(mode[sel].numpy() * deg, true),
                                   "expected": _scores(expected[sel].numpy() * deg, true)}
    readout = _fit(z, y, rows, ridge)
    return readout, info


__all__ = ["expected_turn", "fit_turn_readout", "has_turn_target", "member_hidden"]
