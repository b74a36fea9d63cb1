"""``robot-wm bench pick-place``: task success of the demo on the shipped scenes and on 20 random scenes
(seeds 0-19, 3-6 objects from the training set), for every available perception mode (the scripted
controller, as before issue 13); and issue 13's hard suite.

Hard suite (:mod:`robot_wm.bench.hard_scenes`): :data:`HARD_SCENES` generated scenes (seeds
:func:`hard_seeds` of the bench seed; 4 with ``--quick``) of held-out objects in hard situations (flush
groups, walls, trays, objects wider than the gripper one way, tilted objects, meshes at full scale), run
with RGB-D perception by the planned controller (``default_task_planner``) and by the scripted one, in the
same run. Fields (:func:`hard_fields`):

* ``hard_placed_mpc`` / ``hard_placed_scripted`` — objects placed / placeable objects over the suite;
* ``hard_first_attempt_success`` — planned: objects whose first pick held them / objects picked (a pick
  that lifted an object counts for the object it lifted: :func:`_attributed`);
* ``hard_grasps_per_placed`` — planned: picks / objects placed; ``hard_pushes_per_scene`` (of which
  ``hard_drags_per_scene`` drag an object away from a fixture);
* ``hard_decision_ms_median`` — planned: median over every action decision of the suite of perception +
  planning + verification (ms, one thread per worker);
* ``hard_objects``, ``hard_scenes``, ``hard_scenes_fully_cleared_mpc`` / ``_scripted``;
* ``hard_by_kind`` — per hard kind: objects, placed fraction for each controller;
* ``hard_failures_mpc`` — objects the planned controller left unplaced, by stage (:func:`failure_stage`).

Grasp choice (on the first :data:`GRASP_SCENES` hard scenes): the planned controller with the grasp
planner ranking by the world model and verifying in the shadow world (the default, ``rank_verify``: the
hard suite's own runs), verifying only (no model: analytic-quality ranking, ``verify_only``) and ranking
only (no shadow verification, ``rank_only``). ``grasp_precision_<variant>``: executed grasps (the fingers
closed and lifted: the pick's action ran to its end or stopped at a hold check) that held an object
through lift and carry (ran to its end with an object in the hand) / executed grasps;
``shadow_tests_per_pick`` (and ``_verify_only``): shadow-world tests over every grasp plan / pick
decisions; ``grasp_placed_<variant>``: the placed fraction of those runs.

Every (variant, scene) run is independent and seeded by its scene, so the numbers do not depend on the
number of worker processes. Each run's ``report.json`` and ``plan.jsonl`` are kept under ``hard_logs``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from robot_wm.bench.hard_scenes import HARD_KINDS, hard_scene, object_kind
from robot_wm.config import REPO_SCENES_DIR, load_scene, scene_from_dict
from robot_wm.config.processes import single_threaded_workers, worker_init
from robot_wm.config.random_scene import random_scene
from robot_wm.control.demo import PERCEPTION_MODES, run_demo

if TYPE_CHECKING:
    from robot_wm.config import Scene
    from robot_wm.planning.task_planner import PlanningTaskPlanner
    from robot_wm.sim import KinematicModel

log = logging.getLogger(__name__)

RANDOM_SEEDS = range(20)
HARD_SCENES, HARD_SCENES_QUICK = 40, 4
GRASP_SCENES, GRASP_SCENES_QUICK = 40, 2
HARD_SEED_STRIDE = 1000  # hard scene seeds of bench seed s: s * 1000 + 0, 1, ...
HARD_VARIANTS = ("rank_verify", "scripted")  # the planned controller (default planner) and the baseline
GRASP_VARIANTS = ("rank_verify", "verify_only", "rank_only")
# A pick decision's logged failure: "" when the action ran to its end (the object held through lift and carry);
# these two when the grasp was executed (closed and lifted) but did not hold. Any other (unreachable, no
# straight path) means the grasp was not executed.
GRASP_FAILURES = ("nothing in hand after lift", "dropped while carrying")
DEFAULT_LOG_DIR = Path(tempfile.gettempdir()) / "robot_wm_bench_pick_place"


def random_scene_set(seeds=RANDOM_SEEDS):
    """The benchmark's random scenes: seed s has 3 + s % 4 objects (3-6)."""
    return [scene_from_dict(random_scene(s, 3 + s % 4), f"random_s{s}", REPO_SCENES_DIR) for s in seeds]


