"""Training the ensemble world model on collected transitions: seeded, early-stopped, with a
validation-curve PNG. Data: the arrays of :mod:`robot_wm.model.collect`."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from robot_wm.model.collect import target_descriptors
from robot_wm.model.grasp_head import N_GRASP_IN, GraspHead, flip_grasp_features, grasp_features
from robot_wm.model.network import (
    LOGVAR_MAX,
    LOGVAR_MIN,
    N_DELTA,
    EnsembleInteractionNet,
    action_frame_features,
)
from robot_wm.model.state import GRASP
from robot_wm.model.world_model import Normalisation, WorldModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters. `max_minutes` bounds wall time (the best epoch so far is kept)."""

    k: int = 5
    hidden: int = 16  # 16/8/8 validates as well as 32/16/12 (push loss 2.335 vs 2.327) at 1.6x the speed
    edge: int = 8
    head: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-5
    batch: int = 256
    max_epochs: int = 200
    patience: int = 40
    val_fraction: float = 0.1
    target_weight: float = 4.0  # loss weight of the object the action aims at
    grasp_weight: float = 0.3
    grasp_hidden: int = 32
    max_minutes: float = 8.0
    mirror: bool = True  # reflection augmentation (see mirror())
    huber_delta: float = 0.3  # position deltas, normalised units; small = median regression
    huber_delta_yaw: float = 0.1  # yaw delta (used when yaw_cauchy = 0)
    # yaw delta: mode-seeking Cauchy loss log(1 + (r / c)^2), c in normalised units (0: Huber). The yaw
    # change is mostly unpredictable from a box (a spike near 0 plus wide tails): a mean or median fit
    # lands between the modes and is worse than "no turn"; the Cauchy fit follows the dominant mode.
    yaw_cauchy: float = 0.1
    threads: int = 1


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
    m = p.mask.reshape(-1)
    f = p.feats.reshape(-1, p.feats.shape[-1])[m]
    mean, std = f.mean(0), f.std(0)
    binary = ((f == 0) | (f == 1)).all(0)  # one-hot / flag columns stay as they are
    mean = torch.where(binary, torch.zeros_like(mean), mean)
    std = torch.where(binary | (std < 1e-6), torch.ones_like(std), std)
    y = p.y.reshape(-1, N_DELTA)[m]
    scale = y.std(0).clamp_min(1e-4)
    return Normalisation(mean, std, scale)


def grasp_logits(head: GraspHead, p: Prepared, symmetric: bool = False) -> torch.Tensor:
    """Per-member grasp logits (K, B) of the grasp head (computed on the grasp rows only; 0 for pushes);
    `symmetric`: averaged over the grasps' four reflections, as predict does (validation)."""
    logit = torch.zeros(head.k, len(p.grasp))
    g = (p.grasp >= 0).nonzero().squeeze(1)
    if len(g):
        x = p.gx.index_select(0, g)
        logit = logit.index_copy(1, g, head.symmetric(x) if symmetric else head(x))
    return logit


