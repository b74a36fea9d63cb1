"""``robot-wm bench mpc``: push-to-goal episodes closed-loop (RGB-D perception -> plan -> push -> perceive
again), every pusher on the same episodes in the same run, judged by the simulator's ground truth.

Episodes (:func:`episode_scenes`): one held-out object to push — a box wider than the gripper, a cylinder
wider than any the world model was trained on, or a random_urdfs 700-999 mesh at scale 0.5-1.0, in turn —
plus 0-2 held-out distractors, randomised mass and friction (``config.random_scene.push_to_goal_scene``);
the goal is 5-20 cm away in a random direction inside the arm's reach, with a yaw goal (turned 15-60
degrees) in half of the episodes (never for cylinders). The scene is settled once and written back with
the settled poses (as a user's scene file would say where things are), so every variant starts from the
same state. At most 10 pushes; success = within 2 cm and 10 degrees by ground truth (:func:`score`).

Variants (:data:`VARIANTS`), all through the same loop (:class:`~robot_wm.planning.push_loop.PushLoop`,
aiming at half the tolerances) and, for the MPCs, the same executability check of pushes
(:class:`~robot_wm.planning.push_loop.ExecutablePushes`):

* ``mpc_world_model`` — planners/mpc.yaml, :data:`REPLANS` re-plans per push (the first warm-started);
* ``mpc_world_model_turn`` — the same, with the learning turning push for yaw
  (:class:`~robot_wm.planning.baselines.TurnFirst`, :mod:`robot_wm.planning.turning`): while a goal's yaw is
  off and its position within a few tolerances (or along a turning push's heading), the turning push (a
  tilted pad's corner on one end of a long side, its travel from the turns seen so far) is made, otherwise
  the MPC decides — the product's push-to-goal planner;
* ``mpc_mean_only`` — the same as ``mpc_world_model`` with kappa = 0: the same samples and re-plans, so the same model calls;
* ``mpc_physics`` — PyBullet on the perceived scene as the dynamics (mass 0.1 kg, friction 0.5 guessed),
  a far smaller search (:data:`PHYSICS_SETTINGS`, one plan per push), on the first
  :data:`PHYSICS_EPISODES` episodes (``push_success_mpc_world_model_on_physics_episodes`` compares);
* ``mpc_no_motion`` — nothing ever moves (it should never find a push worth making);
* ``scripted_pusher`` — no model (:class:`~robot_wm.planning.baselines.ScriptedPusher`);
* ``random_shooting`` — samples x :data:`REPLANS` uniformly random sequences once, the best kept;
* ``oracle_state_mpc_world_model`` (diagnostic) — the world-model MPC fed the simulator's true object boxes
  and shape classes instead of perception: separates perception error from the rest.

Fields: per variant ``push_success_<v>`` (and split by ``_position_goals`` / ``_yaw_goals``),
``mean_pushes_<v>``, ``pos_err_mm_median_<v>``, ``yaw_err_deg_median_<v>`` (episodes with a yaw goal),
``plan_ms_median_<v>`` (one decision); ``plan_hz``: one re-plan (planners/mpc.yaml: 1,000 samples x horizon
10) of an 8-object scene on one torch thread, 1 / the median of 25 warm-started calls measured in this run;
``plan_hz_physics``: 1 / the median decision time of ``mpc_physics`` in its episodes (its settings).

Episodes run in worker processes (one torch thread each); each (variant, episode) is independent and
seeded, so the numbers do not depend on the number of workers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from robot_wm.config import REPO_SCENES_DIR, ConfigError, read_yaml, scene_from_dict
from robot_wm.config.planner_mpc import MPCConfig, load_mpc_config
from robot_wm.config.processes import single_threaded_workers, worker_init
from robot_wm.config.random_scene import PUSH_KINDS, push_to_goal_scene
from robot_wm.geometry import Pose
from robot_wm.model.state import object_state

log = logging.getLogger(__name__)

EPISODES, EPISODES_QUICK = 48, 6  # 48: box, cylinder, mesh 16 times each; 24 with a yaw goal
PHYSICS_EPISODES, PHYSICS_EPISODES_QUICK = 18, 2  # the first ones: 6 of each kind, 10 with a yaw goal
MAX_PUSHES = 10
PLAN_HZ_CALLS = 25
REPLANS = 4  # MPC re-plans per push decision (the first warm-started from the last decision)
VARIANTS = ("mpc_world_model", "mpc_world_model_turn", "mpc_mean_only", "mpc_physics", "mpc_no_motion", "scripted_pusher",
            "random_shooting", "oracle_state_mpc_world_model")
# the physics reference rolls every sample in PyBullet (~0.1-0.4 s per push): a small search
PHYSICS_SETTINGS = {"samples": 24, "horizon": 2, "iterations": 2, "elites": 4}
SQUARE_TOL = 0.1  # relative difference of a box's footprint sides below which it is square (pi/2 symmetric)


# ------------------------------------------------------------------------------------------- episodes
def episode_seed(seed: int, e: int) -> int:
    """The scene seed of episode e of a run with `seed`."""
    return 1000 * seed + e


def episode_scene(seed: int, e: int, heldout: bool = True) -> dict[str, Any]:
    """Episode e's scene mapping (not yet settled): the target's kind cycles box, cylinder, mesh; three of
    every four non-cylinder episodes get a yaw goal (half of all episodes)."""
    kind = PUSH_KINDS[e % len(PUSH_KINDS)]
    yaw_goal = kind != "cylinder" and (e // len(PUSH_KINDS)) % 4 != 3
    return push_to_goal_scene(episode_seed(seed, e), heldout=heldout, kind=kind, yaw_goal=yaw_goal,
                              name=f"bench_mpc_{'heldout' if heldout else 'train'}_{seed}_{e}")


def settle_scene(data: dict[str, Any], scene_dir: Path | None = None) -> dict[str, Any]:
    """The scene with every movable object at its settled pose (its world built and settled once) and a
    yaw goal turned with its object, so the scene file says where things are when the episode starts."""
    from robot_wm.sim import World

    out = json.loads(json.dumps(data))
    with World(scene_from_dict(out, out["name"], scene_dir or REPO_SCENES_DIR)) as world:
        poses = {n: world.object_pose(n) for n, o in world.objects.items() if not o.fixed}
    turned: dict[str, float] = {}
    for obj in out["objects"]:
        if obj["name"] not in poses:
            continue
        p = poses[obj["name"]]
        before = Rotation.from_quat(obj.get("orientation", [0, 0, 0, 1]))
        after = Rotation.from_quat(p.quaternion)
        turned[obj["name"]] = _yaw_turned(before, after)
        obj["position"] = [round(float(v), 5) for v in p.position]
        obj["orientation"] = [round(float(v), 7) for v in p.quaternion]
    for g in out.get("task", {}).get("goals", []):
        if g.get("yaw_deg") is not None:
            g["yaw_deg"] = round(g["yaw_deg"] + math.degrees(turned.get(g["object"], 0.0)), 3)
    return out


def episode_scenes(seed: int, n: int, heldout: bool = True) -> list[dict[str, Any]]:
    """The first n episodes' settled scene mappings."""
    return [settle_scene(episode_scene(seed, e, heldout)) for e in range(n)]


