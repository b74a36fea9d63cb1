"""The default controller: executes what a :class:`~robot_wm.planning.decision.TaskPlanner` decides, one
action at a time, re-planning from a fresh observation after every action (receding horizon).

    ctrl = PlanningController(estimator, kin, planner, settings, region)
    cmd = ctrl.step(obs)          # once per tick, as every controller (robot_wm.control.executor)
    ctrl.decisions                # one JSON-able record per decision (the demo writes plan.jsonl)

The loop: look (estimate objects from a fresh observation) → ``planner.decide`` → execute the decision as
segments → look again → ``planner.outcome(decision, estimates, succeeded)`` → decide again. A pick opens to
the grasp's `open_width`, comes in along the TCP's own z axis from `approach` m behind the grasp (tilted
grasps too), closes force-limited, lifts, checks the fingers hold something, carries the object to the next
free slot of the place region keeping the grasp's orientation (only turned about world z if the arm cannot
reach it there), lowers, releases and retreats. A push closes the fingers, lowers the pads to the start and
moves them along the push heading at the world model's training speed (``sim.push.PUSH_SPEED``, peak
0.18 m/s, quasi-static: over 8 pushes of the push_to_goal box this loop ends 0.4 mm median / 3.3 mm max
from the data collector's ``execute_push``, against 0.7 / 8.6 mm at 0.1 m/s), then lifts them straight up. After
either the arm goes home, out of the cameras' way, and waits for the objects to come to rest.
"done" sends the arm home for one more look (it may have hidden something) and ends when the planner
still says done. A global cap on decisions makes every run end, with a reason (``finish_reason``).

Faults it notices (with :mod:`robot_wm.control.faults`) and survives:

* a camera that no longer agrees with its calibration (moved, turned): checked at every look from home against
  the table plane and the robot rendered at its joint readings; the run stops with a message naming the camera
  (``finish_reason``) rather than place objects where they are not;
* an object moved during execution: when the arm arrives above the target it looks (the target's pixels
  remembered at the decision, :class:`~robot_wm.control.faults.TargetWatch`); a target no longer there aborts
  the pick ("target moved ...") and the planner decides again from a fresh look;
* slip or drop: the width is checked after the lift and after the carry (an empty hand aborts: open, back off,
  look again, re-plan); an object dropped on the way is re-picked from where it fell;
* a stuck or implausible gripper sensor: a gripper move whose reading does not change, or an opening that reads
  short (:func:`~robot_wm.control.executor.grip_problem`), and a hand the width calls empty that the cameras see
  holding the target, mark the sensor untrusted for the rest of the run: grip moves are then timed, and the
  held checks ask the cameras (in the hand where the lift took it, or still on the table);
* an unreachable target: the motion aborts ("target pose unreachable") and the planner's budgets end it; an
  abort's back-off (open, move up) that is itself out of reach sends the arm home by a joint move.

Budgets: failures per object *identity* (:class:`~robot_wm.planning.decision.ObjectIdentities`: an object
re-detected under a new tracker id keeps its count) — a decision on an object that has used
`max_failures_per_object` is refused, not executed — and failed actions in the run (`max_failures`); either
ends the run with the reason.

All poses are world frame (m, rad, xyzw quaternions).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config import PickPlacePlannerConfig, PlaceRegion
from robot_wm.config.jsonable import to_jsonable
from robot_wm.control.estimate import ObjectEstimator
from robot_wm.control.executor import MIN_HELD_WIDTH, Check, Segment, SegmentController, home_segment
from robot_wm.control.faults import GONE, LOOK, PARTLY, PRESENT, CalibrationMonitor, TargetWatch
from robot_wm.control.pick_place import place_slots
from robot_wm.geometry import Pose, panda, yaw_of
from robot_wm.interface import Observation
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.box_grasps import MIN_TCP_HEIGHT
from robot_wm.planning.decision import (
    Decision,
    ObjectIdentities,
    PickAction,
    PushAction,
    TaskPlanner,
    push_rotation,
)
from robot_wm.sim import TIME_STEP, KinematicModel
from robot_wm.sim.push import PUSH_SPEED

log = logging.getLogger(__name__)

SETTLE_S = 0.5  # s held still after an action, so objects come to rest before the next look
REMATCH_RADIUS = 0.1  # m: farthest an object with a new id may be from where its end was predicted
REMATCH_SIZE = 0.03  # m: most its sorted extents may differ in sum from those it had before
SLOT_MARGIN = 0.005  # m of clearance between a place slot's object and anything already there
ROOM_GRID = 0.01  # m: grid over the place region searched for the most room when no slot is free
# Turns about world z (rad) tried for the carry when the grasp's own orientation is out of reach at the slot.
PLACE_TURNS = (0.0, math.pi / 2, -math.pi / 2, math.pi / 4, -math.pi / 4, math.pi)


def failure_cap(n_objects: int) -> int:
    """Most failed actions a run may have for `n_objects` movable objects: 2 per object + 4."""
    return 2 * n_objects + 4


def decision_cap(n_objects: int) -> int:
    """Most decisions (actions and "done"s) a run may take for `n_objects` movable objects: 3 per object
    + 10, so that a single object still gets ten pushes, the look from home and the final "done"."""
    return 3 * n_objects + 10


def xy_yaw(est: ObjectEstimate) -> tuple[float, float, float, float]:
    """(x, y, yaw, period) of an estimate's box centre: yaw (rad) of its longer horizontal side, which is
    meaningful modulo `period` (pi/2 for a square footprint, pi otherwise) — the planner's convention."""
    ext = np.asarray(est.extents, float)
    yaw = yaw_of(np.asarray(est.pose.quaternion, float))
    if ext[1] > ext[0]:
        yaw += math.pi / 2
    square = abs(ext[0] - ext[1]) <= 0.1 * max(ext[0], ext[1])
    return float(est.pose.position[0]), float(est.pose.position[1]), yaw, math.pi / 2 if square else math.pi


