"""``bench model``'s accuracy metrics of a world model (and of the analytic baselines) on collected
transitions (the arrays of :mod:`robot_wm.model.dataset`): push position / rotation errors against
no-motion and kinematic follow, neighbours, the PyBullet oracle, uncertainty vs error, grasp AUC / ECE per
sampling mode, open-loop rollouts."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

from robot_wm.model.dataset import GRASP_MODES, transition_descriptors
from robot_wm.model.network import action_frame_features
from robot_wm.model.state import GRASP, PUSH, TILT, rotation_error_deg
from robot_wm.model.world_model import WorldModel

MOVED = 0.002  # m: an untouched object displaced more than this counts as a moved neighbour


def follow_baseline(before: np.ndarray, mask: np.ndarray, actions: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Kinematic follow: the aimed-at object translates with the pusher's displacement after contact
    (travel minus the free gap to its bounding box, along the heading); nothing else moves. (T, N, 15)."""
    feats, _, _ = action_frame_features(torch.as_tensor(before), torch.as_tensor(mask), torch.as_tensor(actions))
    gap = feats[..., 18].numpy()  # see network.action_frame_features: column 18 = gap
    out = before.copy()
    t = np.arange(len(before))
    move = np.clip(actions[:, 5] - gap[t, target], 0.0, None)
    is_push = actions[:, 0] == PUSH
    out[t, target, 0] += np.where(is_push, move * np.cos(actions[:, 4]), 0.0)
    out[t, target, 1] += np.where(is_push, move * np.sin(actions[:, 4]), 0.0)
    return out


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error with equal-width bins."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic; ties count half)."""
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def evaluate(model: WorldModel, data: dict[str, np.ndarray], oracle_after: dict[int, np.ndarray] | None = None
             ) -> dict[str, float]:
    """All accuracy fields of ``bench model`` on a data set (arrays of :mod:`robot_wm.model.dataset`).

    `oracle_after` maps transition index -> states (N, 15) re-simulated with the true parameters.
    """
    before, after, mask, act = data["before"], data["after"], data["mask"], data["action"]
    tgt = data["target"].astype(int)
    pred, _, std = model.predict(before, act, mask)  # grasps: grasp_metrics (with shape descriptors)
    t = np.arange(len(act))
    push = act[:, 0] == PUSH
    err = np.linalg.norm(pred[..., :3] - after[..., :3], axis=-1) * 1000  # mm (T, N)
    nomo = np.linalg.norm(before[..., :3] - after[..., :3], axis=-1) * 1000
    fol = np.linalg.norm(follow_baseline(before, mask, act, tgt)[..., :3] - after[..., :3], axis=-1) * 1000
    rot = rotation_error_deg(pred[t, tgt, 3:7], after[t, tgt, 3:7])
    out: dict[str, float] = {}
    pt = push
    out["n_push"] = int(pt.sum())
    out["push_pos_err_mm_median"] = float(np.median(err[t, tgt][pt]))
    out["push_pos_err_mm_p90"] = float(np.percentile(err[t, tgt][pt], 90))
    out["no_motion_pos_err_mm_median"] = float(np.median(nomo[t, tgt][pt]))
    out["follow_pos_err_mm_median"] = float(np.median(fol[t, tgt][pt]))
    out["push_rot_err_deg_median"] = float(np.median(rot[pt]))
    out["no_motion_rot_err_deg_median"] = float(np.median(rotation_error_deg(before[t, tgt, 3:7], after[t, tgt, 3:7])[pt]))
    for part, rows in (("flat", pt & (act[:, TILT] == 0)), ("tilted", pt & (act[:, TILT] != 0))):
        out[f"n_push_{part}"] = int(rows.sum())  # pads' face square to the push / turned (robot_wm.model.state)
        out[f"push_pos_err_mm_median_{part}"] = float(np.median(err[t, tgt][rows])) if rows.any() else float("nan")
        out[f"push_rot_err_deg_median_{part}"] = float(np.median(rot[rows])) if rows.any() else float("nan")
        out[f"no_motion_rot_err_deg_median_{part}"] = float(np.median(rotation_error_deg(
            before[t, tgt, 3:7], after[t, tgt, 3:7])[rows])) if rows.any() else float("nan")
    neigh = mask & ~data["touched"] & (nomo > MOVED * 1000) & push[:, None]
    neigh[t, tgt] = False
    out["n_neighbours_moved"] = int(neigh.sum())
    out["neighbour_pos_err_mm_median"] = float(np.median(err[neigh])) if neigh.any() else float("nan")
    out["neighbour_no_motion_err_mm_median"] = float(np.median(nomo[neigh])) if neigh.any() else float("nan")
    if oracle_after:
        idx = np.array(sorted(oracle_after))
        orc = np.stack([oracle_after[i] for i in idx])
        oe = np.linalg.norm(orc[np.arange(len(idx)), tgt[idx], :3] - after[idx, tgt[idx], :3], axis=-1) * 1000
        out["oracle_pos_err_mm_median"] = float(np.median(oe))
        out["model_pos_err_mm_median_on_oracle_subset"] = float(np.median(err[idx, tgt[idx]]))
        out["n_oracle"] = len(idx)
    # uncertainty vs error on pushes (aimed-at object)
    s = np.linalg.norm(std[t, tgt, :3], axis=-1)
    rho = spearmanr(s[pt], err[t, tgt][pt]).statistic if pt.sum() > 2 else float("nan")
    out["uncertainty_error_spearman"] = float(rho)
    out |= grasp_metrics(model, data)
    out |= rollout_errors(model, data)
    return out


