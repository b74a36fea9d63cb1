"""The closed push loop: perceive -> state -> plan -> execute the first push -> perceive again.

    loop = PushLoop(MPCPusher(MPCPlanner(seed=0)), max_pushes=10)
    result = loop.run(observe, estimator, execute, GoalMatcher(object_goals(scene.config)))

``observe() -> Observation`` gives a fresh observation (RGB-D frames) of a settled scene; ``estimator``
turns it into object estimates with stable ids (e.g. :class:`robot_wm.control.rgbd_estimator.RgbdEstimator`);
``execute(action (7,)) -> bool`` executes one push action ``[0, x, y, z, yaw, distance, tilt]`` (world frame,
m, rad) and returns whether it ran as commanded (in simulation: :func:`sim_push_executor`, the teleporting
push primitive the world model's training data were recorded with). The loop stops when every goal is
within tolerance *as perceived* (nothing on this path reads the simulator's state; a benchmark judges the
end by ground truth), when the pusher has nothing worth doing (its plan starts with a no-op), when a goal
object is no longer perceived, or after `max_pushes` pushes.

The loop works to half of each goal's tolerances (`margin`): perception is not exact, and a goal that only
just looks met may not be. After every push it tells the pusher whether the executor ran it (optional hook
``executed(action, ok)``) and where the plan expected the goal objects to end up, which re-identifies a goal
object whose tracker id a long push outran (:class:`~robot_wm.planning.scene_state.GoalMatcher`).

A pusher is anything with ``reset(seed)`` and ``act(scene, goals) -> action (7,) | None``: the sampling MPC
(:class:`MPCPusher`) or a baseline (:mod:`robot_wm.planning.baselines`). The MPC's dynamics is best
wrapped in :class:`ExecutablePushes`: the learned model does not know which pushes the arm cannot start
(the hand would hit a neighbour, or the start is out of reach), so those are refused before they are
imagined (:func:`push_start_blocked`), as are pushes like one the executor refused.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch

from robot_wm.config.workspace import REACH_MAX, REACH_MIN
from robot_wm.interface import Observation
from robot_wm.model.state import PUSH, TILT
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.costs import GoalCost, PoseGoal, yaw_error, yaw_of, yaw_period
from robot_wm.planning.dynamics import Dynamics, Prediction
from robot_wm.planning.mpc import MPCPlanner, Plan
from robot_wm.planning.scene_state import GoalMatcher, PerceivedScene, perceived_scene

log = logging.getLogger(__name__)

MAX_PUSHES = 10
MARGIN = 0.5  # the loop aims at this fraction of each goal's tolerances


class Pusher(Protocol):
    """Chooses the next push from the perceived scene: an action (7,) or None (nothing worth doing)."""

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, scene: PerceivedScene, goals: list[PoseGoal]) -> np.ndarray | None: ...


class Estimator(Protocol):
    def estimate(self, obs: Observation) -> list[ObjectEstimate]: ...


# The closed hand at a push's start, as boxes in the push frame (along the heading, across it, z above the
# TCP), m: the closed fingers and the hand body (their axis-aligned bounds in PyBullet's Panda model with the
# closing axis across the push, as robot_wm.sim.push.execute_push holds it; turned by the push's tilt).
# The hand body's box starts 4.5 cm above the TCP, not at its 3.5 cm bound: its underside is rounded. Against
# teleport_arm's own check on 300 random pushes among 3 boxes (2-10 cm tall), this check missed 4 blocked
# starts and refused 14 free ones (with 3.5 cm: none missed, 69 refused).
HAND_BOXES = ((0.015, 0.030, -0.011, 0.050), (0.030, 0.100, 0.045, 0.135))
REFUSED_RADIUS = 0.01  # m: a push starting this near a refused one ...
REFUSED_HEADING = 0.26  # rad: ... and heading this near it counts as refused too
CLEARANCE = 0.004  # m, the push primitive's required gap between the teleported hand and anything else
NO_EFFECT_M = 0.002  # m: a pushed object that moved less than this ...
NO_EFFECT_RAD = math.radians(1.0)  # ... and turned less than this (as perceived) was not reached
EXTRA_REACH_STEP = 0.02  # m added to an object's pushes each time one did not reach it ...
EXTRA_REACH_MAX = 0.04  # ... up to this


def unmoved(scene: PerceivedScene, before: np.ndarray) -> bool:
    """Whether some perceived object of `scene` still stands where the object state `before` (15,) was:
    within NO_EFFECT_M of its x-y and NO_EFFECT_RAD of its yaw (modulo its footprint's symmetry)."""
    real = scene.states[scene.mask]
    if not len(real):
        return False
    near = np.linalg.norm(real[:, 0:2] - before[0:2], axis=1) < NO_EFFECT_M
    if not near.any():
        return False
    st = torch.from_numpy(real[near])
    b = torch.from_numpy(np.asarray(before, np.float32))
    return bool((yaw_error(yaw_of(st), yaw_of(b), yaw_period(b)) < NO_EFFECT_RAD).any())


def push_start_blocked(states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor,
                       clearance: float = CLEARANCE) -> torch.Tensor:
    """(B,) bool: pushes the executor would refuse, judged on the given (perceived) states: the TCP start
    or end out of the arm's reach (:mod:`robot_wm.config.workspace`), or the closed hand at the start
    (:data:`HAND_BOXES` + `clearance`) overlapping the oriented box (footprint x z-range) of any real
    object: a neighbour, or the pushed object itself under the hand body when it is tall (the fingers
    start the planner's gap away from it). Grasp rows are judged as if they were pushes.
    states (B, N, 15), mask (B, N) or (N,), actions (B, 7) push rows (world frame, m, rad)."""
    b, n, _ = states.shape
    m = mask.expand(b, n) if mask.ndim == 1 else mask
    x, y, z, h, dist = actions[:, 1], actions[:, 2], actions[:, 3], actions[:, 4], actions[:, 5]
    c, s = torch.cos(h), torch.sin(h)
    r0 = torch.hypot(x, y)
    r1 = torch.hypot(x + dist * c, y + dist * s)
    out_of_reach = (r0 < REACH_MIN) | (r0 > REACH_MAX) | (r1 < REACH_MIN) | (r1 > REACH_MAX)
    # objects in the hand's frame (the push frame turned by the pad tilt): centre (u along, v across), yaw
    # relative to the hand's heading, half extents
    h = h + actions[:, TILT]
    c, s = torch.cos(h), torch.sin(h)
    dx, dy = states[..., 0] - x[:, None], states[..., 1] - y[:, None]
    u = c[:, None] * dx + s[:, None] * dy
    v = -s[:, None] * dx + c[:, None] * dy
    qx, qy, qz, qw = states[..., 3], states[..., 4], states[..., 5], states[..., 6]
    yaw = torch.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz)) - h[:, None]
    cy, sy = torch.cos(yaw).abs(), torch.sin(yaw).abs()
    hx, hy, hz = 0.5 * states[..., 7], 0.5 * states[..., 8], 0.5 * states[..., 9]
    zc = states[..., 2]
    blocked = torch.zeros(b, dtype=torch.bool)
    for a_h, c_h, zlo, zhi in HAND_BOXES:
        za, zb = z[:, None] + zlo - clearance, z[:, None] + zhi + clearance
        z_overlap = (zc + hz > za) & (zc - hz < zb)
        # separating axes: the hand box's (u, v), then the object's own axes (rotated by yaw)
        ext_u = hx * cy + hy * sy  # object's half-extent along u
        ext_v = hx * sy + hy * cy
        sep = (u.abs() > a_h + clearance + ext_u) | (v.abs() > c_h + clearance + ext_v)
        cos_o, sin_o = torch.cos(yaw), torch.sin(yaw)
        pu = (u * cos_o + v * sin_o).abs()  # hand centre in the object's frame
        pv = (-u * sin_o + v * cos_o).abs()
        hand_x = (a_h + clearance) * cy + (c_h + clearance) * sy
        hand_y = (a_h + clearance) * sy + (c_h + clearance) * cy
        sep = sep | (pu > hx + hand_x) | (pv > hy + hand_y)
        blocked |= (m & z_overlap & ~sep).any(1)
    return blocked | out_of_reach


