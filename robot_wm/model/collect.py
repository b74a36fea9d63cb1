"""Self-supervised interaction data, generated in PyBullet: random scenes; random pushes executed by the
Panda and top-down grasps (the grasping module's candidates, perturbed ones and box-based ones) labelled by
the grasping module's shake test; recorded as object-centric transitions (see :mod:`robot_wm.model.state`)
with each object's shape descriptor (:mod:`robot_wm.model.shape`), in the format of
:mod:`robot_wm.model.dataset`. :mod:`robot_wm.model.collect_jobs` runs episodes into a folder of shards.

This module is the one place the model layer reads the grasping layer (candidates, shake test), as the
data it learns from must carry those labels; grasping never imports model.

A grasp does not disturb the scene (the shake test runs in its own world): its `after` is `before` with
the target raised by the lift height (0.10 m) when it was stable — the state the model predicts on
success. The shake test's object has no neighbours and no table: labels are about the grasp on the
object, not about reaching it in clutter.

Every draw of episode e comes from ``numpy.random.default_rng([seed, e])``, so the data do not depend
on the number of workers, the backend, or on resuming.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config.object_sets import BROKEN_URDF_IDS, HELDOUT_URDF_IDS, TRAIN_URDF_IDS, random_urdf_path
from robot_wm.config.random_scene import primitive_footprint
from robot_wm.geometry import Pose, yaw_quaternion
from robot_wm.model.dataset import FORMAT_VERSION, NMAX, Transition, pack_episode
from robot_wm.model.network import PAD_THICKNESS  # the push standoff: TCP to the pads' front
from robot_wm.model.shape import SHAPE_DIM, descriptor_from_parts, descriptor_from_primitive
from robot_wm.model.state import (
    GRASP,
    LIFT,
    PUSH,
    grasp_action_from_tcp,
    grasp_action_to_tcp,
    object_state,
    yaw_of_quats,
)
from robot_wm.sim.push import PUSH_SPEED

if TYPE_CHECKING:
    from robot_wm.grasping import Grasp

PUSH_Z_MIN = 0.016  # m, lowest TCP height that clears the table
WORKSPACE = ((0.38, 0.68), (-0.22, 0.22))  # x, y ranges (m) for placing objects
MASS_RANGE = (0.05, 0.5)  # kg, log-uniform per object and episode
FRICTION_RANGE = (0.3, 1.0)  # lateral friction coefficient, uniform
TILT_P = 0.5  # share of pushes with a tilted pad face
TILT_RANGE = (0.15, 0.6)  # rad, |tilt| of those
TILT_GAP = 0.01  # m added to their start gap
TOP_DOWN_TILT = np.radians(30.0)  # grasp candidates approaching within this of straight down count as top-down


@dataclass(frozen=True)
class CollectConfig:
    """What one data set is made of. `object_set`: 'train' (primitives + random_urdfs 000-699) or
    'test' (held-out random_urdfs 700-999 only)."""

    seed: int = 0
    object_set: str = "train"
    pushes_per_episode: int = 10  # half tilted (sample_push): 10 vs 8 keeps ~4 flat pushes per episode
    grasps_per_episode: int = 40  # grasps are cheap next to pushes; 40 vs 20: validation AUC +0.003
    episodes_per_shard: int = 10
    version: int = FORMAT_VERSION
    # m/s, peak pusher speed: part of the physics the data record, so a folder collected at another
    # speed is refused on resume instead of mixed
    push_speed: float = PUSH_SPEED


# ---------------------------------------------------------------------------------------------- scenes
def sample_collection_scene(rng: np.random.Generator, object_set: str, n_objects: int | None = None) -> dict:
    """A contract scene dict for data collection: 1-NMAX objects (or `n_objects`) clustered in WORKSPACE,
    each a random_urdfs object of `object_set` ('train': config.object_sets.TRAIN_URDF_IDS, or with
    probability 0.35 a random primitive; 'test': HELDOUT_URDF_IDS only) with random yaw, mass (MASS_RANGE,
    log-uniform) and friction (FRICTION_RANGE)."""
    n = int(rng.integers(1, NMAX + 1)) if n_objects is None else n_objects
    cx, cy = rng.uniform(0.45, 0.6), rng.uniform(-0.12, 0.12)
    spread = rng.uniform(0.05, 0.12)
    objects = []
    placed: list[np.ndarray] = []
    for i in range(n):
        obj: dict = {"name": f"obj{i}"}
        use_urdf = object_set == "test" or rng.random() < 0.65
        if use_urdf:
            ids = HELDOUT_URDF_IDS if object_set == "test" else TRAIN_URDF_IDS
            k = int(rng.integers(ids.start, ids.stop))
            while k in BROKEN_URDF_IDS:
                k = int(rng.integers(ids.start, ids.stop))
            obj |= {"urdf": random_urdf_path(k), "scale": float(rng.uniform(0.5, 0.8))}
            radius, height = 0.04, 0.06
        else:
            shape = rng.choice(["box", "box", "cylinder", "sphere"], p=[0.45, 0.2, 0.3, 0.05])
            if shape == "box":
                size = [float(v) for v in rng.uniform([0.03, 0.03, 0.03], [0.08, 0.08, 0.08])]
            elif shape == "cylinder":
                size = [float(rng.uniform(0.015, 0.04)), float(rng.uniform(0.03, 0.1))]
            else:
                size = [float(rng.uniform(0.02, 0.035))]
            radius, height = primitive_footprint(str(shape), size)
            obj |= {"shape": str(shape), "size": size,
                    "color": [float(v) for v in rng.uniform(0.1, 0.9, 3)] + [1.0]}
        obj["mass"] = float(np.exp(rng.uniform(*np.log(MASS_RANGE))))
        obj["friction"] = float(rng.uniform(*FRICTION_RANGE))
        for _ in range(30):
            xy = np.array([cx, cy]) + rng.normal(0, spread, 2)
            xy = np.clip(xy, [WORKSPACE[0][0], WORKSPACE[1][0]], [WORKSPACE[0][1], WORKSPACE[1][1]])
            if all(np.linalg.norm(xy - p) > radius + 0.045 for p in placed):
                break
        placed.append(xy)
        yaw = float(rng.uniform(-np.pi, np.pi))
        obj["position"] = [float(xy[0]), float(xy[1]), float(height / 2 + 0.005)]
        obj["orientation"] = yaw_quaternion(yaw).tolist()
        objects.append(obj)
    return {"name": "collect", "cameras": [{"calibration": "front.yaml"}], "objects": objects}


def scene_with_states(scene: dict, states: np.ndarray) -> dict:
    """Copy of a scene dict with object i placed at the pose in states[i] (15,)."""
    out = json.loads(json.dumps(scene))
    for obj, s in zip(out["objects"], states, strict=False):
        obj["position"] = [float(v) for v in s[0:3]]
        obj["orientation"] = [float(v) for v in s[3:7]]
    return out


# ---------------------------------------------------------------------------------------------- recorder
_KINEMATICS: dict[tuple, object] = {}


def _kinematics(world):
    """One KinematicModel per robot (URDF, base) and process, shared by the episodes' arms: its IK and FK
    set the whole joint state before every query, so sharing changes no answer (and saves loading the
    Panda into a new physics client for every episode)."""
    from robot_wm.sim import KinematicModel

    urdf, base = str(world.scene.robot_urdf), tuple(world.scene.config.robot.base_position)
    if (urdf, base) not in _KINEMATICS:
        _KINEMATICS[(urdf, base)] = KinematicModel(urdf, np.asarray(base, float))
    return _KINEMATICS[(urdf, base)]


class SceneRecorder:
    """A World + Arm built from a scene dict, reading object-centric states (the sim-touching part)."""

    def __init__(self, scene: dict, seed: int, scene_dir: Path | None = None,
                 push_speed: float = PUSH_SPEED) -> None:
        from robot_wm.config import scene_from_dict
        from robot_wm.sim import Arm, World
        from robot_wm.sim import push as simpush

        self.sp = simpush
        self.scene = scene
        self.push_speed = push_speed
        self.world = World(scene_from_dict(scene, "<collect>", scene_dir), seed=seed)
        self.arm = Arm(self.world, kin=_kinematics(self.world))
        self.names = list(self.world.objects)
        self.extents = [simpush.local_extents(self.world, n) for n in self.names]
        self.shapes = [self.world.objects[n].shape or "mesh" for n in self.names]
        self.scene_dir = scene_dir
        self._models: dict[int, object] = {}
        self._candidates: dict[int, list[np.ndarray]] = {}
        self._shake_config = None
        self._labels: dict[tuple, str] = {}

    def close(self) -> None:
        self.arm.close()
        self.world.close()

    def states(self) -> np.ndarray:
        """(n, 15) current object states."""
        out = []
        for n, ext, shape in zip(self.names, self.extents, self.shapes, strict=True):
            p = self.world.object_pose(n)
            out.append(object_state(p.position, p.quaternion, ext, shape, self.sp.object_at_rest(self.world, n)))
        return np.stack(out)

    def aabb(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.world.object_aabb(self.names[i])

    def push(self, action: np.ndarray) -> tuple[bool, set[int]]:
        _, x, y, z, yaw, dist, tilt = (float(v) for v in action)
        res = self.sp.execute_push(self.world, self.arm, np.array([x, y, z]), yaw, dist, self.push_speed,
                                   tilt=tilt)
        return res.ok, {self.names.index(n) for n in res.touched}

    def object_model(self, i: int):
        """The grasping module's ObjectModel of object i (true geometry, mass and friction)."""
        if i not in self._models:
            from robot_wm.config.loader import resolve_asset
            from robot_wm.grasping import ObjectModel

            info = self.world.objects[self.names[i]]
            urdf = None
            if info.urdf is not None:
                found = resolve_asset(info.urdf, self.scene_dir)
                urdf = str(found.resolve()) if found is not None else info.urdf
            self._models[i] = ObjectModel(info.name, info.shape, tuple(info.size), urdf, info.scale,
                                          info.mass, info.friction)
        return self._models[i]

    def descriptor(self, i: int) -> np.ndarray:
        """Shape descriptor (SHAPE_DIM,) of object i from its true collision geometry."""
        return object_descriptor(self.object_model(i))

    def top_down_candidates(self, i: int, state: np.ndarray, rng: np.random.Generator, top_k: int = 10
                            ) -> list[np.ndarray]:
        """The grasping module's best antipodal candidates on object i whose approach is within 30 deg of
        straight down, snapped to top-down: grasp actions (7,) [1, x, y, z, yaw, width]. Cached per object
        (grasps do not move objects; call after the pushes)."""
        if i in self._candidates:
            return self._candidates[i]
        from robot_wm.grasping import surface_points
        from robot_wm.grasping.candidates import SamplerConfig, sample_grasps

        try:
            pts, nrm = surface_points(self.object_model(i), 1024, rng)
        except ValueError:  # a degenerate mesh (ConfigError is a ValueError): no candidates
            self._candidates[i] = []
            return []
        rot = Rotation.from_quat(state[3:7])
        grasps = sample_grasps(rot.apply(pts) + state[0:3], rng, rot.apply(nrm), None,
                               SamplerConfig(num_contacts=120, max_approach_tilt=TOP_DOWN_TILT), None)
        out = []
        for g in grasps:
            if g.approach[2] > -np.cos(TOP_DOWN_TILT):  # (the sampler's own filter, re-checked on the quaternion)
                continue
            out.append(action_from_grasp(g))
            if len(out) >= top_k:
                break
        self._candidates[i] = out
        return out

    def shake(self, action: np.ndarray, target: int, state: np.ndarray) -> str:
        """The shake test's label of a top-down grasp action on object i at its current pose. The test is
        deterministic, so a grasp asked again (the same candidate drawn twice: 12 % of an episode's grasps)
        reuses its label instead of re-running the test."""
        from robot_wm.grasping import load_shake_config, shake_test

        key = (target, np.asarray(action, np.float32).tobytes(), np.asarray(state, np.float32).tobytes())
        if key in self._labels:
            return self._labels[key]
        if self._shake_config is None:
            self._shake_config = load_shake_config()  # planners/shake_test.yaml, read once per scene
        self._labels[key] = shake_test(self.object_model(target), grasp_from_action(action),
                                       Pose(state[0:3], state[3:7]), self._shake_config).label
        return self._labels[key]


