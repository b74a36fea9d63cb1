"""Training the ensemble world model on collected transitions: seeded, early-stopped, with a
validation-curve PNG. Data: the arrays of :mod:`robot_wm.model.dataset`.

Two kinds of run share one setup (:func:`_start`) and one epoch (:func:`_train_epoch`): a validated run
(:func:`train`: each part keeps its best epoch on validation episodes, early stopping, grasp temperature)
and a refit (:func:`refit`: every episode, each part kept after a given number of epochs).
:func:`train_and_refit` runs the first, then the second for the epochs the first chose, optionally at the
same time in a second process."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from robot_wm.model.grasp_head import GraspHead
from robot_wm.model.network import LOGVAR_MAX, LOGVAR_MIN, N_DELTA, EnsembleInteractionNet
from robot_wm.model.training_data import Prepared, fit_normalisation, mirror, prepare, split_by_episode
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


# ---------------------------------------------------------------------------------------------- one run
@dataclass
class _Run:
    """What a training run works on and updates: its rows (`ptr` training, `pva` validation: `ptr` when
    there are none), the normalisation fitted on `ptr`, both parts and their optimiser and schedule, the
    bootstrap weights (K, len(ptr)), the generator of every draw after setup, the history, and whether the
    grasp head still trains (`head_stopped`: the epoch count at which it stopped)."""

    cfg: TrainConfig
    seed: int
    ptr: Prepared
    pva: Prepared
    n_train: int
    n_val: int
    n_grasps: int
    norm: Normalisation
    net: EnsembleInteractionNet
    head: GraspHead
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    boot: torch.Tensor
    gen: torch.Generator
    hist: dict = field(default_factory=lambda: {"train": [], "val": [], "val_delta": [], "val_grasp": []})
    head_on: bool = True
    head_stopped: int | None = None
    t0: float = field(default_factory=time.time)


def _start(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int, val_episodes: set[int] | None,
           all_rows: bool) -> _Run:
    """Prepare the data, split it (`all_rows`: no validation; else `val_episodes`, or a random
    `cfg.val_fraction` of the episodes), fit the normalisation, build both parts and the optimiser. Every
    draw comes from `seed`, in a fixed order: the seed of the run's torch generator, each part's
    initial-weight seed (so resizing one part does not change the other), the random split; then, from
    the generator, the bootstrap weights and (in the epochs) batch orders and mirror flips."""
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    seed_net, seed_head = (int(v) for v in rng.integers(2**62, size=2))  # nn.Linear default inits
    p = prepare(data)
    if all_rows:
        tr_idx, va_idx = np.arange(len(p)), np.zeros(0, int)
    elif val_episodes:
        is_val = np.isin(p.episode, np.fromiter(val_episodes, int))
        tr_idx, va_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    else:
        tr_idx, va_idx = split_by_episode(p.episode, cfg.val_fraction, rng)
    ptr = p.subset(tr_idx)
    pva = p.subset(va_idx) if len(va_idx) else ptr
    norm = fit_normalisation(ptr)
    torch.manual_seed(seed_net)
    net = EnsembleInteractionNet(cfg.k, cfg.hidden, cfg.edge, cfg.head)
    torch.manual_seed(seed_head)
    head = GraspHead(cfg.k, cfg.grasp_hidden)
    if (ptr.grasp >= 0).any():
        head.fit_input_scale(ptr.gx[ptr.grasp >= 0])
    opt = torch.optim.AdamW(list(net.parameters()) + list(head.parameters()), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.max_epochs, eta_min=cfg.lr * 0.05)
    boot = torch.poisson(torch.ones(cfg.k, len(ptr)), generator=gen)  # bootstrap weights per member
    return _Run(cfg, seed, ptr, pva, len(tr_idx), len(va_idx), int((p.grasp >= 0).sum()), norm, net, head, opt,
                sched, boot, gen)


def _train_epoch(run: _Run) -> float:
    """One pass over the training rows in a random order, in batches (each mirrored at random when
    `cfg.mirror`), one optimiser step per batch, then a schedule step. Returns the mean batch loss; leaves
    both parts in eval mode. A stopped grasp head is not run."""
    cfg, ptr = run.cfg, run.ptr
    run.net.train()
    run.head.train()
    perm = torch.randperm(len(ptr), generator=run.gen)
    tot, nb = 0.0, 0
    for i in range(0, len(ptr), cfg.batch):
        bi = perm[i:i + cfg.batch]
        batch = ptr.subset(bi.numpy(), grasp_inputs=run.head_on)
        if cfg.mirror:
            flips = torch.rand(2, len(bi), generator=run.gen) < 0.5
            batch = mirror(batch, flips[0], flips[1])
        loss, _, _ = losses(run.net, run.head, run.norm, batch, cfg, run.boot[:, bi], grasp=run.head_on)
        # zeros, not None: a part that a batch does not reach (no pushes in it) still takes its optimiser
        # step (momentum, weight decay) with a zero gradient, as when every row went through both parts
        # (a finished head's gradients are None: AdamW skips it)
        run.opt.zero_grad(set_to_none=False)
        loss.sum().backward()
        run.opt.step()
        tot += float(loss.detach().mean())
        nb += 1
    run.sched.step()
    run.net.eval()
    run.head.eval()
    return tot / max(nb, 1)


def _stop_head(run: _Run, epoch: int) -> None:
    """The grasp head trains no more after `epoch` (its gradients dropped: AdamW leaves it alone)."""
    run.head_on, run.head_stopped = False, epoch + 1
    for prm in run.head.parameters():
        prm.grad = None


def _out_of_time(run: _Run, epoch: int) -> bool:
    if time.time() - run.t0 > run.cfg.max_minutes * 60:
        log.info("time budget reached at epoch %d", epoch)
        return True
    return False


def _copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@dataclass
class _Kept:
    """The weights each part keeps (a copy after its chosen epoch; -1 / None: none yet)."""

    net_epoch: int = -1
    net_state: dict | None = None
    head_epoch: int = -1
    head_state: dict | None = None

    def update(self, run: _Run, epoch: int, keep_net: bool, keep_head: bool) -> None:
        if keep_net:
            self.net_epoch, self.net_state = epoch, _copy(run.net)
        if keep_head:
            self.head_epoch, self.head_state = epoch, _copy(run.head)

    def restore(self, run: _Run) -> None:
        """Load the kept weights (a part with none keeps its last ones); both parts in eval mode."""
        if self.net_state is not None:
            run.net.load_state_dict(self.net_state)
        if self.head_state is not None:
            run.head.load_state_dict(self.head_state)
        run.net.eval()
        run.head.eval()


@dataclass
class _Validation:
    """Model selection on the validation rows: each part's best loss (pose deltas; grasp BCE) and the
    epochs since either improved (`bad`) and since the head did (`bad_g`). Appends the validation losses
    to the history; a stopped head's BCE is carried forward (it no longer changes), not recomputed."""

    best: float = math.inf
    best_g: float = math.inf
    bad: int = 0
    bad_g: int = 0

    def score(self, run: _Run) -> tuple[float, bool, bool]:
        """(validation loss, keep the push network's weights, keep the grasp head's) after an epoch."""
        hist, cfg = run.hist, run.cfg
        with torch.no_grad():
            _, vd, vg = losses(run.net, run.head, run.norm, run.pva, cfg, symmetric=True, grasp=run.head_on)
        hist["val_delta"].append(float(vd.mean()))
        hist["val_grasp"].append(float(vg.mean()) if run.head_on else hist["val_grasp"][-1])
        val = hist["val_delta"][-1] + cfg.grasp_weight * hist["val_grasp"][-1]
        hist["val"].append(val)
        keep_net = hist["val_delta"][-1] < self.best - 1e-5
        keep_head = run.head_on and hist["val_grasp"][-1] < self.best_g - 1e-5
        if keep_net:
            self.best = hist["val_delta"][-1]
        if keep_head:
            self.best_g = hist["val_grasp"][-1]
        self.bad = 0 if keep_net or keep_head else self.bad + 1
        self.bad_g = 0 if keep_head else self.bad_g + 1
        return val, keep_net, keep_head