# ------------------------------------------------------------------------------------------- scoring
def _yaw_turned(before: Rotation, after: Rotation) -> float:
    """Rotation (rad) about world z from `before` to `after` (the yaw of after * before^-1)."""
    m = (after * before.inv()).as_matrix()
    return math.atan2(m[1, 0], m[0, 0])


def yaw_symmetry(obj: dict[str, Any]) -> float:
    """Yaw period (rad) of a scene object about world z: inf for cylinders and spheres (no yaw to judge),
    pi/2 for a box with a square footprint, pi for other boxes, 2 pi for meshes."""
    shape = obj.get("shape")
    if shape in ("cylinder", "sphere"):
        return math.inf
    if shape == "box":
        sx, sy = obj["size"][0], obj["size"][1]
        return math.pi / 2 if abs(sx - sy) <= SQUARE_TOL * max(sx, sy) else math.pi
    return 2 * math.pi


def score(start: Pose, final: Pose, goal: dict[str, Any], start_yaw_deg_scene: float, period: float
          ) -> dict[str, Any]:
    """Ground-truth outcome of one goal. `start`/`final`: the object's true base pose at the start and the
    end; `goal`: the scene's goal mapping (position, yaw_deg, tolerances); `start_yaw_deg_scene`: the yaw the
    scene file gives the object (the goal's yaw is relative to it); `period`: its yaw symmetry (rad).

    Returns pos_err_m, yaw_err_rad (None without a yaw goal or for round objects; the turn about world z
    from start to final compared with the turn the goal asks for, modulo `period`) and success."""
    pos = float(np.linalg.norm(np.asarray(final.position[:2]) - np.asarray(goal["position"], float)))
    yaw_err = None
    if goal.get("yaw_deg") is not None and math.isfinite(period):
        want = math.radians(goal["yaw_deg"] - start_yaw_deg_scene)
        got = _yaw_turned(Rotation.from_quat(start.quaternion), Rotation.from_quat(final.quaternion))
        yaw_err = abs(math.remainder(got - want, period))
    ok = pos <= goal.get("tolerance_m", 0.02) and (
        yaw_err is None or yaw_err <= math.radians(goal.get("tolerance_deg", 10.0)))
    return {"pos_err_m": pos, "yaw_err_rad": yaw_err, "success": bool(ok)}


