"""What the planner decides at each decision point, in the form the controller executes.

A :class:`Decision` is one action — a pick (grasp, lift, carry, place), a push, or nothing left to do —
chosen from a fresh observation; the controller executes it and asks again (receding horizon). All poses and
points are in the world frame (m, rad, xyzw quaternions). ``record`` is the JSON-able account of how the
decision was reached (candidates, predicted P(success), shadow verdicts, costs, timings): the demo writes one
per line to ``plan.jsonl``.

:class:`ObjectIdentities` follows physical objects across tracker ids (perception may call an object that
fell back, was pushed far or was hidden by the arm by a new id): retry budgets are kept per identity, so an
object re-detected under a new id does not get a fresh budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.geometry import Pose, pusher_heading, top_down_quaternion
from robot_wm.interface import Observation
from robot_wm.perception.estimate import ObjectEstimate


@dataclass
class PickAction:
    """Grasp `target` with the TCP at `grasp_pose` (world; TCP z = approach direction, y = closing axis),
    the fingers opened to `open_width` m before the approach and closing on `contact_width` m of object.
    The approach runs along the TCP z axis from `approach` m behind the grasp. `q_pre` (7,) rad: the joint
    angles at the pre-grasp from which the planner checked the straight approach (None: not checked; the
    controller then solves the pre-grasp pose from wherever the arm is)."""

    target: str
    grasp_pose: Pose
    open_width: float
    contact_width: float
    approach: float = 0.12
    q_pre: np.ndarray | None = None


@dataclass
class PushAction:
    """Push with the closed fingertip pads: the TCP starts at `start` (3,) m, moves `distance` m along the
    heading `yaw` rad (direction (cos yaw, sin yaw, 0)) at constant height, then retreats upwards; the pads'
    face is turned by `tilt` rad about z from perpendicular to the motion (one corner leads: it turns what
    it meets off-centre). `lean` (rad, >= 0) tips the hand about its closing axis so the palm leans forward
    along the motion — a drag under a wall taller than the palm's reach (:mod:`robot_wm.planning.drag`);
    :func:`push_rotation` is the TCP's orientation. `target` is the object meant to move (others may be
    touched)."""

    target: str
    start: np.ndarray
    yaw: float
    distance: float
    tilt: float = 0.0
    lean: float = 0.0

    @classmethod
    def from_row(cls, target: str, action: np.ndarray) -> PushAction:
        """From a push action row (7,) ``[PUSH, x, y, z, yaw, distance, tilt]`` (robot_wm.model.state)."""
        return cls(target, np.asarray(action[1:4], float), float(action[4]), float(action[5]), float(action[6]))


def push_rotation(yaw: float, tilt: float = 0.0, lean: float = 0.0) -> Rotation:
    """The TCP's orientation (world) for a push along `yaw` with the pads turned by `tilt` and the hand leaning
    by `lean` rad about its closing axis, the palm forward along the motion (its approach axis then points
    back, down and towards where the push came from)."""
    base = Rotation.from_quat(top_down_quaternion(pusher_heading(yaw + tilt)))
    if lean == 0.0:
        return base
    forward = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    for sign in (1.0, -1.0):
        rot = base * Rotation.from_euler("y", sign * lean)
        if float(-rot.apply([0.0, 0.0, 1.0]) @ forward) > 0:  # the palm (behind the TCP along -z) leads
            return rot
    return base  # unreachable for 0 < |lean| < pi


@dataclass
class Decision:
    """The next action: ``kind`` "pick" (with `pick`), "push" (with `push`) or "done" (nothing left that
    the planner can do; `reason` says why). `predicted` holds what the planner expects (e.g. ``p_success``,
    ``end_xy_yaw`` {id: [x, y, yaw]}) so the controller can notice when the world did something else."""

    kind: Literal["pick", "push", "done"]
    pick: PickAction | None = None
    push: PushAction | None = None
    reason: str = ""
    predicted: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    failure: str = ""  # set by the controller before ``outcome``: why execution failed ("" when it did not)


class TaskPlanner(Protocol):
    """The brain behind a controller: called with the current estimates at each decision point."""

    def decide(self, estimates: list[ObjectEstimate], obs: Observation) -> Decision:
        """The next action for the task given what perception sees now."""
        ...

    def outcome(self, decision: Decision, estimates: list[ObjectEstimate], succeeded: bool) -> dict[str, Any]:
        """Told what happened after `decision` ran (fresh estimates; whether execution reported success);
        returns a JSON-able note (e.g. prediction error) that goes into the decision's record."""
        ...