def losses(net: EnsembleInteractionNet, head: GraspHead, norm: Normalisation, p: Prepared, cfg: TrainConfig,
           weights: torch.Tensor | None = None, symmetric: bool = False, grasp: bool = True
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-member losses (K,) over a batch: total, delta part (pushes), grasp part (grasps; zeros when not
    `grasp`: the head is not run). `weights` (K, B) bootstrap; `symmetric`: grasp logits as predict makes
    them (validation)."""
    w = torch.ones(net.k, len(p.grasp)) if weights is None else weights
    d = push_loss(net, norm, p, cfg, w)
    if not grasp:
        return d, d, torch.zeros_like(d)
    is_g = (p.grasp >= 0).to(p.feats.dtype)
    logit = grasp_logits(head, p, symmetric)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logit, p.grasp.clamp_min(0).expand_as(logit), reduction="none") * is_g
    g = (bce * w).sum(-1) / (is_g * w).sum(-1).clamp_min(1e-6)
    return d + cfg.grasp_weight * g, d, g


def push_loss(net: EnsembleInteractionNet, norm: Normalisation, p: Prepared, cfg: TrainConfig,
              w: torch.Tensor) -> torch.Tensor:
    """Per-member pose-delta loss (K,) of the batch's pushes, weighted by `w` (K, B); zeros without pushes.
    The network runs on the push rows only: a grasp's outcome state is fixed (lifted on success), so
    grasps have no delta loss (most rows are grasps: most of an epoch's time saved)."""
    pi = (p.grasp < 0).nonzero().squeeze(1)
    if len(pi) == 0:  # e.g. a short last batch of grasps only
        return torch.zeros(w.shape[0])
    feats, mask, target = p.feats.index_select(0, pi), p.mask.index_select(0, pi), p.target.index_select(0, pi)
    x = (feats - norm.feat_mean) / norm.feat_std
    out = net(x, p.rel.index_select(0, pi), mask, target)  # (K, P, N, 9)
    y = p.y.index_select(0, pi) / norm.out_scale
    mu = out[..., :N_DELTA]
    per_obj = torch.nn.functional.huber_loss(mu[..., :3], y[..., :3].expand_as(mu[..., :3]), reduction="none",
                                             delta=cfg.huber_delta).sum(-1) / cfg.huber_delta
    # the yaw of a cylinder or sphere is unobservable and physically arbitrary: no yaw target for them
    has_yaw = 1.0 - feats[..., 15] - feats[..., 16]
    if cfg.yaw_cauchy > 0:
        yaw_loss = torch.log1p(((mu[..., 3] - y[..., 3]) / cfg.yaw_cauchy) ** 2)
    else:
        yaw_loss = torch.nn.functional.huber_loss(mu[..., 3], y[..., 3].expand_as(mu[..., 3]), reduction="none",
                                                  delta=cfg.huber_delta_yaw) / cfg.huber_delta_yaw
    per_obj = per_obj + has_yaw * yaw_loss
    # noise model: Gaussian NLL of the (detached) mean's residual, log-variance bounded
    logvar = out[..., N_DELTA:2 * N_DELTA].clamp(LOGVAR_MIN, LOGVAR_MAX)
    resid2 = (y - mu.detach()) ** 2
    per_obj = per_obj + 0.5 * (resid2 * torch.exp(-logvar) + logvar).sum(-1) * 0.1  # (K, P, N)
    w_obj = mask.to(x.dtype) * (1 + (cfg.target_weight - 1) * target)
    per_tr = (per_obj * w_obj).sum(-1) / w_obj.sum(-1).clamp_min(1.0)  # (K, P)
    wd = w.index_select(1, pi)
    return (per_tr * wd).sum(-1) / wd.sum(-1).clamp_min(1e-6)


MIRROR_FEATURES = (1, 5, 7, 9, 20)  # action-frame features that change sign under y -> -y (network.py)


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


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature T minimising the NLL of sigmoid(logit / T) (grid search; 1.0 without data)."""
    if len(labels) < 10 or labels.min() == labels.max():
        return 1.0
    best, best_t = math.inf, 1.0
    for t in np.exp(np.linspace(-1.5, 2.0, 71)):
        z = logits / t
        nll = float(np.mean(labels * np.logaddexp(0.0, -z) + (1 - labels) * np.logaddexp(0.0, z)))
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def train(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int = 0,
          progress: Callable[[int, float, float], None] | None = None,
          val_episodes: set[int] | None = None, refit_epochs: tuple[int, int] | None = None,
          temperature: float = 1.0,
          on_epoch: Callable[[int, torch.nn.Module, torch.nn.Module], bool] | None = None,
          head_epochs: Callable[[], int | None] | None = None,
          on_head_done: Callable[[int], None] | None = None,
          ) -> tuple[WorldModel, dict]:
    """Train a WorldModel. Same data + config + seed -> same weights (single-process torch).

    `val_episodes`: the episodes to validate on (early stopping, grasp temperature); by default a
    random `cfg.val_fraction` of the episodes. Choosing episodes whose objects never occur in training
    (see :func:`robot_wm.model.collect.unseen_object_episodes`) makes both reflect new objects.

    `refit_epochs` = (push network epochs, grasp head epochs): no validation; train on every episode and
    keep each part's weights after its number of epochs (chosen by a validated run, see
    :func:`train_and_refit`), with the given grasp `temperature`.

    The grasp head converges in a few tens of epochs, the push network in hundreds; they share no
    parameters (each has its own AdamW state), so once the head is done it is no longer run: validated, when
    its validation BCE has not improved for `cfg.patience` epochs (then `on_head_done(its chosen epoch
    count)` is called); refitting, after `refit_epochs[1]` epochs, or once `head_epochs()` returns a count
    that has been reached. The push network's weights do not change by it (same batches and draws).

    `progress(epoch, train_loss, val_loss)` is called after each epoch (val_loss NaN when refitting);
    `on_epoch(epoch, net, head)` too, with the weights after that epoch: True stops training there.
    Returns (model, history) with history = {"train": [...], "val": [...], "best_epoch": int, ...}.
    """
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    seed_net, seed_head = (int(v) for v in rng.integers(2**62, size=2))  # nn.Linear default inits
    p = prepare(data)
    if refit_epochs:
        tr_idx, va_idx = np.arange(len(p)), np.zeros(0, int)
    elif val_episodes:
        is_val = np.isin(p.episode, np.fromiter(val_episodes, int))
        tr_idx, va_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    else:
        tr_idx, va_idx = split_by_episode(p.episode, cfg.val_fraction, rng)
    ptr = p.subset(tr_idx)
    pva = p.subset(va_idx) if len(va_idx) else ptr
    norm = fit_normalisation(ptr)
    # each part's initial weights from its own seed: resizing one does not change the other's
    torch.manual_seed(seed_net)
    net = EnsembleInteractionNet(cfg.k, cfg.hidden, cfg.edge, cfg.head)
    torch.manual_seed(seed_head)
    head = GraspHead(cfg.k, cfg.grasp_hidden)
    if (ptr.grasp >= 0).any():
        head.fit_input_scale(ptr.gx[ptr.grasp >= 0])
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.max_epochs, eta_min=cfg.lr * 0.05)
    boot = torch.poisson(torch.ones(cfg.k, len(ptr)), generator=gen)  # bootstrap weights per member
    hist: dict = {"train": [], "val": [], "val_delta": [], "val_grasp": []}
    # the push network and the grasp head share no parameters: each keeps its own best epoch (validation
    # pose-delta loss, validation grasp BCE); training stops when neither has improved for `patience` epochs
    best, best_state, best_epoch = math.inf, None, -1
    best_g, best_head, best_epoch_g = math.inf, None, -1
    bad = bad_g = 0
    head_on, head_stopped = True, None
    t0 = time.time()
    for epoch in range(max(refit_epochs) if refit_epochs else cfg.max_epochs):
        net.train()
        head.train()
        perm = torch.randperm(len(ptr), generator=gen)
        tot, nb = 0.0, 0
        for i in range(0, len(ptr), cfg.batch):
            bi = perm[i:i + cfg.batch]
            batch = ptr.subset(bi.numpy(), grasp_inputs=head_on)
            if cfg.mirror:
                flips = torch.rand(2, len(bi), generator=gen) < 0.5
                batch = mirror(batch, flips[0], flips[1])
            loss, _, _ = losses(net, head, norm, batch, cfg, boot[:, bi], grasp=head_on)
            # zeros, not None: a part that a batch does not reach (no pushes in it) still takes its optimiser
            # step (momentum, weight decay) with a zero gradient, as when every row went through both parts
            # (a finished head's gradients are None: AdamW skips it)
            opt.zero_grad(set_to_none=False)
            loss.sum().backward()
            opt.step()
            tot += float(loss.detach().mean())
            nb += 1
        sched.step()
        net.eval()
        head.eval()
        hist["train"].append(tot / max(nb, 1))
        if refit_epochs:  # no validation: keep each part after its chosen number of epochs
            val, keep_net, keep_head = math.nan, epoch + 1 == refit_epochs[0], epoch + 1 == refit_epochs[1]
        else:
            with torch.no_grad():  # a finished head no longer changes: its validation loss is not recomputed
                _, vd, vg = losses(net, head, norm, pva, cfg, symmetric=True, grasp=head_on)
            hist["val_delta"].append(float(vd.mean()))
            hist["val_grasp"].append(float(vg.mean()) if head_on else hist["val_grasp"][-1])
            val = hist["val_delta"][-1] + cfg.grasp_weight * hist["val_grasp"][-1]
            hist["val"].append(val)
            keep_net = hist["val_delta"][-1] < best - 1e-5
            keep_head = head_on and hist["val_grasp"][-1] < best_g - 1e-5
            if keep_net:
                best = hist["val_delta"][-1]
            if keep_head:
                best_g = hist["val_grasp"][-1]
            bad = 0 if keep_net or keep_head else bad + 1
            bad_g = 0 if keep_head else bad_g + 1
        if progress:
            progress(epoch, hist["train"][-1], val)
        if keep_net:
            best_epoch, best_state = epoch, {k: v.clone() for k, v in net.state_dict().items()}
        if keep_head:
            best_epoch_g, best_head = epoch, {k: v.clone() for k, v in head.state_dict().items()}
        if head_on:
            if refit_epochs:
                limit = head_epochs() if head_epochs else None
                done = epoch + 1 >= (refit_epochs[1] if limit is None else min(limit, refit_epochs[1]))
            else:
                done = bad_g >= cfg.patience and best_head is not None
            if done:
                head_on, head_stopped = False, epoch + 1
                for prm in head.parameters():
                    prm.grad = None
                if on_head_done and not refit_epochs:
                    on_head_done(best_epoch_g + 1)
        if on_epoch is not None and on_epoch(epoch, net, head):
            break
        if bad >= cfg.patience:
            log.info("early stop at epoch %d (best %d / grasp %d)", epoch, best_epoch, best_epoch_g)
            break
        if time.time() - t0 > cfg.max_minutes * 60:
            log.info("time budget reached at epoch %d", epoch)
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    if best_head is not None:
        head.load_state_dict(best_head)
    net.eval()
    head.eval()
    if not refit_epochs:
        with torch.no_grad():
            logit = grasp_logits(head, pva, symmetric=True).mean(0).numpy()
        g = pva.grasp.numpy() >= 0
        temperature = fit_temperature(logit[g], pva.grasp.numpy()[g])
    hist |= {"best_epoch": best_epoch, "best_epoch_grasp": best_epoch_g, "epochs": len(hist["train"]),
             "grasp_head_trained_epochs": head_stopped or len(hist["train"]),
             "wall_s": round(time.time() - t0, 1),
             "n_train": len(tr_idx), "n_val": len(va_idx), "temperature": temperature}
    info = {"config": asdict(cfg), "seed": seed, "best_epoch": best_epoch, "best_epoch_grasp": best_epoch_g,
            "best_val_delta_loss": None if refit_epochs else best, "best_val_grasp_bce": None if refit_epochs else best_g,
            "n_train": len(tr_idx), "n_val": len(va_idx), "n_grasps": int((p.grasp >= 0).sum())}
    return WorldModel(net, norm, temperature, info, head), hist


def train_and_refit(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int = 0,
                    progress: Callable[[int, float, float], None] | None = None,
                    val_episodes: set[int] | None = None, parallel: bool | None = None
                    ) -> tuple[WorldModel, dict]:
    """Train with validation (early stopping per part, grasp temperature), then train again from the
    same initial weights on every episode — the validation episodes' objects too — for the epochs the
    validated run chose (refit after model selection). Returns the refitted model, whose ``info`` keeps
    the validated run's record under ``"validated"``, and the validated run's history (with ``"refit"``:
    the refit's epochs, counts and time). `parallel` (default: when there are 2 or more CPUs): run the
    refit in a second process at the same time as the validated run (same weights, about half the time)."""
    if parallel is None:
        parallel = (os.cpu_count() or 1) >= 2
    if not parallel:
        model, hist = train(data, cfg, seed, progress, val_episodes)
        epochs = _chosen_epochs(hist)
        if epochs is None:
            return model, hist
        final, h2 = train(data, cfg, seed, progress, refit_epochs=epochs, temperature=model.temperature)
        return _refitted(final, model, hist, epochs, h2["n_train"], h2["wall_s"]), hist
    # In parallel: the refit's weights after epoch e do not depend on how many epochs it will run (same
    # seeds, batches and schedule), so a second process trains on every episode while this one validates,
    # keeping a copy of its weights after each epoch, and hands over those of the epochs validation chose.
    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    proc = ctx.Process(target=_refit_process, args=(data, cfg, seed, child_conn), daemon=True)
    proc.start()
    child_conn.close()  # the child's end lives in the child only: if the child dies, recv() ends, not hangs
    try:
        # the grasp head's epochs are known long before the push network's: the refit stops its head then too
        model, hist = train(data, cfg, seed, progress, val_episodes,
                            on_head_done=lambda e: _send(conn, ("head", e)))
        epochs = _chosen_epochs(hist)
        try:
            conn.send(("epochs", epochs))
            if epochs is None:
                return model, hist
            net_state, head_state, norm, info, wall_s = conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            proc.join(timeout=10)
            raise RuntimeError(f"the refit process ended without a result (exit code {proc.exitcode})") from None
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.terminate()
    final = WorldModel(EnsembleInteractionNet(cfg.k, cfg.hidden, cfg.edge, cfg.head), Normalisation(**_torch(norm)),
                       model.temperature, info, GraspHead(cfg.k, cfg.grasp_hidden))
    final.net.load_state_dict(_torch(net_state))
    final.grasp_head.load_state_dict(_torch(head_state))
    return _refitted(final, model, hist, epochs, info["n_train"], wall_s), hist


def _chosen_epochs(hist: dict) -> tuple[int, int] | None:
    """(push network, grasp head) epochs a validated run chose, None when it could not choose."""
    if not hist["n_val"] or hist["best_epoch"] < 0 or hist["best_epoch_grasp"] < 0:
        return None
    return hist["best_epoch"] + 1, hist["best_epoch_grasp"] + 1


def _refitted(final: WorldModel, validated: WorldModel, hist: dict, epochs: tuple[int, int], n_train: int,
              wall_s: float) -> WorldModel:
    final.info = {**final.info, "refit_epochs": list(epochs), "validated": validated.info}
    hist["refit"] = {"epochs": list(epochs), "n_train": n_train, "wall_s": wall_s}
    return final


def _send(conn, message: tuple) -> None:
    try:
        conn.send(message)
    except (BrokenPipeError, ConnectionResetError):  # the refit died: reported when its result is read
        pass


def _refit_process(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int, conn) -> None:
    """Child of :func:`train_and_refit`: train on every episode, a copy of the weights after each epoch,
    until the parent's chosen epochs (or None: stop) have been reached; send back those weights.
    Messages from the parent: ("head", grasp head epochs) as soon as the validated run's head is done (the
    head stops training here too), then ("epochs", (push network, grasp head) or None)."""
    snaps: dict[int, tuple[dict, dict]] = {}
    wanted: list = []
    head_epochs: list[int] = []

    def read(message: tuple) -> None:
        kind, value = message
        if kind == "head":
            head_epochs.append(value)
        else:
            wanted.append(value)

    def on_epoch(epoch: int, net: torch.nn.Module, head: torch.nn.Module) -> bool:
        snaps[epoch + 1] = ({k: v.clone() for k, v in net.state_dict().items()},
                            {k: v.clone() for k, v in head.state_dict().items()})
        while not wanted and conn.poll():
            read(conn.recv())
        return bool(wanted) and (wanted[0] is None or epoch + 1 >= max(wanted[0]))

    model, h = train(data, cfg, seed, refit_epochs=(cfg.max_epochs, cfg.max_epochs), on_epoch=on_epoch,
                     head_epochs=lambda: head_epochs[0] if head_epochs else None)
    while not wanted:
        read(conn.recv())
    if wanted[0] is None:
        return
    last = max(snaps)  # the time budget may have ended the run first: then its last weights, as in train()
    net_epoch, head_epoch = (min(e, last) for e in wanted[0])
    # the record train(refit_epochs=wanted) writes; tensors as NumPy: torch would pass them as shared-memory
    # handles, which die with this process
    info = model.info | {"best_epoch": wanted[0][0] - 1, "best_epoch_grasp": wanted[0][1] - 1}
    conn.send((_numpy(snaps[net_epoch][0]), _numpy(snaps[head_epoch][1]), _numpy(vars(model.norm)), info, h["wall_s"]))


def _numpy(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in tensors.items()}


def _torch(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def plot_curves(hist: dict, path: Path) -> None:
    """Training / validation loss per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ep = np.arange(1, len(hist["train"]) + 1)
    ax.plot(ep, hist["train"], label="train (bootstrap-weighted)")
    ax.plot(ep, hist["val"], label="validation")
    ax.plot(ep, hist["val_delta"], "--", label="validation: pose deltas")
    ax.plot(ep, hist["val_grasp"], ":", label="validation: grasp BCE")
    if hist.get("best_epoch", -1) >= 0:
        ax.axvline(hist["best_epoch"] + 1, color="gray", lw=0.8, label="kept epoch: push network")
    if hist.get("best_epoch_grasp", -1) >= 0:
        ax.axvline(hist["best_epoch_grasp"] + 1, color="gray", lw=0.8, ls=":", label="kept epoch: grasp head")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean over ensemble members)")
    ax.set_title("world model training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
