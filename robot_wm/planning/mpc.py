"""A sampling model-predictive controller: CEM or MPPI over batched dynamics, pushes only.

``MPCPlanner(dynamics, config, seed).plan(state, mask, goals) -> Plan`` (in the spirit of pytorch_mppi's
``MPPI(dynamics, cost).command(state)``; :meth:`MPCPlanner.command` returns just the action to execute)
searches sequences of H steps; each step pushes one object or does nothing (a *no-op*). Nothing moves
during a no-op, so every sampled sequence is put in its canonical form, its pushes first and no-ops after:
a plan is "these pushes, then stop", and a plan whose first step is a no-op says the goal is not worth
another push. All samples of a horizon step go through the dynamics in ONE batched call (B = the samples
that push at that step); everything stays in torch (float32, CPU), nothing loops over samples.

Push parameterisation (per step, relative to the chosen object, so the search space is continuous and
every sample is a push like those the world model was trained on, ``robot_wm.model.collect.sample_push``):

* ``heading`` (rad, world frame): direction the fingertips travel, (cos, sin, 0); the contact side of the
  object is the one facing away from it (contact side angle = heading + pi);
* ``lateral`` in [-lateral_max, lateral_max] (0.8): offset of the push line from the object's centre,
  as a fraction of the object's footprint half-width across the heading;
* ``depth`` (m, 0.02-0.12): travel after contact;
* ``tilt`` in [-tilt_max, tilt_max] (0.6 rad): the pad face turned about z from perpendicular to the
  motion, so that one corner leads (a point contact: off-centre, it turns the object; flat against a face,
  the pads only translate it).

:func:`push_actions` turns them into world-frame push actions ``[0, x, y, z, heading, gap + depth, tilt]``:
the closed pads start ``gap`` (0.01 m; tilted: up to ``tilt_gap`` more) short of the object's footprint (the support of its oriented box,
from the state's extents and yaw, along the heading) plus the pad thickness (0.012 m), at TCP height
z = clip(top / 2, 0.016, 0.05) m (top = the object's highest point, from its extents and orientation:
the data collector's height rule). The collector measured the standoff on the world-axis-aligned box
along the push line; the support used here is never shorter, so a start never overlaps the object.

Each step's choice of object (or no-op) is a categorical distribution over the N slots plus a no-op;
each (step, object) pair has its own Gaussian over (heading, lateral, depth, tilt). CEM refits both to the
elites (the best ``elites`` sequences, equal weights), MPPI to all samples weighted by
softmax(-cost / temperature) with a fixed sampling std (``mppi_noise_scale`` x the initial std); both
smooth with the old distribution. The cold-start prior pushes goal objects towards their goals (depth =
the distance, clipped) and other objects away from the goal objects' straight paths. Sample 0 of every
iteration is the distribution's mode (for MPPI: its weighted mean), sample 1 the best sequence so far;
the returned plan is the cheapest sequence evaluated. (Rolling out the refitted mean once more after the
last iteration, as pytorch_mppi's answer would be, costs H more calls of ~1 ms each; instead the next
call, warm-started, evaluates it as its sample 0.)

Warm start: the next call starts from the distribution (and best sequence) left by the previous one,
shifted one step (its first step is assumed executed; ``shift=False`` re-plans the same steps). The
(step, object) Gaussians that the last refit did not favour are restarted from the current state's prior,
and ``warm_prior_mix`` of the prior is mixed into the choices, so a change of plan can still be found.

Cost (metre-equivalents, :mod:`robot_wm.planning.costs`), on the ensemble-mean trajectory x_1..x_H:

    mean cost = state_cost(x_H) + stage_weight * sum_{t<H} goal_cost(x_t) + push_cost * pushes
                + failure_cost * (1 - prod_t p_success_t)
    cost      = mean cost + kappa * sum_t disagreement_t

state_cost = goal cost + disturb_weight x the displacement of objects without a goal + workspace penalty;
the goal cost of the intermediate states makes reaching the goal early count. disagreement_t sums, over
the real objects, the members' spread of the predicted step (position weighted like position errors, yaw
like yaw errors; see :mod:`robot_wm.planning.dynamics` for what the spread is).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from robot_wm.config.planner_mpc import MPCConfig, PushSamplingConfig
from robot_wm.model.network import PAD_THICKNESS
from robot_wm.model.state import ACTION_DIM, PUSH, STATE_DIM
from robot_wm.planning.costs import GoalCost, PoseGoal, disagreement, ensemble_cost
from robot_wm.planning.dynamics import Dynamics, make_dynamics

NOOP = -1.0  # action kind of a step that does nothing (rows of Plan.actions; not a robot action)
PUSH_Z_MIN = 0.016  # m, lowest TCP height that clears the table (robot_wm.model.collect.PUSH_Z_MIN)
PUSH_Z_MAX = 0.05  # m, highest push height the data collector used
N_PARAMS = 4  # heading (rad), lateral (fraction), depth (m), tilt (rad)
TILT_MIN = 0.15  # rad, the least |tilt| the data collector draws (robot_wm.model.collect.TILT_RANGE)


def push_actions(states: torch.Tensor, obj: torch.Tensor, params: torch.Tensor,
                 push: PushSamplingConfig | None = None) -> torch.Tensor:
    """World-frame push actions (B, 7) from object-relative parameters (see the module docstring).

    states (B, N, 15) the scenes, obj (B,) long the pushed slot, params (B, 4) = (heading rad, lateral
    fraction, depth m, tilt rad) (B, 3: tilt 0); lateral, depth and tilt are clamped to their ranges, heading is wrapped to
    (-pi, pi]. Action: [PUSH, x, y, z, heading, gap + depth, tilt] with (x, y, z) the TCP start (m).
    """
    cfg = push or PushSamplingConfig()
    s = states.gather(1, obj.view(-1, 1, 1).expand(-1, 1, STATE_DIM)).squeeze(1)  # (B, 15)
    heading = torch.atan2(torch.sin(params[:, 0]), torch.cos(params[:, 0]))
    lateral = params[:, 1].clamp(-cfg.lateral_max, cfg.lateral_max)
    depth = params[:, 2].clamp(cfg.depth[0], cfg.depth[1])
    tilt = params[:, 3].clamp(-cfg.tilt_max, cfg.tilt_max) if params.shape[1] > 3 else torch.zeros_like(depth)
    gap = cfg.gap + cfg.tilt_gap * (tilt.abs() / TILT_MIN).clamp(max=1.0)
    c, sn = torch.cos(heading), torch.sin(heading)
    # object yaw psi from its quaternion as (cos, sin); phi = psi - heading, the yaw in the push frame
    qx, qy, qz, qw = s[:, 3], s[:, 4], s[:, 5], s[:, 6]
    ys, yc = 2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz)
    r = torch.sqrt(ys * ys + yc * yc).clamp_min(1e-12)
    cp = ((yc * c + ys * sn) / r).abs()  # |cos phi|
    sp = ((ys * c - yc * sn) / r).abs()  # |sin phi|
    ex, ey = s[:, 7], s[:, 8]
    along = 0.5 * (ex * cp + ey * sp)  # footprint half-size along the heading
    across = 0.5 * (ex * sp + ey * cp)  # ... and across it
    back = along + PAD_THICKNESS + gap
    off = lateral * across
    x = s[:, 0] - c * back - sn * off
    y = s[:, 1] - sn * back + c * off
    # highest point of the oriented box: z + half its vertical extent (third row of the rotation matrix)
    r20, r21, r22 = 2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)
    top = s[:, 2] + 0.5 * (r20.abs() * ex + r21.abs() * ey + r22.abs() * s[:, 9])
    z = (0.5 * top).clamp(PUSH_Z_MIN, PUSH_Z_MAX)
    kind = torch.full_like(x, float(PUSH))
    return torch.stack([kind, x, y, z, heading, gap + depth, tilt], dim=1)


def blocked_starts(states: torch.Tensor, obj: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor,
                   clearance: float, samples: int = 6) -> torch.Tensor:
    """(B,) bool: the pads could not get to the pushed object `obj` (B,): their start (actions[:, 1:3], the
    TCP x-y) or any point of their way from there to the object's centre line (`samples` points along the
    heading actions[:, 4]) lies within `clearance` m of the footprint (oriented box x-y extents) of a real
    object other than the pushed one — a neighbour, a wall or a tray rim in the way. states (B, N, 15),
    mask (N,)."""
    b, n = states.shape[:2]
    heading = actions[:, 4]
    direction = torch.stack([torch.cos(heading), torch.sin(heading)], 1)  # (B, 2)
    target = states.gather(1, obj.view(-1, 1, 1).expand(-1, 1, STATE_DIM)).squeeze(1)
    reach = ((target[:, 0:2] - actions[:, 1:3]) * direction).sum(1).clamp_min(0.0)  # m to the centre line
    t = torch.linspace(0.0, 1.0, samples)[None, :, None] * reach[:, None, None]  # (B, S, 1)
    pts = actions[:, None, 1:3] + t * direction[:, None, :]  # (B, S, 2)
    d = pts[:, :, None, :] - states[:, None, :, 0:2]  # (B, S, N, 2)
    qx, qy, qz, qw = (states[:, None, :, k] for k in (3, 4, 5, 6))
    ys, yc = 2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz)
    r = torch.sqrt(ys * ys + yc * yc).clamp_min(1e-12)
    cy, sy = yc / r, ys / r
    lx = (cy * d[..., 0] + sy * d[..., 1]).abs()  # path points in each object's frame
    ly = (-sy * d[..., 0] + cy * d[..., 1]).abs()
    inside = (lx < 0.5 * states[:, None, :, 7] + clearance) & (ly < 0.5 * states[:, None, :, 8] + clearance)
    others = mask[None, :].expand(b, n) & (torch.arange(n)[None, :] != obj[:, None])
    return (inside & others[:, None, :]).any(2).any(1)


@dataclass
class Plan:
    """The best action sequence found and what the dynamics predict for it (world frame, SI units).

    actions (H, 7): push actions; rows of kind NOOP (-1, zeros otherwise) do nothing.
    objects (H,): the slot pushed at each step, -1 for a no-op. params (H, 4): (heading rad, lateral
    fraction, depth m, tilt rad) of each push (zeros for no-ops).
    cost: its ensemble-aware cost (mean_cost + kappa * disagreement); mean_cost: the cost of the mean
    prediction; disagreement: the members' summed disagreement (cost units).
    states (H + 1, N, 15): predicted trajectory, states[0] the input. p_success: predicted P(every step
    succeeds), step_p_success (H,). std (H, N, 4): per step and object, the members' spread of the
    predicted delta (dx, dy, dz m, dyaw rad). reached: the goals are met at the end of the trajectory.
    model_calls: dynamics calls made; samples: sequences evaluated; wall_s: time plan() took.
    """

    actions: np.ndarray
    objects: np.ndarray
    params: np.ndarray
    cost: float
    mean_cost: float
    disagreement: float
    states: np.ndarray
    p_success: float
    step_p_success: np.ndarray
    std: np.ndarray
    reached: bool
    model_calls: int
    samples: int
    iterations: int
    method: str
    wall_s: float

    @property
    def n_pushes(self) -> int:
        return int((self.objects >= 0).sum())

    def first_action(self) -> np.ndarray | None:
        """The action to execute now (7,), or None when the plan's first step is a no-op."""
        return None if self.objects[0] < 0 else self.actions[0].copy()