def run(scenes: list[Path] | None, seed: int, quick: bool, workers: int = 2, hard_scenes: int | None = None,
        grasp_scenes: int | None = None, log_dir: Path | None = None) -> dict[str, Any]:
    """Today's suites (scripted controller, every perception mode), then — without `scenes` — the hard
    suite and the grasp-choice comparison on `workers` processes (sizes: `hard_scenes`, `grasp_scenes`,
    default HARD_SCENES / GRASP_SCENES, the quick sizes with `quick`); run logs under `log_dir`."""
    named = [load_scene(p).with_seed(seed) for p in scenes] if scenes else [
        load_scene(REPO_SCENES_DIR / f"{n}.yaml").with_seed(seed) for n in ("two_blocks", "clutter")]
    randoms = [] if scenes else random_scene_set(range(5) if quick else RANDOM_SEEDS)
    out: dict[str, Any] = {}
    for mode in PERCEPTION_MODES:
        for sc in tqdm(named, desc=f"{mode}: scenes", leave=False):
            out[f"{mode}_success_{sc.name}"] = run_demo(sc, mode, controller="scripted")["success_rate"]
        if randoms:
            reports = [run_demo(sc, mode, controller="scripted")
                       for sc in tqdm(randoms, desc=f"{mode}: random scenes", leave=False)]
            placed, total = sum(r["placed"] for r in reports), sum(r["objects"] for r in reports)
            out[f"{mode}_success_random{len(randoms)}"] = placed / total
            out[f"{mode}_scenes_fully_cleared_random{len(randoms)}"] = sum(r["placed"] == r["objects"] for r in reports)
            out[f"{mode}_wall_s_per_scene_median"] = statistics.median(r["plan_wall_s"] for r in reports)
    if not scenes:
        n_hard = hard_scenes if hard_scenes is not None else (HARD_SCENES_QUICK if quick else HARD_SCENES)
        n_grasp = grasp_scenes if grasp_scenes is not None else (GRASP_SCENES_QUICK if quick else GRASP_SCENES)
        out |= run_hard(hard_seeds(seed, n_hard), min(n_grasp, n_hard), workers, log_dir or DEFAULT_LOG_DIR)
    return out


# ------------------------------------------------------------------------------------------ hard suite
def hard_seeds(seed: int, n: int) -> list[int]:
    """The scene seeds of the hard suite of a bench run with `seed`."""
    return [HARD_SEED_STRIDE * seed + i for i in range(n)]


def variant_planner(scene: Scene, kin: KinematicModel, seed: int, variant: str = "rank_verify") -> PlanningTaskPlanner:
    """``default_task_planner`` for `variant`: ``rank_verify`` as it is; ``verify_only`` with a grasp
    planner that has no world model (analytic-quality ranking); ``rank_only`` with one that has no shadow
    verifier (the best reachable candidate by the world model's P(success) is executed)."""
    from robot_wm.planning.grasp_planner import GraspPlanner
    from robot_wm.planning.task_planner import default_task_planner

    tp = default_task_planner(scene, kin, seed)
    g = tp.grasps
    if variant == "verify_only":
        tp.grasps = GraspPlanner(kin, None, g.verifier, g.config, seed=seed)
    elif variant == "rank_only":
        tp.grasps = GraspPlanner(kin, g.model, None, g.config, seed=seed)
    elif variant != "rank_verify":
        raise ValueError(f"unknown grasp variant {variant!r} (one of {', '.join(GRASP_VARIANTS)})")
    return tp