def _finish(run: _Run, kept: _Kept, temperature: float, best_val: tuple[float, float] | None
            ) -> tuple[WorldModel, dict]:
    """The model (with the weights `kept`, already restored) and its history; the record (``info``, the
    file header's "train") with the validation losses `best_val` = (pose deltas, grasp BCE), None for a refit."""
    run.hist |= {"best_epoch": kept.net_epoch, "best_epoch_grasp": kept.head_epoch, "epochs": len(run.hist["train"]),
                 "grasp_head_trained_epochs": run.head_stopped or len(run.hist["train"]),
                 "wall_s": round(time.time() - run.t0, 1),
                 "n_train": run.n_train, "n_val": run.n_val, "temperature": temperature}
    info = {"config": asdict(run.cfg), "seed": run.seed, "best_epoch": kept.net_epoch,
            "best_epoch_grasp": kept.head_epoch,
            "best_val_delta_loss": None if best_val is None else best_val[0],
            "best_val_grasp_bce": None if best_val is None else best_val[1],
            "n_train": run.n_train, "n_val": run.n_val, "n_grasps": run.n_grasps}
    return WorldModel(run.net, run.norm, temperature, info, run.head), run.hist


# ---------------------------------------------------------------------------------------------- the two runs
def train(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int = 0,
          progress: Callable[[int, float, float], None] | None = None,
          val_episodes: set[int] | None = None, on_head_done: Callable[[int], None] | None = None,
          ) -> tuple[WorldModel, dict]:
    """Train a WorldModel with validation. Same data + config + seed -> same weights (single-process torch).

    `val_episodes`: the episodes to validate on (early stopping, grasp temperature); by default a
    random `cfg.val_fraction` of the episodes. Choosing episodes whose objects never occur in training
    (see :func:`robot_wm.model.dataset.unseen_object_episodes`) makes both reflect new objects.

    The push network and the grasp head share no parameters (each has its own AdamW state): each keeps
    its best epoch (validation pose-delta loss; validation grasp BCE, grasp logits averaged over the four
    reflections as predict makes them); training stops when neither has improved for `cfg.patience`
    epochs, at `cfg.max_epochs` or after `cfg.max_minutes`. The grasp head converges in a few tens of
    epochs, the push network in hundreds: once the head's BCE has not improved for `cfg.patience` epochs
    it is no longer run (`on_head_done(its chosen epoch count)` is called); the push network's weights do
    not change by it (same batches and draws). The grasp temperature is then fitted on the validation rows.

    `progress(epoch, train_loss, val_loss)` is called after each epoch.
    Returns (model, history) with history = {"train": [...], "val": [...], "best_epoch": int, ...}.
    """
    run = _start(data, cfg, seed, val_episodes, all_rows=False)
    select, kept = _Validation(), _Kept()
    for epoch in range(cfg.max_epochs):
        run.hist["train"].append(_train_epoch(run))
        val, keep_net, keep_head = select.score(run)
        if progress:
            progress(epoch, run.hist["train"][-1], val)
        kept.update(run, epoch, keep_net, keep_head)
        if run.head_on and select.bad_g >= cfg.patience and kept.head_state is not None:
            _stop_head(run, epoch)
            if on_head_done:
                on_head_done(kept.head_epoch + 1)
        if select.bad >= cfg.patience:
            log.info("early stop at epoch %d (best %d / grasp %d)", epoch, kept.net_epoch, kept.head_epoch)
            break
        if _out_of_time(run, epoch):
            break
    kept.restore(run)
    with torch.no_grad():
        logit = grasp_logits(run.head, run.pva, symmetric=True).mean(0).numpy()
    g = run.pva.grasp.numpy() >= 0
    temperature = fit_temperature(logit[g], run.pva.grasp.numpy()[g])
    return _finish(run, kept, temperature, (select.best, select.best_g))


