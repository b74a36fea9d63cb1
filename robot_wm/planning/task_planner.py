"""The brain: at each decision point, from what perception sees now, the next action for the scene's task.

``pick_place`` / ``clear`` — objects outside the place region, highest first (unstack from the top). For
each, the grasp planner proposes candidates (antipodal on the perceived cloud, box grasps), ranks them by
the world model's P(success) and verifies the best in the shadow world; the first object with a verified
grasp is picked. When none has one and an object is hemmed in (a neighbour, a wall or a tray rim closer
than the fingers need), the planner *singulates* it: :func:`~robot_wm.planning.singulation.free_spot` names
a nearby spot with room for the fingers and a free start for the pads, and the MPC searches pushes that
take it there with the world model (which predicts the neighbours too), never starting a push inside
another object. An object pressed against a *fixture* (a wall, a tray rim) is first *dragged* away from it
(:func:`~robot_wm.planning.drag.plan_drag`: no push can start between the two, so the closed fingertips press
on its top and carry it straight away until the fingers have room). Expected task value decides between
the two: a verified grasp (P(success) x 1) before a push (which earns nothing by itself and costs a push), a
push only when no grasp is available.

Known fixtures: objects the scene file marks ``fixed: true`` (walls, trays) are part of the workcell, which
a user knows; a perceived object whose footprint centre lies inside a fixture's footprint is treated as
that fixture (never picked, never pushed, an obstacle for pushes) — except, for a URDF fixture whose
footprint is only a guessed square around its origin, an object perception saw resting on a fixture (a
tray's content near its middle).

``push_to_goal`` — the MPC over the world model (ensemble-aware cost) pushes each goal object to its goal
pose; goal objects are found and followed by :class:`~robot_wm.planning.scene_state.GoalMatcher`. While a
goal's yaw is off and its position within a few tolerances, the turning push is made without asking the MPC
(:class:`~robot_wm.planning.baselines.TurnFirst`'s rule: the model predicts turns at a fraction of their
size, so the MPC spends pushes on turns it cannot see); its travel is learnt from the turns the episode's
turning pushes made (:class:`~robot_wm.planning.turning.PushFeedback`).

Receding horizon: one action per decision; the controller executes it, observes again and reports back
(:meth:`TaskPlanner.outcome`), where the prediction is compared with what perception sees — a push that
moved its target more than ``surprise_mm`` from the prediction is flagged and the MPC's warm start dropped.
Retry budgets: ``max_attempts_per_object`` picks and ``max_singulations_per_object`` pushes per object, a
global ``max_decisions``; the run ends with a reason. Budgets are kept per object *identity*
(:class:`~robot_wm.planning.decision.ObjectIdentities`), not per tracker id: an object that fell back after a
failed pick and is re-detected under a new id keeps the attempts it has used.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from robot_wm.config import PickPlacePlannerConfig, Scene, load_mpc_config
from robot_wm.config.models import SceneConfig
from robot_wm.config.workspace import in_reach
from robot_wm.geometry import min_area_rectangle
from robot_wm.interface import Observation
from robot_wm.model.state import yaw_of_quats
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.box_grasps import MAX_GRASP_WIDTH
from robot_wm.planning.costs import PoseGoal
from robot_wm.planning.decision import Decision, ObjectIdentities, PushAction
from robot_wm.planning.drag import plan_drag
from robot_wm.planning.grasp_planner import GraspPlanner, camera_positions, candidate_arrays
from robot_wm.planning.mpc import MPCPlanner, blocked_starts, push_actions
from robot_wm.planning.push_loop import ExecutablePushes, ShortPushMemory, goal_errors
from robot_wm.planning.scene_state import (
    GoalMatcher,
    PerceivedScene,
    estimate_state,
    object_goals,
    perceived_scene,
)
from robot_wm.planning.singulation import clearance, free_spot
from robot_wm.planning.turning import PushFeedback

log = logging.getLogger(__name__)

PROBE_DEPTH = 0.12  # m a split probe pushes past first contact (the longest trained push)
HAND_TEST_GRASPS = 64  # best-ranked candidates of a hemmed-in object a drag carries along to test the hand


@dataclass
class TaskPlannerSettings:
    """Budgets and thresholds of the task planner (m, counts)."""

    max_attempts_per_object: int = 2  # picks of one object before it is given up
    max_singulations_per_object: int = 3  # pushes that make room around one object
    max_pushes: int = 10  # pushes of a push_to_goal task
    max_decisions: int = 40  # decisions in one run, whatever happens
    replans: int = 4  # MPC re-plans per push decision (the first warm-started), as the push loop bench
    goal_margin: float = 0.5  # push_to_goal works to this fraction of each goal's tolerances
    needed_gap: float = 0.035  # m of free table a finger needs beside an object (pad width + clearance)
    surprise_mm: float = 30.0  # a push that ends further than this from its prediction is flagged
    region_margin: float = -0.005  # m: an object this far inside the place region counts as placed


def _fixture_footprints(config: SceneConfig) -> list[tuple[np.ndarray, np.ndarray, float, bool]]:
    """(centre xy (2,), half extents xy (2,), yaw, assumed) of each fixed scene object with a box shape or a
    URDF (whose extent is unknown without loading it: a 0.15 m square is `assumed` around its origin)."""
    out = []
    for o in config.objects:
        if not o.fixed:
            continue
        q = np.asarray(o.orientation, float)
        yaw = math.atan2(2 * (q[3] * q[2] + q[0] * q[1]), 1 - 2 * (q[1] ** 2 + q[2] ** 2))
        if o.shape == "box":
            half = np.asarray(o.size[:2], float) / 2
        elif o.shape in ("cylinder", "sphere"):
            half = np.full(2, float(o.size[0]))
        else:
            half = np.full(2, 0.075 * o.scale)
        out.append((np.asarray(o.position[:2], float), half, yaw, o.shape is None))
    return out


class PlanningTaskPlanner:
    """Implements :class:`~robot_wm.planning.decision.TaskPlanner` for the scene's task (module docstring).

    grasps: the grasp planner (candidates → P(success) → shadow verification); mpc: the push planner over
    the world model; config: the scene's configuration (task, goals, fixtures); region: the place region.
    """

    def __init__(self, config: SceneConfig, grasps: GraspPlanner, mpc: MPCPlanner,
                 settings: TaskPlannerSettings | None = None, approach: float = 0.12) -> None:
        self.config, self.grasps, self.mpc = config, grasps, mpc
        self._turner = PushFeedback(mpc.config.push)  # turning pushes for yaw goals (TurnFirst's rule)
        self.task = config.task
        self.settings = settings or TaskPlannerSettings()
        self.approach = approach
        self._fixtures = _fixture_footprints(config)
        self.reset()

    def reset(self) -> None:
        """Forget budgets, goal bindings and the MPC's warm start (a new run)."""
        self._picks: dict[str, int] = {}  # by identity (ObjectIdentities key), as the two below
        self._singulations: dict[str, int] = {}
        self._probes: dict[str, int] = {}
        self.identities = ObjectIdentities()
        self._pushes = 0
        self._decisions = 0
        self._matcher = GoalMatcher(object_goals(self.config)) if self.task.kind == "push_to_goal" else None
        self._expected: dict[str, list[float]] | None = None
        self._turner.reset()
        self._short = ShortPushMemory()  # MPC pushes that fell short (MPCPusher's rule)
        self.mpc.reset()

    @property
    def _reach(self) -> dict[str, float]:
        """Object id -> the extra travel (m) its MPC pushes get."""
        return self._short.reach

    # ------------------------------------------------------------------ helpers
    def _is_fixture(self, est: ObjectEstimate, fixed_ids: frozenset[str] = frozenset()) -> bool:
        """Whether `est` is (part of) a fixture: perceived as one (a container), or its footprint centre inside a
        fixed scene object's footprint — for a URDF fixture's assumed square only when it does not rest on a
        perceived fixture (`fixed_ids`: an object on a tray's floor near its middle is the tray's content)."""
        if est.fixed:
            return True
        xy = np.asarray(est.pose.position[:2], float)
        on_fixture = est.extra.get("support") in fixed_ids
        for centre, half, yaw, assumed in self._fixtures:
            if assumed and on_fixture:
                continue
            c, s = math.cos(yaw), math.sin(yaw)
            d = xy - centre
            local = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
            if np.all(np.abs(local) <= half + 0.01):
                return True
        return False

    def _split(self, estimates: list[ObjectEstimate]) -> tuple[list[ObjectEstimate], list[ObjectEstimate]]:
        movable, fixed = [], []
        fixed_ids = frozenset(e.id for e in estimates if e.fixed)
        for e in estimates:
            (fixed if self._is_fixture(e, fixed_ids) else movable).append(e)
        return movable, fixed

    def _done(self, reason: str, record: dict[str, Any] | None = None) -> Decision:
        return Decision("done", reason=reason, record=record or {})

    # ------------------------------------------------------------------ the protocol
    def decide(self, estimates: list[ObjectEstimate], obs: Observation) -> Decision:
        """The next action (see the module docstring); `obs` is the observation the estimates came from."""
        t0 = time.perf_counter()
        self._decisions += 1
        if self._decisions > self.settings.max_decisions:
            return self._done(f"decision budget spent ({self.settings.max_decisions})")
        if self.task.kind == "push_to_goal":
            decision = self._push_to_goal(estimates)
        else:
            decision = self._pick_or_singulate(estimates, np.asarray(obs.joint_positions, float))
        decision.record["planning_ms"] = (time.perf_counter() - t0) * 1e3
        return decision

    def outcome(self, decision: Decision, estimates: list[ObjectEstimate], succeeded: bool) -> dict[str, Any]:
        """Compare what happened with the prediction: for a push, the target's perceived end position
        against the predicted one (mm); a surprise drops the MPC's warm start."""
        note: dict[str, Any] = {"succeeded": bool(succeeded)}
        dyn = self.mpc.dynamics
        if decision.kind == "push" and decision.push is not None and isinstance(dyn, ExecutablePushes):
            p = decision.push
            if succeeded:
                dyn.forget()
            else:  # the arm could not run it: pushes like it are refused until the scene changes
                dyn.refuse(np.array([0.0, *p.start, p.yaw, p.distance]))
        if decision.kind == "push" and decision.push is not None and decision.record.get("turn"):
            self._turner.executed(np.array([0.0, *decision.push.start, decision.push.yaw, decision.push.distance]),
                                  succeeded)
        elif decision.kind == "push" and succeeded:
            self._turner.forget_last()  # the MPC pushed: not the turner's push to learn from
        if decision.kind == "push" and decision.push is not None:
            pred = decision.predicted.get("end_xy_yaw", {}).get(decision.push.target)
            seen = next((e for e in estimates if e.id == decision.push.target), None)
            if pred is not None and seen is not None:
                err = float(np.linalg.norm(np.asarray(seen.pose.position[:2]) - np.asarray(pred[:2]))) * 1e3
                note["prediction_error_mm"] = err
                if err > self.settings.surprise_mm:
                    note["surprise"] = True
                    self.mpc.reset()
            elif seen is None:
                note["target_lost"] = True
        return note

    # ------------------------------------------------------------------ pick and place
    def _placed(self, est: ObjectEstimate) -> bool:
        """Whether the estimate lies in the task's place region (within the settings' region margin)."""
        return self.task.place_region.contains(est.pose.position, margin=self.settings.region_margin)

    def _todo(self, movable: list[ObjectEstimate]) -> list[ObjectEstimate]:
        todo = [e for e in movable if not self._placed(e)
                and self._picks.get(self.identities.key(e.id), 0) < self.settings.max_attempts_per_object]
        return sorted(todo, key=lambda e: -e.top_z)

    def _pick_or_singulate(self, estimates: list[ObjectEstimate], q_seed: np.ndarray | None) -> Decision:
        movable, fixed = self._split(estimates)
        self.identities.update(movable)
        todo = self._todo(movable)
        if not todo:
            spent = [e.id for e in movable if not self._placed(e)]
            if not spent:
                return self._done("every object in the place region")
            return self._done(f"every object in the place region or out of attempts (out of attempts: "
                              f"{', '.join(spent)})")
        tried: list[dict[str, Any]] = []
        blocked: list[ObjectEstimate] = []
        hemmed: list[tuple[ObjectEstimate, tuple[np.ndarray, np.ndarray, np.ndarray]]] = []  # with its grasps
        wide: list[ObjectEstimate] = []
        for est in todo:
            ident = self.identities.key(est.id)
            attempt = self._picks.get(ident, 0)
            plan = self.grasps.plan(est, estimates, attempt=attempt, q_seed=q_seed)
            tried.append(plan.record())
            action = plan.pick_action()
            if action is not None:
                self._picks[ident] = attempt + 1
                c = plan.chosen
                # expected value of the pick: P(success) from the model (verified grasps without a model
                # score: the shadow world's success rate)
                p = c.p_success if c.p_success is not None else (c.verdict.success_rate if c.verdict else 0.5)
                return Decision("pick", pick=action, reason=f"verified grasp on {est.id}",
                                predicted={"p_success": float(p)},
                                record={"target": est.id, "grasp_plans": tried, "value": {"pick": float(p)}})
            others = [o for o in estimates if o is not est]
            if clearance(est, others) < self.settings.needed_gap:
                blocked.append(est)
            elif self._probes.get(self.identities.key(est.id), 0) < 1 and _wider_than_gripper(est):
                wide.append(est)
            elif plan.candidates and plan.counts.get("collision_free", 1) == 0:
                # a finger's gap all round, yet every grasp meets something: the hand's body, beside a fixture
                hemmed.append((est, candidate_arrays(plan.candidates[:HAND_TEST_GRASPS])))
        for est in blocked:
            if self._singulations.get(self.identities.key(est.id), 0) >= self.settings.max_singulations_per_object:
                continue
            decision = self._drag(est, movable, fixed, tried) or self._singulate(est, movable, fixed, tried)
            if decision is not None:
                return decision
        for est in wide:
            decision = self._split_probe(est, movable, fixed, tried)
            if decision is not None:
                return decision
        for est, grasps in hemmed:  # drag on until one of its grasps, carried along, clears the fixture
            if self._singulations.get(self.identities.key(est.id), 0) >= self.settings.max_singulations_per_object:
                continue
            decision = self._drag(est, movable, fixed, tried, grasps)
            if decision is not None:
                return decision
        for est in todo:  # nothing can be done for these now: spend an attempt so the run ends
            ident = self.identities.key(est.id)
            self._picks[ident] = self._picks.get(ident, 0) + 1
        why = "; ".join(f"{g.get('target')}: {g.get('reason') or 'no grasp'}" for g in tried)
        return self._done(f"no verified grasp and no useful push ({why})" if why else
                          "no verified grasp and no useful push", {"grasp_plans": tried})

    def _singulate(self, est: ObjectEstimate, movable: list[ObjectEstimate], fixed: list[ObjectEstimate],
                   tried: list[dict[str, Any]]) -> Decision | None:
        others = [o for o in movable + fixed if o is not est]
        spot = free_spot(est, others, self.settings.needed_gap)
        if spot is None:
            return None
        scene, states, is_fixed = _with_fixtures(movable, fixed)
        slot = scene.index(est.id)
        if slot is None:
            return None
        n_mov = len(scene.ids)
        # what is already placed stays put: an obstacle to the push, never the object pushed
        by_id = {e.id: e for e in movable}
        is_fixed[:n_mov] |= [i != est.id and self._placed(by_id[i]) for i in scene.ids]
        goal = PoseGoal(slot, (float(spot.goal_xy[0]), float(spot.goal_xy[1])), None, 0.015, math.radians(180))
        plan = self.mpc.plan(states, None, [goal], fixed=is_fixed)
        action = plan.first_action()
        if action is None:
            return None
        pushed = int(plan.objects[0])
        target = scene.ids[pushed] if pushed < n_mov else est.id
        ident = self.identities.key(est.id)
        self._singulations[ident] = self._singulations.get(ident, 0) + 1
        predicted = {"end_xy_yaw": _end_poses(plan.states[1], scene.ids),
                     "p_success": float(plan.step_p_success[0])}
        push = PushAction.from_row(target, action)
        return Decision("push", push=push, reason=f"make room around {est.id} (gap {spot.current_gap * 1e3:.0f} mm "
                                                  f"-> {spot.gap * 1e3:.0f} mm at {np.round(spot.goal_xy, 3).tolist()})",
                        predicted=predicted,
                        record={"target": est.id, "grasp_plans": tried, "free_spot": spot.goal_xy.tolist(),
                                "mpc": _plan_record(plan), "value": {"pick": 0.0, "push": -plan.cost}})

    def _drag(self, est: ObjectEstimate, movable: list[ObjectEstimate], fixed: list[ObjectEstimate],
              tried: list[dict[str, Any]], grasps: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
              ) -> Decision | None:
        """Drag `est` away from a fixture it is pressed against (:func:`~robot_wm.planning.drag.plan_drag`): no
        push can start between the two, so the closed fingertips press on its top and carry it away. With
        `grasps` (its candidates, none collision-free) the drag goes on until one of them clears."""
        others = [o for o in movable if o is not est]
        drag = plan_drag(est, others, fixed, self.settings.needed_gap, self.grasps.sampler_config,
                         kin=self.grasps.kin, approach=self.approach, grasps=grasps)
        if drag is None:
            return None
        ident = self.identities.key(est.id)
        self._singulations[ident] = self._singulations.get(ident, 0) + 1
        u = np.array([math.cos(drag.heading), math.sin(drag.heading)])
        end = np.asarray(est.pose.position[:2], float) + drag.distance * u
        yaw = float(yaw_of_quats(estimate_state(est)[None, 3:7].astype(float))[0])
        return Decision("push", push=drag.action(),
                        reason=f"drag {est.id} away from {drag.fixture} (gap {drag.gap_before * 1e3:.0f} mm -> "
                               f"{drag.gap_after * 1e3:.0f} mm)",
                        predicted={"end_xy_yaw": {est.id: [float(end[0]), float(end[1]), yaw]}},
                        record={"target": est.id, "grasp_plans": tried, "drag": drag.to_dict(),
                                "value": {"pick": 0.0}})

    def _split_probe(self, est: ObjectEstimate, movable: list[ObjectEstimate], fixed: list[ObjectEstimate],
                     tried: list[dict[str, Any]]) -> Decision | None:
        """One push across one end of an object too wide for the gripper both ways: if it is really two
        objects flush against each other (perception saw one), the end that is pushed comes apart from the
        other; if it is one wide object it only shifts. Either way the next look tells, and each object gets
        one probe."""
        scene, states, _ = _with_fixtures(movable, fixed)
        slot = scene.index(est.id)
        if slot is None:
            return None
        long_yaw = float(yaw_of_quats(states[slot, 3:7].astype(float)))  # the state's x is the longer side
        mask = torch.ones(len(states), dtype=torch.bool)
        st = torch.from_numpy(states.astype(np.float32))[None]
        for heading in (long_yaw + math.pi / 2, long_yaw - math.pi / 2):
            for lateral in (0.5, -0.5):
                params = torch.tensor([[heading, lateral, PROBE_DEPTH]], dtype=torch.float32)
                action = push_actions(st, torch.tensor([slot]), params, self.mpc.config.push)
                if bool(blocked_starts(st, torch.tensor([slot]), action, mask, self.mpc.config.cost.pad_clearance)[0]):
                    continue
                a = action[0].numpy().astype(float)
                if not in_reach(a[1], a[2]):
                    continue
                ident = self.identities.key(est.id)
                self._probes[ident] = self._probes.get(ident, 0) + 1
                push = PushAction.from_row(est.id, a)
                return Decision("push", push=push,
                                reason=f"{est.id} is wider than the gripper both ways: push one end across to "
                                       "see whether it is two objects",
                                predicted={}, record={"target": est.id, "grasp_plans": tried, "probe": True})
        return None

    # ------------------------------------------------------------------ push to goal
    def _turner_push(self, choice: tuple[PoseGoal, np.ndarray], scene: PerceivedScene, reason: str,
                     record: dict[str, Any]) -> Decision:
        """The push decision for a (goal, push row) of the turner; `reason` names the object by ``{}``."""
        self._pushes += 1
        goal, row = choice
        oid = scene.ids[goal.index]
        self._expected = None
        return Decision("push", push=PushAction.from_row(oid, row), reason=reason.format(oid), predicted={},
                        record=record)

    def _push_to_goal(self, estimates: list[ObjectEstimate]) -> Decision:
        """As the benchmarked push loop (:mod:`robot_wm.planning.push_loop`): goals re-found where the last
        plan expected them, worked to `goal_margin` x their tolerances (perception is not exact), and the
        MPC re-planned `replans` times from each fresh state (the first call warm-started)."""
        movable, fixed = self._split(estimates)
        scene, states, is_fixed = _with_fixtures(movable, fixed)
        assert self._matcher is not None
        try:
            goals = self._matcher.pose_goals(scene, self._expected)
        except LookupError as exc:
            return self._done(str(exc))
        names = [g.name for g in self._matcher.goals]
        errors = goal_errors(scene, goals, names)
        m = self.settings.goal_margin
        aims = [replace(g, tolerance_m=m * g.tolerance_m, tolerance_rad=m * g.tolerance_rad) for g in goals]
        if all(e[0] <= g.tolerance_m and (e[1] is None or e[1] <= g.tolerance_rad)
               for e, g in zip(errors.values(), aims, strict=True)):
            return self._done("every goal reached (as perceived)", {"goal_errors": errors})
        if self._pushes >= self.settings.max_pushes:
            return self._done(f"push budget spent ({self.settings.max_pushes})", {"goal_errors": errors})
        self._turner.observe(scene, aims)
        with_fixtures = PerceivedScene(np.asarray(states, np.float32), np.ones(len(states), bool), scene.ids + [f.id for f in fixed])
        turn = self._turner.turn(with_fixtures, aims)  # near its position, yaw off: turn first (TurnFirst's rule)
        if turn is not None:
            return self._turner_push(turn, scene, "turn {} towards its goal yaw (the model cannot predict turns)",
                                     {"goal_errors": errors, "turn": True})
        finish = self._turner.finish(with_fixtures, aims)  # a turned object's last centimetres (TurnFirst's rule)
        if finish is not None:
            return self._turner_push(finish, scene, "push {} straight onto its goal position (its yaw is met)",
                                     {"goal_errors": errors, "turn": True, "finish": True})
        self._short.learn(scene, self.mpc.dynamics)
        for k in range(self.settings.replans):
            plan = self.mpc.plan(states, None, aims, shift=k == 0 and self._pushes > 0, fixed=is_fixed)
        action = plan.first_action()
        if action is None:
            return self._done("no push improves the goal cost", {"goal_errors": errors, "mpc": _plan_record(plan)})
        self._pushes += 1
        pushed = int(plan.objects[0])
        action = self._short.extend(scene, pushed, action)
        ends = _end_poses(plan.states[1], scene.ids)
        self._expected = {n: ends[scene.ids[g.index]][:2] for n, g in zip(names, goals, strict=True)}
        predicted = {"end_xy_yaw": ends, "p_success": float(plan.step_p_success[0]),
                     "reached_at_end": bool(plan.reached)}
        push = PushAction.from_row(scene.ids[pushed], action)
        return Decision("push", push=push, reason=f"push {scene.ids[pushed]} towards its goal",
                        predicted=predicted, record={"goal_errors": errors, "mpc": _plan_record(plan)})