# ------------------------------------------------------------------------------------------- variants
_CACHE: dict[str, Any] = {}


def _world_model():
    """The world-model dynamics planners/mpc.yaml names (one per process)."""
    if "wm" not in _CACHE:
        from robot_wm.planning.dynamics import make_dynamics

        cfg = load_mpc_config()
        _CACHE["wm"] = make_dynamics("world_model", cfg.model, cfg.uncertainty, cfg.turn)
    return _CACHE["wm"]


def physics_config(base: MPCConfig) -> MPCConfig:
    """The mpc_physics variant's settings: planners/mpc.yaml with PHYSICS_SETTINGS."""
    return MPCConfig.model_validate(base.model_dump() | PHYSICS_SETTINGS)


def make_pusher(variant: str, seed: int, config: MPCConfig | None = None, replans: int | None = None):
    """The pusher of a variant (see the module docstring), seeded. Every MPC's dynamics is wrapped in
    :class:`~robot_wm.planning.push_loop.ExecutablePushes` (pushes the hand cannot start are refused)."""
    from robot_wm.planning.baselines import RandomShootingPlanner, ScriptedPusher, TurnFirst
    from robot_wm.planning.dynamics import NoMotionDynamics, PhysicsDynamics
    from robot_wm.planning.mpc import MPCPlanner
    from robot_wm.planning.push_loop import ExecutablePushes, MPCPusher

    cfg = config or load_mpc_config()
    k = REPLANS if replans is None else replans
    if variant in ("mpc_world_model", "oracle_state_mpc_world_model"):
        return MPCPusher(MPCPlanner(ExecutablePushes(_world_model()), cfg, seed), k)
    if variant == "mpc_world_model_turn":
        return TurnFirst(MPCPusher(MPCPlanner(ExecutablePushes(_world_model()), cfg, seed), k), ScriptedPusher(cfg.push))
    if variant == "mpc_mean_only":
        return MPCPusher(MPCPlanner(ExecutablePushes(_world_model()), cfg.model_copy(update={
            "cost": cfg.cost.model_copy(update={"kappa": 0.0})}), seed), k)
    if variant == "mpc_physics":
        return MPCPusher(MPCPlanner(ExecutablePushes(PhysicsDynamics(seed=seed)), physics_config(cfg), seed))
    if variant == "mpc_no_motion":
        return MPCPusher(MPCPlanner(ExecutablePushes(NoMotionDynamics()), cfg, seed), k)
    if variant == "scripted_pusher":
        return ScriptedPusher(cfg.push)
    if variant == "random_shooting":  # one round of samples x replans sequences: the same model calls
        rs = cfg.model_copy(update={"samples": cfg.samples * k})
        return MPCPusher(RandomShootingPlanner(ExecutablePushes(_world_model()), rs, seed))
    raise ValueError(f"unknown variant {variant!r} (one of {', '.join(VARIANTS)})")


