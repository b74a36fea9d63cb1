"""The demo: a World, a controller loop, and a report judged from ground truth (``robot_wm.sim.truth`` and
the true poses; the controller itself never sees them).

Two controllers: ``planned`` (default; :class:`~robot_wm.control.planned.PlanningController` executing a
TaskPlanner's decisions, logged to ``plan.jsonl``) and ``scripted`` (the top-down box picker, the baseline).
The GIF shows the place region, the goals and, for the planned controller, an inset of what the planner
imagined for the action under way.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robot_wm.config import PickPlacePlannerConfig, Scene, SceneConfig
from robot_wm.control.controller import ScriptedController
from robot_wm.control.estimate import ObjectEstimator, OracleEstimator
from robot_wm.control.executor import SegmentController
from robot_wm.control.planned import PlanningController, decision_cap, xy_yaw
from robot_wm.control.rgbd_estimator import RgbdEstimator
from robot_wm.geometry import panda, yaw_of
from robot_wm.planning import ShadowVerifier
from robot_wm.planning.decision import TaskPlanner
from robot_wm.sim import Arm, KinematicModel, World
from robot_wm.sim.recorder import Annotation, Polyline, VideoRecorder
from robot_wm.sim.truth import evaluate_task, held_object, task_objects, true_poses

PERCEPTION_MODES = ("rgbd", "oracle")  # the first is the default
CONTROLLERS = ("planned", "scripted")  # the first is the default
SIM_S_PER_OBJECT = 40.0  # scripted: simulated time per task object before the run is cut off
SIM_S_PER_DECISION = 8.0  # planned: simulated time per allowed decision before the run is cut off
TaskPlannerFactory = Callable[[Scene, KinematicModel, int], TaskPlanner]


class PlannerUnavailable(RuntimeError):
    """The planned controller was asked for but no TaskPlanner can be built."""


def make_estimator(mode: str, world: World) -> ObjectEstimator:
    """The estimator of a perception mode: "rgbd" (perception from the cameras) or "oracle" (true state)."""
    if mode == "oracle":
        return OracleEstimator(world)
    if mode == "rgbd":
        return RgbdEstimator()
    raise ValueError(f"unknown perception mode {mode!r}")


def default_task_planner_factory() -> Callable[..., TaskPlanner]:
    """``robot_wm.planning.task_planner.default_task_planner(scene, kin, seed, settings=None)``;
    PlannerUnavailable (one line, never a silent fallback to the scripted controller) when it cannot be
    imported."""
    try:
        from robot_wm.planning.task_planner import default_task_planner
    except ImportError as exc:
        raise PlannerUnavailable(f"controller 'planned' needs robot_wm.planning.task_planner.default_task_planner "
                                 f"({exc}); use controller 'scripted'") from None
    return default_task_planner


def run_controller(world: World, arm: Arm, controller: SegmentController, max_sim_s: float,
                   on_event: Callable[[str], None] | None = None) -> dict[str, str | None]:
    """Drive the simulated robot with `controller` until it reports done or `max_sim_s` passes.

    `on_event` is called with each command event as it happens (the world in that tick's state). Returns,
    for each pick the controller checked, the true name of the object in the hand (ground truth, for the
    report only)."""
    held: dict[str, str | None] = {}
    obs = world.observe(render=controller.wants_images)
    t_end = world.time + max_sim_s
    gripper = None
    while world.time < t_end:
        cmd = controller.step(obs)
        for event in cmd.events:
            if event.startswith("grasp_checked:"):
                held[f"{len(held)}:{event.split(':', 1)[1]}"] = held_object(arm)
            if on_event is not None:
                on_event(event)
        if cmd.done:
            break
        arm.command(cmd.joint_positions, cmd.joint_velocities)
        if gripper != (cmd.gripper_width, cmd.gripper_force):  # motor targets persist in PyBullet
            gripper = (cmd.gripper_width, cmd.gripper_force)
            arm.set_gripper(*gripper)
        world.step()
        obs = world.observe(render=controller.wants_images)
    return held


# ---------------------------------------------------------------------- ground truth of goals
def goal_results(world: World) -> dict[str, dict[str, Any]]:
    """For each goal of the scene (true state): position error (m) of the body origin, yaw error (deg,
    modulo the body's symmetry about z: a box's half or quarter turn, none for cylinders and spheres; None
    when the goal has no yaw) and whether both are within the goal's tolerances."""
    out = {}
    for g in world.scene.config.task.goals:
        pose = world.object_pose(g.object)
        err_m = float(np.hypot(*(pose.position[:2] - np.asarray(g.position))))
        err_deg = None
        period = _yaw_period(world.objects[g.object].shape, world.objects[g.object].size)
        if g.yaw is not None:
            d = 0.0 if math.isinf(period) else (yaw_of(pose.quaternion) - g.yaw + period / 2) % period - period / 2
            err_deg = abs(math.degrees(d))
        out[g.object] = {"position_error_m": err_m, "yaw_error_deg": err_deg,
                         "reached": err_m <= g.tolerance_m and (err_deg is None or err_deg <= g.tolerance_deg)}
    return out


def _yaw_period(shape: str | None, size: tuple[float, ...]) -> float:
    if shape in ("cylinder", "sphere"):
        return math.inf
    if shape == "box":
        return math.pi / 2 if abs(size[0] - size[1]) <= 1e-6 else math.pi
    return 2 * math.pi


def _nearest_object(world: World, point: np.ndarray, names: list[str]) -> str | None:
    """The object (of `names`) whose true bounding box is nearest to `point` (3,) m: by signed distance, so
    among boxes that contain the point (flush neighbours' boxes touch) the one it is deepest inside wins."""
    best, best_d = None, math.inf
    for n in names:
        lo, hi = world.object_aabb(n)
        gap = np.maximum(lo - point, point - hi)  # (3,) > 0 outside along that axis
        d = float(np.linalg.norm(np.maximum(gap, 0.0))) if (gap > 0).any() else float(gap.max())
        if d < best_d:
            best, best_d = n, d
    return best


# ---------------------------------------------------------------------- GIF overlays
REGION_COLOR, GOAL_COLOR, PLAN_COLOR, NOW_COLOR, PUSH_COLOR = (255, 210, 0), (0, 230, 120), (0, 220, 255), \
    (255, 255, 255), (255, 60, 200)


def _rectangle(cx: float, cy: float, yaw: float, sx: float, sy: float, z: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [sx / 2, sy / 2]
    xy = local @ np.array([[c, s], [-s, c]]) + [cx, cy]
    return np.column_stack([xy, np.full(4, z)])


def _arrow(start: np.ndarray, end: np.ndarray, color: tuple[int, int, int]) -> list[Polyline]:
    d = end[:2] - start[:2]
    n = float(np.linalg.norm(d))
    if n < 1e-9:
        return []
    u = np.append(d / n, 0.0)
    side = np.array([-u[1], u[0], 0.0])
    head = min(0.02, 0.4 * n)
    wings = np.stack([end - head * u + 0.5 * head * side, end, end - head * u - 0.5 * head * side])
    return [Polyline(np.stack([start, end]), color), Polyline(wings, color)]


def scene_shapes(config: SceneConfig) -> list[Polyline]:
    """The task drawn on the table: the place region's outline (pick_place, clear) and each goal's
    tolerance circle, heading arrow (yaw goals) and, for boxes, the footprint wanted there."""
    task = config.task
    shapes = []
    if task.kind != "push_to_goal":
        r = task.place_region
        shapes.append(Polyline(_rectangle(r.center[0], r.center[1], 0.0, *r.size, r.center[2] + 0.002),
                               REGION_COLOR, closed=True))
    objects = {o.name: o for o in config.objects}
    for g in task.goals:
        x, y = g.position
        ang = np.linspace(0, 2 * np.pi, 25)
        shapes.append(Polyline(np.column_stack([x + g.tolerance_m * np.cos(ang), y + g.tolerance_m * np.sin(ang),
                                                np.full(25, 0.002)]), GOAL_COLOR))
        if g.yaw is not None:
            p = np.array([x, y, 0.002])
            shapes += _arrow(p, p + [0.07 * math.cos(g.yaw), 0.07 * math.sin(g.yaw), 0.0], GOAL_COLOR)
            obj = objects.get(g.object)
            if obj is not None and obj.shape == "box":
                shapes.append(Polyline(_rectangle(x, y, g.yaw, obj.size[0], obj.size[1], 0.002), GOAL_COLOR,
                                       closed=True, width=1))
    return shapes


def _shadow_text(predicted: dict[str, Any], record: dict[str, Any]) -> str | None:
    """'shadow 0.67 passed' from a verdict {success_rate, passed}: under "shadow" in predicted or record (a
    list: the last, i.e. the chosen grasp's), else the chosen candidate's "verdict" in the last of the
    record's "grasp_plans" (the grasp planner's record)."""
    v = predicted.get("shadow", record.get("shadow"))
    if isinstance(v, list):
        v = v[-1] if v else None
    plans = record.get("grasp_plans")
    if v is None and isinstance(plans, list) and plans and isinstance(plans[-1], dict):
        chosen = plans[-1].get("chosen")
        v = next((c.get("verdict") for c in plans[-1].get("candidates", [])
                  if isinstance(c, dict) and c.get("index") == chosen), None)
    if not isinstance(v, dict):
        return None
    rate = v.get("success_rate", v.get("p_success"))
    verdict = "passed" if v.get("passed") else "failed"
    return f"shadow {rate:.2f} {verdict}" if isinstance(rate, int | float) else f"shadow {verdict}"


def imagined(controller: PlanningController) -> Annotation | None:
    """The inset for the decision under way: a push's line, the target's footprint now (white) and the
    predicted end footprints (cyan; yaw of the longer side, as the planner's states); a pick's gripper at
    the grasp and its approach, with P(success) and the shadow world's verdict. None between actions."""
    d = controller.current
    if d is None:
        return None
    by_id = {e.id: e for e in controller.estimates}
    shapes: list[Polyline] = []
    text = []
    p = d.predicted.get("p_success")
    if d.kind == "push" and d.push is not None:
        a = d.push
        start = np.asarray(a.start, float)
        end = start + a.distance * np.array([math.cos(a.yaw), math.sin(a.yaw), 0.0])
        text.append(f"push {a.target} {100 * a.distance:.1f} cm")
        now = by_id.get(a.target)
        if now is not None:
            x, y, yaw, _ = xy_yaw(now)
            shapes.append(Polyline(_rectangle(x, y, yaw, max(now.extents[:2]), min(now.extents[:2]), now.top_z),
                                   NOW_COLOR, closed=True, width=1))
        for oid, (x, y, yaw) in (d.predicted.get("end_xy_yaw") or {}).items():
            est = by_id.get(oid)
            if est is not None:
                shapes.append(Polyline(_rectangle(x, y, yaw, max(est.extents[:2]), min(est.extents[:2]), est.top_z),
                                       PLAN_COLOR, closed=True))
        shapes += _arrow(start, end, PUSH_COLOR)
    elif d.kind == "pick" and d.pick is not None:
        a = d.pick
        g = a.grasp_pose
        x_ax, y_ax, z_ax = g.rotation.as_matrix().T
        tips = [g.position + s * a.open_width / 2 * y_ax for s in (1, -1)]
        bases = [t - panda.FINGER_DEPTH * z_ax for t in tips]
        shapes.append(Polyline(np.stack([tips[0], bases[0], bases[1], tips[1]]), PLAN_COLOR))
        shapes.append(Polyline(np.stack([g.position - a.approach * z_ax, g.position]), PUSH_COLOR, width=1))
        text.append(f"pick {a.target}")
        shadow = _shadow_text(d.predicted, d.record)
        if shadow:
            text.append(shadow)
    if isinstance(p, int | float):
        text.append(f"P(success) {p:.2f}")
    return Annotation(inset=shapes, inset_text=text)


def make_annotator(config: SceneConfig, controller: SegmentController) -> Callable[[], Annotation]:
    """Per-frame annotation: the task's shapes, plus the planner's inset while a planned action runs."""
    static = scene_shapes(config)

    def annotate() -> Annotation:
        inset = imagined(controller) if isinstance(controller, PlanningController) else None
        if inset is None:
            return Annotation(static)
        return Annotation(static, inset.inset, inset.inset_text)

    return annotate


# ---------------------------------------------------------------------- the run
def write_plan_log(path: Path, decisions: list[dict[str, Any]]) -> Path:
    """One JSON object per line per decision (``plan.jsonl``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in decisions))
    return path


def _planned_summary(ctrl: PlanningController, picks: list[dict[str, Any]], placed: int) -> dict[str, Any]:
    """Decision counts, first-attempt success (objects whose first pick held them / objects picked),
    grasps per placed object and the median decision time (perception + planning + verification, ms) of the
    decisions that chose an action (all decisions when none did)."""
    kinds = [d["kind"] for d in ctrl.decisions]
    acts = [d for d in ctrl.decisions if d["kind"] != "done"] or ctrl.decisions
    first: dict[str, bool] = {}
    for p in picks:
        if p["target_true"] is not None and p["target_true"] not in first:
            first[p["target_true"]] = p["held"] == p["target_true"]
    picked = {p["held"] for p in picks if p["held"] is not None}
    n_picks = kinds.count("pick")
    return {
        "decisions": len(kinds), "picks": n_picks, "pushes": kinds.count("push"),
        "first_attempt_success": (sum(first.get(o, False) for o in picked) / len(picked)) if picked else None,
        "grasps_per_placed": n_picks / placed if placed else None,
        "decision_ms_median": statistics.median(d["decision_ms"] for d in acts) if acts else None,
        "finish_reason": ctrl.finish_reason,
    }


def run_demo(scene: Scene, perception: str = PERCEPTION_MODES[0], gui: bool = False, video_path: Path | None = None,
             planner: PickPlacePlannerConfig | None = None, controller: str = CONTROLLERS[0],
             task_planner: TaskPlanner | TaskPlannerFactory | None = None, plan_path: Path | None = None,
             max_decisions: int | None = None) -> dict[str, Any]:
    """Run the scene's task with `perception` (one of PERCEPTION_MODES, default "rgbd") and `controller`
    (one of CONTROLLERS, default "planned"); returns the report (fields in docs/ARCHITECTURE.md), judged
    from the simulator's true state.

    planned: `task_planner` is a TaskPlanner or a factory ``(scene, kin, seed) -> TaskPlanner`` (default:
    ``robot_wm.planning.task_planner.default_task_planner``; PlannerUnavailable when it does not exist);
    the decision log goes to `plan_path` (plan.jsonl) when given; `max_decisions` overrides the cap.
    `planner`: motion settings (planners/pick_place.yaml) for both controllers.
    """
    if controller not in CONTROLLERS:
        raise ValueError(f"unknown controller {controller!r} (one of {', '.join(CONTROLLERS)})")
    settings = planner or PickPlacePlannerConfig()
    if controller == "planned" and task_planner is None:
        task_planner = functools.partial(default_task_planner_factory(), settings=settings)
    with World(scene, gui=gui) as world:
        arm = Arm(world)
        names = task_objects(world)
        oracle = perception == "oracle"  # the oracle's ids are object names and it needs no images
        estimator = make_estimator(perception, world)
        if controller == "planned":
            brain = task_planner if hasattr(task_planner, "decide") else task_planner(scene, arm.kin, scene.config.seed)
            ctrl: SegmentController = PlanningController(
                estimator, arm.kin, brain, settings, scene.config.task.place_region, request_images=not oracle,
                n_slots=max(1, len(names)), max_decisions=max_decisions)
            cap = max_decisions if max_decisions is not None else decision_cap(len(world.objects))
            max_sim_s = SIM_S_PER_DECISION * cap
        else:
            verifier = (ShadowVerifier(trials=settings.verify_trials, min_success=settings.verify_min_success,
                                       seed=scene.config.seed) if settings.verify_grasps else None)
            ctrl = ScriptedController(estimator, arm.kin, scene.config.task.place_region, settings,
                                      names if oracle else None, n_slots=len(names), verifier=verifier,
                                      request_images=not oracle)
            max_sim_s = SIM_S_PER_OBJECT * max(1, len(names))
        recorder = (VideoRecorder(world, annotate=make_annotator(scene.config, ctrl))
                    if video_path is not None else None)
        picks: list[dict[str, Any]] = []  # planned: each pick's true target (nearest to the grasp) and catch
        movable = [n for n, o in world.objects.items() if not o.fixed]

        def on_event(event: str) -> None:
            if event.startswith("pick:") and isinstance(ctrl, PlanningController) and ctrl.current is not None:
                g = ctrl.current.pick.grasp_pose.position
                picks.append({"target": event.split(":", 1)[1], "target_true": _nearest_object(world, g, movable),
                              "held": None})
            elif event.startswith("grasp_checked:") and picks:
                picks[-1]["held"] = held_object(arm)

        t0, sim0 = time.perf_counter(), world.time
        held = run_controller(world, arm, ctrl, max_sim_s, on_event)
        wall, sim_s = time.perf_counter() - t0, world.time - sim0
        truth = evaluate_task(world, names)
        picked = sorted({h for h in held.values() if h in truth})
        placed = int(sum(truth.values()))
        report: dict[str, Any] = {
            "scene": scene.name,
            "scene_file": scene.source,
            "seed": scene.config.seed,
            "perception": perception,
            "controller": controller,
            "task": scene.config.task.kind,
            "objects": len(truth),
            "picked": len(picked),
            "placed": placed,
            "success_rate": float(placed / max(1, len(truth))),
            "sim_s": sim_s,
            "plan_wall_s": wall,
            "finished": ctrl.phase == "done",
        }
        if isinstance(ctrl, PlanningController):
            report.update(_planned_summary(ctrl, picks, placed))
            report["attempts"] = [{"target": p["target"], "target_true": p["target_true"], "held": p["held"]}
                                  for p in picks]
            if plan_path is not None:
                report["plan_log"] = str(write_plan_log(plan_path, ctrl.decisions))
        else:
            report["shadow_verified"] = settings.verify_grasps
            report["attempts"] = _scripted_attempts(ctrl, list(held.values()))
        report["per_object"] = {n: {"picked": n in picked, "placed": ok} for n, ok in truth.items()}
        if scene.config.task.kind == "push_to_goal":
            goals = goal_results(world)
            report["goals"] = goals
            report["goals_reached"] = sum(g["reached"] for g in goals.values())
            report["success_rate"] = report["goals_reached"] / max(1, len(goals))
            for n, g in goals.items():
                report["per_object"].setdefault(n, {}).update(g)
        report["final_poses"] = true_poses(world)
        if recorder is not None:
            recorder.detach()
            report["video"] = str(recorder.save(video_path))
        arm.close()
    return report


def _scripted_attempts(ctrl: ScriptedController, held_list: list[str | None]) -> list[dict[str, Any]]:
    attempts = []
    for a in ctrl.attempts:
        entry = {"target": a.target, "grasped": a.grasped, "reason": a.reason, "shadow": a.shadow}
        if a.grasped or a.reason == "nothing in hand after lift":
            entry["held"] = held_list.pop(0) if held_list else None
        attempts.append(entry)
    return attempts
