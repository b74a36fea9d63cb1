"""Baseline pushers the sampling MPC is measured against (``bench mpc``), with the push loop's
:class:`~robot_wm.planning.push_loop.Pusher` interface (``reset(seed)``, ``act(scene, goals)``).

* :class:`ScriptedPusher` — no model: push through the object's centre straight towards the goal, as far as
  the goal is (capped at the push range the world model was trained on); while the position is within a
  few tolerances and a yaw goal is not met, push a long side near its end, the pad face tilted so that its
  corner leads (a point contact, which turns the object; a flat face held against the side would only
  slide it). Its pushes learn from the episode (:mod:`robot_wm.planning.turning`): how far a turning push
  must travel for the turn still wanted, and how much further to push an object a push did not reach.
* :class:`RandomShootingPlanner` — random shooting (Nagabandi et al. 2018): draw N random action
  sequences once (objects, headings, offsets, depths and tilts uniform over their ranges), roll them through the
  dynamics, keep the cheapest. No refit, no warm start, no informed prior: the same dynamics, cost,
  push parameterisation and evaluation as :class:`~robot_wm.planning.mpc.MPCPlanner` (it is one, with its
  sampling replaced), so the difference to the MPC is the search alone.

World frame, SI units (m, rad) throughout; actions are push rows ``[0, x, y, z, heading, distance, tilt]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from robot_wm.config.planner_mpc import MPCConfig, PushSamplingConfig
from robot_wm.planning.costs import PoseGoal
from robot_wm.planning.dynamics import Dynamics
from robot_wm.planning.mpc import N_PARAMS, MPCPlanner, _Distribution
from robot_wm.planning.scene_state import PerceivedScene
from robot_wm.planning.turning import PushFeedback


class ScriptedPusher:
    """Push towards the goal through the centre, then turn (see the module docstring). Goals are worked on
    in order; an object whose goal is met is left alone. The pushes learn from the episode
    (:class:`~robot_wm.planning.turning.PushFeedback`): the turning push's travel from the turns seen so
    far, and extra reach for an object a push did not reach. `push`: the push geometry (gap, depth range)."""

    def __init__(self, push: PushSamplingConfig | None = None) -> None:
        self.push = push or PushSamplingConfig()
        self.feedback = PushFeedback(self.push)

    def reset(self, seed: int | None = None) -> None:
        """Forget what the last episode's pushes taught."""
        self.feedback.reset()

    def params(self, state: np.ndarray, goal: PoseGoal) -> tuple[float, float, float, float] | None:
        """(heading rad, lateral fraction, depth m, tilt rad) of the push towards the goal through the centre
        for one object state (15,), or None when its position is within tolerance."""
        lo, hi = self.push.depth
        d = np.asarray(goal.xy, float) - state[0:2].astype(float)
        dist = float(np.linalg.norm(d))
        if dist > goal.tolerance_m:
            return math.atan2(d[1], d[0]), 0.0, float(np.clip(dist, lo, hi)), 0.0
        return None

    def turn(self, scene: PerceivedScene, goals: list[PoseGoal]) -> tuple[PoseGoal, np.ndarray] | None:
        """(the goal, the turning push (7,)) for the first goal near its position whose yaw is off, or None
        (:meth:`PushFeedback.turn <robot_wm.planning.turning.PushFeedback.turn>`)."""
        return self.feedback.turn(scene, goals)

    def act(self, scene: PerceivedScene, goals: list[PoseGoal]) -> np.ndarray | None:
        self.feedback.observe(scene, goals)
        turn = self.feedback.turn(scene, goals)
        if turn is not None:
            return turn[1]
        for k, g in enumerate(goals):
            prm = self.params(scene.states[g.index], g)
            if prm is not None:
                row = self.feedback.move(scene, goals, k, prm[0], prm[2])
                if row is not None:
                    return row
        return None

    def executed(self, action: np.ndarray, ok: bool) -> None:
        self.feedback.executed(action, ok)