def _with_fixtures(movable: list[ObjectEstimate], fixed: list[ObjectEstimate]
                   ) -> tuple[PerceivedScene, np.ndarray, np.ndarray]:
    """(the movable objects' PerceivedScene, states (N, 15) of the movable objects then the fixtures,
    fixed (N,) bool) for the MPC: fixtures are obstacles it never pushes and never moves."""
    scene = perceived_scene(movable)
    n_mov = len(scene.ids)
    states = np.concatenate([scene.states[:n_mov]] + [estimate_state(f)[None] for f in fixed])
    return scene, states, np.r_[np.zeros(n_mov, bool), np.ones(len(fixed), bool)]


def _wider_than_gripper(est: ObjectEstimate) -> bool:
    """Both horizontal sides of the estimate's upright footprint are wider than the gripper can take."""
    xy = est.corners()[:, :2]
    return bool(min_area_rectangle(xy, "hull")[2].min() > MAX_GRASP_WIDTH)


def _end_poses(states: np.ndarray, ids: list[str]) -> dict[str, list[float]]:
    """id -> predicted [x, y, yaw] (m, rad) of the movable slots of one predicted state (N, 15)."""
    yaws = yaw_of_quats(states[: len(ids), 3:7].astype(float))
    return {oid: [float(states[i, 0]), float(states[i, 1]), float(yaws[i])] for i, oid in enumerate(ids)}