class ShortPushMemory:
    """Pushes that fell short, per object id: after a push whose object did not move (:func:`unmoved`) the
    push is refused, with pushes like it, by the planner's :class:`ExecutablePushes` (the model would predict
    the same motion and choose it again), and that object's later pushes travel :data:`EXTRA_REACH_STEP`
    further (up to :data:`EXTRA_REACH_MAX`; ``reach``): the plan assumed contact, so reality gets the travel
    it needs to match it. Call :meth:`learn` with each fresh scene before planning, :meth:`extend` on the
    push chosen."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.reach: dict[str, float] = {}  # object id -> extra travel (m) its pushes get
        self._pushed: tuple[str, np.ndarray, np.ndarray] | None = None  # (object id, its state, the action)

    def learn(self, scene: PerceivedScene, dynamics: object) -> None:
        """Compare the last extended push's object with `scene`; if it did not move, reach further and refuse
        that push in `dynamics` (when it is an :class:`ExecutablePushes`)."""
        last, self._pushed = self._pushed, None
        if last is None or not unmoved(scene, last[1]):
            return
        self.reach[last[0]] = min(EXTRA_REACH_MAX, self.reach.get(last[0], 0.0) + EXTRA_REACH_STEP)
        if isinstance(dynamics, ExecutablePushes):
            dynamics.refuse(last[2])

    def extend(self, scene: PerceivedScene, slot: int, action: np.ndarray) -> np.ndarray:
        """The push (7,) of `scene`'s object `slot` with that object's extra reach added; remembered."""
        oid = scene.ids[slot]
        out = np.asarray(action).copy()
        out[5] += self.reach.get(oid, 0.0)
        self._pushed = (oid, scene.states[slot].copy(), out)
        return out


class ExecutablePushes:
    """Wraps a dynamics: pushes the executor would refuse (:func:`push_start_blocked` on the states being
    rolled out, or near a push the executor did refuse since the scene last changed: :meth:`refuse`) leave
    the scene unchanged with p_success 0, so the MPC's failure cost steers it away from them; the inner
    dynamics only sees the other rows. Grasp rows pass through unchanged."""

    def __init__(self, inner: Dynamics, clearance: float = CLEARANCE) -> None:
        self.inner = inner
        self.clearance = clearance
        self.refused: list[tuple[float, float, float]] = []  # (x m, y m, heading rad) of refused pushes

    def refuse(self, action: np.ndarray) -> None:
        """The executor refused this push (7,) in the current scene: refuse it (and pushes like it) too."""
        self.refused.append((float(action[1]), float(action[2]), float(action[4])))

    def forget(self) -> None:
        """The scene changed: forget the refused pushes."""
        self.refused = []

    def __call__(self, states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor) -> Prediction:
        blocked = push_start_blocked(states, mask, actions, self.clearance) & (actions[:, 0] == PUSH)
        for x, y, h in self.refused:
            near = torch.hypot(actions[:, 1] - x, actions[:, 2] - y) <= REFUSED_RADIUS
            turn = torch.remainder(actions[:, 4] - h + math.pi, 2 * math.pi) - math.pi
            blocked |= near & (turn.abs() <= REFUSED_HEADING) & (actions[:, 0] == PUSH)
        if not bool(blocked.any()):
            return self.inner(states, mask, actions)
        b, n, _ = states.shape
        nxt, p = states.clone(), torch.zeros(b)
        std = torch.zeros(b, n, 4)
        ok = (~blocked).nonzero().squeeze(1)
        if len(ok):
            pred = self.inner(states.index_select(0, ok), mask.index_select(0, ok), actions.index_select(0, ok))
            nxt.index_copy_(0, ok, pred.next_states)
            p.index_copy_(0, ok, pred.p_success)
            std.index_copy_(0, ok, pred.std)
        return Prediction(nxt, p, std)

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


class MPCPusher:
    """The sampling MPC as a pusher: from every fresh state it re-plans `replans` times (the first call
    warm-started from the last decision's plan, shifted by the executed step; the others refine it from
    the same state, as a controller re-planning at its rate while the last push runs) and returns the
    plan's first action. ``last_plan`` keeps the plan.

    Pushes that fell short (their object did not move) are refused next and later pushes of that object go
    further (:class:`ShortPushMemory`; ``reach``).
    """

    def __init__(self, planner: MPCPlanner, replans: int = 1) -> None:
        if replans < 1:
            raise ValueError(f"replans must be >= 1 (got {replans})")
        self.planner = planner
        self.replans = replans
        self.last_plan: Plan | None = None
        self.short = ShortPushMemory()

    def reset(self, seed: int | None = None) -> None:
        self.planner.reset(seed)
        self.last_plan = None
        self.short.reset()
        if isinstance(self.planner.dynamics, ExecutablePushes):
            self.planner.dynamics.forget()

    def act(self, scene: PerceivedScene, goals: list[PoseGoal]) -> np.ndarray | None:
        self.short.learn(scene, self.planner.dynamics)
        shift = self.last_plan is not None
        for _ in range(self.replans):
            self.last_plan = self.planner.plan(scene.states, scene.mask, goals, shift=shift)
            shift = False
        action = self.last_plan.first_action()
        slot = int(self.last_plan.objects[0])
        if action is not None and 0 <= slot < len(scene.ids):
            action = self.short.extend(scene, slot, action)
        return action

    @property
    def reach(self) -> dict[str, float]:
        """Object id -> the extra travel (m) its pushes get (:class:`ShortPushMemory`)."""
        return self.short.reach

    def executed(self, action: np.ndarray, ok: bool) -> None:
        """Told whether the executor ran `action`: a refused push is refused in the next plans (when the
        dynamics is :class:`ExecutablePushes`) until a push changes the scene."""
        dyn = self.planner.dynamics
        if isinstance(dyn, ExecutablePushes):
            if ok:
                dyn.forget()
            else:
                dyn.refuse(action)


def sim_push_executor(world: Any, arm: Any) -> Callable[[np.ndarray], bool]:
    """``execute(action)`` for a simulated :class:`robot_wm.sim.World` and its :class:`robot_wm.sim.Arm`:
    :func:`robot_wm.sim.push.execute_push` (teleport to the start, push along the line, teleport home,
    settle). Returns whether the push ran as commanded."""
    from robot_wm.sim.push import execute_push

    def execute(action: np.ndarray) -> bool:
        _, x, y, z, yaw, dist, tilt = (float(v) for v in action)
        return execute_push(world, arm, np.array([x, y, z]), yaw, dist, tilt=tilt).ok

    return execute


@dataclass
class PushStep:
    """One executed push: the action (7,) (world frame, m, rad), the perceived id of the object its plan
    pushes (`target`; "" for pushers without a plan), whether it ran as commanded, the times (s) of the
    perception before it (`perceive_s`, rendering included), planning and execution, and the plan's cost."""

    action: list[float]
    target: str
    ok: bool
    perceive_s: float
    plan_s: float
    execute_s: float
    predicted_cost: float | None = None