def grasp_metrics(model: WorldModel, data: dict[str, np.ndarray]) -> dict[str, float]:
    """P(stable) of the grasps against their shake-test labels: AUC, ECE, base rate, per sampling mode;
    and the same model told only the bounding boxes (no shape descriptors) as an ablation."""
    g = np.flatnonzero((data["action"][:, 0] == GRASP) & (data["grasp_ok"] >= 0))
    out: dict[str, float] = {"n_grasp": len(g)}
    if not len(g):
        return out | {k: float("nan") for k in ("grasp_success_rate", "grasp_auc", "grasp_ece")}
    y = data["grasp_ok"][g].astype(int)
    args = (data["before"][g], data["action"][g], data["mask"][g])
    shapes = transition_descriptors(data, g) if "ep_shape_occ" in data else None
    p = model.predict(*args, shapes=shapes)[1]
    p_box = model.predict(*args)[1]
    out |= {"grasp_success_rate": float(y.mean()), "grasp_auc": auc(p, y), "grasp_ece": ece(p, y),
            "grasp_brier": float(np.mean((p - y) ** 2)), "grasp_auc_box_only": auc(p_box, y)}
    if "grasp_mode" in data:
        for m, name in enumerate(GRASP_MODES):
            sel = data["grasp_mode"][g] == m
            out[f"grasp_auc_{name}"] = auc(p[sel], y[sel]) if sel.any() else float("nan")
            out[f"n_grasp_{name}"] = int(sel.sum())
            out[f"grasp_success_rate_{name}"] = float(y[sel].mean()) if sel.any() else float("nan")
    return out


def rollout_errors(model: WorldModel, data: dict[str, np.ndarray], horizon: int = 5) -> dict[str, float]:
    """Open-loop rollouts of `horizon` consecutive pushes (steps 0..h-1 of an episode, all executed):
    median final position error (mm) over all objects, model and no-motion."""
    ep, step, act = data["episode"], data["step"], data["action"]
    starts = []
    for e in np.unique(ep):
        idx = np.flatnonzero(ep == e)
        idx = idx[np.argsort(step[idx])]
        if len(idx) >= horizon and np.array_equal(step[idx[:horizon]], np.arange(horizon)) and \
                np.all(act[idx[:horizon], 0] == PUSH):
            starts.append(idx[:horizon])
    if not starts:
        return {"rollout5_pos_err_mm_median": float("nan"), "n_rollouts": 0}
    seq = np.stack(starts)  # (R, h)
    s = data["before"][seq[:, 0]].copy()
    mask = data["mask"][seq[:, 0]]
    for h in range(horizon):
        s, _, _ = model.predict(s, act[seq[:, h]], mask)
    final = data["after"][seq[:, -1]]
    e = np.linalg.norm(s[..., :3] - final[..., :3], axis=-1)[mask] * 1000
    e0 = np.linalg.norm(data["before"][seq[:, 0]][..., :3] - final[..., :3], axis=-1)[mask] * 1000
    return {"rollout5_pos_err_mm_median": float(np.median(e)), "rollout5_no_motion_err_mm_median": float(np.median(e0)),
            "n_rollouts": len(seq)}