class _OracleShapes:
    """The oracle estimator (true poses and boxes, read from the simulator) with each object's true shape
    class in ``extra["shape"]``: the oracle_state variant's perception."""

    name = "oracle"

    def __init__(self, world) -> None:
        from robot_wm.control.estimate import OracleEstimator

        self.world = world
        self.inner = OracleEstimator(world)

    def estimate(self, obs):
        out = self.inner.estimate(obs)
        for e in out:
            e.extra["shape"] = self.world.objects[e.id].shape or "mesh"
        return out


def run_episode(variant: str, data: dict[str, Any], seed: int, config: MPCConfig | None = None,
                max_pushes: int = MAX_PUSHES, replans: int | None = None) -> dict[str, Any]:
    """One closed-loop episode of `variant` on a settled push_to_goal scene mapping; judged by ground
    truth. Returns the outcome (success, pushes, errors, reason, plan times)."""
    from robot_wm.control.rgbd_estimator import RgbdEstimator
    from robot_wm.planning.push_loop import PushLoop, sim_push_executor
    from robot_wm.planning.scene_state import GoalMatcher, object_goals
    from robot_wm.sim import Arm, World

    torch.set_num_threads(1)
    scene = scene_from_dict(data, data["name"], REPO_SCENES_DIR)
    pusher = make_pusher(variant, seed, config, replans)
    with World(scene) as world:
        arm = Arm(world)
        try:
            starts = {g.object: world.object_pose(g.object) for g in scene.config.task.goals}
            estimator = _OracleShapes(world) if variant.startswith("oracle") else RgbdEstimator()
            loop = PushLoop(pusher, max_pushes)
            res = loop.run(lambda: world.observe(render=not variant.startswith("oracle"), segmentation=False),
                           estimator, sim_push_executor(world, arm), GoalMatcher(object_goals(scene.config)), seed)
            objects = {o["name"]: o for o in data["objects"]}
            outcomes = []
            for g in data["task"]["goals"]:
                obj = objects[g["object"]]
                yaw0 = math.degrees(_yaw_turned(Rotation.identity(), Rotation.from_quat(obj["orientation"])))
                outcomes.append(score(starts[g["object"]], world.object_pose(g["object"]), g, yaw0, yaw_symmetry(obj)))
        finally:
            arm.close()
            dyn = getattr(getattr(pusher, "planner", None), "dynamics", None)
            if hasattr(dyn, "close"):
                dyn.close()
    yaws = [o["yaw_err_rad"] for o in outcomes if o["yaw_err_rad"] is not None]
    return {"success": all(o["success"] for o in outcomes), "pushes": res.pushes, "reason": res.reason,
            "perceived_reached": res.reached, "pos_err_m": max(o["pos_err_m"] for o in outcomes),
            "yaw_err_rad": max(yaws) if yaws else None, "plan_s": res.plan_s,
            "execute_ok": [s.ok for s in res.steps], "wall_s": res.wall_s}


def _job(args: tuple) -> tuple[str, int, dict[str, Any]]:
    variant, e, data, seed = args
    return variant, e, run_episode(variant, data, seed)