@dataclass
class PushLoopResult:
    """How the loop ended. `reached`: every goal within margin x its tolerances as last perceived.
    `reason`: "reached" | "no_action" (the pusher had nothing worth doing) | "max_pushes" | "lost" (a goal
    object was no longer perceived). `errors`: per goal object name, the last perceived (position m, yaw
    rad or None) error. `plan_s`: the time (s) of every decision, the final no-op's included."""

    reached: bool
    reason: str
    pushes: int
    steps: list[PushStep] = field(default_factory=list)
    errors: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    wall_s: float = 0.0
    plan_s: list[float] = field(default_factory=list)


def goal_errors(scene: PerceivedScene, goals: list[PoseGoal], names: list[str]
                ) -> dict[str, tuple[float, float | None]]:
    """Perceived errors per goal: name -> (|xy - goal| m, yaw error rad modulo the perceived symmetry, or
    None without a yaw goal)."""
    st = torch.from_numpy(scene.states)
    out = {}
    for name, g in zip(names, goals, strict=True):
        pos = float(np.linalg.norm(scene.states[g.index, 0:2] - np.asarray(g.xy)))
        yaw = None
        if g.yaw is not None:
            s = st[g.index]
            yaw = float(yaw_error(yaw_of(s), g.yaw, yaw_period(s)))
        out[name] = (pos, yaw)
    return out