# ---------------------------------------------------------------------------------------------- grasps, shapes
def grasp_from_action(action: np.ndarray) -> Grasp:
    """The grasping module's ``Grasp`` (TCP pose, width) of a grasp action row (7,) (float32, or float64
    to keep e.g. jittered values exact); see :func:`robot_wm.model.state.grasp_action_to_tcp`."""
    from robot_wm.grasping import Grasp

    position, quaternion, width = grasp_action_to_tcp(action)
    return Grasp(Pose(position, quaternion), width)


def action_from_grasp(grasp: Grasp) -> np.ndarray:
    """The grasp action (7,) float32 of a grasping ``Grasp``, its TCP snapped to top-down; see
    :func:`robot_wm.model.state.grasp_action_from_tcp`."""
    return grasp_action_from_tcp(grasp.pose.position, grasp.pose.quaternion, grasp.width)


def object_descriptor(obj) -> np.ndarray:
    """Shape descriptor (SHAPE_DIM,) of a grasping ObjectModel from its collision geometry as PyBullet
    collides it (primitives exactly; meshes as the union of their convex parts; a hull as itself)."""
    if obj.shape in ("box", "cylinder", "sphere"):
        return descriptor_from_primitive(obj.shape, obj.size)
    from robot_wm.grasping.objects import collision_parts

    return descriptor_from_parts(collision_parts(obj))


