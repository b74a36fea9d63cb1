"""``robot-wm bench generalization``: perception and the shadow world on cameras, noise and objects the
project was not tuned on (issue 14, "Unseen worlds").

Scenes (:func:`scene_spec`): scene ``i`` of bench seed ``s`` has the seed ``s * SEED_STRIDE + i``, the
layout kind ``KINDS[i % 4]`` and the camera cell ``CELLS[i % 9]`` (family x noise). 4 and 9 are coprime,
so the :data:`SCENES` (72) scenes of a full run hold every (kind, family, noise) combination exactly twice;
the :data:`SCENES_QUICK` (8) of ``--quick`` cover eight of the nine cells. Layouts (:func:`layout`), every
object held out (random_urdfs 700-999, primitives drawn here), every draw from the scene seed:

* ``heldout`` — 3-4 random_urdfs 700-999 at scale 0.5-1.0, each on its resting facet;
* ``stack`` — 1-2 stacks of 2-3 boxes, every side uniform 3-7 cm, each box centred on the one below
  (yaw jitter up to 0.3 rad); a held-out mesh beside a single stack;
* ``flush_pair`` — 1-2 pairs of boxes (sides 3-7 cm) of one colour, side by side 1 mm apart (flush to a
  camera); a held-out mesh beside a single pair;
* ``tilted`` — a cylinder lying on its side and a thin slab leaning 20-35 deg on a taller box (the
  generators of :mod:`robot_wm.bench.hard_scenes`), or one of them and a held-out mesh.

Groups stand :data:`GROUP_GAP` apart with every footprint inside the cameras' view region (the region
:mod:`robot_wm.config.random_camera` guarantees in every drawn image) and the arm's reach. Camera families
(:func:`scene_cameras`): ``default`` = calibration/front.yaml + side.yaml; ``random_1`` = one camera from
``random_calibrations(scene seed, 1, noise)``; ``random_2_3`` = two or three. Noise: ``none``,
``nguyen2012``, ``nguyen2012_dropout`` on every camera of the scene.

Measured per scene (:func:`perceive_scene`) with the product's perception (``robot_wm.perception``, every
camera of the scene fused) against the simulator's truth:

* ``object_count_exact_rate`` — scenes whose perceived movable objects (not fixed, visible) number exactly
  the true ones that some camera sees (at least MIN_MASK_PX pixels of its segmentation in one camera:
  :func:`visible_objects`); ``object_count_exact_rate_all`` counts every true object, seen or not, and
  ``hidden_objects`` says how many no camera saw;
* ``overlap_f`` — UOIS overlap F (``bench perception``'s :func:`overlap_prf`) per camera, averaged over
  the scene's cameras, then over scenes;
* ``on_precision`` / ``on_recall`` — "on" relations (``bench perception``'s truth: a contact whose normal
  is within 20 deg of vertical, the upper centre higher) between objects some camera sees (or an object
  and the table), pooled over scenes; ``on_recall_all`` over every true relation;
* ``centroid_err_mm_median_noisy`` / ``extent_err_mm_median_noisy`` — objects matched by Hungarian on
  centre distance (gated at 5 cm), over scenes with noise: distance between box centres, and the mean
  absolute difference of the sorted extents. The truth box is a primitive's own box (its size, in its own
  frame, so a tilted box or a lying cylinder is judged by its real sides) or, for a mesh, the
  gravity-aligned min-area box of its collision vertices (as the oracle). Sorting makes the comparison
  blind to which axis perception calls vertical, not to a box that is too big.

Shadow verifier (:func:`verify_grasps`, on the first :data:`VERIFY_SCENES` noisy scenes: those of the
first 36, four per noisy cell): each scene is also built with the same cameras and no noise. For every
true movable object perceived in both versions, ``bench planning``'s grasps (the clean estimate's top-down grasps and their off-centre and shallow
variants) are shake-tested three ways with the same robust criterion: in the shadow world of the clean
estimate, in that of the noisy estimate, and on the true object (true mesh or primitive, pose, mass and
friction). ``verifier_precision_clean`` / ``_noisy`` = true holds among those the shadow passed;
``verifier_recall_noisy`` (and ``_clean``) = shadow passes among the true holds. One grasp set for both
shadows, so only the geometry differs.

Pick and place (:func:`pick_scene`, on the first :data:`PICK_SCENES` scenes: all of a full run, one with
``--quick``): ``run_demo`` with the default planned controller, RGB-D perception
and the oracle, a short run of at most :func:`pick_decisions` decisions. ``pick_success_rgbd`` /
``_oracle`` = objects placed / objects; ``pick_success_ratio_min`` = the smallest rgbd / oracle ratio over camera families and over noise levels
(the oracle reads the simulator and needs no camera, so it is the same run whatever the cell).

Every job is seeded by its scene, so the numbers do not depend on the number of worker processes
(``workers``, default 2). Nested fields ``by_family``, ``by_noise``, ``by_cell``, ``by_kind`` hold the
same metrics per group; ``worst_scenes`` lists the scenes whose perception failed the most, to reproduce.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from robot_wm.bench.hard_scenes import (
    PLACE_REGION,
    TOUCH_GAP,
    _leaning_slab,
    _lying_cylinder,
    _mesh,
    _moved,
    _posed,
    _primitive,
    _shift_after,
    footprint,
    polygon_gap,
    world_vertices,
)
from robot_wm.bench.perception import _match_centres, _true_on, overlap_prf
from robot_wm.config import REPO_ROOT, ConfigError, read_yaml, scene_from_dict
from robot_wm.config.processes import single_threaded_workers, worker_init
from robot_wm.config.random_camera import (
    VIEW_REGION_X,
    VIEW_REGION_Y,
    random_calibrations,
    write_calibrations,
)
from robot_wm.config.random_scene import random_color, scene_mapping
from robot_wm.config.workspace import in_reach, on_table

log = logging.getLogger(__name__)

KINDS = ("heldout", "stack", "flush_pair", "tilted")
FAMILIES = ("default", "random_1", "random_2_3")
NOISES = ("none", "nguyen2012", "nguyen2012_dropout")
CELLS = tuple((f, n) for f in FAMILIES for n in NOISES)
SCENES, SCENES_QUICK = 72, 8
VERIFY_SCENES, VERIFY_SCENES_QUICK = 24, 1
PICK_SCENES, PICK_SCENES_QUICK = SCENES, 1
SEED_STRIDE = 1000  # scene seeds of bench seed s: s * 1000 + 0, 1, ...
CAMERA_COUNT_STREAM = 15  # seed-sequence entry of the draw of 2 or 3 cameras (random_camera uses 14)
DEFAULT_CAMERAS = ("front", "side")
BOX_SIDE = (0.03, 0.07)  # m, every side of a stack or pair box
STACK_YAW_JITTER = 0.3  # rad, each box's yaw about the stack's
GROUP_GAP = 0.045  # m between the footprints of different groups (a finger's room)
VIEW_MARGIN = 0.01  # m: footprints stay this far inside the view region
MATCH_GATE = 0.05  # m: a perceived centre farther than this from every true one is unmatched
MIN_MASK_PX = 30  # a true object with fewer pixels in a camera is not scored in that camera
VERIFY_TRIALS = 3
MAX_GRASPS_PER_OBJECT = 8
WORST_LISTED = 8


# ---------------------------------------------------------------------------------------------- scenes
@dataclass(frozen=True)
class SceneSpec:
    """One benchmark scene: its index in the run, layout kind, camera family, depth noise and seed."""

    index: int
    kind: str
    family: str
    noise: str
    seed: int

    @property
    def cell(self) -> str:
        return f"{self.family}/{self.noise}"


def scene_spec(seed: int, index: int) -> SceneSpec:
    """Scene `index` of a run with bench `seed` (module docstring)."""
    family, noise = CELLS[index % len(CELLS)]
    return SceneSpec(index, KINDS[index % len(KINDS)], family, noise, SEED_STRIDE * seed + index)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 4)


def _box_size(rng: np.random.Generator) -> list[float]:
    return [_u(rng, *BOX_SIDE) for _ in range(3)]


def stack_group(rng: np.random.Generator) -> list[dict[str, Any]]:
    """2-3 boxes (sides uniform in BOX_SIDE), each centred on the one below, 1 mm above it, turned by up to
    STACK_YAW_JITTER about z; local frame, named ``stack``."""
    objs: list[dict[str, Any]] = []
    z = 0.0
    for _ in range(int(rng.integers(2, 4))):
        yaw = Rotation.from_euler("z", float(rng.uniform(-STACK_YAW_JITTER, STACK_YAW_JITTER)))
        obj = _posed("stack", _primitive(rng, "box", _box_size(rng)), yaw, (0.0, 0.0), z)
        objs.append(obj)
        z = float(world_vertices(obj)[:, 2].max())
    return objs


def flush_pair_group(rng: np.random.Generator) -> list[dict[str, Any]]:
    """Two boxes (sides uniform in BOX_SIDE) of one colour side by side along local x, TOUCH_GAP (1 mm)
    apart, aligned; named ``flush_pair``."""
    color = random_color(rng)
    objs: list[dict[str, Any]] = []
    x_next = 0.0
    for _ in range(2):
        obj = _posed("flush_pair", _primitive(rng, "box", _box_size(rng), color), Rotation.identity(),
                     (0.0, _u(rng, -0.005, 0.005)))
        objs.append(_shift_after(obj, x_next))
        x_next = float(world_vertices(obj)[:, 0].max()) + TOUCH_GAP
    return objs


def mesh_group(rng: np.random.Generator) -> list[dict[str, Any]]:
    """One held-out random_urdfs mesh (700-999, scale 0.5-1.0) on its resting facet, random yaw; ``heldout``."""
    fields, rest = _mesh(rng)
    return [_posed("heldout", fields, Rotation.from_euler("z", float(rng.uniform(-np.pi, np.pi))) * rest)]


def _tilted_groups(rng: np.random.Generator) -> list[list[dict[str, Any]]]:
    """A lying cylinder and a leaning slab, or one of them and a held-out mesh (names ``tilted``)."""
    r = rng.random()
    if r < 0.5:
        return [_lying_cylinder(rng), _leaning_slab(rng)]
    return [_lying_cylinder(rng) if r < 0.75 else _leaning_slab(rng), mesh_group(rng)]


def _groups(kind: str, rng: np.random.Generator) -> list[list[dict[str, Any]]]:
    if kind == "heldout":
        return [mesh_group(rng) for _ in range(int(rng.integers(3, 5)))]
    if kind == "stack":
        n = int(rng.integers(1, 3))
        return [stack_group(rng) for _ in range(n)] + ([mesh_group(rng)] if n == 1 else [])
    if kind == "flush_pair":
        n = int(rng.integers(1, 3))
        return [flush_pair_group(rng) for _ in range(n)] + ([mesh_group(rng)] if n == 1 else [])
    if kind == "tilted":
        return _tilted_groups(rng)
    raise ValueError(f"unknown scene kind {kind!r} (one of {', '.join(KINDS)})")


def _footprint_ok(poly: np.ndarray) -> bool:
    x, y = poly[:, 0], poly[:, 1]
    return bool(np.all((x >= VIEW_REGION_X[0] + VIEW_MARGIN) & (x <= VIEW_REGION_X[1] - VIEW_MARGIN)
                       & (y >= VIEW_REGION_Y[0] + VIEW_MARGIN) & (y <= VIEW_REGION_Y[1] - VIEW_MARGIN))
                and all(in_reach(px, py) and on_table(px, py) for px, py in poly))


def _arrange(rng: np.random.Generator, groups: list[list[dict[str, Any]]], tries: int = 400
             ) -> list[list[dict[str, Any]]] | None:
    """Every group moved rigidly to a random pose (largest group first) with its footprints inside the view
    region (VIEW_MARGIN in) and reach, GROUP_GAP from the groups placed before; None when one does not fit."""
    placed: list[list[dict[str, Any]]] = []
    polys: list[np.ndarray] = []
    for group in sorted(groups, key=lambda g: -float(np.ptp(np.concatenate([footprint(o) for o in g]), axis=0).max())):
        centre = np.mean([o["position"][:2] for o in group], axis=0)
        for _ in range(tries):
            xy = rng.uniform([VIEW_REGION_X[0], VIEW_REGION_Y[0]], [VIEW_REGION_X[1], VIEW_REGION_Y[1]])
            yaw = float(rng.uniform(-np.pi, np.pi))
            c, s = math.cos(yaw), math.sin(yaw)
            shift = xy - np.array([c * centre[0] - s * centre[1], s * centre[0] + c * centre[1]])
            moved = [_moved(o, shift, yaw) for o in group]
            mp = [footprint(o) for o in moved]
            if all(_footprint_ok(p) for p in mp) and all(polygon_gap(p, q) >= GROUP_GAP for p in mp for q in polys):
                placed.append(moved)
                polys.extend(mp)
                break
        else:
            return None
    return placed


def layout(kind: str, scene_seed: int) -> list[dict[str, Any]]:
    """The objects (scene-contract mappings, world frame) of a scene of `kind` (one of KINDS), every draw
    from ``default_rng(scene_seed)``; names ``{group kind}_{i}`` (``stack_0``, ``flush_pair_1``, ...),
    listed group by group (a stack bottom to top, a pair along its row)."""
    rng = np.random.default_rng(scene_seed)
    for _ in range(100):
        arranged = _arrange(rng, _groups(kind, rng))
        if arranged is not None:
            break
    else:  # pragma: no cover - the ranges always admit a layout
        raise ValueError(f"generalization scene {kind} {scene_seed}: no layout found")
    counters: dict[str, int] = {}
    objects = []
    for group in arranged:
        for o in group:
            k = o["name"]
            objects.append({**o, "name": f"{k}_{counters.get(k, 0)}"})
            counters[k] = counters.get(k, 0) + 1
    return objects


def scene_cameras(family: str, noise: str, scene_seed: int, folder: Path) -> list[str]:
    """Calibration file names (written to `folder` when drawn or noisy) of a scene's cameras: family
    ``default`` (front + side), ``random_1`` or ``random_2_3`` (``random_calibrations(scene_seed, n,
    noise)``, n = 2 or 3 drawn from ``[scene_seed, CAMERA_COUNT_STREAM]``); `noise` on every camera."""
    if family == "default":
        if noise == "none":
            return [f"{c}.yaml" for c in DEFAULT_CAMERAS]
        names = []
        for c in DEFAULT_CAMERAS:
            data = read_yaml(REPO_ROOT / "calibration" / f"{c}.yaml") | {"depth_noise": noise}
            (folder / f"{c}_{noise}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
            names.append(f"{c}_{noise}.yaml")
        return names
    if family == "random_1":
        n = 1
    elif family == "random_2_3":
        n = int(np.random.default_rng([scene_seed, CAMERA_COUNT_STREAM]).integers(2, 4))
    else:
        raise ValueError(f"unknown camera family {family!r} (one of {', '.join(FAMILIES)})")
    return write_calibrations(random_calibrations(scene_seed, n, noise), folder, f"s{scene_seed}_{noise}")


def scene_mapping_of(spec: SceneSpec, folder: Path, noise: str | None = None) -> dict[str, Any]:
    """The contract scene mapping of `spec` (calibrations written to `folder`), with `noise` instead of the
    spec's depth noise when given (the same cameras otherwise)."""
    noise = spec.noise if noise is None else noise
    cams = scene_cameras(spec.family, noise, spec.seed, folder)
    name = f"gen_{spec.index}_{spec.kind}_{spec.family}_{noise}_s{spec.seed}"
    return scene_mapping(name, layout(spec.kind, spec.seed), cameras=tuple(cams), seed=spec.seed,
                         task={"kind": "pick_place", "place_region": PLACE_REGION})