IDENTITY_RADIUS = 0.1  # m: farthest a new tracker id may be from where a lost identity was last seen
IDENTITY_SIZE = 0.03  # m: most its sorted extents may differ in sum from the identity's
IDENTITY_COLOR = 0.2  # most its mean RGB (each in [0, 1]) may differ in sum from the identity's, when both known


@dataclass
class _Identity:
    key: str
    tracker_id: str
    xy: np.ndarray  # (2,) m, where it was last seen
    size: np.ndarray  # (3,) sorted extents, m
    color: np.ndarray | None


class ObjectIdentities:
    """Physical object identities behind perception's tracker ids (world frame, m).

    ``update(estimates)`` maps each movable estimate's id to an identity key (``obj0``, ``obj1``, ...): an id
    seen before keeps its identity; a new id takes over an identity whose own tracker id is not among the
    estimates any more, when it lies within `radius` of where that identity was last seen, its sorted extents
    differ by at most `size_tol` in sum and (both colours known) its mean colour by at most `color_tol` —
    the nearest such; anything else is a new identity. Fixed estimates are left out.
    """

    def __init__(self, radius: float = IDENTITY_RADIUS, size_tol: float = IDENTITY_SIZE,
                 color_tol: float = IDENTITY_COLOR) -> None:
        self.radius, self.size_tol, self.color_tol = radius, size_tol, color_tol
        self.reset()

    def reset(self) -> None:
        self._by_tracker: dict[str, _Identity] = {}
        self._all: list[_Identity] = []

    def __len__(self) -> int:
        return len(self._all)

    def key(self, tracker_id: str) -> str:
        """The identity of a tracker id seen by :meth:`update` (the id itself when never seen)."""
        ident = self._by_tracker.get(tracker_id)
        return ident.key if ident is not None else tracker_id

    def update(self, estimates: list[ObjectEstimate]) -> dict[str, str]:
        """Estimate id -> identity key for the movable estimates (see the class docstring)."""
        movable = [e for e in estimates if not e.fixed]
        present = {e.id for e in movable}
        out: dict[str, str] = {}
        fresh = []
        for e in movable:
            ident = self._by_tracker.get(e.id)
            if ident is None:
                fresh.append(e)
            else:
                out[e.id] = self._refresh(ident, e)
        lost = [i for i in self._all if i.tracker_id not in present]
        for e in fresh:
            xy = np.asarray(e.pose.position[:2], float)
            size = np.sort(np.asarray(e.extents, float))
            color = None if e.color is None else np.asarray(e.color, float)[:3]
            best, best_d = None, math.inf
            for ident in lost:
                d = float(np.linalg.norm(ident.xy - xy))
                if d > self.radius or d >= best_d or np.abs(ident.size - size).sum() > self.size_tol:
                    continue
                if color is not None and ident.color is not None and np.abs(ident.color - color).sum() > self.color_tol:
                    continue
                best, best_d = ident, d
            if best is None:
                best = _Identity(f"obj{len(self._all)}", e.id, xy, size, color)
                self._all.append(best)
            else:
                lost.remove(best)
                self._by_tracker.pop(best.tracker_id, None)
            self._by_tracker[e.id] = best
            out[e.id] = self._refresh(best, e)
        return out

    @staticmethod
    def _refresh(ident: _Identity, e: ObjectEstimate) -> str:
        ident.tracker_id = e.id
        ident.xy = np.asarray(e.pose.position[:2], float)
        ident.size = np.sort(np.asarray(e.extents, float))
        if e.color is not None:
            ident.color = np.asarray(e.color, float)[:3]
        return ident.key