def object_geometry(obj: dict, scene_dir: Path | None = None) -> dict:
    """The geometry keyword arguments of a grasping ObjectModel for a recorded scene object: ``urdf``
    (resolved: scene folder, then pybullet_data) and ``scale``, or ``shape`` and ``size``."""
    if "urdf" in obj:
        from robot_wm.config.loader import resolve_asset

        found = resolve_asset(obj["urdf"], scene_dir)
        return {"urdf": str(found.resolve()) if found else obj["urdf"], "scale": float(obj.get("scale", 1.0))}
    return {"shape": obj["shape"], "size": tuple(obj["size"])}


def scene_descriptors(scene: dict, scene_dir: Path | None = None) -> np.ndarray:
    """Descriptors (NMAX, SHAPE_DIM) of a recorded scene's objects (zeros in the empty slots)."""
    from robot_wm.grasping import ObjectModel

    out = np.zeros((NMAX, SHAPE_DIM), np.float32)
    for i, o in enumerate(scene["objects"]):
        out[i] = object_descriptor(ObjectModel(o.get("name", "obj"), **object_geometry(o, scene_dir)))
    return out


# ---------------------------------------------------------------------------------------------- actions
def sample_push(rng: np.random.Generator, rec: SceneRecorder, states: np.ndarray) -> tuple[np.ndarray, int]:
    """A push action (7,) at a random object (sometimes towards a neighbour) and its target slot. Half of
    the pushes turn the pad face by a tilt of 0.15-0.6 rad either way (:data:`TILT_RANGE`), started
    :data:`TILT_GAP` further back (the leading corner reaches further forward)."""
    n = len(states)
    i = int(rng.integers(n))
    lo, hi = rec.aabb(i)
    c = (lo + hi) / 2
    half = (hi - lo) / 2
    if n > 1 and rng.random() < 0.4:
        j = int(rng.choice([k for k in range(n) if k != i]))
        d = states[j, :2] - c[:2]
        yaw = float(np.arctan2(d[1], d[0]) + rng.normal(0, 0.25))
    else:
        yaw = float(rng.uniform(-np.pi, np.pi))
    u = np.array([np.cos(yaw), np.sin(yaw)])
    perp = np.array([-u[1], u[0]])
    reach = min(half[0] / max(abs(u[0]), 1e-6), half[1] / max(abs(u[1]), 1e-6))
    side = min(half[0] / max(abs(perp[0]), 1e-6), half[1] / max(abs(perp[1]), 1e-6))
    tilt = float(rng.uniform(*TILT_RANGE) * rng.choice([-1.0, 1.0])) if rng.random() < TILT_P else 0.0
    gap = rng.uniform(0.005, 0.03) + (TILT_GAP if tilt else 0.0)
    start = c[:2] - u * (reach + PAD_THICKNESS + gap) + perp * rng.uniform(-0.8, 0.8) * side
    z = float(np.clip(0.5 * hi[2], PUSH_Z_MIN, 0.05))
    dist = float(gap + rng.uniform(0.02, 0.15))
    return np.array([PUSH, start[0], start[1], z, yaw, dist, tilt], np.float32), i