def run_hard_scene(variant: str, scene_seed: int, log_dir: Path) -> dict[str, Any]:
    """One hard scene run by `variant` ("scripted" or one of GRASP_VARIANTS, planned) with RGB-D
    perception; writes report.json (and plan.jsonl) under `log_dir`/<scene>/<variant>/ and returns
    :func:`scene_summary`."""
    mapping = hard_scene(scene_seed)
    scene = scene_from_dict(mapping, mapping["name"], REPO_SCENES_DIR)
    folder = Path(log_dir) / scene.name / variant
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if variant == "scripted":
        report = run_demo(scene, "rgbd", controller="scripted")
        decisions: list[dict[str, Any]] = []
    else:
        plan_path = folder / "plan.jsonl"
        report = run_demo(scene, "rgbd", controller="planned",
                          task_planner=functools.partial(variant_planner, variant=variant), plan_path=plan_path)
        decisions = [json.loads(line) for line in plan_path.read_text().splitlines() if line.strip()]
    wall = time.perf_counter() - t0
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=str))
    summary = scene_summary(report, decisions)
    summary |= {"variant": variant, "scene_seed": scene_seed, "job_wall_s": wall}
    return summary


def _job(args: tuple[str, int, str]) -> tuple[str, int, dict[str, Any]]:
    variant, scene_seed, log_dir = args
    return variant, scene_seed, run_hard_scene(variant, scene_seed, Path(log_dir))


def run_hard(seeds: list[int], n_grasp: int, workers: int, log_dir: Path) -> dict[str, Any]:
    """Every hard-suite run (HARD_VARIANTS on `seeds`, the other GRASP_VARIANTS on the first `n_grasp`)
    on `workers` processes; returns :func:`hard_fields` plus ``hard_logs`` and ``hard_wall_s``."""
    t0 = time.time()
    jobs = [(v, s, str(log_dir)) for s in seeds for v in HARD_VARIANTS]
    jobs += [(v, s, str(log_dir)) for s in seeds[:n_grasp] for v in GRASP_VARIANTS if v not in HARD_VARIANTS]
    results: dict[str, dict[int, dict[str, Any]]] = {}
    bar = tqdm(total=len(jobs), desc="bench pick-place: hard suite", leave=False)
    if workers > 1:
        import multiprocessing

        with single_threaded_workers(), multiprocessing.get_context("spawn").Pool(
                workers, initializer=worker_init, initargs=(os.getpid(),)) as pool:
            for v, s, r in pool.imap_unordered(_job, jobs):
                results.setdefault(v, {})[s] = r
                bar.update()
    else:
        for job in jobs:
            v, s, r = _job(job)
            results.setdefault(v, {})[s] = r
            bar.update()
    bar.close()
    ordered = {v: [results[v][s] for s in seeds if s in results.get(v, {})] for v in (*HARD_VARIANTS, *GRASP_VARIANTS)}
    out = hard_fields(ordered, seeds[:n_grasp])
    out["hard_logs"] = str(log_dir)
    out["hard_wall_s"] = time.time() - t0
    out["hard_run_s_median_mpc"] = statistics.median(r["job_wall_s"] for r in ordered["rank_verify"])
    out["hard_run_s_median_scripted"] = statistics.median(r["job_wall_s"] for r in ordered["scripted"])
    return out


