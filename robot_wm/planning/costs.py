"""Goal costs on batched object states, for the sampling MPC (:mod:`robot_wm.planning.mpc`).

All in torch, world frame, SI units; costs are metre-equivalents (a cost of 0.01 is worth 1 cm of goal
position error). States are ``(B, N, 15)`` in the layout of :mod:`robot_wm.model.state` with a mask
``(B, N)`` or ``(N,)`` (True = real object).

Yaw symmetry: a goal's yaw is compared modulo the object's symmetry about world z, read from its state:
spheres and cylinders (shape one-hot) have none to compare (yaw error 0); a box whose footprint is
square (|ex - ey| <= ``SQUARE_TOL`` x max(ex, ey)) is compared modulo pi/2, any other box modulo pi (it looks
the same turned by a half turn); a mesh modulo a full turn (an irregular object has no symmetry: its goal
yaw is stated from its box *now* and the turn left, registered from its points, so that its box's own
half-turn ambiguity never enters — :class:`~robot_wm.planning.scene_state.GoalMatcher`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from robot_wm.config.planner_mpc import CostConfig
from robot_wm.model.state import ACTION_DIM, PUSH

SQUARE_TOL = 0.1  # relative difference of the footprint's sides below which it counts as square
BOX, CYLINDER, SPHERE, MESH = 10, 11, 12, 13  # state indices of the shape one-hot


@dataclass(frozen=True)
class PoseGoal:
    """Put object slot `index` at world `xy` (m) and, optionally, heading `yaw` (rad, the body x axis
    projected on the table, compared modulo the object's symmetry). Tolerances say when it is reached."""

    index: int
    xy: tuple[float, float]
    yaw: float | None = None
    tolerance_m: float = 0.02
    tolerance_rad: float = math.radians(10.0)


def yaw_of(states: torch.Tensor) -> torch.Tensor:
    """Heading (rad) of each object's body x axis on the table: states (..., 15) -> (...)."""
    qx, qy, qz, qw = states[..., 3], states[..., 4], states[..., 5], states[..., 6]
    return torch.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))


def yaw_period(states: torch.Tensor) -> torch.Tensor:
    """Symmetry period (rad) of each object's yaw (..., 15) -> (...): inf = round (no yaw to compare),
    2 pi = mesh, pi/2 = square box, pi other boxes (see the module docstring)."""
    ex, ey = states[..., 7], states[..., 8]
    round_ = (states[..., CYLINDER] > 0.5) | (states[..., SPHERE] > 0.5)
    square = (ex - ey).abs() <= SQUARE_TOL * torch.maximum(ex, ey)
    period = torch.where(square, torch.full_like(ex, math.pi / 2), torch.full_like(ex, math.pi))
    period = torch.where(states[..., MESH] > 0.5, torch.full_like(ex, 2 * math.pi), period)
    return torch.where(round_, torch.full_like(ex, math.inf), period)


def yaw_error(yaw: torch.Tensor, target: float | torch.Tensor, period: torch.Tensor) -> torch.Tensor:
    """|yaw - target| (rad) wrapped to [0, period/2]; 0 where the period is inf."""
    p = torch.where(torch.isinf(period), torch.ones_like(period), period)
    d = torch.remainder(yaw - target + p / 2, p) - p / 2
    return torch.where(torch.isinf(period), torch.zeros_like(d), d.abs())


def push_count(actions: torch.Tensor) -> torch.Tensor:
    """Number of push actions (B,) in action sequences (B, H, 7) (rows of another kind, e.g. the MPC's
    no-op, do not count)."""
    if actions.shape[-1] != ACTION_DIM:
        raise ValueError(f"actions must end in {ACTION_DIM} (got {tuple(actions.shape)})")
    return (actions[..., 0] == PUSH).sum(-1).to(torch.float32)


def disagreement(std: torch.Tensor, mask: torch.Tensor, weights: CostConfig) -> torch.Tensor:
    """Member disagreement of one step in cost units (B,): over the real objects, position_weight x the
    x-y spread (m) plus yaw_weight x the yaw spread (rad) of the predicted world-frame delta.
    std (B, N, 4) = (dx, dy, dz m, dyaw rad) spread, mask (B, N) or (N,)."""
    xy = torch.sqrt(std[..., 0] ** 2 + std[..., 1] ** 2)
    per = weights.position_weight * xy + weights.yaw_weight * std[..., 3]
    return (per * mask.to(per.dtype)).sum(-1)


def ensemble_cost(mean_cost: torch.Tensor, member_disagreement: torch.Tensor, kappa: float) -> torch.Tensor:
    """The ensemble-aware cost (B,): the cost of the mean prediction + kappa x member disagreement."""
    return mean_cost + kappa * member_disagreement