GRASP_MODE_P = (0.45, 0.30, 0.25)  # P(mode) for robot_wm.model.dataset.GRASP_MODES
TCP_Z_MIN = 0.012  # m: fingertips (7.4 mm below the TCP) above the table
MIN_WIDTH, MAX_WIDTH = 0.005, 0.07  # m, grasp widths (the fingers open 1 cm more, at most 8 cm)


def sample_grasp(rng: np.random.Generator, rec: SceneRecorder, states: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A top-down grasp action (7,) [1, x, y, z, yaw, width] at a random object, its target slot and mode:
    one of the grasping module's candidates (snapped to top-down), a perturbed one (pose sigma 6 mm /
    0.2 rad, width x 0.9-1.4), or a box-based guess (across the narrow side mostly, any width)."""
    i = int(rng.integers(len(states)))
    mode = int(rng.choice(3, p=GRASP_MODE_P))
    cands = rec.top_down_candidates(i, states[i], rng) if mode < 2 else []
    if cands:
        a = cands[int(rng.integers(len(cands)))].copy()
        if mode == 1:
            a[1:4] += rng.normal(0.0, 0.006, 3)
            a[4] += rng.normal(0.0, 0.2)
            a[5] *= rng.uniform(0.9, 1.4)
    else:
        mode = 2
        lo, hi = rec.aabb(i)
        c = (lo + hi) / 2
        ext = states[i, 7:10]
        if rng.random() < 0.65:
            yaw = float(yaw_of_quats(states[i, 3:7]) + (0.0 if ext[0] < ext[1] else np.pi / 2) + rng.normal(0, 0.2))
        else:
            yaw = float(rng.uniform(-np.pi, np.pi))
        xy = c[:2] + rng.normal(0, 0.012, 2)
        z = hi[2] - rng.uniform(0.01, 0.04)
        a = np.array([GRASP, xy[0], xy[1], z, yaw, rng.uniform(0.02, MAX_WIDTH), 0.0], np.float32)
    a[3] = max(a[3], TCP_Z_MIN)
    a[4] = np.arctan2(np.sin(a[4]), np.cos(a[4]))
    a[5] = np.clip(a[5], MIN_WIDTH, MAX_WIDTH)
    return a.astype(np.float32), i, mode


# ---------------------------------------------------------------------------------------------- episodes
def run_episode(cfg: CollectConfig, episode: int, tries: int = 8, scene: dict | None = None,
                scene_dir: Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Run one episode (pushes, then grasps; a push is resampled up to `tries` times until the arm can
    execute it, else skipped) and return its arrays (:func:`robot_wm.model.dataset.pack_episode`) and its
    scene dict (with the mass and friction the simulator used). `scene`: a given contract scene dict (at
    most NMAX objects) instead of a random one (:func:`sample_collection_scene`)."""
    from robot_wm.grasping import LABELS

    rng = np.random.default_rng([cfg.seed, episode])
    if scene is None:
        scene = sample_collection_scene(rng, cfg.object_set)
    else:
        scene = json.loads(json.dumps(scene))
        if not 1 <= len(scene.get("objects", [])) <= NMAX:
            raise ValueError(f"scene {scene.get('name')!r}: needs 1-{NMAX} objects")
    rec = SceneRecorder(scene, seed=int(rng.integers(2**31)), scene_dir=scene_dir, push_speed=cfg.push_speed)
    n = len(rec.names)
    for obj, name in zip(scene["objects"], rec.names, strict=True):  # record what the simulator uses
        info = rec.world.objects[name]
        obj["mass"], obj["friction"] = float(info.mass), float(info.friction)
    mass = np.array([o["mass"] for o in scene["objects"]], np.float32)
    friction = np.array([o["friction"] for o in scene["objects"]], np.float32)
    rows: list[Transition] = []
    kinds = [PUSH] * cfg.pushes_per_episode + [GRASP] * cfg.grasps_per_episode
    try:
        for step, kind in enumerate(kinds):
            before = rec.states()
            if kind == GRASP:
                action, target, mode = sample_grasp(rng, rec, before)
                label = rec.shake(action, target, before[target])
                after = before.copy()
                after[target, 2] += LIFT if label == "stable" else 0.0
                rows.append(Transition(before, after, action, target, step, grasp_class=LABELS.index(label),
                                       grasp_ok=int(label == "stable"), grasp_mode=mode))
                continue
            for _ in range(tries):
                action, target = sample_push(rng, rec, before)
                ok, touched = rec.push(action)
                if ok:
                    break
            else:
                continue
            rows.append(Transition(before, rec.states(), action, target, step, touched=touched))
        descriptors = [rec.descriptor(i) for i in range(n)]
    finally:
        rec.close()
    return pack_episode(episode, rows, mass, friction, descriptors), scene


__all__ = ["CollectConfig", "SceneRecorder", "action_from_grasp", "grasp_from_action", "object_geometry", "run_episode",
           "sample_collection_scene", "sample_grasp", "sample_push", "scene_descriptors", "scene_with_states"]
