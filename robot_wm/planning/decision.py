"""What the planner decides at each decision point, in the form the controller executes.

A :class:`Decision` is one action — a pick (grasp, lift, carry, place), a push, or nothing left to do —
chosen from a fresh observation; the controller executes it and asks again (receding horizon). All poses and
points are in the world frame (m, rad, xyzw quaternions). ``record`` is the JSON-able account of how the
decision was reached (candidates, predicted P(success), shadow verdicts, costs, timings): the demo writes one
per line to ``plan.jsonl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from robot_wm.geometry import Pose
from robot_wm.interface import Observation
from robot_wm.perception.estimate import ObjectEstimate


@dataclass
class PickAction:
    """Grasp `target` with the TCP at `grasp_pose` (world; TCP z = approach direction, y = closing axis),
    the fingers opened to `open_width` m before the approach and closing on `contact_width` m of object.
    The approach runs along the TCP z axis from `approach` m behind the grasp."""

    target: str
    grasp_pose: Pose
    open_width: float
    contact_width: float
    approach: float = 0.12


@dataclass
class PushAction:
    """Push with the closed fingertip pads: the TCP starts at `start` (3,) m, moves `distance` m along the
    heading `yaw` rad (direction (cos yaw, sin yaw, 0)) at constant height, then retreats upwards; the pads'
    face is turned by `tilt` rad about z from perpendicular to the motion (one corner leads: it turns what
    it meets off-centre). `target` is the object meant to move (others may be touched)."""

    target: str
    start: np.ndarray
    yaw: float
    distance: float
    tilt: float = 0.0

    @classmethod
    def from_row(cls, target: str, action: np.ndarray) -> PushAction:
        """From a push action row (7,) ``[PUSH, x, y, z, yaw, distance, tilt]`` (robot_wm.model.state)."""
        return cls(target, np.asarray(action[1:4], float), float(action[4]), float(action[5]), float(action[6]))


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


class TaskPlanner(Protocol):
    """The brain behind a controller: called with the current estimates at each decision point."""

    def decide(self, estimates: list[ObjectEstimate], obs: Observation) -> Decision:
        """The next action for the task given what perception sees now."""
        ...

    def outcome(self, decision: Decision, estimates: list[ObjectEstimate], succeeded: bool) -> dict[str, Any]:
        """Told what happened after `decision` ran (fresh estimates; whether execution reported success);
        returns a JSON-able note (e.g. prediction error) that goes into the decision's record."""
        ...
