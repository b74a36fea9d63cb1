"""The control-loop API: ``Controller.step(observation) -> Command``, one call per control tick.

`PickPlaceController` needs only what a real robot provides — joint positions, gripper width and, when it
asks for them (`wants_images`), calibrated RGB-D frames — and a kinematic model. It observes, picks the
highest remaining object with a top-down grasp — verified first, when a verifier is given, in a shadow
world rebuilt from the perceived geometry — carries it to the next free slot of the place region,
and repeats until nothing is left. Each motion is planned once, as per-tick joint setpoints.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from robot_wm.config import PickPlacePlannerConfig, PlaceRegion
from robot_wm.control.estimate import ObjectEstimator
from robot_wm.control.pick_place import MIN_TCP_HEIGHT, TopDownGrasp, place_slots, top_down_grasps
from robot_wm.geometry import Pose, panda, top_down_quaternion, yaw_of
from robot_wm.grasping import Grasp
from robot_wm.interface import Command, Observation
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning import ShadowVerifier
from robot_wm.sim import TIME_STEP, KinematicModel
from robot_wm.sim.trajectory import TrajectoryPlanner

log = logging.getLogger(__name__)

MIN_HELD_WIDTH = 0.004  # m: fingers closed further than this hold nothing
ARRIVE_TOL = 1e-3  # rad: joint error at which a motion counts as arrived
ARRIVE_TIMEOUT_S = 0.5
GRIPPER_TIMEOUT_S = 1.0


@dataclass
class Attempt:
    """The controller's own record of one pick: target estimate id, whether the fingers stopped on
    something, and why it ended early (empty when it ran to the end)."""

    target: str
    grasped: bool = False
    reason: str = ""
    shadow: list[dict] = field(default_factory=list)  # shadow-world verdicts of the grasps tried, in order


@dataclass
class _Segment:
    kind: str  # joint | pose | line | grip | check | settle
    target: object = None
    speed: float | None = None
    force: float = panda.FINGER_FORCE


class PickPlaceController:
    """Pick every movable object the estimator reports into `region`, highest first.

    task_objects: estimate ids to pick, the others are left where they are (None: all). Only meaningful
    when the estimator's ids are known in advance (the oracle's ids are the scene's object names; a
    perception tracker's are not). request_images: ask for camera frames (`wants_images`) before each
    estimate; False for an estimator that ignores the observation's images (the oracle), so the runner
    need not render them. n_slots: place positions in a grid over `region`; dt: control tick (s).
    """

    def __init__(self, estimator: ObjectEstimator, kin: KinematicModel, region: PlaceRegion,
                 settings: PickPlacePlannerConfig | None = None, task_objects: list[str] | None = None,
                 n_slots: int = 4, dt: float = TIME_STEP, verifier: ShadowVerifier | None = None,
                 request_images: bool = True) -> None:
        self.estimator, self.kin, self.region = estimator, kin, region
        self.verifier = verifier
        self.settings = settings or PickPlacePlannerConfig()
        self.task_objects = task_objects
        self.request_images = request_images
        self.dt = dt
        self.planner = TrajectoryPlanner(kin, self.settings.joint_speed, dt)
        self.slots = place_slots(region, n_slots)
        self.reset()

    def reset(self) -> None:
        self.attempts: list[Attempt] = []
        self._tries: dict[str, int] = {}
        self._queue: deque[_Segment] = deque()
        self._setpoints: np.ndarray | None = None
        self._index = 0
        self._wait = 0
        self._segment: _Segment | None = None
        self._hold: np.ndarray | None = None
        self._gripper = (panda.MAX_OPENING, panda.FINGER_FORCE)
        self._widths: list[float] = []
        self._slot = 0
        self._finished = False
        self._homing = False
        self.phase = "observe"

    @property
    def wants_images(self) -> bool:
        """True when the next step will estimate objects and so needs camera frames in its observation."""
        return self.request_images and self._segment is None and not self._queue and not self._finished

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

    def _command(self, q: np.ndarray, dq: np.ndarray, events: list[str]) -> Command:
        return Command(q, dq, self._gripper[0], self._gripper[1], self._finished, self.phase, events)

    def _start_next(self, obs: Observation, events: list[str]) -> bool:
        """Pop the next segment (planning a new pick when the queue is empty); False when idle or done."""
        if not self._queue:
            if self._finished:
                return False
            if self.wants_images and not obs.frames:
                return False  # the runner renders images for the next tick
            self._plan_next_pick(obs, events)
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
            self._setpoints = self.planner.joint_move(q0, q1, seg.speed)
        elif seg.kind == "line":
            self._setpoints = self.planner.linear_move(q0, seg.target, seg.speed or self.settings.linear_speed)
            if self._setpoints is None:
                self._abort("no straight-line path")
                return True
        elif seg.kind == "grip":
            self._gripper = (float(seg.target), seg.force)
            self._setpoints = None
        else:
            self._setpoints = None
        self.phase = seg.kind
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
            attempt = self.attempts[-1]
            attempt.grasped = obs.gripper_width > MIN_HELD_WIDTH
            events.append(f"grasp_checked:{attempt.target}")
            if not attempt.grasped:
                self._abort("nothing in hand after lift")
            return None, None
        self._segment = None
        return None, None

    def _abort(self, reason: str) -> None:
        """Give up the current pick: open, back off upwards, and observe again."""
        if self.attempts and not self.attempts[-1].reason:
            self.attempts[-1].reason = reason
        log.info("pick aborted: %s", reason)
        self._segment, self._setpoints = None, None
        self._queue.clear()
        up = self.kin.fk(self._hold)
        up = Pose([up.position[0], up.position[1], max(up.position[2], self.settings.lift)], up.quaternion)
        self._queue.extend([_Segment("grip", panda.MAX_OPENING), _Segment("pose", up)])

    # ------------------------------------------------------------------ deciding
    def _candidates(self, estimates: list[ObjectEstimate]) -> list[ObjectEstimate]:
        todo = [e for e in estimates if not e.fixed and not self.region.contains(e.pose.position, margin=-0.005)
                and self._tries.get(e.id, 0) < self.settings.max_attempts_per_object]
        if self.task_objects is not None:
            todo = [e for e in todo if e.id in self.task_objects]
        return sorted(todo, key=lambda e: -e.top_z)  # unstack from the top

    def _plan_next_pick(self, obs: Observation, events: list[str]) -> None:
        for est in self._candidates(self.estimator.estimate(obs)):
            self._tries[est.id] = self._tries.get(est.id, 0) + 1
            depth = self.settings.grasp_depth
            grasps = top_down_grasps(est, depths=(depth, depth + 0.015) if self.verifier else (depth,))
            if not grasps:
                self.attempts.append(Attempt(est.id, False, "too wide for the gripper"))
                continue
            grasp, verdicts = self._verified(est, grasps)
            if grasp is None:
                self.attempts.append(Attempt(est.id, False, "no grasp passed the shadow-world test", verdicts))
                continue
            self.attempts.append(Attempt(est.id, shadow=verdicts))
            self._homing = False
            events.append(f"pick:{est.id}")
            self._queue.extend(self._pick_segments(grasp, est))
            self.phase = "plan"
            return
        if not self._homing:  # nothing left: go home and look once more (the arm no longer occludes)
            self._homing = True
            self._queue.append(_Segment("joint", panda.HOME))
        else:
            self._finished = True
            self.phase = "done"

    def _verified(self, est: ObjectEstimate, grasps: list[TopDownGrasp]) -> tuple[TopDownGrasp | None, list[dict]]:
        """The first grasp that holds in the shadow world (close, lift, shake, pull on the perceived
        geometry), with the verdicts of those tried; without a verifier, the first grasp."""
        if self.verifier is None:
            return grasps[0], []
        verdicts = []
        for g in grasps:
            v = self.verifier.verify(est, Grasp(g.pose, g.contact_width))
            verdicts.append({"success_rate": v.success_rate, "labels": v.labels, "passed": v.passed})
            if v.passed:
                return g, verdicts
        return None, verdicts

    def _pick_segments(self, grasp: TopDownGrasp, est: ObjectEstimate) -> list[_Segment]:
        s = self.settings
        g = grasp.pose
        pre = Pose(g.position + [0, 0, s.approach], g.quaternion)
        lift = Pose([g.position[0], g.position[1], s.lift], g.quaternion)
        bottom = est.bottom_z
        slot = self.slots[self._slot % len(self.slots)]
        self._slot += 1
        above = Pose([slot[0], slot[1], s.lift], top_down_quaternion(yaw_of(g.quaternion)))
        release_z = max(g.position[2] - bottom + s.place_clearance + self.region.center[2], MIN_TCP_HEIGHT + 0.005)
        release = Pose([slot[0], slot[1], release_z], above.quaternion)
        return [
            _Segment("pose", pre), _Segment("grip", grasp.width), _Segment("line", g),
            _Segment("grip", 0.0), _Segment("line", lift), _Segment("check"),
            _Segment("pose", above), _Segment("line", release), _Segment("grip", panda.MAX_OPENING),
            _Segment("line", above), _Segment("settle", int(0.5 / self.dt)),
        ]
