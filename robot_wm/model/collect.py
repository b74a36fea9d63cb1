"""Self-supervised interaction data: random scenes; random pushes executed by the Panda in PyBullet and
top-down grasps (the grasping module's candidates, perturbed ones and box-based ones) labelled by the
grasping module's shake test; recorded as object-centric transitions (see :mod:`robot_wm.model.state`)
with each object's shape descriptor (:mod:`robot_wm.model.shape`).

This module is the one place the model layer reads the grasping layer (candidates, shake test), as the
data it learns from must carry those labels; grasping never imports model.

Layout on disk (``DIR``)::

    manifest.json             # config (seed, object set, actions per episode), shards done, counts
    shard_00000.npz ...       # episodes [k*E, (k+1)*E); arrays below, NumPy .npz without pickles

Arrays in a shard (T transitions, NMAX = 6 object slots):

    before, after  (T, NMAX, 15) float32   object states before / after the action (after settling)
    mask           (T, NMAX)     bool      real object slots
    action         (T, 6)        float32   [kind, x, y, z, yaw, distance]
    target         (T,)          int16     slot of the object the action was aimed at
    touched        (T, NMAX)     bool      the arm touched this object during a push
    grasp_ok       (T,)          int8      grasps: 1 shake test `stable`, 0 any other label; pushes: -1
    grasp_class    (T,)          int8      index into robot_wm.grasping.LABELS; pushes: -1
    grasp_mode     (T,)          int8      0 candidate, 1 perturbed candidate, 2 box-based; pushes: -1
    mass, friction (T, NMAX)     float32   per-episode randomised physical parameters (kg, coefficient)
    episode, step  (T,)          int32     episode index and action index within it
    scenes         (E,)          str       the scene of each episode as JSON (contract scene dict)
    scene_episode  (E,)          int32     episode index of each entry of `scenes`
    ep_shape_box   (E, NMAX, 6)  float32   shape descriptors (robot_wm.model.shape), grid box part ...
    ep_shape_occ   (E, NMAX, G^3) uint8    ... occupancy x 255 ...
    ep_shape_parts (E, NMAX, PARTS_DIM) float32  ... and convex parts, per episode and object slot

Shards written before the descriptors had convex parts (no ``ep_shape_parts``; their grid is the overall
convex hull) still load: :func:`load_dataset` recomputes their descriptors from the recorded scenes.

A grasp does not disturb the scene (the shake test runs in its own world): its `after` is `before` with
the target raised by the lift height (0.10 m) when it was stable — the state the model predicts on
success. The shake test's object has no neighbours and no table: labels are about the grasp on the
object, not about reaching it in clutter.

Every draw of episode e comes from ``numpy.random.default_rng([seed, e])``, so the data do not depend
on the number of workers, the backend, or on resuming.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config.object_sets import BROKEN_URDF_IDS
from robot_wm.config.processes import single_threaded_workers
from robot_wm.geometry import yaw_quaternion
from robot_wm.model.shape import (
    GRID,
    PARTS_DIM,
    descriptor_from_parts,
    descriptor_from_primitive,
    pack,
    unpack,
)
from robot_wm.model.state import GRASP, LIFT, PUSH, SHAPES, STATE_DIM, object_state, yaw_of_quats
from robot_wm.sim.push import PUSH_SPEED

log = logging.getLogger(__name__)

NMAX = 6
FORMAT_VERSION = 2
PAD_THICKNESS = 0.012  # m, from the TCP to the front of the closed finger pads (push standoff)
PUSH_Z_MIN = 0.016  # m, lowest TCP height that clears the table
TRAIN_URDFS = range(0, 700)
TEST_URDFS = range(700, 1000)
WORKSPACE = ((0.38, 0.68), (-0.22, 0.22))  # x, y ranges (m) for placing objects
MASS_RANGE = (0.05, 0.5)  # kg, log-uniform per object and episode
FRICTION_RANGE = (0.3, 1.0)  # lateral friction coefficient, uniform
TOP_DOWN_TILT = np.radians(30.0)  # grasp candidates approaching within this of straight down count as top-down


@dataclass(frozen=True)
class CollectConfig:
    """What one data set is made of. `object_set`: 'train' (primitives + random_urdfs 000-699) or
    'test' (held-out random_urdfs 700-999 only)."""

    seed: int = 0
    object_set: str = "train"
    pushes_per_episode: int = 8
    grasps_per_episode: int = 40  # grasps are cheap next to pushes; 40 vs 20: validation AUC +0.003
    episodes_per_shard: int = 10
    version: int = FORMAT_VERSION
    # m/s, peak pusher speed: part of the physics the data record, so a folder collected at another
    # speed is refused on resume instead of mixed
    push_speed: float = PUSH_SPEED


# ---------------------------------------------------------------------------------------------- scenes
def sample_scene(rng: np.random.Generator, object_set: str, n_objects: int | None = None) -> dict:
    """A contract scene dict with 1-6 objects clustered in the workspace, random mass and friction."""
    n = int(rng.integers(1, NMAX + 1)) if n_objects is None else n_objects
    cx, cy = rng.uniform(0.45, 0.6), rng.uniform(-0.12, 0.12)
    spread = rng.uniform(0.05, 0.12)
    objects = []
    placed: list[np.ndarray] = []
    for i in range(n):
        obj: dict = {"name": f"obj{i}"}
        use_urdf = object_set == "test" or rng.random() < 0.65
        if use_urdf:
            ids = TEST_URDFS if object_set == "test" else TRAIN_URDFS
            k = int(rng.integers(ids.start, ids.stop))
            while k in BROKEN_URDF_IDS:
                k = int(rng.integers(ids.start, ids.stop))
            obj |= {"urdf": f"random_urdfs/{k:03d}/{k:03d}.urdf", "scale": float(rng.uniform(0.5, 0.8))}
            radius, height = 0.04, 0.06
        else:
            shape = rng.choice(["box", "box", "cylinder", "sphere"], p=[0.45, 0.2, 0.3, 0.05])
            if shape == "box":
                size = [float(v) for v in rng.uniform([0.03, 0.03, 0.03], [0.08, 0.08, 0.08])]
                radius, height = max(size[:2]) / 2, size[2]
            elif shape == "cylinder":
                size = [float(rng.uniform(0.015, 0.04)), float(rng.uniform(0.03, 0.1))]
                radius, height = size
            else:
                size = [float(rng.uniform(0.02, 0.035))]
                radius, height = size[0], 2 * size[0]
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


# ---------------------------------------------------------------------------------------------- episodes
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
        _, x, y, z, yaw, dist = (float(v) for v in action)
        res = self.sp.execute_push(self.world, self.arm, np.array([x, y, z]), yaw, dist, self.push_speed)
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
        straight down, snapped to top-down: grasp actions (6,) [1, x, y, z, yaw, width]. Cached per object
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
            m = g.pose.rotation.as_matrix()
            if m[2, 2] > -np.cos(TOP_DOWN_TILT):  # (the sampler's own filter, re-checked on the quaternion)
                continue
            y = m[:, 1]
            out.append(np.array([GRASP, *g.pose.position, np.arctan2(y[1], y[0]), g.width], np.float32))
            if len(out) >= top_k:
                break
        self._candidates[i] = out
        return out

    def shake(self, action: np.ndarray, target: int, state: np.ndarray) -> str:
        """The shake test's label of a top-down grasp action on object i at its current pose. The test is
        deterministic, so a grasp asked again (the same candidate drawn twice: 12 % of an episode's grasps)
        reuses its label instead of re-running the test."""
        from robot_wm.geometry import Pose
        from robot_wm.grasping import Grasp, load_shake_config, shake_test

        key = (target, np.asarray(action, np.float32).tobytes(), np.asarray(state, np.float32).tobytes())
        if key in self._labels:
            return self._labels[key]
        if self._shake_config is None:
            self._shake_config = load_shake_config()  # planners/shake_test.yaml, read once per scene
        _, x, y, z, yaw, width = (float(v) for v in action)
        tcp = self.sp.top_down(np.array([x, y, z]), yaw + np.pi / 2)  # closing axis (TCP y) at `yaw`
        self._labels[key] = shake_test(self.object_model(target), Grasp(tcp, width), Pose(state[0:3], state[3:7]),
                                       self._shake_config).label
        return self._labels[key]


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
    from robot_wm.model.shape import SHAPE_DIM

    out = np.zeros((NMAX, SHAPE_DIM), np.float32)
    for i, o in enumerate(scene["objects"]):
        out[i] = object_descriptor(ObjectModel(o.get("name", "obj"), **object_geometry(o, scene_dir)))
    return out


def sample_push(rng: np.random.Generator, rec: SceneRecorder, states: np.ndarray) -> tuple[np.ndarray, int]:
    """A push action (6,) at a random object (sometimes towards a neighbour) and its target slot."""
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
    gap = rng.uniform(0.005, 0.03)
    start = c[:2] - u * (reach + PAD_THICKNESS + gap) + perp * rng.uniform(-0.8, 0.8) * side
    z = float(np.clip(0.5 * hi[2], PUSH_Z_MIN, 0.05))
    dist = float(gap + rng.uniform(0.02, 0.15))
    return np.array([PUSH, start[0], start[1], z, yaw, dist], np.float32), i


GRASP_MODES = ("candidate", "perturbed", "box")
GRASP_MODE_P = (0.45, 0.30, 0.25)
TCP_Z_MIN = 0.012  # m: fingertips (7.4 mm below the TCP) above the table
MIN_WIDTH, MAX_WIDTH = 0.005, 0.07  # m, grasp widths (the fingers open 1 cm more, at most 8 cm)


def sample_grasp(rng: np.random.Generator, rec: SceneRecorder, states: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A top-down grasp action (6,) [1, x, y, z, yaw, width] at a random object, its target slot and mode:
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
        a = np.array([GRASP, xy[0], xy[1], z, yaw, rng.uniform(0.02, MAX_WIDTH)], np.float32)
    a[3] = max(a[3], TCP_Z_MIN)
    a[4] = np.arctan2(np.sin(a[4]), np.cos(a[4]))
    a[5] = np.clip(a[5], MIN_WIDTH, MAX_WIDTH)
    return a.astype(np.float32), i, mode




def run_episode(cfg: CollectConfig, episode: int, tries: int = 8, scene: dict | None = None,
                scene_dir: Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Run one episode (pushes, then grasps) and return its transitions (see module doc) and scene.
    `scene`: a given contract scene dict (at most NMAX objects) instead of a random one."""
    from robot_wm.grasping import LABELS

    rng = np.random.default_rng([cfg.seed, episode])
    if scene is None:
        scene = sample_scene(rng, cfg.object_set)
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
    rows: list[dict] = []
    kinds = [PUSH] * cfg.pushes_per_episode + [GRASP] * cfg.grasps_per_episode
    try:
        for step, kind in enumerate(kinds):
            before = rec.states()
            if kind == GRASP:
                action, target, mode = sample_grasp(rng, rec, before)
                label = rec.shake(action, target, before[target])
                after = before.copy()
                after[target, 2] += LIFT if label == "stable" else 0.0
                rows.append(dict(before=before, after=after, action=action, target=target, touched=set(),
                                 label=label, mode=mode, step=step))
                continue
            for _ in range(tries):
                action, target = sample_push(rng, rec, before)
                ok, touched = rec.push(action)
                if ok:
                    break
            else:
                continue
            rows.append(dict(before=before, after=rec.states(), action=action, target=target, touched=touched,
                             label=None, mode=-1, step=step))
        descriptors = [rec.descriptor(i) for i in range(n)]
    finally:
        rec.close()
    T = len(rows)
    out = {
        "before": np.zeros((T, NMAX, STATE_DIM), np.float32), "after": np.zeros((T, NMAX, STATE_DIM), np.float32),
        "mask": np.zeros((T, NMAX), bool), "action": np.zeros((T, 6), np.float32),
        "target": np.zeros(T, np.int16), "touched": np.zeros((T, NMAX), bool),
        "grasp_ok": np.full(T, -1, np.int8), "grasp_class": np.full(T, -1, np.int8),
        "grasp_mode": np.full(T, -1, np.int8),
        "mass": np.zeros((T, NMAX), np.float32), "friction": np.zeros((T, NMAX), np.float32),
        "episode": np.full(T, episode, np.int32), "step": np.zeros(T, np.int32),
    }
    out["before"][..., 6] = out["after"][..., 6] = 1.0
    for t, r in enumerate(rows):
        out["before"][t, :n], out["after"][t, :n] = r["before"], r["after"]
        out["mask"][t, :n] = True
        out["action"][t], out["target"][t], out["step"][t] = r["action"], r["target"], r["step"]
        out["touched"][t, list(r["touched"])] = True
        out["mass"][t, :n], out["friction"][t, :n] = mass, friction
        if r["label"] is not None:
            out["grasp_class"][t] = LABELS.index(r["label"])
            out["grasp_ok"][t] = int(r["label"] == "stable")
            out["grasp_mode"][t] = r["mode"]
    box, occ, parts = pack(np.stack(descriptors))
    out["ep_shape_box"] = np.zeros((1, NMAX, 6), np.float32)
    out["ep_shape_occ"] = np.zeros((1, NMAX, GRID**3), np.uint8)
    out["ep_shape_parts"] = np.zeros((1, NMAX, PARTS_DIM), np.float32)
    out["ep_shape_box"][0, :n], out["ep_shape_occ"][0, :n], out["ep_shape_parts"][0, :n] = box, occ, parts
    return out, scene


def run_shard(cfg: CollectConfig, shard: int, n_episodes: int) -> dict[str, np.ndarray]:
    """Episodes [shard*E, min((shard+1)*E, n_episodes)) concatenated into one shard's arrays."""
    lo = shard * cfg.episodes_per_shard
    hi = min(lo + cfg.episodes_per_shard, n_episodes)
    parts, scenes = [], []
    for e in range(lo, hi):
        arrays, scene = run_episode(cfg, e)
        parts.append(arrays)
        scenes.append(json.dumps(scene))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out["scenes"] = np.array(scenes, dtype=str)
    out["scene_episode"] = np.arange(lo, hi, dtype=np.int32)
    return out


# ---------------------------------------------------------------------------------------------- storage
def shard_path(out: Path, shard: int) -> Path:
    return out / f"shard_{shard:05d}.npz"


def write_shard(out: Path, shard: int, arrays: dict[str, np.ndarray]) -> None:
    """Atomic write of one shard."""
    tmp = out / f".shard_{shard:05d}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, shard_path(out, shard))


def read_manifest(out: Path) -> dict | None:
    p = out / "manifest.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not a valid manifest ({exc.msg})") from None


