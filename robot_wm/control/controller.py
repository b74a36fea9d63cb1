"""The scripted baseline controller (``robot-wm demo --controller scripted``); the default is the planner-driven
:class:`robot_wm.control.planned.PlanningController`.

The control-loop API: ``Controller.step(observation) -> Command``, one call per control tick.
`ScriptedController` needs only what a real robot provides — joint positions, gripper width and, when it
asks for them (`wants_images`), calibrated RGB-D frames — and a kinematic model. It observes, picks the
highest remaining object with a top-down grasp — verified first, when a verifier is given, in a shadow
world rebuilt from the perceived geometry — carries it to the next free slot of the place region,
and repeats until nothing is left. Each motion is planned once, as per-tick joint setpoints
(:mod:`robot_wm.control.executor`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from robot_wm.config import PickPlacePlannerConfig, PlaceRegion
from robot_wm.control.estimate import ObjectEstimator
from robot_wm.control.executor import MIN_HELD_WIDTH, Segment, SegmentController
from robot_wm.control.pick_place import place_slots
from robot_wm.geometry import Pose, panda, top_down_quaternion, yaw_of
from robot_wm.grasping import Grasp
from robot_wm.interface import Observation
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning import ShadowVerifier
from robot_wm.planning.box_grasps import MIN_TCP_HEIGHT, TopDownGrasp, top_down_grasps
from robot_wm.sim import TIME_STEP, KinematicModel

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """The controller's own record of one pick: target estimate id, whether the fingers stopped on
    something, and why it ended early (empty when it ran to the end)."""

    target: str
    grasped: bool = False
    reason: str = ""
    shadow: list[dict] = field(default_factory=list)  # shadow-world verdicts of the grasps tried, in order


class ScriptedController(SegmentController):
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
        super().__init__(kin, settings, dt, request_images)
        self.estimator, self.region = estimator, region
        self.verifier = verifier
        self.task_objects = task_objects
        self.slots = place_slots(region, n_slots)
        self.reset()

    def reset(self) -> None:
        self._reset_execution()
        self.attempts: list[Attempt] = []
        self._tries: dict[str, int] = {}
        self._slot = 0
        self._homing = False

    def _on_abort(self, reason: str) -> None:
        if self.attempts and not self.attempts[-1].reason:
            self.attempts[-1].reason = reason

    def _check_held(self, obs: Observation, events: list[str]) -> str:
        """After the lift: did the fingers stop on something?"""
        attempt = self.attempts[-1]
        attempt.grasped = obs.gripper_width > MIN_HELD_WIDTH
        events.append(f"grasp_checked:{attempt.target}")
        return "" if attempt.grasped else "nothing in hand after lift"

    # ------------------------------------------------------------------ deciding
    def _candidates(self, estimates: list[ObjectEstimate]) -> list[ObjectEstimate]:
        todo = [e for e in estimates if not e.fixed and not self.region.contains(e.pose.position, margin=-0.005)
                and self._tries.get(e.id, 0) < self.settings.max_attempts_per_object]
        if self.task_objects is not None:
            todo = [e for e in todo if e.id in self.task_objects]
        return sorted(todo, key=lambda e: -e.top_z)  # unstack from the top

    def _think(self, obs: Observation, events: list[str]) -> None:
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
            self._queue.append(Segment("joint", panda.HOME))
        else:
            self._finish()

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

    def _pick_segments(self, grasp: TopDownGrasp, est: ObjectEstimate) -> list[Segment]:
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
            Segment("pose", pre), Segment("grip", grasp.width), Segment("line", g),
            Segment("grip", 0.0), Segment("line", lift), Segment("check", self._check_held),
            Segment("pose", above), Segment("line", release), Segment("grip", panda.MAX_OPENING),
            Segment("line", above), Segment("settle", int(0.5 / self.dt)),
        ]


PickPlaceController = ScriptedController  # the former name (tests/planning still use it)