def build_scene(spec: SceneSpec, folder: Path, noise: str | None = None):
    """The validated ``Scene`` of :func:`scene_mapping_of`."""
    data = scene_mapping_of(spec, folder, noise)
    return scene_from_dict(data, data["name"], folder)


# ---------------------------------------------------------------------------------------------- truth
def true_boxes(world) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Movable object name -> (box centre (3,) m, extents (3,) m): a primitive's own box (pose position;
    box size, cylinder (2r, 2r, h), sphere 2r), a mesh's gravity-aligned min-area box of its collision
    vertices."""
    from robot_wm.geometry import upright_box

    out = {}
    for name, info in world.objects.items():
        if info.fixed:
            continue
        if info.shape == "box":
            out[name] = (world.object_pose(name).position, np.asarray(info.size, float))
        elif info.shape == "cylinder":
            r, h = info.size
            out[name] = (world.object_pose(name).position, np.array([2 * r, 2 * r, h]))
        elif info.shape == "sphere":
            out[name] = (world.object_pose(name).position, np.full(3, 2 * info.size[0]))
        else:
            pose, ext = upright_box(world.object_vertices(name))
            out[name] = (pose.position, ext)
    return out


def true_object_model(world, name: str):
    """(grasping ObjectModel, true Pose) of a scene object: its true geometry, mass and friction."""
    from robot_wm.grasping import ObjectModel

    info = world.objects[name]
    if info.shape is not None:
        model = ObjectModel(name, info.shape, tuple(info.size), mass=info.mass, friction=info.friction)
    else:
        model = ObjectModel(name, urdf=str(world.scene.urdf_paths[name]), scale=info.scale, mass=info.mass,
                            friction=info.friction)
    return model, world.object_pose(name)


# ---------------------------------------------------------------------------------------------- per scene
def _observe(scene):
    """(observation, truth dict) of a freshly settled World of `scene` (its own seed)."""
    from robot_wm.sim import World

    with World(scene) as world:
        obs = world.observe()
        bodies = {n: i.body for n, i in world.objects.items() if not i.fixed}
        truth = {"boxes": true_boxes(world), "on": _true_on(world), "bodies": bodies,
                 "visible": visible_objects(obs, bodies),
                 "models": {n: true_object_model(world, n) for n, i in world.objects.items() if not i.fixed}}
    return obs, truth


def visible_objects(obs, bodies: dict[str, int]) -> set[str]:
    """Names of the objects (`bodies`: name -> body id) that some camera of `obs` sees with at least
    MIN_MASK_PX pixels of its segmentation: what perception can be asked to count (an object hidden from
    every camera — a slab behind the box it leans on, seen from the other side — cannot be)."""
    segs = [np.asarray(f.segmentation).ravel() for f in obs.frames.values()]
    return {n for n, b in bodies.items() if max((int(np.count_nonzero(s == b)) for s in segs), default=0) >= MIN_MASK_PX}


def _estimates(obs):
    """(graph, movable visible ObjectEstimates) from the product's RGB-D estimator on `obs`."""
    from robot_wm.control.rgbd_estimator import RgbdEstimator

    est = RgbdEstimator(include_hidden=False)
    objs = [e for e in est.estimate(obs) if not e.fixed]
    return est.last_graph, objs