def _plan_record(plan: Any) -> dict[str, Any]:
    """The JSON-able summary of an MPC plan for plan.jsonl."""
    return {"cost": float(plan.cost), "mean_cost": float(plan.mean_cost), "disagreement": float(plan.disagreement),
            "p_success": float(plan.p_success), "pushes": int(plan.n_pushes), "reached": bool(plan.reached),
            "model_calls": int(plan.model_calls), "ms": float(plan.wall_s * 1e3),
            "first_action": None if plan.first_action() is None else [float(v) for v in plan.first_action()]}


def default_task_planner(scene: Scene, kin: Any, seed: int,
                         settings: PickPlacePlannerConfig | None = None) -> PlanningTaskPlanner:
    """The product's planner for `scene`: the shipped world model for grasp ranking and pushes (CEM from
    planners/mpc.yaml), shadow-world verification with the pick-and-place settings, `kin` (the robot's
    KinematicModel) for reachability, the grasp planner in single-view mode when the scene has exactly one
    camera and it is fixed; one `seed` for every random draw."""
    from robot_wm.model.world_model import WorldModel
    from robot_wm.planning.dynamics import WorldModelDynamics
    from robot_wm.planning.shadow import ShadowVerifier

    s = settings or PickPlacePlannerConfig()
    model = WorldModel.load()
    verifier = (ShadowVerifier(trials=s.verify_trials, min_success=s.verify_min_success, seed=seed)
                if s.verify_grasps else None)
    # one fixed camera: the grasp planner's single-view mode (candidates from the one view, the far side
    # inferred, ranked by the grasp-quality model; docs/grasping.md)
    one_view = len(scene.calibrations) == 1 and scene.mounts == ["world"]
    grasps = GraspPlanner(kin, model, verifier, seed=seed, cameras=camera_positions(scene) if one_view else None)
    # pushes the hand could not start (its body over a wall or a neighbour) are refused by the dynamics
    # (the benchmarked push loop's check), on top of the MPC's own way-in check. Without the hand check the
    # hard suite's objects against walls were placed less often (0.39 vs 0.57 of 23), though the one
    # singulate.yaml run placed more (3/3 vs 1/3): the arm's body does collide with the wall's top there.
    mpc_cfg = load_mpc_config()
    mpc = MPCPlanner(ExecutablePushes(WorldModelDynamics(model, uncertainty=mpc_cfg.uncertainty, turn=mpc_cfg.turn)),
                     mpc_cfg, seed=seed)
    return PlanningTaskPlanner(scene.config, grasps, mpc,
                               TaskPlannerSettings(max_attempts_per_object=s.max_attempts_per_object),
                               approach=s.approach)


__all__ = ["PlanningTaskPlanner", "TaskPlannerSettings", "default_task_planner"]