def refit(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int, epochs: tuple[int, int], temperature: float = 1.0,
          progress: Callable[[int, float, float], None] | None = None,
          on_epoch: Callable[[int, torch.nn.Module, torch.nn.Module], bool] | None = None,
          head_epochs: Callable[[], int | None] | None = None) -> tuple[WorldModel, dict]:
    """Train a WorldModel on every episode, no validation: the setup and draws of :func:`train` with the
    same seed, each part kept after its number of `epochs` = (push network, grasp head) (chosen by a
    validated run, see :func:`train_and_refit`), with the given grasp `temperature`.

    The grasp head stops training after `epochs[1]` epochs, or once `head_epochs()` returns a count that
    has been reached. `progress(epoch, train_loss, NaN)` is called after each epoch; `on_epoch(epoch, net,
    head)` too, with the weights after that epoch: True stops training there (a part whose epoch count was
    not reached keeps its last weights). Returns (model, history) as :func:`train`.
    """
    run = _start(data, cfg, seed, None, all_rows=True)
    kept = _Kept()
    for epoch in range(max(epochs)):
        run.hist["train"].append(_train_epoch(run))
        if progress:
            progress(epoch, run.hist["train"][-1], math.nan)
        kept.update(run, epoch, epoch + 1 == epochs[0], epoch + 1 == epochs[1])
        if run.head_on:
            limit = head_epochs() if head_epochs else None
            if epoch + 1 >= (epochs[1] if limit is None else min(limit, epochs[1])):
                _stop_head(run, epoch)
        if on_epoch is not None and on_epoch(epoch, run.net, run.head):
            break
        if _out_of_time(run, epoch):
            break
    kept.restore(run)
    return _finish(run, kept, temperature, None)