class GoalCost:
    """Cost of object states against pose goals, with the weights of a :class:`CostConfig`.

    * :meth:`goal_cost` (B,): sum over goals of position_weight x |xy - target| (m) + yaw_weight x the
      wrapped yaw error (rad) for goals with a yaw;
    * :meth:`state_cost` (B,): goal cost + disturb_weight x the x-y displacement (m) of objects without a
      goal from `start` + the workspace penalty (outside_penalty per real object whose centre is outside
      ``workspace_x`` x ``workspace_y``, plus outside_slope per m it is outside);
    * :meth:`reached` (B,) bool: every goal within its tolerances.
    """

    def __init__(self, goals: Sequence[PoseGoal], weights: CostConfig | None = None) -> None:
        self.goals = list(goals)
        self.weights = weights or CostConfig()
        w = self.weights
        self._idx = torch.tensor([g.index for g in self.goals], dtype=torch.long)
        self._xy = torch.tensor([list(g.xy) for g in self.goals], dtype=torch.float32).reshape(-1, 2)
        self._has_yaw = torch.tensor([g.yaw is not None for g in self.goals], dtype=torch.bool)
        self._any_yaw = bool(self._has_yaw.any())
        self._yaw = torch.tensor([0.0 if g.yaw is None else g.yaw for g in self.goals], dtype=torch.float32)
        self._lo = torch.tensor([w.workspace_x[0], w.workspace_y[0]], dtype=torch.float32)
        self._hi = torch.tensor([w.workspace_x[1], w.workspace_y[1]], dtype=torch.float32)

    @property
    def goal_indices(self) -> list[int]:
        return [g.index for g in self.goals]

    def _errors(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Position errors (B, G) m and yaw errors (B, G) rad (0 for goals without a yaw)."""
        n = states.shape[-2]
        if len(self.goals) and (int(self._idx.max()) >= n or int(self._idx.min()) < 0):
            raise ValueError(f"a goal names object slot {self._idx.tolist()} but states have {n} slots")
        g = states.index_select(-2, self._idx)  # (B, G, 15)
        pos = torch.linalg.vector_norm(g[..., 0:2] - self._xy, dim=-1)
        if not self._any_yaw:
            return pos, torch.zeros_like(pos)
        yaw = yaw_error(yaw_of(g), self._yaw, yaw_period(g)) * self._has_yaw
        return pos, yaw

    def goal_cost(self, states: torch.Tensor) -> torch.Tensor:
        """states (B, N, 15) -> (B,)."""
        if not self.goals:
            return states.new_zeros(states.shape[:-2])
        pos, yaw = self._errors(states)
        if not self._any_yaw:
            return self.weights.position_weight * pos.sum(-1)
        return (self.weights.position_weight * pos + self.weights.yaw_weight * yaw).sum(-1)

    def workspace_penalty(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """states (B, N, 15), mask (B, N) or (N,) -> (B,)."""
        xy = states[..., 0:2]
        out = (torch.relu(self._lo - xy) + torch.relu(xy - self._hi)).sum(-1)  # (B, N) m outside
        per = self.weights.outside_penalty * (out > 0) + self.weights.outside_slope * out
        return (per * mask).sum(-1)

    def disturbance(self, states: torch.Tensor, start: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x-y displacement (B,) in m, summed over real objects without a goal, from start (N, 15) or
        (B, N, 15); mask (N,) or (B, N)."""
        free = mask.clone()
        if len(self.goals):
            free[..., self._idx] = False
        moved = torch.linalg.vector_norm(states[..., 0:2] - start[..., 0:2], dim=-1)
        return (moved * free).sum(-1)

    def state_cost(self, states: torch.Tensor, start: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The cost of being in `states` (B, N, 15) having started from `start` (N, 15) (B,)."""
        w = self.weights
        c = self.goal_cost(states) + self.workspace_penalty(states, mask)
        if w.disturb_weight > 0:
            c = c + w.disturb_weight * self.disturbance(states, start, mask)
        return c

    def reached(self, states: torch.Tensor) -> torch.Tensor:
        """(B,) True where every goal is within its position and yaw tolerances."""
        if not self.goals:
            return torch.ones(states.shape[:-2], dtype=torch.bool)
        pos, yaw = self._errors(states)
        tol_m = torch.tensor([g.tolerance_m for g in self.goals])
        tol_r = torch.tensor([g.tolerance_rad for g in self.goals])
        return ((pos <= tol_m) & (yaw <= tol_r)).all(-1)
