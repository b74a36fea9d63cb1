"""Executing motions one control tick at a time: the segment queue both controllers share.

A controller fills a queue of :class:`Segment` s — joint moves, IK pose moves, straight TCP lines, gripper
moves, settles and checks — and :class:`SegmentController` plays them as per-tick joint setpoints through
``step(obs) -> Command``. When the queue runs dry it asks the subclass what to do next (``_think``), which
queues more segments or finishes. A failed segment (target unreachable, no straight-line path, a check
that fails) aborts: the queue is dropped, the gripper opens and the TCP backs off upwards.

Poses are TCP poses in the world frame (m, xyzw quaternions); joint values in rad.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_wm.config import PickPlacePlannerConfig
from robot_wm.geometry import Pose, panda
from robot_wm.interface import Command, Observation
from robot_wm.sim import KinematicModel
from robot_wm.sim.trajectory import TrajectoryPlanner

log = logging.getLogger(__name__)

MIN_HELD_WIDTH = 0.004  # m: fingers closed further than this hold nothing
ARRIVE_TOL = 1e-3  # rad: joint error at which a motion counts as arrived
ARRIVE_TIMEOUT_S = 0.5
GRIPPER_TIMEOUT_S = 1.0

# A check segment's target: called with the observation and the tick's event list; returns "" when all
# is well, else the reason to abort.
Check = Callable[[Observation, list[str]], str]


@dataclass
class Segment:
    """One piece of motion.

    kind: ``joint`` (target q (7,) rad, speed = fraction of the joint velocity limits), ``pose`` (target TCP
    Pose reached by IK and a joint move), ``line`` (straight TCP line to a Pose at `speed` m/s peak),
    ``grip`` (gripper opening target m under `force` N per finger; waits until the fingers stop),
    ``settle`` (hold still for `target` ticks) or ``check`` (target: a :data:`Check`).
    label: the phase reported while it runs (default: the kind).
    """

    kind: str
    target: Any = None
    speed: float | None = None
    force: float = panda.FINGER_FORCE
    label: str = ""


class SegmentController:
    """Base of the controllers: the tick loop over a segment queue (see the module docstring).

    Subclasses implement ``_think(obs, events)`` (queue segments for the next action, or call
    ``_finish``) and may override ``_on_abort(reason)``. `request_images`: ask the runner for camera
    frames (``wants_images``) before each ``_think``; dt: control tick (s).
    """

    def __init__(self, kin: KinematicModel, settings: PickPlacePlannerConfig | None, dt: float,
                 request_images: bool) -> None:
        self.kin = kin
        self.settings = settings or PickPlacePlannerConfig()
        self.dt = dt
        self.request_images = request_images
        self.motion = TrajectoryPlanner(kin, self.settings.joint_speed, dt)

    def _reset_execution(self) -> None:
        self._queue: deque[Segment] = deque()
        self._setpoints: np.ndarray | None = None
        self._index = 0
        self._wait = 0
        self._segment: Segment | None = None
        self._hold: np.ndarray | None = None
        self._gripper = (panda.MAX_OPENING, panda.FINGER_FORCE)
        self._widths: list[float] = []
        self._finished = False
        self.phase = "observe"

    @property
    def wants_images(self) -> bool:
        """True when the next step will decide (and estimate objects) and so needs camera frames."""
        return self.request_images and self._segment is None and not self._queue and not self._finished

    @property
    def finished(self) -> bool:
        return self._finished

    # ------------------------------------------------------------------ the tick
    def step(self, obs: Observation) -> Command:
        """Advance by one tick given the latest observation; returns the command to apply now."""
        if self._hold is None:
            self._hold = np.asarray(obs.joint_positions, float).copy()
        events: list[str] = []
        for _ in range(8):  # segments that finish instantly (checks, planning) do not cost a tick
            if self._segment is None and not self._start_next(obs, events):
                break
            q, dq = self._advance(obs, events)
            if q is not None:
                return self._command(q, dq, events)
        return self._command(self._hold, np.zeros(7), events)

    def _think(self, obs: Observation, events: list[str]) -> None:
        """Queue the segments of the next action, or call ``_finish``; called with images when requested."""
        raise NotImplementedError

    def _on_abort(self, reason: str) -> None:
        """Told that the running action was aborted (before the back-off is queued)."""

    def _finish(self) -> None:
        self._finished = True
        self.phase = "done"

    def _command(self, q: np.ndarray, dq: np.ndarray, events: list[str]) -> Command:
        return Command(q, dq, self._gripper[0], self._gripper[1], self._finished, self.phase, events)

    def _start_next(self, obs: Observation, events: list[str]) -> bool:
        """Pop the next segment (asking ``_think`` when the queue is empty); False when idle or done."""
        if not self._queue:
            if self._finished:
                return False
            if self.wants_images and not obs.frames:
                return False  # the runner renders images for the next tick
            self._think(obs, events)
            if not self._queue:
                return False
        seg = self._queue.popleft()
        self._segment, self._index, self._wait, self._widths = seg, 0, 0, []
        q0 = self._hold
        if seg.kind in ("joint", "pose"):
            q1 = seg.target if seg.kind == "joint" else self.kin.ik(seg.target, q0)
            if q1 is None:
                self._abort("target pose unreachable")
                return True
            self._setpoints = self.motion.joint_move(q0, q1, seg.speed)
        elif seg.kind == "line":
            self._setpoints = self.motion.linear_move(q0, seg.target, seg.speed or self.settings.linear_speed)
            if self._setpoints is None:
                self._abort("no straight-line path")
                return True
        elif seg.kind == "grip":
            self._gripper = (float(seg.target), seg.force)
            self._setpoints = None
        else:
            self._setpoints = None
        self.phase = seg.label or seg.kind
        return True

    def _advance(self, obs: Observation, events: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Progress the active segment; returns (q, dq) to command, or (None, None) if it just ended."""
        seg = self._segment
        if seg is None:
            return None, None
        if self._setpoints is not None:  # a motion: play setpoints, then wait to arrive
            if self._index < len(self._setpoints):
                q = self._setpoints[self._index]
                prev = self._setpoints[self._index - 1] if self._index else self._hold
                self._index += 1
                self._hold = q
                return q, (q - prev) / self.dt
            self._wait += 1
            arrived = np.max(np.abs(np.asarray(obs.joint_positions) - self._hold)) < ARRIVE_TOL
            if arrived or self._wait * self.dt > ARRIVE_TIMEOUT_S:
                self._segment = None
                return None, None
            return self._hold, np.zeros(7)
        if seg.kind == "grip":
            self._widths.append(obs.gripper_width)
            settled = len(self._widths) > 12 and np.ptp(self._widths[-6:]) < 2e-5
            if settled or len(self._widths) * self.dt > GRIPPER_TIMEOUT_S:
                self._segment = None
                return None, None
            return self._hold, np.zeros(7)
        if seg.kind == "settle":
            self._wait += 1
            if self._wait >= int(seg.target):
                self._segment = None
                return None, None
            return self._hold, np.zeros(7)
        if seg.kind == "check":
            self._segment = None
            reason = seg.target(obs, events)
            if reason:
                self._abort(reason)
            return None, None
        self._segment = None
        return None, None

    def _abort(self, reason: str) -> None:
        """Give up the current action: open, back off upwards, and decide again from a fresh look."""
        self._on_abort(reason)
        log.info("action aborted: %s", reason)
        self._segment, self._setpoints = None, None
        self._queue.clear()
        up = self.kin.fk(self._hold)
        up = Pose([up.position[0], up.position[1], max(up.position[2], self.settings.lift)], up.quaternion)
        self._queue.extend([Segment("grip", panda.MAX_OPENING), Segment("pose", up)])