class TurnFirst:
    """A pusher (the MPC) with the learning turning push (:class:`~robot_wm.planning.turning.PushFeedback`)
    for yaw: while a goal's yaw is off and its position within a few tolerances, the turning push (a tilted
    pad's corner on one end of a long side, its travel from the turns seen so far) is made without asking
    the pusher; otherwise the pusher decides. The learned model predicts a turning push's turn at a
    twentieth of its size (docs/world_model.md), so the MPC spends pushes on turns it cannot see. A goal with
    a yaw whose position is within a few tolerances is finished with a straight push through the centre
    (:meth:`PushFeedback.finish <robot_wm.planning.turning.PushFeedback.finish>`; development seeds 3 and 4:
    yaw goals 15 -> 18 of 24; on position-only goals the straight push cost cylinders extra pushes, so those
    stay with the pusher). ``last_plan`` is the
    pusher's (None before its first plan); ``last_source`` says which one chose: "mpc" | "turn" | "finish"
    | "" (nothing)."""

    def __init__(self, pusher: Any, turner: ScriptedPusher | None = None) -> None:
        self.pusher = pusher
        self.turner = turner or ScriptedPusher()
        self.last_source = ""

    @property
    def last_plan(self) -> Any:
        return getattr(self.pusher, "last_plan", None) if self.last_source == "mpc" else None

    def reset(self, seed: int | None = None) -> None:
        self.pusher.reset(seed)
        self.turner.reset(seed)
        self.last_source = ""

    def act(self, scene: PerceivedScene, goals: list[PoseGoal]) -> np.ndarray | None:
        self.turner.feedback.observe(scene, goals)
        turn = self.turner.turn(scene, goals)
        if turn is not None:
            self.last_source = "turn"
            return turn[1]
        finish = self.turner.feedback.finish(scene, goals)
        if finish is not None:
            self.last_source = "finish"
            return finish[1]
        a = self.pusher.act(scene, goals)
        self.last_source = "mpc" if a is not None else ""
        return a

    def executed(self, action: np.ndarray, ok: bool) -> None:
        if self.last_source in ("turn", "finish"):
            self.turner.executed(action, ok)
            return
        if ok:
            self.turner.feedback.forget_last()
        if hasattr(self.pusher, "executed"):
            self.pusher.executed(action, ok)


class RandomShootingPlanner(MPCPlanner):
    """Random shooting over the same dynamics and cost as :class:`MPCPlanner`: one round of
    ``config.samples`` sequences of ``config.horizon`` steps, drawn uniformly (each step: a no-op with
    probability ``config.noop_prob``, else a real object chosen uniformly, heading uniform in (-pi, pi],
    lateral offset uniform in +-lateral_max, depth uniform in the push depth range, tilt uniform in
    +-tilt_max), the cheapest kept.
    ``iterations`` is forced to 1 and the warm start off."""

    def __init__(self, dynamics: Dynamics | None = None, config: MPCConfig | None = None, seed: int = 0,
                 **overrides) -> None:
        super().__init__(dynamics, config, seed, **(overrides | {"iterations": 1, "warm_start": False}))
        self._real: torch.Tensor | None = None

    def _start(self, state, mask, cost, shift):
        self._real = mask.clone()  # the real slots, for _sample
        return super()._start(state, mask, cost, shift)

    def _sample(self, d: _Distribution, s: int, keep: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        h, n = d.mean.shape[:2]
        g = self.generator
        allowed = self._real if self._real is not None else d.probs[0, :n] > 0
        probs = torch.zeros(n + 1)
        k = int(allowed.sum())
        if k:
            probs[:n] = allowed.to(torch.float32) * (1.0 - c.noop_prob) / k
            probs[n] = c.noop_prob
        else:
            probs[n] = 1.0
        choice = torch.multinomial(probs.expand(s * h, n + 1), 1, replacement=True, generator=g).view(s, h)
        is_push = choice < n
        choice[(is_push.cumsum(1) > c.max_pushes) & is_push] = n
        choice = choice.gather(1, torch.argsort((choice >= n).to(torch.int8), dim=1, stable=True))
        u = torch.rand(s, h, N_PARAMS, generator=g)
        lo, hi = c.push.depth
        params = torch.stack([(2 * u[..., 0] - 1) * math.pi, (2 * u[..., 1] - 1) * c.push.lateral_max,
                              lo + (hi - lo) * u[..., 2], (2 * u[..., 3] - 1) * c.push.tilt_max], -1)
        return choice, params


__all__ = ["RandomShootingPlanner", "ScriptedPusher", "TurnFirst"]