class PushLoop:
    """Runs a :class:`Pusher` in closed loop (see the module docstring). `n_max`: pad states to this many
    slots (None: the perceived count). `margin`: the loop works to `margin` x each goal's tolerances (what
    the pusher is given and when it stops), so that perception error does not carry a goal that looks met
    out of its real tolerance."""

    def __init__(self, pusher: Pusher, max_pushes: int = MAX_PUSHES, n_max: int | None = None,
                 margin: float = MARGIN) -> None:
        if not 0.0 < margin <= 1.0:
            raise ValueError(f"margin must be in (0, 1] (got {margin})")
        self.pusher = pusher
        self.max_pushes = max_pushes
        self.n_max = n_max
        self.margin = margin

    def _perceive(self, observe: Callable[[], Observation], estimator: Estimator, matcher: GoalMatcher,
                  expected: dict[str, np.ndarray] | None = None
                  ) -> tuple[PerceivedScene, list[PoseGoal] | None, float]:
        t0 = time.perf_counter()
        scene = perceived_scene(estimator.estimate(observe()), self.n_max)
        try:
            goals = [replace(g, tolerance_m=self.margin * g.tolerance_m, tolerance_rad=self.margin * g.tolerance_rad)
                     for g in matcher.pose_goals(scene, expected)]
        except LookupError as exc:
            log.info("push loop: %s", exc)
            goals = None
        return scene, goals, time.perf_counter() - t0

    def run(self, observe: Callable[[], Observation], estimator: Estimator, execute: Callable[[np.ndarray], bool],
            matcher: GoalMatcher, seed: int | None = None,
            on_step: Callable[[PushStep, PerceivedScene], None] | None = None) -> PushLoopResult:
        """One episode from the current scene; `seed` reseeds the pusher (and forgets its warm start)."""
        t_start = time.perf_counter()
        self.pusher.reset(seed)
        names = [g.name for g in matcher.goals]
        steps: list[PushStep] = []
        plan_times: list[float] = []
        scene, goals, t_perc = self._perceive(observe, estimator, matcher)
        reason = "max_pushes"
        while True:
            if goals is None:
                reason = "lost"
                break
            if bool(GoalCost(goals).reached(torch.from_numpy(scene.states)[None])[0]):
                reason = "reached"
                break
            if len(steps) >= self.max_pushes:
                break
            t0 = time.perf_counter()
            action = self.pusher.act(scene, goals)
            t_plan = time.perf_counter() - t0
            plan_times.append(t_plan)
            if action is None:
                reason = "no_action"
                break
            t0 = time.perf_counter()
            ok = execute(np.asarray(action, np.float32))
            t_exec = time.perf_counter() - t0
            if hasattr(self.pusher, "executed"):
                self.pusher.executed(action, bool(ok))
            plan = getattr(self.pusher, "last_plan", None)
            target = scene.ids[int(plan.objects[0])] if plan is not None and plan.objects[0] >= 0 else ""
            step = PushStep([float(v) for v in action], target, bool(ok), t_perc, t_plan, t_exec,
                            None if plan is None else float(plan.cost))
            steps.append(step)
            if on_step is not None:
                on_step(step, scene)
            expected = None
            if ok and plan is not None and plan.objects[0] >= 0:  # where the plan expects the goal objects now
                expected = {n: plan.states[1, g.index, 0:2] for n, g in zip(names, goals, strict=True)}
            scene, goals, t_perc = self._perceive(observe, estimator, matcher, expected)
        errors = goal_errors(scene, goals, names) if goals is not None else {}
        return PushLoopResult(reason == "reached", reason, len(steps), steps, errors, time.perf_counter() - t_start,
                              plan_times)


__all__ = ["CLEARANCE", "EXTRA_REACH_MAX", "EXTRA_REACH_STEP", "HAND_BOXES", "MARGIN", "MAX_PUSHES", "NO_EFFECT_M",
           "NO_EFFECT_RAD", "ExecutablePushes", "MPCPusher", "PushLoop",
           "PushLoopResult", "PushStep", "Pusher", "ShortPushMemory", "goal_errors", "push_start_blocked", "sim_push_executor",
           "unmoved"]
