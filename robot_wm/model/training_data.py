"""Training tensors from collected arrays (:mod:`robot_wm.model.dataset`): per-object features in the
action frame, action-frame pose-delta targets, grasp-head inputs; the normalisation fitted on them; the
mirror augmentation; the split of episodes into training and validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from robot_wm.model.dataset import target_descriptors
from robot_wm.model.grasp_head import N_GRASP_IN, flip_grasp_features, grasp_features
from robot_wm.model.network import N_DELTA, action_frame_features
from robot_wm.model.state import GRASP
from robot_wm.model.world_model import Normalisation


def delta_targets(before: np.ndarray, after: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Action-frame deltas (T, N, 4): (dx, dy along / across the action heading, dz, dyaw) in m, rad.
    dyaw is the rotation about world z of after * before^-1 (wrapped to (-pi, pi])."""
    T, N, _ = before.shape
    dp = after[..., :3] - before[..., :3]
    yaw = actions[:, 4][:, None]
    c, s = np.cos(yaw), np.sin(yaw)
    out = np.zeros((T, N, 4), np.float32)
    out[..., 0] = c * dp[..., 0] + s * dp[..., 1]
    out[..., 1] = -s * dp[..., 0] + c * dp[..., 1]
    out[..., 2] = dp[..., 2]
    r_rel = Rotation.from_quat(after[..., 3:7].reshape(-1, 4)) * Rotation.from_quat(before[..., 3:7].reshape(-1, 4)).inv()
    m = r_rel.as_matrix()
    out[..., 3] = np.arctan2(m[:, 1, 0], m[:, 0, 0]).reshape(T, N)
    return out


@dataclass
class Prepared:
    """Tensors for training: features (T, N, F), rel (T, N, 3), target (T, N), mask (T, N),
    y (T, N, 4) action-frame deltas, grasp (T,) 1/0 for grasps and -1 for pushes, episode (T,),
    gx (T, N_GRASP_IN) grasp-head inputs (zeros for pushes)."""

    feats: torch.Tensor
    rel: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor
    grasp: torch.Tensor
    episode: np.ndarray
    gx: torch.Tensor

    def subset(self, idx: np.ndarray, grasp_inputs: bool = True) -> Prepared:
        """Rows `idx`; without `grasp_inputs` the grasp head's (large) inputs are left out (0 rows)."""
        t = torch.as_tensor(idx)
        return Prepared(self.feats[t], self.rel[t], self.target[t], self.mask[t], self.y[t], self.grasp[t],
                        self.episode[idx], self.gx[t] if grasp_inputs else self.gx[:0])

    def __len__(self) -> int:
        return len(self.feats)


def prepare(data: dict[str, np.ndarray]) -> Prepared:
    """Features and targets from collected arrays (before, after, mask, action, grasp_ok, episode)."""
    before = torch.as_tensor(data["before"], dtype=torch.float32)
    mask = torch.as_tensor(data["mask"], dtype=torch.bool)
    actions = torch.as_tensor(data["action"], dtype=torch.float32)
    feats, rel, target = action_frame_features(before, mask, actions)
    y = torch.as_tensor(delta_targets(data["before"], data["after"], data["action"]))
    y = y * mask[..., None]
    grasp = torch.as_tensor(np.where(data["action"][:, 0] == GRASP, data["grasp_ok"], -1), dtype=torch.float32)
    gx = torch.zeros(len(actions), N_GRASP_IN)
    rows = np.flatnonzero(data["action"][:, 0] == GRASP)
    for lo in range(0, len(rows), 2048):  # descriptors are large: a chunk at a time
        r = rows[lo:lo + 2048]
        tr = torch.as_tensor(r)
        obj = before[tr, torch.as_tensor(data["target"][r].astype(np.int64))]
        # no descriptors recorded: None = the filled bounding boxes
        desc = torch.as_tensor(target_descriptors(data, r)) if "ep_shape_occ" in data else None
        gx[tr] = grasp_features(obj, desc, actions[tr])
    return Prepared(feats, rel, target, mask, y, grasp, np.asarray(data["episode"]), gx)


def fit_normalisation(p: Prepared) -> Normalisation:
    """Feature mean and std (F,) over the real object slots of `p` (0/1 flag and one-hot columns, and
    constant ones, left as they are: mean 0, std 1) and the output scale (N_DELTA,): the std of the
    action-frame deltas (at least 1e-4)."""
    m = p.mask.reshape(-1)
    f = p.feats.reshape(-1, p.feats.shape[-1])[m]
    mean, std = f.mean(0), f.std(0)
    binary = ((f == 0) | (f == 1)).all(0)  # one-hot / flag columns stay as they are
    mean = torch.where(binary, torch.zeros_like(mean), mean)
    std = torch.where(binary | (std < 1e-6), torch.ones_like(std), std)
    y = p.y.reshape(-1, N_DELTA)[m]
    scale = y.std(0).clamp_min(1e-4)
    return Normalisation(mean, std, scale)


MIRROR_FEATURES = (1, 5, 7, 9, 20, 24)  # action-frame features that change sign under y -> -y (network.py)


def mirror(p: Prepared, flip: torch.Tensor, flip_u: torch.Tensor | None = None) -> Prepared:
    """Reflect the transitions where `flip` (B,) is True about the action's heading (y -> -y in the
    action frame): physics is mirror-symmetric, so the reflected scene's outcome is the reflected
    outcome (lateral motion and yaw change flip sign). A free 2x data augmentation. `flip_u` (B,)
    additionally reflects the grasp head's inputs about the closing axis's u = 0 plane (the gripper is
    symmetric: same label)."""
    sign = 1.0 - 2.0 * flip.to(p.feats.dtype)
    fs = torch.ones(p.feats.shape[-1])
    fs[list(MIRROR_FEATURES)] = -1.0
    col = torch.where(fs < 0, sign[:, None, None], torch.ones(1))  # (B, 1, F)
    feats = p.feats * col
    rel = p.rel * torch.stack([torch.ones_like(sign), sign, torch.ones_like(sign)], -1)[:, None, :]
    y = p.y * torch.stack([torch.ones_like(sign), sign, torch.ones_like(sign), sign], -1)[:, None, :]
    gx = p.gx if not len(p.gx) else flip_grasp_features(p.gx, torch.zeros_like(flip) if flip_u is None else flip_u,
                                                        flip)
    return Prepared(feats, rel, p.target, p.mask, y, p.grasp, p.episode, gx)


def split_by_episode(episodes: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): whole episodes go to validation."""
    uniq = np.unique(episodes)
    n_val = max(1, int(round(fraction * len(uniq)))) if len(uniq) > 1 else 0
    val_eps = set(rng.choice(uniq, n_val, replace=False).tolist()) if n_val else set()
    is_val = np.array([e in val_eps for e in episodes])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
