"""Pushes that learn from the episode's own pushes: the turning push with an online turn rate, and the
extra reach a push needs when the pads stopped short of what they were sent to push.

Why. The learned world model predicts a turning push's turn at about a twentieth of its size
(docs/world_model.md), and a pushed mesh's perceived box can stand proud of its surface, so that a push
planned on the box ends before the pads touch it. Both are properties of *this* object, and one push
reveals them. :class:`PushFeedback` keeps, per goal object (its position in the goals list), what the
pushes it made did:

* **turn rate** — a turning push (across a long side, the line at ``TURN_LATERAL`` of the half-width off
  centre, the pad tilted ``TURN_TILT`` so that its corner on that side leads) turns a box by about
  ``c x travel / L`` rad (travel after contact m, L the pushed side's length m). ``c`` is fitted by least
  squares to the object's turning pushes so far, with the prior :data:`TURN_RATE_PRIOR` weighted as one push
  of :data:`PRIOR_TRAVEL`; the next turning push travels ``remaining turn x L / c`` (within
  ``[push.depth min, MAX_TURN_DEPTH]``).
* **side** — a push left of its line turns the object clockwise whatever the heading, so a turning push
  from either long side turns it the same way when the offset keeps its sign. It is made from the side that
  also moves the object towards its goal position; at the goal position (within :data:`ALTERNATE_M`), from
  the side opposite the last one, so that the turning pushes' translations cancel.
* **reach** — after a push the object neither moved :data:`NO_EFFECT_M` nor turned :data:`NO_EFFECT_RAD`
  (as perceived): the pads did not reach it, and its next pushes travel
  :data:`~robot_wm.planning.push_loop.EXTRA_REACH_STEP` further (up to
  :data:`~robot_wm.planning.push_loop.EXTRA_REACH_MAX`); a turning push that did nothing is next made from
  the other side.
* **refused** — a side whose push the executor refused, or whose start the hand cannot reach free of the
  other objects (:func:`~robot_wm.planning.push_loop.push_start_blocked`), is not used until a push runs.

World frame, SI units (m, rad); actions are push rows ``[0, x, y, z, heading, gap + depth, tilt]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from robot_wm.config.planner_mpc import PushSamplingConfig
from robot_wm.planning.costs import PoseGoal, yaw_error, yaw_of, yaw_period
from robot_wm.planning.mpc import push_actions
from robot_wm.planning.push_loop import (
    EXTRA_REACH_MAX,
    EXTRA_REACH_STEP,
    NO_EFFECT_M,
    NO_EFFECT_RAD,
    push_start_blocked,
)
from robot_wm.planning.scene_state import PerceivedScene

TURN_LATERAL = 0.8  # fraction of the half-width: the turning push's offset from the centre line
TURN_TILT = 0.45  # rad, its pad tilt (the corner on the side of the offset leads)
TURN_RATE_PRIOR = 0.4  # c in turn = c x travel / L: boxes' median on training-set scenes (docs/world_model.md)
PRIOR_TRAVEL = 0.04  # m: the prior weighs as much as one turning push of this travel
TURN_RATE_MIN = 0.05  # c is never taken below this (a side that did not turn the object is left)
MAX_TURN_DEPTH = 0.10  # m, a turning push's travel after contact at most
TURN_RADIUS = 3.0  # turn while the position error is within this x the goal's position tolerance ...
TURN_REACH_M = 0.10  # ... or within this (m) when a turning push also heads towards the goal position:
TOWARDS_COS = 0.7  # its heading within acos(0.7) = 45 degrees of the direction to the goal
FINISH_RADIUS = 3.0  # x the position tolerance: a turned object's position is finished by a straight push
MOVE_LATERALS = (0.0, 0.5, -0.5)  # a push towards the goal through its centre, else this far off centre
ALTERNATE_M = 0.005  # m: closer than this to the goal position, turning pushes alternate sides


@dataclass
class _Sent:
    """A push this controller made: for which goal (position in the goals list), what kind ("turn" or
    "move"), the perceived pose before it, and for turns the planned travel (m), wanted direction
    (+1 counter-clockwise) and side (+1: heading yaw + pi/2, -1: yaw - pi/2)."""

    goal: int
    kind: str
    xy: np.ndarray
    yaw: float
    period: float
    left: float | None = None  # the turn still wanted before the push (rad; None without a yaw goal)
    depth: float = 0.0
    sign: float = 0.0
    side: int = 0


@dataclass
class _ObjectMemory:
    """What the pushes told about one goal object: the turn-rate sums (x = travel / L, y = turn in the
    wanted direction), the extra reach (m), the side of the last turning push and the refused sides."""

    sxx: float = 0.0
    sxy: float = 0.0
    reach: float = 0.0
    last_side: int = 0
    refused: set[int] = field(default_factory=set)


def _period(state: np.ndarray) -> float:
    return float(yaw_period(torch.from_numpy(np.asarray(state, np.float32))))


def _yaw(state: np.ndarray) -> float:
    return float(yaw_of(torch.from_numpy(np.asarray(state, np.float32))))


def _left(state: np.ndarray, goal: PoseGoal) -> float | None:
    """The turn (rad, > 0 counter-clockwise) still wanted for the goal, the smallest its symmetry allows."""
    if goal.yaw is None:
        return None
    period = _period(state)
    return math.remainder(goal.yaw - _yaw(state), period if math.isfinite(period) else 2 * math.pi)


class PushFeedback:
    """Turning and reaching pushes that learn from the pushes made (see the module docstring).

    Call :meth:`observe` with every fresh scene before asking for a push, :meth:`executed` after every push
    this controller made, and :meth:`forget_last` when someone else pushed. `push`: the push geometry (gap,
    depth range, tilt gap) the pushes are built with."""

    def __init__(self, push: PushSamplingConfig | None = None) -> None:
        self.push = push or PushSamplingConfig()
        self.reset()

    def reset(self) -> None:
        """A new episode: forget everything."""
        self._memory: dict[int, _ObjectMemory] = {}
        self._sent: _Sent | None = None

    def memory(self, k: int) -> _ObjectMemory:
        """What is known of goal k's object (created empty)."""
        return self._memory.setdefault(k, _ObjectMemory())

    def turn_rate(self, k: int, length: float) -> float:
        """c (see the module docstring) for goal k's object, whose pushed side is `length` m long."""
        m = self.memory(k)
        w = (PRIOR_TRAVEL / max(length, 1e-3)) ** 2
        return max(TURN_RATE_MIN, (m.sxy + w * TURN_RATE_PRIOR) / (m.sxx + w))

    # -------------------------------------------------------------------------------- feedback
    def forget_last(self) -> None:
        """Someone else made the last push: its effect is not this controller's to learn from."""
        self._sent = None
        for m in self._memory.values():
            m.refused.clear()

    def executed(self, action: np.ndarray, ok: bool) -> None:
        """The executor ran (ok) or refused this controller's last push."""
        sent = self._sent
        if sent is None:
            return
        if ok:
            for m in self._memory.values():
                m.refused.clear()
            return
        self.memory(sent.goal).refused.add(sent.side)
        self._sent = None

    def observe(self, scene: PerceivedScene, goals: list[PoseGoal]) -> None:
        """Learn from the last push this controller made, as the fresh `scene` shows it."""
        sent, self._sent = self._sent, None
        if sent is None or sent.goal >= len(goals):
            return
        st = scene.states[goals[sent.goal].index]
        moved = float(np.linalg.norm(st[0:2].astype(float) - sent.xy))
        p = sent.period if math.isfinite(sent.period) else 2 * math.pi
        left = _left(st, goals[sent.goal])
        if sent.left is not None and left is not None:  # the goal follows the object's registered turn
            turned = math.remainder(sent.left - left, p)
        else:
            turned = math.remainder(_yaw(st) - sent.yaw, p)
        m = self.memory(sent.goal)
        if moved < NO_EFFECT_M and abs(turned) < NO_EFFECT_RAD:
            m.reach = min(EXTRA_REACH_MAX, m.reach + EXTRA_REACH_STEP)
            if sent.kind == "turn":
                m.refused.add(sent.side)  # try the other side first
            return
        if sent.kind == "turn" and sent.depth > 0:
            x = sent.depth / max(float(st[7]), 1e-3)
            m.sxx += x * x
            m.sxy += x * sent.sign * turned

    # -------------------------------------------------------------------------------- pushes
    def _row(self, scene: PerceivedScene, index: int, prm: tuple[float, float, float, float]) -> np.ndarray:
        a = push_actions(torch.from_numpy(scene.states)[None], torch.tensor([index]),
                         torch.tensor([prm], dtype=torch.float32), self.push)
        return a[0].numpy()

    def _free(self, scene: PerceivedScene, row: np.ndarray) -> bool:
        blocked = push_start_blocked(torch.from_numpy(scene.states)[None], torch.from_numpy(scene.mask),
                                     torch.from_numpy(row)[None])
        return not bool(blocked[0])

    def move(self, scene: PerceivedScene, goals: list[PoseGoal], k: int, heading: float, depth: float
             ) -> np.ndarray | None:
        """A push of goal k's object along `heading` (rad) for `depth` m after contact (+ its extra reach),
        through its centre or, after the executor refused that, at the next of :data:`MOVE_LATERALS`;
        remembered as this controller's last push. None: the executor refused every one."""
        g = goals[k]
        st = scene.states[g.index]
        m = self.memory(k)
        for i, lateral in enumerate(MOVE_LATERALS):
            if 10 + i in m.refused:
                continue
            row = self._row(scene, g.index, (heading, lateral, depth + m.reach, 0.0))
            self._sent = _Sent(k, "move", st[0:2].astype(float), _yaw(st), _period(st), _left(st, g), side=10 + i)
            return row
        return None

    def finish(self, scene: PerceivedScene, goals: list[PoseGoal], radius: float = FINISH_RADIUS
               ) -> tuple[PoseGoal, np.ndarray] | None:
        """(goal, push (7,)) straight through the centre towards the position of the first goal with a yaw
        whose position is off by more than its tolerance but within `radius` x it (travel: the distance, within
        the push depth range, + the object's extra reach); or None. The learned model's short pushes often
        fall short of a box that was just turned; goals without a yaw are left to the MPC (a straight push
        rolls a cylinder off its line)."""
        lo, hi = self.push.depth
        for k, g in enumerate(goals):
            if g.yaw is None:
                continue
            d = np.asarray(g.xy, float) - scene.states[g.index, 0:2].astype(float)
            dist = float(np.linalg.norm(d))
            if g.tolerance_m < dist <= radius * g.tolerance_m:
                row = self.move(scene, goals, k, math.atan2(d[1], d[0]), float(np.clip(dist, lo, hi)))
                if row is not None:
                    return g, row
        return None

    def turn(self, scene: PerceivedScene, goals: list[PoseGoal]) -> tuple[PoseGoal, np.ndarray] | None:
        """(goal, turning push (7,)) for the first goal whose yaw is off by more than its tolerance (modulo
        the footprint's symmetry) and, in tolerances, by at least as much as its position; whose position is
        within :data:`TURN_RADIUS` x its tolerance, or within :data:`TURN_REACH_M` along a turning push's
        heading (:data:`TOWARDS_COS`); from a side the hand can start from. None: no such goal."""
        for k, g in enumerate(goals):
            if g.yaw is None:
                continue
            row = self._turn_row(scene, goals, k)
            if row is not None:
                return g, row
        return None

    def _turn_row(self, scene: PerceivedScene, goals: list[PoseGoal], k: int) -> np.ndarray | None:
        g = goals[k]
        st = scene.states[g.index]
        s = torch.from_numpy(np.asarray(st, np.float32))
        yaw, period = _yaw(st), float(yaw_period(s))
        yaw_err = float(yaw_error(yaw_of(s), g.yaw, yaw_period(s)))
        d = np.asarray(g.xy, float) - st[0:2].astype(float)
        dist = float(np.linalg.norm(d))
        if yaw_err <= g.tolerance_rad or yaw_err / g.tolerance_rad < dist / g.tolerance_m:
            return None
        across = abs(math.cos(yaw + math.pi / 2 - math.atan2(d[1], d[0]))) if dist > 0 else 1.0
        if dist > TURN_RADIUS * g.tolerance_m and (dist > TURN_REACH_M or across < TOWARDS_COS):
            return None
        p = period if math.isfinite(period) else 2 * math.pi
        signed = math.remainder(g.yaw - yaw, p)  # > 0: turn counter-clockwise
        sign = 1.0 if signed > 0 else -1.0
        length = float(st[7])
        m = self.memory(k)
        lo = self.push.depth[0]
        depth = float(np.clip(abs(signed) * length / self.turn_rate(k, length), lo, MAX_TURN_DEPTH))
        lateral = -sign * TURN_LATERAL  # left of the line turns clockwise
        tilt = -math.copysign(TURN_TILT, lateral)
        if dist > ALTERNATE_M:
            toward = math.atan2(d[1], d[0])
            first = 1 if math.cos(yaw + math.pi / 2 - toward) >= 0 else -1
        else:
            first = -m.last_side if m.last_side else 1
        for side in (first, -first):
            if side in m.refused:
                continue
            heading = math.remainder(yaw + side * math.pi / 2, 2 * math.pi)
            row = self._row(scene, g.index, (heading, lateral, depth + m.reach, tilt))
            if self._free(scene, row):
                m.last_side = side
                self._sent = _Sent(k, "turn", st[0:2].astype(float), yaw, period, signed, depth, sign, side)
                return row
        return None


__all__ = ["MAX_TURN_DEPTH", "TURN_LATERAL", "TURN_RATE_PRIOR", "TURN_TILT", "PushFeedback"]