def write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")


def _shard_job(args: tuple[dict, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    cfg, shard, n = args
    return shard, run_shard(CollectConfig(**cfg), shard, n)


def collect(out: Path, episodes: int, cfg: CollectConfig, workers: int = 1, backend: str = "local",
            progress: Callable[[int], None] | None = None) -> dict:
    """Collect `episodes` episodes into `out` (resuming whatever shards are already there).

    Raises ValueError when `out` holds data collected with a different config.
    Returns the manifest.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out)
    if manifest is not None and manifest["config"] != asdict(cfg):
        raise ValueError(f"{out}: holds data collected with a different config ({manifest['config']}); "
                         "use another --out or the same options")
    if manifest is None:
        manifest = {"config": asdict(cfg), "episodes": episodes, "shards": {}}
    if manifest.get("episodes", episodes) != episodes:
        # more (or fewer) episodes: shards that no longer end at a shard boundary are redone
        e = cfg.episodes_per_shard
        keep = min(manifest["episodes"], episodes) // e
        manifest["shards"] = {k: v for k, v in manifest["shards"].items() if int(k) < keep}
    manifest["episodes"] = episodes
    n_shards = -(-episodes // cfg.episodes_per_shard)
    todo = [s for s in range(n_shards) if str(s) not in manifest["shards"] or not shard_path(out, s).is_file()]
    done_eps = sum(v["episodes"] for k, v in manifest["shards"].items() if int(k) < n_shards)
    if progress:
        progress(done_eps)
    t0 = time.time()
    jobs = [(asdict(cfg), s, episodes) for s in todo]
    for shard, arrays in _run_jobs(jobs, workers, backend):
        write_shard(out, shard, arrays)
        n_ep = len(arrays["scene_episode"])
        manifest["shards"][str(shard)] = {"file": shard_path(out, shard).name, "episodes": n_ep,
                                          "transitions": len(arrays["action"])}
        write_manifest(out, manifest)
        if progress:
            progress(n_ep)
    manifest["shards"] = {k: v for k, v in manifest["shards"].items() if int(k) < n_shards}
    manifest["transitions"] = sum(v["transitions"] for v in manifest["shards"].values())
    manifest["wall_s_last_run"] = round(time.time() - t0, 1)
    write_manifest(out, manifest)
    return manifest


def _run_jobs(jobs: list, workers: int, backend: str) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
    if backend == "ray":
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        try:
            remote = ray.remote(_shard_job)
            pending = [remote.remote(j) for j in jobs]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            ray.shutdown()
        return
    if workers <= 1:
        for j in jobs:
            yield _shard_job(j)
        return
    ctx = multiprocessing.get_context("spawn")
    with single_threaded_workers(), ctx.Pool(workers) as pool:
        yield from pool.imap_unordered(_shard_job, jobs)


def load_dataset(paths: Path | Iterable[Path]) -> dict[str, np.ndarray]:
    """Concatenate the shards of one or more collected folders (manifest order). No pickles are loaded.

    Per-transition arrays as in the module doc, plus the per-episode ``ep_shape_box``, ``ep_shape_occ``
    and ``ep_index`` (E,) (their episode numbers). Episodes of the second and later folders are renumbered
    after the previous folders' so that they stay distinct."""
    dirs = [paths] if isinstance(paths, Path | str) else list(paths)
    parts = []
    offset = 0
    for d in map(Path, dirs):
        manifest = read_manifest(d)
        if manifest is None:
            raise ValueError(f"{d}: no manifest.json (not a collected data folder)")
        top = offset
        for k in sorted(manifest["shards"], key=int):
            f = d / manifest["shards"][k]["file"]
            try:
                with np.load(f, allow_pickle=False) as z:
                    part = {key: z[key] for key in z.files}
            except (OSError, ValueError) as exc:
                raise ValueError(f"{f}: unreadable shard ({exc})") from None
            scenes = part.pop("scenes", np.array([], dtype=str))
            if "ep_shape_occ" not in part:
                raise ValueError(f"{f}: shard of an older data format (recollect with this version)")
            if "ep_shape_parts" not in part:  # written before descriptors had convex parts: recompute them
                part["ep_shape_box"], part["ep_shape_occ"], part["ep_shape_parts"] = pack(
                    np.stack([scene_descriptors(json.loads(str(sc))) for sc in scenes]))
            part["ep_index"] = part.pop("scene_episode") + offset
            part["episode"] = part["episode"] + offset
            top = max(top, int(part["ep_index"].max(initial=-1)) + 1)
            parts.append(part)
        offset = top
    if not parts:
        raise ValueError(f"{dirs[0]}: no shards collected yet")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def episode_arrays(data: dict[str, np.ndarray]) -> set[str]:
    """Names of the per-episode arrays of a data set (the others have one row per transition)."""
    return {k for k in data if k.startswith("ep_")}


def _episode_rows(data: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Row (R,) of the per-episode arrays for each transition of `rows` (R,)."""
    pos = {int(e): i for i, e in enumerate(data["ep_index"])}
    return np.array([pos[int(e)] for e in data["episode"][rows]], dtype=int)


def target_descriptors(data: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Shape descriptors (R, SHAPE_DIM) float32 of the aimed-at object of transitions `rows` (R,)."""
    ep, slot = _episode_rows(data, rows), data["target"][rows].astype(int)
    return unpack(data["ep_shape_box"][ep, slot], data["ep_shape_occ"][ep, slot], data["ep_shape_parts"][ep, slot])


def transition_descriptors(data: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Shape descriptors (R, NMAX, SHAPE_DIM) float32 of every object slot of transitions `rows` (R,)."""
    ep = _episode_rows(data, rows)
    return unpack(data["ep_shape_box"][ep], data["ep_shape_occ"][ep], data["ep_shape_parts"][ep])


OFF_TABLE_Z = -0.05  # m: an object below this has fallen off the table (there is no floor)


def clean(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Objects that fell off the table before a transition are masked out (removed from the scene);
    transitions in which a remaining object falls off the table are dropped."""
    mask = data["mask"] & (data["before"][..., 2] > OFF_TABLE_Z)
    keep = ~np.any(mask & (data["after"][..., 2] <= OFF_TABLE_Z), axis=1)
    keep &= mask[np.arange(len(mask)), data["target"].astype(int)]
    per_episode = episode_arrays(data)
    out = {k: v if k in per_episode else v[keep] for k, v in data.items()}
    out["mask"] = mask[keep]
    return out


def unseen_object_episodes(path: Path, modulus: int = 10) -> set[int]:
    """Episodes of a collected folder that contain a random_urdfs object whose id is a multiple of
    `modulus`. Validating on exactly these (and training on the rest) means the validation objects were
    never seen in training, like the benchmark's held-out objects."""
    out = set()
    for e, scene in load_scenes(path).items():
        for obj in scene.get("objects", []):
            u = obj.get("urdf") or ""
            if u.startswith("random_urdfs/") and int(u.split("/")[1]) % modulus == 0:
                out.add(e)
    return out


def load_scenes(path: Path) -> dict[int, dict]:
    """Episode index -> scene dict, from a collected folder."""
    manifest = read_manifest(path)
    out: dict[int, dict] = {}
    for v in (manifest or {}).get("shards", {}).values():
        with np.load(path / v["file"], allow_pickle=False) as z:
            for e, s in zip(z["scene_episode"], z["scenes"], strict=True):
                out[int(e)] = json.loads(str(s))
    return out


__all__ = ["NMAX", "SHAPES", "CollectConfig", "collect", "clean", "episode_arrays", "load_dataset", "load_scenes",
           "run_episode", "sample_scene", "scene_with_states", "target_descriptors", "transition_descriptors",
           "unseen_object_episodes"]