def _match(ests, boxes: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[int, str]:
    """Index of an estimate -> true name, Hungarian on centre distance gated at MATCH_GATE."""
    names = list(boxes)
    pairs = _match_centres([e.pose.position for e in ests], [boxes[n][0] for n in names], MATCH_GATE)
    return {i: names[j] for i, j in pairs}


def score_perception(obs, truth: dict[str, Any], graph, ests) -> dict[str, Any]:
    """Perception metrics of one scene (module docstring): count, overlap F, on relations, errors."""
    boxes = truth["boxes"]
    visible = truth["visible"]
    out: dict[str, Any] = {"n_true": len(boxes), "n_visible": len(visible), "n_pred": len(ests)}
    out["count_exact"] = len(ests) == len(visible)
    out["count_exact_all"] = len(ests) == len(boxes)
    fs = []
    for cam, frame in obs.frames.items():
        seg = frame.segmentation.ravel()
        true_masks = [m for m in (np.flatnonzero(seg == b) for b in truth["bodies"].values()) if len(m) >= MIN_MASK_PX]
        pred_masks = [np.unique(o.masks[cam]) for o in graph.objects
                      if cam in o.masks and not (o.fixed or o.kind != "object")]
        fs.append(overlap_prf(pred_masks, true_masks)[2])
    out["overlap_f"] = float(np.mean(fs))
    match = _match(ests, boxes)
    cerr, eerr = [], []
    for i, name in match.items():
        c, ext = boxes[name]
        cerr.append(float(np.linalg.norm(ests[i].pose.position - c)) * 1e3)
        eerr.append(float(np.mean(np.abs(np.sort(ests[i].extents) - np.sort(ext)))) * 1e3)
    out["centroid_err_mm"], out["extent_err_mm"] = cerr, eerr
    out["n_matched"] = len(match)
    id2name = {ests[i].id: n for i, n in match.items()} | {"table": "table"}
    pred_on = {(id2name.get(r.subject), id2name.get(r.object)) for r in graph.relations_of("on")}
    seen_on = {(a, b) for a, b in truth["on"] if a in visible and (b == "table" or b in visible)}
    out["on"] = (len(pred_on & seen_on), len(pred_on), len(seen_on))
    out["on_all"] = (len(pred_on & truth["on"]), len(pred_on), len(truth["on"]))
    return out


def verify_grasps(clean, noisy, truth: dict[str, Any], seed: int) -> list[tuple[bool, bool, bool]]:
    """(true holds, clean shadow passes, noisy shadow passes) per grasp: ``bench planning``'s grasps of the
    clean estimate of every true object perceived in both versions (at most MAX_GRASPS_PER_OBJECT each)."""
    from robot_wm.bench.planning import _variants
    from robot_wm.grasping import load_shake_config, robust_shake_test
    from robot_wm.planning import ShadowVerifier
    from robot_wm.planning.box_grasps import top_down_grasps

    cfg = load_shake_config()
    v_clean = ShadowVerifier(cfg, trials=VERIFY_TRIALS, seed=seed)
    v_noisy = ShadowVerifier(cfg, trials=VERIFY_TRIALS, seed=seed)
    by_clean = {n: clean[i] for i, n in _match(clean, truth["boxes"]).items()}
    by_noisy = {n: noisy[i] for i, n in _match(noisy, truth["boxes"]).items()}
    rows = []
    for k, name in enumerate(sorted(set(by_clean) & set(by_noisy))):
        model, pose = truth["models"][name]
        grasps = [g for base in top_down_grasps(by_clean[name]) for g in _variants(base)][:MAX_GRASPS_PER_OBJECT]
        for j, g in enumerate(grasps):
            holds = robust_shake_test(model, g, np.random.SeedSequence([seed, k, j]), pose, cfg,
                                      trials=VERIFY_TRIALS).success_rate >= v_clean.min_success
            rows.append((bool(holds), v_clean.verify(by_clean[name], g).passed, v_noisy.verify(by_noisy[name], g).passed))
    return rows


def perceive_scene(spec: SceneSpec, verify: bool = False) -> dict[str, Any]:
    """Perception metrics of scene `spec` (:func:`score_perception`) and, with `verify` (noisy scenes),
    the shadow verifier's rows (:func:`verify_grasps`) under ``"verify"``."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="robot_wm_gen_") as tmp:
        scene = build_scene(spec, Path(tmp))
        obs, truth = _observe(scene)
        graph, ests = _estimates(obs)
        out = score_perception(obs, truth, graph, ests)
        out["cameras"] = len(obs.frames)
        if verify and spec.noise != "none":
            obs_c, truth_c = _observe(build_scene(spec, Path(tmp), noise="none"))
            _, clean = _estimates(obs_c)
            out["verify"] = verify_grasps(clean, ests, truth, spec.seed)
    out["wall_s"] = time.perf_counter() - t0
    return out


def pick_decisions(n_objects: int) -> int:
    """Decision cap of a pick run (a short run): two per object and the look and "done" around them."""
    return 2 * n_objects + 2


def pick_scene(spec: SceneSpec, mode: str) -> dict[str, Any]:
    """Objects placed / objects of a short ``run_demo`` (planned controller, `mode` rgbd or oracle)."""
    from robot_wm.control.demo import run_demo

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="robot_wm_gen_") as tmp:
        scene = build_scene(spec, Path(tmp))
        report = run_demo(scene, mode, max_decisions=pick_decisions(len(scene.config.objects)))
    return {"objects": int(report["objects"]), "placed": int(report["placed"]),
            "finish_reason": report.get("finish_reason"), "wall_s": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------------- run
def _job(args: tuple[str, SceneSpec, Any]) -> tuple[str, int, Any]:
    task, spec, arg = args
    if task == "perceive":
        return task, spec.index, perceive_scene(spec, verify=bool(arg))
    return f"pick_{arg}", spec.index, pick_scene(spec, arg)


def run_jobs(jobs: list[tuple[str, SceneSpec, Any]], workers: int) -> dict[tuple[str, int], Any]:
    """Results of :func:`_job` by (task, scene index), on `workers` spawned processes (1: in this one)."""
    from tqdm import tqdm

    results: dict[tuple[str, int], Any] = {}
    bar = tqdm(total=len(jobs), desc="bench generalization", leave=False, disable=None)
    if workers > 1:
        import multiprocessing

        with single_threaded_workers(), multiprocessing.get_context("spawn").Pool(
                workers, initializer=worker_init, initargs=(os.getpid(),)) as pool:
            for task, index, r in pool.imap_unordered(_job, jobs):
                results[(task, index)] = r
                bar.update()
    else:
        for job in jobs:
            task, index, r = _job(job)
            results[(task, index)] = r
            bar.update()
    bar.close()
    return results


def run(scenes: list[Path] | None, seed: int, quick: bool, workers: int | None = None, n_scenes: int | None = None,
        verify_scenes: int | None = None, pick_scenes: int | None = None) -> dict[str, Any]:
    """The benchmark (module docstring) on `workers` processes (default: $ROBOT_WM_BENCH_WORKERS or 2):
    `n_scenes` scenes (default SCENES, SCENES_QUICK with `quick`), the verifier on the first
    `verify_scenes` noisy ones and pick-and-place on the first `pick_scenes`. The suite is generated; given
    `scenes` files are refused (the cells need the generator's cameras)."""
    if scenes:
        raise ConfigError("bench generalization", "--scenes", "the suite is generated (its cells need the generator's "
                          "cameras); scene files are not accepted")
    workers = int(os.environ.get("ROBOT_WM_BENCH_WORKERS", "2")) if workers is None else workers
    n = n_scenes if n_scenes is not None else (SCENES_QUICK if quick else SCENES)
    n_verify = verify_scenes if verify_scenes is not None else (VERIFY_SCENES_QUICK if quick else VERIFY_SCENES)
    n_pick = pick_scenes if pick_scenes is not None else (PICK_SCENES_QUICK if quick else PICK_SCENES)
    specs = [scene_spec(seed, i) for i in range(n)]
    verify_idx = {s.index for s in [s for s in specs if s.noise != "none"][:n_verify]}
    jobs: list[tuple[str, SceneSpec, Any]] = []
    for s in specs[:n_pick]:  # the longest jobs first, so the pool ends together
        jobs += [("pick", s, "rgbd"), ("pick", s, "oracle")]
    jobs += [("perceive", s, s.index in verify_idx) for s in specs]
    t0 = time.perf_counter()
    results = run_jobs(jobs, workers)
    wall = time.perf_counter() - t0
    out = summarise(specs, results)
    out |= {"quick": quick, "workers": workers, "wall_s": wall,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")}
    return out


# ---------------------------------------------------------------------------------------------- fields
def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _median(vals: Iterable[float]) -> float | None:
    vals = list(vals)
    return float(np.median(vals)) if vals else None


def perception_fields(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """Perception metrics over per-scene results `rs` (all of them: none, noise or both)."""
    tp, n_pred, n_true = (sum(r["on"][i] for r in rs) for i in range(3))
    tp_all, n_true_all = (sum(r["on_all"][i] for r in rs) for i in (0, 2))
    return {
        "scenes": len(rs),
        "object_count_exact_rate": _ratio(sum(r["count_exact"] for r in rs), len(rs)),
        "object_count_exact_rate_all": _ratio(sum(r["count_exact_all"] for r in rs), len(rs)),
        "hidden_objects": sum(r["n_true"] - r["n_visible"] for r in rs),
        "overlap_f": _ratio(sum(r["overlap_f"] for r in rs), len(rs)),
        "on_precision": _ratio(tp, n_pred) if n_pred else (1.0 if rs else None),
        "on_recall": _ratio(tp, n_true) if n_true else (1.0 if rs else None),
        "on_recall_all": _ratio(tp_all, n_true_all) if n_true_all else (1.0 if rs else None),
        "centroid_err_mm_median": _median(e for r in rs for e in r["centroid_err_mm"]),
        "extent_err_mm_median": _median(e for r in rs for e in r["extent_err_mm"]),
        "objects_matched_fraction": _ratio(sum(r["n_matched"] for r in rs), sum(r["n_true"] for r in rs)),
    }


def verifier_fields(rows: list[tuple[bool, bool, bool]]) -> dict[str, Any]:
    """Precision / recall of the clean and noisy shadows against the true shake test."""
    a = np.array(rows, bool).reshape(-1, 3)
    truth, clean, noisy = a[:, 0], a[:, 1], a[:, 2]
    return {
        "verifier_grasps": len(a), "verifier_true_holds": int(truth.sum()),
        "verifier_precision_clean": _ratio(int((truth & clean).sum()), int(clean.sum())),
        "verifier_recall_clean": _ratio(int((truth & clean).sum()), int(truth.sum())),
        "verifier_precision_noisy": _ratio(int((truth & noisy).sum()), int(noisy.sum())),
        "verifier_recall_noisy": _ratio(int((truth & noisy).sum()), int(truth.sum())),
    }


def pick_fields(rgbd: list[dict[str, Any]], oracle: list[dict[str, Any]]) -> dict[str, Any]:
    obj_r, obj_o = sum(r["objects"] for r in rgbd), sum(r["objects"] for r in oracle)
    s_r = _ratio(sum(r["placed"] for r in rgbd), obj_r)
    s_o = _ratio(sum(r["placed"] for r in oracle), obj_o)
    return {"pick_scenes": len(rgbd), "pick_success_rgbd": s_r, "pick_success_oracle": s_o,
            "pick_success_ratio": _ratio(s_r, s_o) if s_r is not None and s_o is not None else None}


def _group_fields(specs: list[SceneSpec], results: dict[tuple[str, int], Any], key) -> dict[str, Any]:
    groups: dict[str, list[SceneSpec]] = {}
    for s in specs:
        groups.setdefault(key(s), []).append(s)
    out = {}
    for g, ss in groups.items():
        entry = perception_fields([results[("perceive", s.index)] for s in ss])
        rows = [row for s in ss for row in results[("perceive", s.index)].get("verify", [])]
        if rows:
            entry |= verifier_fields(rows)
        picked = [s for s in ss if ("pick_rgbd", s.index) in results]
        if picked:
            entry |= pick_fields([results[("pick_rgbd", s.index)] for s in picked],
                                 [results[("pick_oracle", s.index)] for s in picked])
        out[g] = entry
    return out


def _badness(r: dict[str, Any]) -> float:
    """How badly perception did on a scene: count off-by, unmatched objects, low F, large errors."""
    return (abs(r["n_pred"] - r["n_true"]) + (r["n_true"] - r["n_matched"]) + 2 * (1 - r["overlap_f"])
            + max(r["extent_err_mm"] or [0.0]) / 10.0)


def summarise(specs: list[SceneSpec], results: dict[tuple[str, int], Any]) -> dict[str, Any]:
    """The flat fields of the issue and the nested breakdowns, from every job's result."""
    per = [results[("perceive", s.index)] for s in specs]
    allp = perception_fields(per)
    noisy = perception_fields([r for s, r in zip(specs, per, strict=True) if s.noise != "none"])
    clean = perception_fields([r for s, r in zip(specs, per, strict=True) if s.noise == "none"])
    rows = [row for r in per for row in r.get("verify", [])]
    picked = [s for s in specs if ("pick_rgbd", s.index) in results]
    pf = pick_fields([results[("pick_rgbd", s.index)] for s in picked], [results[("pick_oracle", s.index)] for s in picked])
    out: dict[str, Any] = {
        "scenes": len(specs),
        "object_count_exact_rate": allp["object_count_exact_rate"],
        "object_count_exact_rate_all": allp["object_count_exact_rate_all"],
        "hidden_objects": allp["hidden_objects"],
        "overlap_f": allp["overlap_f"],
        "on_precision": allp["on_precision"],
        "on_recall": allp["on_recall"],
        "on_recall_all": allp["on_recall_all"],
        "centroid_err_mm_median_noisy": noisy["centroid_err_mm_median"],
        "extent_err_mm_median_noisy": noisy["extent_err_mm_median"],
        "centroid_err_mm_median_clean": clean["centroid_err_mm_median"],
        "extent_err_mm_median_clean": clean["extent_err_mm_median"],
        **verifier_fields(rows),
        "pick_success_rgbd": pf["pick_success_rgbd"],
        "pick_success_oracle": pf["pick_success_oracle"],
    }
    by_family = _group_fields(specs, results, lambda s: s.family)
    by_noise = _group_fields(specs, results, lambda s: s.noise)
    ratios = [e["pick_success_ratio"] for e in (*by_family.values(), *by_noise.values())
              if e.get("pick_success_ratio") is not None]
    out["pick_success_ratio_min"] = min(ratios) if ratios else None
    out["pick_scenes"] = len(picked)
    out["verifier_scenes"] = sum(1 for r in per if "verify" in r)
    out["objects_matched_fraction"] = allp["objects_matched_fraction"]
    out["by_family"] = by_family
    out["by_noise"] = by_noise
    out["by_cell"] = _group_fields(specs, results, lambda s: s.cell)
    out["by_kind"] = _group_fields(specs, results, lambda s: s.kind)
    worst = sorted(zip(specs, per, strict=True), key=lambda sr: (-_badness(sr[1]), sr[0].index))[:WORST_LISTED]
    out["worst_scenes"] = [
        {"index": s.index, "seed": s.seed, "kind": s.kind, "cell": s.cell, "n_true": r["n_true"], "n_pred": r["n_pred"],
         "n_matched": r["n_matched"], "overlap_f": round(r["overlap_f"], 3),
         "extent_err_mm_max": round(max(r["extent_err_mm"] or [0.0]), 1)} for s, r in worst]
    out["pick_failures"] = {
        f"{s.index}:{s.kind}:{s.cell}": {"rgbd": f"{results[('pick_rgbd', s.index)]['placed']}/{results[('pick_rgbd', s.index)]['objects']}",
                                         "oracle": f"{results[('pick_oracle', s.index)]['placed']}/{results[('pick_oracle', s.index)]['objects']}"}
        for s in picked if results[("pick_rgbd", s.index)]["placed"] < results[("pick_oracle", s.index)]["placed"]}
    out["perceive_s_median"] = _median(r["wall_s"] for r in per)
    out["pick_s_median"] = _median(results[(t, s.index)]["wall_s"] for s in picked for t in ("pick_rgbd", "pick_oracle"))
    return out


__all__ = ["CELLS", "FAMILIES", "KINDS", "NOISES", "SceneSpec", "build_scene", "flush_pair_group", "layout",
           "perceive_scene", "pick_scene", "run", "scene_cameras", "scene_mapping_of", "scene_spec", "stack_group",
           "summarise", "true_boxes"]