@dataclass
class _Distribution:
    """Sampling distribution over H steps: probs (H, N + 1) over [slots..., no-op]; per (step, slot)
    Gaussian mean and std (H, N, 4) over (heading, lateral, depth, tilt)."""

    probs: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def clone(self) -> _Distribution:
        return _Distribution(self.probs.clone(), self.mean.clone(), self.std.clone())


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


class MPCPlanner:
    """Sampling MPC (``config.method``: "cem" or "mppi") over a batched :class:`Dynamics`.

    ``dynamics``: None builds the one the config names (``world_model`` by default). ``seed``: every draw
    comes from one ``torch.Generator`` seeded with it, so the same seed and the same calls give the same
    plans, bit for bit. Not thread-safe; one planner per control loop (it keeps the warm start).
    """

    def __init__(self, dynamics: Dynamics | None = None, config: MPCConfig | None = None, seed: int = 0,
                 **overrides) -> None:
        """`overrides`: top-level MPCConfig fields replacing the config's (validated), e.g. method="mppi"."""
        cfg = config or MPCConfig()
        if overrides:
            cfg = MPCConfig.model_validate(cfg.model_dump() | overrides)
        self.config = cfg
        self.dynamics = dynamics if dynamics is not None else make_dynamics(cfg.dynamics, cfg.model,
                                                                            cfg.uncertainty, cfg.turn)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(int(seed))
        self._warm: _Distribution | None = None
        self._warm_best: tuple[torch.Tensor, torch.Tensor] | None = None  # best (choice, params) of the last plan
        self._warm_key: tuple | None = None

    def reset(self, seed: int | None = None) -> None:
        """Forget the warm start (and reseed, when `seed` is given)."""
        self._warm, self._warm_best, self._warm_key = None, None, None
        if seed is not None:
            self.seed = seed
            self.generator.manual_seed(int(seed))

    # ------------------------------------------------------------------ distribution
    def _init_std(self, h: int, n: int) -> torch.Tensor:
        c = self.config
        return torch.tensor([c.heading_std, c.lateral_std, c.depth_std, c.tilt_std]).expand(h, n, N_PARAMS).clone()

    def _mppi_std(self, h: int, n: int) -> torch.Tensor:
        return self.config.mppi_noise_scale * self._init_std(h, n)

    def _prior(self, state: torch.Tensor, mask: torch.Tensor, cost: GoalCost, h: int) -> _Distribution:
        """The distribution of a cold start: goal objects pushed towards their goals, others away from
        the goal objects' paths; no-op with probability noop_prob."""
        c = self.config
        n = state.shape[0]
        goal_of = {g.index: g for g in cost.goals}
        weights = torch.zeros(n + 1)
        mean = torch.zeros(n, N_PARAMS)
        mean[:, 2] = 0.5 * (c.push.depth[0] + c.push.depth[1])
        xy = state[:, 0:2].double().numpy()
        paths = [(xy[g.index], np.asarray(g.xy, float)) for g in cost.goals if 0 <= g.index < n]
        for i in range(n):
            if not bool(mask[i]):
                continue
            if i in goal_of:
                d = np.asarray(goal_of[i].xy, float) - xy[i]
                mean[i, 0] = float(np.arctan2(d[1], d[0]))
                mean[i, 2] = float(np.clip(np.linalg.norm(d), *c.push.depth))
                weights[i] = 1.0
            else:
                weights[i] = c.other_object_weight
                if paths:  # away from the nearest point of the nearest goal object's straight path
                    best, away = np.inf, np.zeros(2)
                    for a, b in paths:
                        ab = b - a
                        t = np.clip(np.dot(xy[i] - a, ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0)
                        d = xy[i] - (a + t * ab)
                        if np.linalg.norm(d) < best:
                            best, away = float(np.linalg.norm(d)), d
                    mean[i, 0] = float(np.arctan2(away[1], away[0]))
        total = float(weights[:n].sum())
        if total > 0:
            weights[:n] *= (1.0 - c.noop_prob) / total
            weights[n] = c.noop_prob
        else:
            weights[n] = 1.0
        std = self._init_std(h, n) if c.method == "cem" else self._mppi_std(h, n)
        return _Distribution(weights.expand(h, n + 1).clone(), mean.expand(h, n, N_PARAMS).clone(), std)

    def _floor_probs(self, probs: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        p = torch.where(allowed, probs.clamp_min(self.config.min_prob), torch.zeros_like(probs))
        return p / p.sum(-1, keepdim=True).clamp_min(1e-12)

    def _start(self, state: torch.Tensor, mask: torch.Tensor, cost: GoalCost, shift: bool
               ) -> tuple[_Distribution, _Distribution, tuple[torch.Tensor, torch.Tensor] | None]:
        """(the distribution to start from, the cold-start prior, the sequence to keep): warm (the last
        call's, shifted) when warm_start is on and the last call had the same slots, horizon and goal
        objects; else the prior."""
        c = self.config
        h, n = c.horizon, state.shape[0]
        prior = self._prior(state, mask, cost, h)
        key = (n, tuple(mask.tolist()), h, tuple(cost.goal_indices))
        if not (c.warm_start and self._warm is not None and self._warm_key == key):
            return prior, prior, None
        d = self._warm.clone()
        if shift and h > 1:
            d.probs = torch.cat([d.probs[1:], prior.probs[-1:]])
            d.mean = torch.cat([d.mean[1:], prior.mean[-1:]])
            d.std = torch.cat([d.std[1:], prior.std[-1:]])
        elif shift:
            d = prior
        # (step, object) Gaussians the last refits did not favour are stale (fitted to older states, or
        # never): restart them from the prior of the current state; mix some prior into the choices
        stale = d.probs[:, :n] <= 2 * c.min_prob
        d.mean = torch.where(stale[..., None], prior.mean, d.mean)
        d.std = torch.where(stale[..., None], prior.std, d.std)
        if c.method == "cem":
            d.std = torch.maximum(d.std, c.warm_std_scale * self._init_std(h, n))
        else:
            d.std = self._mppi_std(h, n)
        d.probs = self._floor_probs((1 - c.warm_prior_mix) * d.probs + c.warm_prior_mix * prior.probs,
                                    prior.probs > 0)
        return d, prior, self._shifted_best(shift, n)

    def _shifted_best(self, shift: bool, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The last plan's best sequence, shifted one step when its first step was executed (then the
        new last step is a no-op)."""
        if self._warm_best is None:
            return None
        choice, params = (v.clone() for v in self._warm_best)
        if shift:
            choice = torch.cat([choice[1:], torch.tensor([n])])
            params = torch.cat([params[1:], torch.zeros(1, N_PARAMS)])
        return choice, params

    def _sample(self, d: _Distribution, s: int, keep: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """choice (S, H) long (N = no-op) and params (S, H, 4); sample 0 is the mode, sample 1 the sequence
        `keep` (choice (H,), params (H, 4): the best one so far) when given."""
        c = self.config
        h, n = d.mean.shape[:2]
        g = self.generator
        choice = torch.empty(s, h, dtype=torch.long)
        choice[0] = d.probs.argmax(-1)
        if s > 1:
            choice[1:] = torch.multinomial(d.probs, s - 1, replacement=True, generator=g).T
        if keep is not None and s > 1:
            choice[1] = keep[0]
        # pushes beyond max_pushes become no-ops; then the pushes move to the front in their order: nothing
        # moves during a no-op, so a sequence acts like its pushes followed by no-ops (no procrastinating)
        is_push = choice < n
        choice[(is_push.cumsum(1) > c.max_pushes) & is_push] = n
        choice = choice.gather(1, torch.argsort((choice >= n).to(torch.int8), dim=1, stable=True))
        pad = torch.zeros(h, 1, N_PARAMS)
        mean = torch.cat([d.mean, pad], 1)  # (H, N + 1, 4): the no-op row is unused
        std = torch.cat([d.std, pad], 1)
        steps = torch.arange(h)[None, :]
        eps = torch.randn(s - 1, h, N_PARAMS, generator=g) if s > 1 else torch.zeros(0, h, N_PARAMS)
        params = mean[steps, choice] + std[steps, choice] * torch.cat([torch.zeros(1, h, N_PARAMS), eps])
        if keep is not None and s > 1:
            params[1] = keep[1]
        params[..., 0] = _wrap(params[..., 0])
        params[..., 1].clamp_(-c.push.lateral_max, c.push.lateral_max)
        params[..., 2].clamp_(c.push.depth[0], c.push.depth[1])
        params[..., 3].clamp_(-c.push.tilt_max, c.push.tilt_max)
        return choice, params

    def _refit(self, d: _Distribution, choice: torch.Tensor, params: torch.Tensor, costs: torch.Tensor,
               allowed: torch.Tensor, init_std: torch.Tensor) -> _Distribution:
        """The distribution refitted to weighted samples (CEM: elites; MPPI: softmax(-cost / lambda))."""
        c = self.config
        h, n = d.mean.shape[:2]
        if c.method == "cem":
            w = torch.zeros_like(costs)
            w[torch.topk(costs, c.elites, largest=False).indices] = 1.0 / c.elites
        else:
            w = torch.softmax(-(costs - costs.min()) / c.temperature, 0)
        wk = torch.nn.functional.one_hot(choice, n + 1).to(w.dtype) * w[:, None, None]  # (S, H, N + 1)
        wsum = wk.sum(0)  # (H, N + 1)
        a = c.smoothing
        probs = self._floor_probs(a * d.probs + (1 - a) * wsum / wsum.sum(-1, keepdim=True), allowed)
        wo = wk[..., :n]
        tot = wsum[:, :n, None]
        hd = params[..., 0]
        feats = torch.cat([torch.sin(hd)[..., None], torch.cos(hd)[..., None], params[..., 1:]], -1)  # (S, H, 5)
        m = torch.einsum("shk,shf->hkf", wo, feats) / tot.clamp_min(1e-12)  # (H, N, 5)
        new_mean = torch.cat([torch.atan2(m[..., 0], m[..., 1])[..., None], m[..., 2:]], -1)
        seen = tot > 1e-9  # (H, N, 1): slots that got any weight at this step
        step = torch.cat([_wrap(new_mean[..., :1] - d.mean[..., :1]), new_mean[..., 1:] - d.mean[..., 1:]], -1)
        mean = torch.where(seen, d.mean + (1 - a) * step, d.mean)
        mean[..., 0] = _wrap(mean[..., 0])
        std = d.std
        if c.method == "cem":
            steps = torch.arange(h)[None, :]
            pad = torch.cat([new_mean, torch.zeros(h, 1, N_PARAMS)], 1)[steps, choice]  # (S, H, 4)
            dev = params - pad
            dev[..., 0] = _wrap(dev[..., 0])
            var = torch.einsum("shk,shf->hkf", wo, dev.square()) / tot.clamp_min(1e-12)
            new_std = torch.where(seen, a * d.std + (1 - a) * var.sqrt(), d.std)
            std = torch.maximum(new_std, c.min_std_scale * init_std)
        return _Distribution(probs, mean, std)

    # ------------------------------------------------------------------ rollouts
    def _rollout(self, start: torch.Tensor, mask: torch.Tensor, choice: torch.Tensor, params: torch.Tensor,
                 cost: GoalCost, fixed: torch.Tensor | None = None) -> dict:
        """Roll S sequences through the dynamics, one batched call per step (B = the samples that push at
        that step). Returns the costs (S,) and, per step, what a plan needs of every sample."""
        c, w = self.config, self.config.cost
        s, h = choice.shape
        n = start.shape[0]
        x = start.expand(s, n, STATE_DIM)
        mask_s = mask.expand(s, n)
        traj, steps = [x], []
        log_p = torch.zeros(s)
        dis = torch.zeros(s)
        stage = torch.zeros(s)
        blocked = torch.zeros(s)
        held = fixed is not None and bool(fixed.any())
        calls = 0
        for t in range(h):
            ct = choice[:, t]
            is_push = ct < n
            n_push = int(is_push.sum())
            record = None
            if n_push == s:  # every sample pushes: no gathering
                a = push_actions(x, ct, params[:, t], c.push)
                blocked += blocked_starts(x, ct, a, mask, w.pad_clearance)
                pred = self.dynamics(x, mask_s, a)
                calls += 1
                x = pred.next_states
                log_p += torch.log(pred.p_success.clamp_min(1e-6))
                dis += disagreement(pred.std, mask, w)
                record = (None, a, pred.p_success, pred.std)
            elif n_push:
                push = is_push.nonzero().squeeze(1)
                xs = x.index_select(0, push)
                cs = ct.index_select(0, push)
                a = push_actions(xs, cs, params[:, t].index_select(0, push), c.push)
                blocked.index_add_(0, push, blocked_starts(xs, cs, a, mask, w.pad_clearance).to(blocked.dtype))
                pred = self.dynamics(xs, mask_s[:n_push], a)
                calls += 1
                x = x.index_copy(0, push, pred.next_states)
                log_p.index_add_(0, push, torch.log(pred.p_success.clamp_min(1e-6)))
                dis.index_add_(0, push, disagreement(pred.std, mask, w))
                record = (push, a, pred.p_success, pred.std)
            if held and record is not None:  # fixed obstacles never move, whatever the dynamics say
                x = torch.where(fixed[None, :, None], start[None], x)
            traj.append(x)
            steps.append(record)
            if t < h - 1 and w.stage_weight > 0:
                stage += cost.goal_cost(x)
        pushes = (choice < n).sum(1).to(torch.float32)
        mean_cost = (cost.state_cost(x, start, mask) + w.stage_weight * stage + w.push_cost * pushes
                     + w.failure_cost * (1.0 - log_p.exp()) + w.blocked_cost * blocked)
        total = ensemble_cost(mean_cost, dis, w.kappa)
        return {"cost": total, "mean_cost": mean_cost, "dis": dis, "traj": traj, "steps": steps, "calls": calls}

    # ------------------------------------------------------------------ API
    def plan(self, state: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor | None = None,
             goals: Sequence[PoseGoal] | GoalCost = (), shift: bool = True,
             fixed: np.ndarray | torch.Tensor | None = None) -> Plan:
        """Search an action sequence from `state` (N, 15) (world frame; mask (N,) bool, None = all real)
        towards `goals` (PoseGoals, weighted by config.cost; or a ready GoalCost).

        `shift`: the previous plan's first step was executed, so its warm start is shifted by one step
        (False: re-plan the same horizon, e.g. from the same state with more time). `fixed` (N,) bool: slots
        that are static obstacles (walls, trays): never pushed, held in place in every rollout, and — like
        every other object — not a place a push may start from (config.cost.blocked_cost)."""
        t0 = time.perf_counter()
        c = self.config
        st = torch.as_tensor(np.asarray(state, np.float32) if not isinstance(state, torch.Tensor) else state,
                             dtype=torch.float32)
        if st.ndim == 3 and st.shape[0] == 1:
            st = st[0]
        if st.ndim != 2 or st.shape[1] != STATE_DIM:
            raise ValueError(f"state must have shape (N, {STATE_DIM}) (got {tuple(st.shape)})")
        n = st.shape[0]
        m = torch.ones(n, dtype=torch.bool) if mask is None else torch.as_tensor(
            np.asarray(mask, bool) if not isinstance(mask, torch.Tensor) else mask, dtype=torch.bool).reshape(-1)
        if m.shape != (n,):
            raise ValueError(f"mask must have shape ({n},) (got {tuple(m.shape)})")
        fx = None if fixed is None else torch.as_tensor(np.asarray(fixed, bool), dtype=torch.bool).reshape(-1)
        if fx is not None and fx.shape != (n,):
            raise ValueError(f"fixed must have shape ({n},) (got {tuple(fx.shape)})")
        cost = goals if isinstance(goals, GoalCost) else GoalCost(goals, c.cost)
        for g in cost.goals:
            if not (0 <= g.index < n and bool(m[g.index])) or (fx is not None and bool(fx[g.index])):
                raise ValueError(f"goal for object slot {g.index}: no such movable object (N = {n})")
        pushable = m if fx is None else m & ~fx
        with torch.inference_mode():
            d, prior, keep = self._start(st, pushable, cost, shift)
            allowed = prior.probs > 0
            init_std = self._init_std(c.horizon, n)
            best: dict | None = None
            calls = evaluated = 0
            for _ in range(c.iterations):
                choice, params = self._sample(d, c.samples, keep)
                out = self._rollout(st, m, choice, params, cost, fx)
                calls += out["calls"]
                evaluated += c.samples
                i = int(torch.argmin(out["cost"]))
                if best is None or float(out["cost"][i]) < best["cost"]:
                    best = self._extract(out, i, choice, params, n)
                    keep = (choice[i].clone(), params[i].clone())
                d = self._refit(d, choice, params, out["cost"], allowed, init_std)
            self._warm, self._warm_best = d, keep
            self._warm_key = (n, tuple(m.tolist()), c.horizon, tuple(cost.goal_indices))
            assert best is not None
            reached = bool(cost.reached(torch.from_numpy(best["states"][-1:]))[0])
        return Plan(best["actions"], best["objects"], best["params"], best["cost"], best["mean_cost"],
                    best["dis"], best["states"], best["p"], best["step_p"], best["std"], reached, calls,
                    evaluated, c.iterations, c.method, time.perf_counter() - t0)

    @staticmethod
    def _extract(out: dict, i: int, choice: torch.Tensor, params: torch.Tensor, n: int) -> dict:
        """Sample i's sequence, trajectory and step predictions as NumPy arrays."""
        h = choice.shape[1]
        actions = np.zeros((h, ACTION_DIM), np.float32)
        actions[:, 0] = NOOP
        std = np.zeros((h, n, 4), np.float32)
        step_p = np.ones(h, np.float32)
        for t, rec in enumerate(out["steps"]):
            if rec is None:
                continue
            push, a, p, sd = rec
            if push is None:
                j = i
            else:
                j = int(torch.searchsorted(push, i))
                if j >= len(push) or int(push[j]) != i:
                    continue
            actions[t], std[t], step_p[t] = a[j].numpy(), sd[j].numpy(), float(p[j])
        obj = choice[i].clone()
        noop = obj >= n
        obj[noop] = -1
        prm = params[i].clone()
        prm[noop] = 0.0
        return {"cost": float(out["cost"][i]), "mean_cost": float(out["mean_cost"][i]),
                "dis": float(out["dis"][i]), "actions": actions, "objects": obj.numpy(), "params": prm.numpy(),
                "states": torch.stack([x[i] for x in out["traj"]]).numpy(), "std": std,
                "p": float(np.prod(step_p)), "step_p": step_p}

    def command(self, state: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor | None = None,
                goals: Sequence[PoseGoal] | GoalCost = ()) -> np.ndarray | None:
        """Re-plan and return the action to execute now (7,), or None (no-op: nothing worth doing)."""
        return self.plan(state, mask, goals).first_action()