# ---------------------------------------------------------------------------------------------- validate, then refit
def train_and_refit(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int = 0,
                    progress: Callable[[int, float, float], None] | None = None,
                    val_episodes: set[int] | None = None, parallel: bool | None = None
                    ) -> tuple[WorldModel, dict]:
    """Train with validation (early stopping per part, grasp temperature), then train again from the
    same initial weights on every episode — the validation episodes' objects too — for the epochs the
    validated run chose (refit after model selection). Returns the refitted model, whose ``info`` keeps
    the validated run's record under ``"validated"``, and the validated run's history (with ``"refit"``:
    the refit's epochs, counts and time); the validated model when it could not choose. `parallel`
    (default: when there are 2 or more CPUs): run the refit in a second process at the same time as the
    validated run (same weights, about half the time)."""
    if parallel is None:
        parallel = (os.cpu_count() or 1) >= 2
    return (_validate_and_refit_in_parallel if parallel else _validate_then_refit)(data, cfg, seed, progress,
                                                                                     val_episodes)


def _validate_then_refit(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int,
                         progress: Callable[[int, float, float], None] | None, val_episodes: set[int] | None
                         ) -> tuple[WorldModel, dict]:
    model, hist = train(data, cfg, seed, progress, val_episodes)
    epochs = _chosen_epochs(hist)
    if epochs is None:
        return model, hist
    final, h2 = refit(data, cfg, seed, epochs, model.temperature, progress)
    return _refitted(final, model, hist, epochs, h2["n_train"], h2["wall_s"]), hist


def _validate_and_refit_in_parallel(data: dict[str, np.ndarray], cfg: TrainConfig, seed: int,
                                    progress: Callable[[int, float, float], None] | None,
                                    val_episodes: set[int] | None) -> tuple[WorldModel, dict]:
    """The refit's weights after epoch e do not depend on how many epochs it will run (same seeds, batches
    and schedule), so a second process (:func:`_refit_process`) trains on every episode while this one
    validates, keeping a copy of its weights after each epoch, and hands over those of the epochs
    validation chose."""
    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    proc = ctx.Process(target=_refit_process, args=(data, cfg, seed, child_conn), daemon=True)
    proc.start()
    child_conn.close()  # the child's end lives in the child only: if the child dies, recv() ends, not hangs
    try:
        # the grasp head's epochs are known long before the push network's: the refit stops its head then too
        model, hist = train(data, cfg, seed, progress, val_episodes, on_head_done=lambda e: _send(conn, ("head", e)))
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
        snaps[epoch + 1] = (_copy(net), _copy(head))
        while not wanted and conn.poll():
            read(conn.recv())
        return bool(wanted) and (wanted[0] is None or epoch + 1 >= max(wanted[0]))

    model, h = refit(data, cfg, seed, (cfg.max_epochs, cfg.max_epochs), on_epoch=on_epoch,
                     head_epochs=lambda: head_epochs[0] if head_epochs else None)
    while not wanted:
        read(conn.recv())
    if wanted[0] is None:
        return
    last = max(snaps)  # the time budget may have ended the run first: then its last weights, as in refit()
    net_epoch, head_epoch = (min(e, last) for e in wanted[0])
    # the record refit(epochs=wanted) writes; tensors as NumPy: torch would pass them as shared-memory
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