# ------------------------------------------------------------------------------------------ fields
def scene_summary(report: dict[str, Any], decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers the suite's fields need from one run: `report` (``run_demo``'s) and, for the planned
    controller, its decisions (plan.jsonl entries; [] for the scripted one).

    objects / placed and per-object placed (with each object's hard kind); planned only: picks, pushes (``drags``: those that drag an object away from a fixture),
    the first-attempt tally (``first_held``: objects whose first pick held them, ``picked``: objects ever
    held — as ``run_demo``'s ``first_attempt_success``), ``decision_ms`` of every action decision,
    ``executed_grasps`` / ``held_grasps`` (see the module doc), ``shadow_tests`` over every grasp plan."""
    per_object = {n: bool(o["placed"]) for n, o in report["per_object"].items()}
    out: dict[str, Any] = {
        "scene": report["scene"], "objects": int(report["objects"]), "placed": int(report["placed"]),
        "per_object": per_object, "kinds": {n: object_kind(n) for n in per_object},
        "finish_reason": report.get("finish_reason"),
    }
    if report.get("controller") != "planned":
        return out
    attempts = [_attributed(a) for a in report.get("attempts", [])]
    picks = [d for d in decisions if d["kind"] == "pick"]
    first: dict[str, bool] = {}
    for a in attempts:
        if a["target_true"] is not None and a["target_true"] not in first:
            first[a["target_true"]] = a["held"] == a["target_true"]
    picked = {a["held"] for a in attempts if a["held"] is not None}
    executed = held = 0
    for d, a in zip(picks, attempts, strict=False):
        failure = d.get("failure", "")
        if d.get("executed") is not None and (failure == "" or failure in GRASP_FAILURES):
            executed += 1
            held += failure == "" and a["held"] is not None
    out |= {
        "picks": len(picks), "pushes": sum(d["kind"] == "push" for d in decisions),
        "drags": sum(d["kind"] == "push" and "drag" in (d.get("record") or {}) for d in decisions),
        "first_held": sum(first.get(o, False) for o in picked), "picked": len(picked),
        "decision_ms": [float(d["decision_ms"]) for d in decisions if d["kind"] != "done"],
        "executed_grasps": executed, "held_grasps": int(held),
        "shadow_tests": sum(int(g.get("shadow_tests", 0)) for d in decisions
                            for g in (d.get("record") or {}).get("grasp_plans", []) if isinstance(g, dict)),
        "failures": {n: failure_stage(n, report, decisions) for n, ok in per_object.items() if not ok},
    }
    return out


def _attributed(attempt: dict[str, Any]) -> dict[str, Any]:
    """A pick attempt of ``run_demo``'s report with the object it went for: the object it held when it held
    one, else ``target_true`` (run_demo's: the object whose bounding box is nearest the grasp point, which
    is ambiguous for flush-touching objects whose boxes overlap — it names the first of them)."""
    return {**attempt, "target_true": attempt["held"] or attempt["target_true"]}


def failure_stage(name: str, report: dict[str, Any], decisions: list[dict[str, Any]]) -> str:
    """Why the planned controller left object `name` (true name) unplaced, from its run's ground truth
    (which object each pick really went for, what the hand held, where the object ended) and the
    decision log. Picked at least once: ``dropped_while_carrying``, ``released_outside_region`` (held
    through the carry, yet not in the region), ``grasp_slipped`` (nothing in hand after the lift),
    ``wrong_object_held``, ``pick_motion_failed`` (unreachable, no straight path). Never picked — the
    estimates of the last decision: ``unseen`` (no estimate's box holds its final position),
    ``perception_merged`` (the estimate holding it holds another object too), ``seen_as_fixture`` (only a
    fixed estimate holds it), else for that estimate ``push_did_not_help`` (it was pushed, or pushes were
    made to make room around it), ``verification_refused`` (shadow-tested candidates all failed),
    ``no_candidate`` (no collision-free reachable candidate), ``not_planned`` (no grasp plan for it)."""
    attempts = [_attributed(a) for a in report.get("attempts", [])]
    picks = [d for d in decisions if d["kind"] == "pick"]
    mine = [(a, d.get("failure", "")) for a, d in zip(attempts, picks, strict=False) if a["target_true"] == name]
    if mine:
        fails = [f for _, f in mine]
        if any(a["held"] == name for a, _ in mine):
            if "dropped while carrying" in fails:
                return "dropped_while_carrying"
            return "released_outside_region" if "" in fails else "pick_motion_failed"
        if any(a["held"] not in (None, name) for a, _ in mine):
            return "wrong_object_held"
        return "grasp_slipped" if "nothing in hand after lift" in fails else "pick_motion_failed"
    seen = next((d["seen"] for d in reversed(decisions) if d.get("seen")), {})
    final = {n: np.asarray(p[0][:2], float) for n, p in report.get("final_poses", {}).items()}
    holders = [oid for oid, e in seen.items() if _box_holds(e, final[name])]
    if not holders:
        return "unseen"
    if all(seen[oid].get("fixed") for oid in holders):
        return "seen_as_fixture"
    holders = [oid for oid in holders if not seen[oid].get("fixed")]
    oid = holders[0]
    others = [n for n in report["per_object"] if n != name and n in final]
    if any(_box_holds(seen[oid], final[n]) for n in others):
        return "perception_merged"
    if any(d["kind"] == "push" and oid in (d.get("target"), (d.get("record") or {}).get("target")) for d in decisions):
        return "push_did_not_help"
    plans = [g for d in decisions for g in (d.get("record") or {}).get("grasp_plans", [])
             if isinstance(g, dict) and g.get("target") == oid]
    if not plans:
        return "not_planned"
    return "verification_refused" if plans[-1].get("shadow_tests", 0) else "no_candidate"


def _box_holds(est: dict[str, Any], xy: np.ndarray, margin: float = 0.01) -> bool:
    """Whether world point xy (2,) m lies in a logged estimate's footprint box ("xy_yaw": x, y and the yaw
    of the longer side; "extents") grown by `margin` m."""
    x, y, yaw = (float(v) for v in est["xy_yaw"][:3])
    ext = sorted((float(v) for v in est["extents"][:2]), reverse=True)
    c, s = math.cos(yaw), math.sin(yaw)
    d = np.asarray(xy, float) - [x, y]
    local = (c * d[0] + s * d[1], -s * d[0] + c * d[1])
    return abs(local[0]) <= ext[0] / 2 + margin and abs(local[1]) <= ext[1] / 2 + margin


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def hard_fields(runs: dict[str, list[dict[str, Any]]], grasp_seeds: list[int] | None = None) -> dict[str, Any]:
    """The suite's flat fields from per-scene summaries (:func:`scene_summary`) by variant ("rank_verify"
    = the planned controller, "scripted", and the other GRASP_VARIANTS); grasp-choice fields over the
    summaries whose ``scene_seed`` is in `grasp_seeds` (all when None). Fractions are None when their
    denominator is 0."""
    mpc, scripted = runs.get("rank_verify", []), runs.get("scripted", [])
    objects = sum(r["objects"] for r in mpc)
    placed = sum(r["placed"] for r in mpc)
    ms = [m for r in mpc for m in r["decision_ms"]]
    out: dict[str, Any] = {
        "hard_scenes": len(mpc),
        "hard_objects": objects,
        "hard_placed_mpc": _ratio(placed, objects),
        "hard_placed_scripted": _ratio(sum(r["placed"] for r in scripted), sum(r["objects"] for r in scripted)),
        "hard_first_attempt_success": _ratio(sum(r["first_held"] for r in mpc), sum(r["picked"] for r in mpc)),
        "hard_grasps_per_placed": _ratio(sum(r["picks"] for r in mpc), placed),
        "hard_decision_ms_median": statistics.median(ms) if ms else None,
        "hard_pushes_per_scene": _ratio(sum(r["pushes"] for r in mpc), len(mpc)),
        "hard_drags_per_scene": _ratio(sum(r.get("drags", 0) for r in mpc), len(mpc)),
        "hard_scenes_fully_cleared_mpc": sum(r["placed"] == r["objects"] for r in mpc),
        "hard_scenes_fully_cleared_scripted": sum(r["placed"] == r["objects"] for r in scripted),
    }
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in HARD_KINDS:
        entry: dict[str, Any] = {}
        for label, rs in (("mpc", mpc), ("scripted", scripted)):
            flags = [ok for r in rs for n, ok in r["per_object"].items() if r["kinds"].get(n) == kind]
            entry.setdefault("objects", len(flags))
            entry[f"placed_{label}"] = _ratio(sum(flags), len(flags))
        by_kind[kind] = entry
    out["hard_by_kind"] = by_kind
    out["hard_failures_mpc"] = dict(sorted(Counter(s for r in mpc for s in r.get("failures", {}).values()).items()))
    chosen = set(grasp_seeds) if grasp_seeds is not None else None
    for v in GRASP_VARIANTS:
        rs = [r for r in runs.get(v, []) if chosen is None or r.get("scene_seed") in chosen]
        out[f"grasp_precision_{v}"] = _ratio(sum(r["held_grasps"] for r in rs), sum(r["executed_grasps"] for r in rs))
        out[f"grasp_executed_{v}"] = sum(r["executed_grasps"] for r in rs)
        out[f"grasp_placed_{v}"] = _ratio(sum(r["placed"] for r in rs), sum(r["objects"] for r in rs))
        if v != "rank_only":
            key = "shadow_tests_per_pick" + ("" if v == "rank_verify" else f"_{v}")
            out[key] = _ratio(sum(r["shadow_tests"] for r in rs), sum(r["picks"] for r in rs))
    out["grasp_scenes"] = len(chosen) if chosen is not None else len(runs.get("rank_verify", []))
    return out