# ------------------------------------------------------------------------------------------- plan rate
def plan_rate_scene(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A settled-looking n-object state (n, 15) and mask for timing: boxes, cylinders and meshes 9 cm
    apart on a grid in the workspace, random yaws."""
    rng = np.random.default_rng(seed)
    states = []
    for i in range(n):
        x, y = 0.42 + 0.09 * (i % 3), -0.15 + 0.09 * (i // 3)
        ext = rng.uniform([0.04, 0.04, 0.03], [0.08, 0.07, 0.07])
        yaw = float(rng.uniform(-math.pi, math.pi))
        states.append(object_state([x, y, ext[2] / 2], [0, 0, math.sin(yaw / 2), math.cos(yaw / 2)], ext,
                                   ("box", "cylinder", "mesh")[i % 3]))
    return np.stack(states).astype(np.float32), np.ones(n, bool)


def plan_hz(config: MPCConfig | None = None, calls: int = PLAN_HZ_CALLS, n: int = 8) -> float:
    """Re-plans per second of the world-model MPC (config: planners/mpc.yaml) on an n-object scene with
    one goal, on one torch thread: 1 / the median time of `calls` warm-started plan() calls after 2
    warm-up calls."""
    from robot_wm.planning.costs import PoseGoal
    from robot_wm.planning.mpc import MPCPlanner

    states, mask = plan_rate_scene(n)
    goal = PoseGoal(0, (float(states[0, 0]) + 0.1, float(states[0, 1]) + 0.05), 0.5)
    planner = MPCPlanner(_world_model(), config or load_mpc_config(), seed=0)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(2):
            planner.plan(states, mask, [goal])
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            planner.plan(states, mask, [goal])
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return 1.0 / statistics.median(times)


# ------------------------------------------------------------------------------------------- run
def _has_yaw_goal(data: dict[str, Any]) -> bool:
    return any(g.get("yaw_deg") is not None for g in data["task"]["goals"])


def _summary(rows: dict[int, dict[str, Any]]) -> dict[str, Any]:
    eps = sorted(rows)
    succ = [rows[e]["success"] for e in eps]
    pos = [rows[e]["pos_err_m"] for e in eps]
    yaw = [rows[e]["yaw_err_rad"] for e in eps if rows[e]["yaw_err_rad"] is not None]
    plans = [t for e in eps for t in rows[e]["plan_s"]]
    return {"push_success": float(np.mean(succ)) if eps else math.nan,
            "mean_pushes": float(np.mean([rows[e]["pushes"] for e in eps])) if eps else math.nan,
            "pos_err_mm_median": 1e3 * statistics.median(pos) if pos else math.nan,
            "yaw_err_deg_median": math.degrees(statistics.median(yaw)) if yaw else math.nan,
            "plan_ms_median": 1e3 * statistics.median(plans) if plans else math.nan,
            "episodes": len(eps)}


def _scene_files(scenes: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in scenes:
        data = read_yaml(path)
        sc = scene_from_dict(data, str(path), path.parent, require_objects=True)
        if sc.config.task.kind != "push_to_goal":
            raise ConfigError(str(path), "task.kind", f"bench mpc needs push_to_goal scenes (got {sc.config.task.kind})")
        out.append(settle_scene(data, path.parent))
    return out


def run(scenes: list[Path] | None, seed: int, quick: bool, workers: int = 2,
        variants: tuple[str, ...] = VARIANTS, episodes: int | None = None, heldout: bool = True) -> dict[str, Any]:
    """Every variant on the same episodes; returns the flat dict of issue 13's `bench mpc` fields."""
    t0 = time.time()
    cfg = load_mpc_config()
    if scenes:
        datas = _scene_files(scenes)
    else:
        n = episodes if episodes is not None else (EPISODES_QUICK if quick else EPISODES)
        datas = episode_scenes(seed, n, heldout)
    n_phys = min(len(datas), PHYSICS_EPISODES_QUICK if quick else PHYSICS_EPISODES)
    jobs = []
    for e, data in enumerate(datas):
        for v in variants:
            if v == "mpc_physics" and e >= n_phys:
                continue
            jobs.append((v, e, data, episode_seed(seed, e)))
    jobs.sort(key=lambda j: j[0] != "mpc_physics")  # the slow ones first: the pool ends together
    results: dict[str, dict[int, dict[str, Any]]] = {v: {} for v in variants}
    bar = tqdm(total=len(jobs), desc="bench mpc", leave=False)
    if workers > 1:
        import multiprocessing

        with single_threaded_workers(), multiprocessing.get_context("spawn").Pool(
                workers, initializer=worker_init, initargs=(os.getpid(),)) as pool:
            for v, e, r in pool.imap_unordered(_job, jobs):
                results[v][e] = r
                bar.update()
    else:
        for job in jobs:
            v, e, r = _job(job)
            results[v][e] = r
            bar.update()
    bar.close()
    out: dict[str, Any] = {}
    for v in variants:
        s = _summary(results[v])
        out[f"push_success_{v}"] = s["push_success"]
        out[f"mean_pushes_{v}"] = s["mean_pushes"]
        out[f"pos_err_mm_median_{v}"] = s["pos_err_mm_median"]
        out[f"yaw_err_deg_median_{v}"] = s["yaw_err_deg_median"]
        out[f"plan_ms_median_{v}"] = s["plan_ms_median"]
        for label, want in (("position_goals", False), ("yaw_goals", True)):
            sub = {e: r for e, r in results[v].items() if _has_yaw_goal(datas[e]) == want}
            out[f"push_success_{v}_{label}"] = _summary(sub)["push_success"]
        if len(results[v]) != len(datas) and v != "mpc_physics":
            out[f"episodes_{v}"] = len(results[v])
    out["episodes"] = len(datas)
    out["episodes_with_yaw_goal"] = sum(_has_yaw_goal(d) for d in datas)
    out["replans_per_push"] = REPLANS
    if "mpc_physics" in variants:
        out["episodes_physics"] = n_phys
        if "mpc_world_model" in variants:
            sub = {e: results["mpc_world_model"][e] for e in range(n_phys)}
            out["push_success_mpc_world_model_on_physics_episodes"] = _summary(sub)["push_success"]
        plans = [t for r in results["mpc_physics"].values() for t in r["plan_s"]]
        out["plan_hz_physics"] = 1.0 / statistics.median(plans) if plans else math.nan
        out["mpc_physics_settings"] = ", ".join(f"{k} {v}" for k, v in PHYSICS_SETTINGS.items())
    out["plan_hz"] = plan_hz(cfg)
    out["plan_settings"] = f"samples {cfg.samples}, horizon {cfg.horizon}, iterations {cfg.iterations}, 8 objects, 1 thread"
    per_kind: dict[str, list[bool]] = {}
    if "mpc_world_model" in variants and not scenes:
        for e, r in results["mpc_world_model"].items():
            per_kind.setdefault(PUSH_KINDS[e % len(PUSH_KINDS)], []).append(r["success"])
        for k, v in per_kind.items():
            out[f"push_success_mpc_world_model_{k}"] = float(np.mean(v))
    out["max_pushes"] = MAX_PUSHES
    out["objects"] = "given scenes" if scenes else ("held-out" if heldout else "training") + " (push_to_goal_scene)"
    out["wall_s"] = round(time.time() - t0, 1)
    wm = out.get("push_success_mpc_world_model", math.nan)
    targets = {"push_success_ok": wm >= 0.95, "plan_hz_ok": out["plan_hz"] >= 20.0}
    if "push_success_mpc_world_model_on_physics_episodes" in out:
        targets["vs_physics_ok"] = out["push_success_mpc_world_model_on_physics_episodes"] >= 0.95 * out[
            "push_success_mpc_physics"]
    if "push_success_mpc_mean_only" in out:
        targets["ensemble_beats_mean_only"] = wm > out["push_success_mpc_mean_only"]
    out |= {k: bool(v) for k, v in targets.items()}
    return out