def expected_ends(push: PushAction, predicted: dict[str, Any], estimates: list[ObjectEstimate]
                  ) -> dict[str, np.ndarray]:
    """Object id -> world (x, y) m where a push should leave it: the planner's predicted end poses, and for
    a push without them (a scripted turning push) its target carried along the heading until its centre is
    half its footprint's mean side beyond the pads' end — or left where it is if the pads stop short of it."""
    ends = {oid: np.asarray(end[:2], float) for oid, end in (predicted.get("end_xy_yaw") or {}).items()}
    target = next((e for e in estimates if e.id == push.target), None)
    if push.target not in ends and target is not None:
        u = np.array([math.cos(push.yaw), math.sin(push.yaw)])
        here = np.asarray(target.pose.position[:2], float)
        pad_end = np.asarray(push.start[:2], float) + u * push.distance
        reach = float(np.dot(pad_end - here, u)) + 0.25 * float(target.extents[0] + target.extents[1])
        ends[push.target] = here + u * max(reach, 0.0)
    return ends


class PlanningController(SegmentController):
    """Executes a TaskPlanner's decisions (see the module docstring).

    estimator: where object estimates come from; planner: the brain; settings: motion settings
    (approach speeds, lift height, place clearance); region: where picked objects go, in `n_slots` slots;
    dt: control tick (s); request_images: ask for camera frames before each look (False for an estimator
    that ignores images). max_decisions: cap on decisions (None: :func:`decision_cap` of the most movable
    objects seen at once). look_from_home: after each action the arm goes home before the next look, so
    that it hides nothing from the cameras (a hand above a pushed object hides part of it and where it was).
    check_calibration: compare each look's cameras with their calibrations (:class:`CalibrationMonitor`).
    max_failures: failed actions before the run stops (None: :func:`failure_cap` of the most movable objects
    seen at once); max_failures_per_object: failed actions on one object identity after which decisions on it
    are refused. watch_target: look above the target before the approach (an object moved during execution).

    After a run: ``decisions`` (the log, one dict per decision), ``finish_reason``, ``faults`` (events of the
    faults noticed, in order).
    """

    def __init__(self, estimator: ObjectEstimator, kin: KinematicModel, planner: TaskPlanner,
                 settings: PickPlacePlannerConfig | None, region: PlaceRegion, dt: float = TIME_STEP,
                 request_images: bool = True, n_slots: int = 4, max_decisions: int | None = None,
                 look_from_home: bool = True, check_calibration: bool = True, max_failures: int | None = None,
                 max_failures_per_object: int = 3, watch_target: bool = True) -> None:
        super().__init__(kin, settings, dt, request_images)
        self.estimator, self.planner, self.region = estimator, planner, region
        self.look_from_home = look_from_home
        self.slots = place_slots(region, n_slots)
        self.max_decisions = max_decisions
        self.max_failures, self.max_failures_per_object = max_failures, max_failures_per_object
        self.watch_target = watch_target
        self.calibration = (CalibrationMonitor(base_position=getattr(kin, "base_position", None))
                            if check_calibration and request_images else None)
        self.reset()

    def reset(self) -> None:
        self._reset_execution()
        self.decisions: list[dict[str, Any]] = []
        self.current: Decision | None = None  # the decision being executed (None between actions)
        self.estimates: list[ObjectEstimate] = []  # the last look's estimates
        self.finish_reason = ""
        # executed, outcome not yet observed: the decision, its log entry, the estimates it was made on
        self._pending: tuple[Decision, dict[str, Any], list[ObjectEstimate]] | None = None
        self._failure = ""
        self._homing = False
        self._slot = 0
        self._most_objects = 0
        self.identities = ObjectIdentities()
        self._identity_of: dict[str, str] = {}  # estimate id -> identity, at the last look
        self._failures = 0
        self._failures_by_identity: dict[str, int] = {}
        self._watch: TargetWatch | None = None
        self._grasp_pose: Pose | None = None
        self.faults: list[str] = []

    def close(self) -> None:
        super().close()
        if self.calibration is not None:
            self.calibration.close()

    def _fault(self, event: str, events: list[str]) -> None:
        self.faults.append(event)
        events.append(event)

    # ------------------------------------------------------------------ deciding
    def _think(self, obs: Observation, events: list[str]) -> None:
        if self.calibration is not None and obs.frames:
            problem = self.calibration.disagreement(obs)
            if problem:
                self._fault("fault:calibration", events)
                self._stop(problem, events)
                return
        t0 = time.perf_counter()
        estimates = self.estimator.estimate(obs)
        estimate_s = time.perf_counter() - t0
        self.estimates = estimates
        self._most_objects = max(self._most_objects, sum(not e.fixed for e in estimates))
        self._identity_of = self.identities.update(estimates)
        if self._pending is not None:
            self._observe_outcome(estimates)
        cap = self.max_decisions if self.max_decisions is not None else decision_cap(self._most_objects)
        fail_cap = self.max_failures if self.max_failures is not None else failure_cap(self._most_objects)
        if len(self.decisions) >= cap or self._failures >= fail_cap:
            self.current = None
            last = next((d["failure"] for d in reversed(self.decisions) if d.get("failure")), "")
            self.finish_reason = (f"decision cap reached ({cap} decisions)" if len(self.decisions) >= cap else
                                  f"retry budget spent: {self._failures} failed actions (last: {last})")
            log.warning("stopping: %s", self.finish_reason)
            self._finish()
            return
        t1 = time.perf_counter()
        decision = self.planner.decide(estimates, obs)
        decide_s = time.perf_counter() - t1
        entry = self._entry(decision, obs, estimate_s, decide_s)
        entry["seen"] = {e.id: to_jsonable({"xy_yaw": list(xy_yaw(e)[:3]), "extents": e.extents, "fixed": e.fixed})
                         for e in estimates}
        target = entry["target"]
        entry["identity"] = self._identity_of.get(target, target) if target is not None else None
        self.decisions.append(entry)
        events.append(f"decision:{entry['index']}")
        spent = self._failures_by_identity.get(entry["identity"], 0) if target is not None else 0
        if decision.kind != "done" and spent >= self.max_failures_per_object:
            # refused: told to the planner as a failure, so that its budgets move on
            entry["executed"], entry["failure"] = False, f"retry budget of this object spent ({spent} failures)"
            decision.failure = entry["failure"]
            entry["outcome"] = to_jsonable(self.planner.outcome(decision, estimates, False))
            events.append(f"refused:{target}")
            self._think_wait = 1  # look again next tick
            return
        if decision.kind == "done":
            self.current = None
            if not self._homing:  # go home and look once more: the arm may have hidden something
                self._homing = True
                self._queue.append(home_segment())
            else:
                self.finish_reason = decision.reason or "the planner has nothing left to do"
                self._finish()
            return
        self._homing = False
        self._failure = ""
        self.current = decision
        self._pending = (decision, entry, estimates)
        if decision.kind == "pick":
            if decision.pick is None:
                raise ValueError("a pick decision needs its PickAction")
            self._watch, self._grasp_pose = None, decision.pick.grasp_pose
            target_est = next((e for e in estimates if e.id == decision.pick.target), None)
            if self.request_images and obs.frames and target_est is not None:
                self._watch = TargetWatch.from_estimate(target_est, obs.frames)
            events.append(f"pick:{decision.pick.target}")
            self._queue.extend(self._pick_segments(decision.pick, estimates, obs))
        elif decision.kind == "push":
            if decision.push is None:
                raise ValueError("a push decision needs its PushAction")
            events.append(f"push:{decision.push.target}")
            self._queue.extend(self._push_segments(decision.push))
            expect = getattr(self.estimator, "expect", None)  # track the pushed objects to where they should go
            if expect is not None:
                expect(expected_ends(decision.push, decision.predicted, estimates))
        else:
            raise ValueError(f"unknown decision kind {decision.kind!r}")
        self.phase = "plan"

    def _entry(self, d: Decision, obs: Observation, estimate_s: float, decide_s: float) -> dict[str, Any]:
        action: dict[str, Any] = {}
        if d.pick is not None:
            action = {"grasp_pose": d.pick.grasp_pose, "open_width": d.pick.open_width,
                      "contact_width": d.pick.contact_width, "approach": d.pick.approach, "q_pre": d.pick.q_pre}
        elif d.push is not None:
            action = {"start": d.push.start, "yaw": d.push.yaw, "distance": d.push.distance, "tilt": d.push.tilt,
                      "lean": d.push.lean}
        target = d.pick.target if d.pick is not None else d.push.target if d.push is not None else None
        return to_jsonable({
            "index": len(self.decisions), "time": obs.time, "kind": d.kind, "target": target, "reason": d.reason,
            "action": action, "predicted": d.predicted, "record": d.record,
            "decision_ms": 1e3 * (estimate_s + decide_s), "estimate_ms": 1e3 * estimate_s,
            "decide_ms": 1e3 * decide_s, "executed": None, "failure": "", "outcome": None, "observed": None,
        })

    def _observe_outcome(self, estimates: list[ObjectEstimate]) -> None:
        """Close the pending decision: what happened, the planner's note, and the observed end poses of the
        objects whose end the planner predicted (position error m, yaw error deg modulo symmetry). An object
        perception now calls by another id is the nearest object with an id not seen at decision time and
        about its size (REMATCH_SIZE), within REMATCH_RADIUS of the prediction."""
        decision, entry, before = self._pending
        self._pending, self.current = None, None
        succeeded = not self._failure
        entry["executed"], entry["failure"] = succeeded, self._failure
        decision.failure = self._failure
        if not succeeded:
            self._failures += 1
            ident = entry.get("identity")
            if ident is not None:
                self._failures_by_identity[ident] = self._failures_by_identity.get(ident, 0) + 1
        entry["outcome"] = to_jsonable(self.planner.outcome(decision, estimates, succeeded))
        predicted = decision.predicted.get("end_xy_yaw") or {}
        by_id = {e.id: e for e in estimates}
        old = {e.id: e for e in before}
        new_ids = [e for e in estimates if e.id not in old and not e.fixed]
        observed = {}
        for oid, (px, py, pyaw) in predicted.items():
            est = by_id.get(oid)
            if est is None and oid in old:  # perception gave it a new id: the nearest new one of its size
                size = np.sort(old[oid].extents)
                near = sorted((math.hypot(e.pose.position[0] - px, e.pose.position[1] - py), i)
                              for i, e in enumerate(new_ids)
                              if np.abs(np.sort(e.extents) - size).sum() <= REMATCH_SIZE)
                if near and near[0][0] <= REMATCH_RADIUS:
                    est = new_ids.pop(near[0][1])
            if est is None:
                observed[oid] = None  # not seen any more
                continue
            x, y, yaw, period = xy_yaw(est)
            d_yaw = (yaw - float(pyaw) + period / 2) % period - period / 2
            observed[oid] = {"id": est.id, "xy_yaw": [x, y, yaw], "error_m": math.hypot(x - float(px), y - float(py)),
                             "error_deg": abs(math.degrees(d_yaw))}
        entry["observed"] = to_jsonable(observed) if predicted else None

    def _on_abort(self, reason: str) -> None:
        if not self._failure:
            self._failure = reason

    # ------------------------------------------------------------------ executing
    def _can_look(self) -> bool:
        return self.request_images and self._watch is not None and self._watch.pixels > 0

    def _held_by_cameras(self, obs: Observation) -> str:
        """What the cameras say of the target after the lift: PRESENT (in the hand), GONE (not where the hand
        took it), or "" when they cannot tell; the verdict's counts go to the log."""
        moved = self.kin.fk(np.asarray(obs.joint_positions, float)) @ self._grasp_pose.inverse()
        v = self._watch.in_hand(obs.frames, moved)
        log.info("in-hand look at %s: %s (%s)", self._watch.target, v.state, v.describe())
        if v.state == PRESENT:
            return PRESENT
        if v.state == GONE:
            return GONE
        return ""

    def _held(self, obs: Observation, events: list[str], empty_reason: str) -> str:
        """The held check: "" when the object is (or may be) in the hand, else `empty_reason`; LOOK while it
        needs camera frames. The width decides while the sensor is trusted, except that a hand it calls empty
        is looked at: the cameras seeing the target in it mark the sensor untrusted (stuck, broken). Untrusted,
        the cameras decide — in the hand, or (they cannot tell) still on the table where it was."""
        if self.gripper_trusted and obs.gripper_width > MIN_HELD_WIDTH:
            return ""
        if not self._can_look():
            return "" if not self.gripper_trusted else empty_reason
        if not obs.frames:
            return LOOK
        held = self._held_by_cameras(obs)
        if self.gripper_trusted:
            if held != PRESENT:
                return empty_reason
            self._distrust_gripper(f"width {obs.gripper_width:.3f} m reads empty while the cameras see "
                                   f"{self._watch.target} in the hand", events)
            return ""
        if held == GONE:
            return f"{empty_reason} (cameras)"
        if held == "" and self._watch.at_place(obs.frames).state == PRESENT:
            return f"{empty_reason} (cameras: still where it was)"
        return ""

    def _distrust_gripper(self, problem: str, events: list[str]) -> None:
        if self.gripper_trusted:
            self.faults.append("fault:gripper_sensor")
        super()._distrust_gripper(problem, events)

    def _check_grasp(self, target: str) -> Check:
        """After the lift: do the fingers hold something? (Announces the check for the runner's log.)"""
        def check(obs: Observation, events: list[str]) -> str:
            reason = self._held(obs, events, "nothing in hand after lift")
            if reason != LOOK:
                events.append(f"grasp_checked:{target}")
            return reason
        return check

    def _check_still_held(self, obs: Observation, events: list[str]) -> str:
        reason = self._held(obs, events, "dropped while carrying")
        if reason and reason != LOOK:
            self._fault("fault:dropped", events)
        return reason

    def _check_target_in_place(self, obs: Observation, events: list[str]) -> str:
        """Above the target, before going in: is it still where the plan assumed (its pixels remembered at the
        decision)? A target mostly gone (or partly, > 25 % of its seen pixels) aborts: re-plan from a fresh
        look. A blocked view (unknown) goes on."""
        if not self._can_look():
            return ""
        if not obs.frames:
            return LOOK
        v = self._watch.at_place(obs.frames)
        if v.state in (GONE, PARTLY):
            self._fault("fault:target_moved", events)
            return f"target moved since the plan ({v.describe()})"
        return ""

    def _pick_segments(self, a: PickAction, estimates: list[ObjectEstimate], obs: Observation) -> list[Segment]:
        """Open, pre-grasp `approach` m back along the TCP z axis, straight in, close, lift, check, carry
        above a free slot, check, lower, release, retreat, settle."""
        s = self.settings
        g = a.grasp_pose
        approach_axis = g.rotation.apply([0.0, 0.0, 1.0])
        pre = Pose(g.position - a.approach * approach_axis, g.quaternion)
        lift_z = max(s.lift, g.position[2] + 0.05)
        lift = Pose([g.position[0], g.position[1], lift_z], g.quaternion)
        target = next((e for e in estimates if e.id == a.target), None)
        bottom = target.bottom_z if target is not None else 0.0
        radius = 0.5 * float(np.max(target.extents[:2])) if target is not None else 0.5 * a.contact_width
        slot = self._free_slot(estimates, a.target, radius)
        # the object keeps its height below the TCP: set it down, its bottom `set_down_clearance` above the region
        release_z = max(self.region.center[2] + s.set_down_clearance + (g.position[2] - bottom), MIN_TCP_HEIGHT + 0.005)
        quat = self._place_orientation(g, slot, lift_z, np.asarray(obs.joint_positions, float))
        above = Pose([slot[0], slot[1], lift_z], quat)
        release = Pose([slot[0], slot[1], release_z], quat)
        return [
            Segment("grip", min(a.open_width, panda.MAX_OPENING), label="open"),
            # to the planner's own pre-grasp solution: the straight approach was checked from there
            Segment("pose", pre, label="pre-grasp") if a.q_pre is None else Segment("joint", np.asarray(a.q_pre, float),
                                                                                     label="pre-grasp"),
            *([Segment("check", self._check_target_in_place, label="look")] if self.watch_target else []),
            Segment("line", g, label="approach"), Segment("grip", 0.0, label="close"),
            Segment("line", lift, label="lift"), Segment("check", self._check_grasp(a.target)),
            Segment("pose", above, label="carry"), Segment("check", self._check_still_held),
            # release to the grasp's opening, not the hand's widest: fingers swinging open to 8 cm hit (and roll)
            # what already stands beside the slot
            *self._set_down_segments(release, lift_z),
            Segment("grip", min(a.open_width, panda.MAX_OPENING), label="release"),
            Segment("line", above, label="retreat"), *self._look_segments(),
        ]

    def _set_down_segments(self, release: Pose, carry_z: float) -> list[Segment]:
        """Down to `release` from the carry height `carry_z` (m): at the line speed to `set_down_height` above
        it, the rest at `set_down_speed`, then still for `release_settle_s` (a held object that lands fast
        takes a kick; a lying cylinder pinched across its diameter then rolls on, out of the region)."""
        s = self.settings
        segments = [Segment("line", release, speed=s.set_down_speed, label="set down")]
        above_z = min(release.position[2] + s.set_down_height, carry_z)
        if above_z > release.position[2] + 1e-4:
            above = Pose([release.position[0], release.position[1], above_z], release.quaternion)
            segments.insert(0, Segment("line", above, label="lower"))
        if s.release_settle_s > 0:
            segments.append(Segment("settle", round(s.release_settle_s / self.dt)))
        return segments

    def _place_orientation(self, g: Pose, slot: np.ndarray, z: float, q_seed: np.ndarray) -> np.ndarray:
        """The grasp's orientation if the arm reaches it above `slot`, else the first reachable turn of it
        about world z (which keeps the object's height below the TCP); the grasp's own as a last resort."""
        for turn in PLACE_TURNS:
            quat = (Rotation.from_euler("z", turn) * g.rotation).as_quat()
            if self.kin.ik(Pose([slot[0], slot[1], z], quat), q_seed) is not None:
                return quat
        return g.quaternion

    def _free_slot(self, estimates: list[ObjectEstimate], target: str, radius: float) -> np.ndarray:
        """The next slot (round robin) with no other perceived object within reach of the placed one; when
        none has room, the roomiest point of the region."""
        others = [e for e in estimates if e.id != target and not e.fixed]
        n = len(self.slots)
        for k in range(n):
            i = (self._slot + k) % n
            slot = self.slots[i]
            if all(np.linalg.norm(e.pose.position[:2] - slot) > radius + 0.5 * float(np.max(e.extents[:2]))
                   + SLOT_MARGIN for e in others):
                self._slot = i + 1
                return slot
        self._slot += 1
        return self._roomiest_point(others, radius)

    def _roomiest_point(self, others: list[ObjectEstimate], radius: float) -> np.ndarray:
        """When no slot is free: the point of the region (a ROOM_GRID m grid, the placed object's `radius`
        m inside the edges where it fits) farthest from what is already there (maximin clearance between
        circles around the footprints); world xy (2,) m."""
        (cx, cy), (sx, sy) = self.region.center[:2], self.region.size
        mx, my = min(radius, 0.5 * sx), min(radius, 0.5 * sy)
        xs = np.arange(cx - 0.5 * sx + mx, cx + 0.5 * sx - mx + 1e-9, ROOM_GRID)
        ys = np.arange(cy - 0.5 * sy + my, cy + 0.5 * sy - my + 1e-9, ROOM_GRID)
        points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        if not len(points):
            return np.array([cx, cy])
        if not others:
            return points[len(points) // 2]
        centres = np.array([e.pose.position[:2] for e in others])
        halves = np.array([0.5 * float(np.max(e.extents[:2])) for e in others])
        room = (np.linalg.norm(points[:, None] - centres[None], axis=-1) - halves).min(axis=1)
        return points[int(np.argmax(room))]

    def _look_segments(self) -> list[Segment]:
        """After an action: out of the cameras' way (home, when `look_from_home`), then hold still while
        the objects come to rest."""
        home = [home_segment()] if self.look_from_home else []
        return [*home, Segment("settle", int(SETTLE_S / self.dt))]

    def _push_segments(self, a: PushAction) -> list[Segment]:
        """Close the fingers, go above the start, straight down to it, along the heading for `distance` m at
        PUSH_SPEED, straight up, settle. The closed pads face the push (closing axis across it), turned by the
        push's tilt, the hand leaning forward by its lean (:func:`~robot_wm.planning.decision.push_rotation`)."""
        s = self.settings
        start = np.asarray(a.start, float)
        quat = push_rotation(a.yaw, a.tilt, a.lean).as_quat()
        direction = np.array([math.cos(a.yaw), math.sin(a.yaw), 0.0])
        end = start + a.distance * direction
        up = np.array([0.0, 0.0, s.approach])
        return [
            Segment("grip", 0.0, label="close"), Segment("pose", Pose(start + up, quat), label="pre-push"),
            Segment("line", Pose(start, quat), label="descend"),
            Segment("line", Pose(end, quat), speed=PUSH_SPEED, label="push"),
            Segment("line", Pose(end + up, quat), label="retreat"), *self._look_segments(),
        ]
