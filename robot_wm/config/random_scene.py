"""Random contract-valid scenes, and the pieces every scene generator of the project shares.

:func:`random_scene` draws 1..K objects from an object set, placed apart on the table (``robot-wm scene
random``, the pick-and-place bench). The benches and the world-model collector draw their own kinds of
scenes (stacks, touching groups, clusters, single objects) from their own distributions, built from the
shared pieces here: :func:`random_color`, :func:`primitive_footprint`, :func:`object_entry` and
:func:`scene_mapping`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robot_wm.config.object_sets import BROKEN_URDF_IDS, HELDOUT_URDF_IDS, TRAIN_URDF_IDS, random_urdf_path
from robot_wm.config.workspace import in_reach, on_table
from robot_wm.geometry import yaw_quaternion

WORKSPACE_X = (0.38, 0.68)  # m, where objects are dropped (reachable, visible from both cameras)
WORKSPACE_Y = (-0.18, 0.28)
MIN_SEPARATION = 0.085  # m between object centres
RANDOM_URDF_SCALE = (0.45, 0.6)  # random_urdfs are ~0.09-0.13 m at scale 1; this makes them graspable


def sample_separated_xy(rng: np.random.Generator, n: int, low: list[float], high: list[float],
                        min_distance: float, max_tries: int = 10000) -> list[np.ndarray]:
    """n points (2,) drawn uniformly in the box [low, high] by rejection, each more than `min_distance`
    (m) from the others. Raises ValueError when they do not fit within `max_tries` draws."""
    points: list[np.ndarray] = []
    for _ in range(max_tries):
        if len(points) == n:
            return points
        p = rng.uniform(low, high)
        if all(np.linalg.norm(p - q) > min_distance for q in points):
            points.append(p)
    if len(points) == n:
        return points
    raise ValueError(f"cannot place {n} objects {min_distance} m apart in the workspace")


def random_color(rng: np.random.Generator) -> list[float]:
    """An opaque rgba colour with each channel uniform in [0.05, 0.95] (rounded to 3 decimals)."""
    return [round(float(c), 3) for c in rng.uniform(0.05, 0.95, 3)] + [1.0]


def primitive_footprint(shape: str, size: list[float]) -> tuple[float, float]:
    """(half the larger horizontal extent, height) in m of an upright primitive in the scene contract's
    size convention (box: full extents; cylinder: [radius, height]; sphere: [radius])."""
    if shape == "box":
        return max(size[:2]) / 2, size[2]
    if shape == "cylinder":
        return size[0], size[1]
    return size[0], 2 * size[0]


def object_entry(name: str, position: list[float], yaw: float, ndigits: int | None = None,
                 **fields: Any) -> dict[str, Any]:
    """One scene-contract object mapping: `fields` (shape/size or urdf/scale, mass, ...) plus `position`
    (3,) m and the orientation of a rotation by `yaw` rad about z, rounded to `ndigits` when given."""
    quat = yaw_quaternion(yaw).tolist()
    if ndigits is not None:
        quat = [round(v, ndigits) for v in quat]
    return {"name": name, **fields, "position": list(position), "orientation": quat}


def scene_mapping(name: str, objects: list[dict[str, Any]], cameras: tuple[str, ...] = ("front.yaml", "side.yaml"),
                  seed: int | None = None, task: dict[str, Any] | None = None) -> dict[str, Any]:
    """A scene-contract mapping (validate with ``config.scene_from_dict``): calibration file names in
    `cameras`, optional seed and task."""
    out: dict[str, Any] = {"name": name}
    if seed is not None:
        out["seed"] = seed
    out["cameras"] = [{"calibration": c} for c in cameras]
    out["objects"] = objects
    if task is not None:
        out["task"] = task
    return out


def _primitive(rng: np.random.Generator) -> dict[str, Any]:
    kind = rng.choice(["box", "box", "cylinder", "sphere"])
    if kind == "box":
        size = [round(float(v), 4) for v in rng.uniform([0.03, 0.03, 0.03], [0.06, 0.065, 0.07])]
        size[0] = min(size[0], 0.06)
    elif kind == "cylinder":
        size = [round(float(rng.uniform(0.016, 0.03)), 4), round(float(rng.uniform(0.03, 0.07)), 4)]
    else:
        size = [round(float(rng.uniform(0.018, 0.03)), 4)]
    color = random_color(rng)
    return {"shape": str(kind), "size": size, "mass": round(float(rng.uniform(0.05, 0.2)), 3),
            "friction": round(float(rng.uniform(0.6, 1.0)), 2), "color": color}


def random_scene(seed: int, n_objects: int, heldout: bool = False, urdf_fraction: float = 0.4,
                 name: str | None = None) -> dict[str, Any]:
    """A scene mapping (validate with ``scene_from_dict``) with `n_objects` objects, from the training
    set (primitives and random_urdfs 000-699) or, with `heldout`, from random_urdfs 700-999 only."""
    if n_objects < 1:
        raise ValueError("n_objects must be >= 1")
    rng = np.random.default_rng(seed)
    positions = sample_separated_xy(rng, n_objects, [WORKSPACE_X[0], WORKSPACE_Y[0]],
                                    [WORKSPACE_X[1], WORKSPACE_Y[1]], MIN_SEPARATION)
    ids = HELDOUT_URDF_IDS if heldout else TRAIN_URDF_IDS
    objects = []
    for i, p in enumerate(positions):
        yaw = float(rng.uniform(-np.pi, np.pi))
        quat = [round(v, 6) for v in yaw_quaternion(yaw).tolist()]
        if heldout or rng.random() < urdf_fraction:
            idx = int(rng.choice(ids))
            while idx in BROKEN_URDF_IDS:  # redraw only these, so other seeds keep their scenes
                idx = int(rng.choice(ids))
            obj = {"name": f"obj{i}_urdf{idx:03d}", "urdf": random_urdf_path(idx),
                   "scale": round(float(rng.uniform(*RANDOM_URDF_SCALE)), 3), "mass": round(float(rng.uniform(0.05, 0.2)), 3),
                   "position": [round(float(p[0]), 4), round(float(p[1]), 4), 0.06]}
        else:
            obj = _primitive(rng)
            height = primitive_footprint(obj["shape"], obj["size"])[1]
            obj = {"name": f"obj{i}_{obj['shape']}", **obj,
                   "position": [round(float(p[0]), 4), round(float(p[1]), 4), round(height / 2 + 0.002, 4)]}
        obj["orientation"] = quat
        objects.append(obj)
    return scene_mapping(name or f"random_{'heldout' if heldout else 'train'}_s{seed}_k{n_objects}", objects,
                         seed=seed, task={"place_region": {"center": [0.45, -0.36, 0.0], "size": [0.26, 0.22]}})


# ------------------------------------------------------------------------------------------ task scenes
# Push-to-goal and singulation scenes (``robot-wm scene random --task ...``, ``bench mpc``). Held-out
# (default): random_urdfs 700-999 at scales 0.5-1.0 and primitives with sizes outside the world model's
# training ranges (boxes wider than the gripper, cylinders wider than 8 cm); training: random_urdfs 000-699
# at 0.5-0.8 and primitives inside those ranges (what planner settings may be tuned on).
PUSH_START_X, PUSH_START_Y = (0.42, 0.62), (-0.18, 0.22)  # m, where a pushed object starts
PUSH_GOAL_X, PUSH_GOAL_Y = (0.36, 0.68), (-0.25, 0.28)  # m, where its goal may lie ...
PUSH_GOAL_MAX_RADIUS = 0.68  # m, ... no farther than this from the robot base (pushes start beyond the object)
PUSH_DISTANCE = (0.05, 0.20)  # m, goal displacement
PUSH_TURN_DEG = (15.0, 60.0)  # |goal yaw - start yaw| of a yaw goal
PUSH_KINDS = ("box", "cylinder", "mesh")
TASK_MASS = (0.05, 0.5)  # kg, log-uniform (the world model's data: the same range)
TASK_FRICTION = (0.3, 1.0)  # uniform
HELDOUT_SCALE, TRAIN_SCALE = (0.5, 1.0), (0.5, 0.8)
MESH_RADIUS_PER_SCALE = 0.07  # m: random_urdfs are ~0.09-0.13 m across at scale 1


def _task_physics(rng: np.random.Generator) -> dict[str, float]:
    return {"mass": round(float(np.exp(rng.uniform(*np.log(TASK_MASS)))), 4),
            "friction": round(float(rng.uniform(*TASK_FRICTION)), 3)}


def _task_object(rng: np.random.Generator, kind: str, heldout: bool) -> tuple[dict[str, Any], float, float]:
    """(object fields without name/pose, footprint radius m, drop height of its origin m) of one object of
    `kind` (box | cylinder | mesh) from the held-out or the training set."""
    if kind == "box":
        if heldout:  # wider than the gripper's 8 cm opening: outside the training boxes (<= 8 cm)
            long_, short = rng.uniform(0.085, 0.13), rng.uniform(0.04, 0.10)
        else:
            long_, short = rng.uniform(0.05, 0.08), rng.uniform(0.03, 0.08)
        size = [round(float(long_), 4), round(float(min(short, long_)), 4), round(float(rng.uniform(0.03, 0.07)), 4)]
        fields = {"shape": "box", "size": size, "color": random_color(rng)}
        return fields | _task_physics(rng), 0.5 * math.hypot(size[0], size[1]), size[2] / 2 + 0.002
    if kind == "cylinder":
        radius = rng.uniform(0.042, 0.055) if heldout else rng.uniform(0.02, 0.04)  # training: <= 4 cm
        size = [round(float(radius), 4), round(float(rng.uniform(0.03, 0.08)), 4)]
        fields = {"shape": "cylinder", "size": size, "color": random_color(rng)}
        return fields | _task_physics(rng), size[0], size[1] / 2 + 0.002
    if kind != "mesh":
        raise ValueError(f"unknown object kind {kind!r} (box | cylinder | mesh)")
    ids = HELDOUT_URDF_IDS if heldout else TRAIN_URDF_IDS
    idx = int(rng.integers(ids.start, ids.stop))
    while idx in BROKEN_URDF_IDS:
        idx = int(rng.integers(ids.start, ids.stop))
    scale = round(float(rng.uniform(*(HELDOUT_SCALE if heldout else TRAIN_SCALE))), 3)
    fields = {"urdf": random_urdf_path(idx), "scale": scale}
    return fields | _task_physics(rng), MESH_RADIUS_PER_SCALE * scale, MESH_RADIUS_PER_SCALE * scale + 0.01


def _goal_ok(xy: np.ndarray) -> bool:
    x, y = float(xy[0]), float(xy[1])
    return (PUSH_GOAL_X[0] <= x <= PUSH_GOAL_X[1] and PUSH_GOAL_Y[0] <= y <= PUSH_GOAL_Y[1]
            and math.hypot(x, y) <= PUSH_GOAL_MAX_RADIUS and on_table(x, y, 0.1) and in_reach(x, y))


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def push_to_goal_scene(seed: int, heldout: bool = True, kind: str | None = None, yaw_goal: bool | None = None,
                       distractors: int | None = None, name: str | None = None) -> dict[str, Any]:
    """A push-to-goal scene mapping (validate with ``scene_from_dict``): one object ``target`` (a box wider
    than the gripper, a wide cylinder or a random_urdfs mesh; `kind`, default drawn) to be pushed to a goal
    0.05-0.20 m away in a random direction, inside the arm's reach and on the table, with a yaw goal turned
    by 15-60 degrees either way (`yaw_goal`, default drawn with P = 3/4; never for cylinders), plus 0-2
    `distractors` (``distractor_i``, held-out or training objects like the target) kept off the target's
    straight path and its goal. Tolerances 2 cm and 10 degrees. Every draw comes from `seed`."""
    rng = np.random.default_rng(seed)
    kind = kind if kind is not None else str(rng.choice(PUSH_KINDS))
    fields, radius, z = _task_object(rng, kind, heldout)
    want_yaw = bool(rng.random() < 0.75) if yaw_goal is None else yaw_goal
    want_yaw = want_yaw and kind != "cylinder"
    n_distractors = int(rng.integers(0, 3)) if distractors is None else distractors
    for _ in range(1000):
        start = rng.uniform([PUSH_START_X[0], PUSH_START_Y[0]], [PUSH_START_X[1], PUSH_START_Y[1]])
        angle = rng.uniform(-np.pi, np.pi)
        goal = start + rng.uniform(*PUSH_DISTANCE) * np.array([np.cos(angle), np.sin(angle)])
        if _goal_ok(goal):
            break
    else:  # pragma: no cover - the ranges always admit goals
        raise ValueError("no reachable goal found")
    yaw = float(rng.uniform(-np.pi, np.pi))
    start_r = [round(float(v), 4) for v in start]
    goal_r = [round(float(v), 4) for v in goal]
    objects = [object_entry("target", [*start_r, round(z, 4)], yaw, 6, **fields)]
    placed = [(np.asarray(start_r), radius)]
    for i in range(n_distractors):
        dkind = str(rng.choice(["mesh", "mesh", "box", "cylinder"]))
        dfields, dr, dz = _task_object(rng, dkind, heldout)
        for _ in range(1000):
            p = rng.uniform([WORKSPACE_X[0], WORKSPACE_Y[0] - 0.05], [WORKSPACE_X[1], WORKSPACE_Y[1]])
            if (_segment_distance(p, np.asarray(start_r), np.asarray(goal_r)) > radius + dr + 0.02
                    and all(np.linalg.norm(p - q) > r + dr + 0.02 for q, r in placed)):
                break
        else:
            continue  # no room: fewer distractors
        pr = [round(float(v), 4) for v in p]
        objects.append(object_entry(f"distractor_{i}", [*pr, round(dz, 4)], float(rng.uniform(-np.pi, np.pi)), 6,
                                    **dfields))
        placed.append((np.asarray(pr), dr))
    goal_entry: dict[str, Any] = {"object": "target", "position": goal_r}
    if want_yaw:
        turn = float(rng.uniform(*PUSH_TURN_DEG)) * (1.0 if rng.random() < 0.5 else -1.0)
        goal_entry["yaw_deg"] = round(math.degrees(yaw) + turn, 2)
    goal_entry |= {"tolerance_m": 0.02, "tolerance_deg": 10.0}
    label = "heldout" if heldout else "train"
    return scene_mapping(name or f"push_to_goal_{label}_s{seed}", objects, seed=seed,
                         task={"kind": "push_to_goal", "goals": [goal_entry]})


def singulate_scene(seed: int, heldout: bool = True, name: str | None = None) -> dict[str, Any]:
    """A singulation scene mapping (task pick_place): two same-coloured boxes flush side by side and one box
    flush against a fixed wall, each longer than the gripper opens (only its narrow side is graspable, and
    that side is blocked), plus 0-1 mesh distractors; sizes and meshes from the held-out set (or training).
    Every draw comes from `seed`."""
    rng = np.random.default_rng(seed)
    wall_x = float(rng.uniform(0.66, 0.72))
    wall_y = float(rng.uniform(-0.1, 0.12))
    wall = object_entry("wall", [round(wall_x, 4), round(wall_y, 4), 0.04], 0.0, 6, shape="box",
                        size=[0.02, 0.30, 0.08], fixed=True, color=[0.55, 0.55, 0.6, 1.0])

    def block() -> tuple[list[float], dict[str, Any]]:
        long_ = rng.uniform(0.085, 0.11) if heldout else rng.uniform(0.081, 0.09)
        size = [round(float(rng.uniform(0.045, 0.06)), 4), round(float(long_), 4), round(float(rng.uniform(0.04, 0.06)), 4)]
        return size, _task_physics(rng)

    size_w, phys_w = block()
    by_wall_x = wall_x - 0.01 - size_w[0] / 2 - 0.0005
    by_wall = object_entry("by_wall", [round(by_wall_x, 4), round(wall_y + float(rng.uniform(-0.06, 0.06)), 4),
                                       round(size_w[2] / 2 + 0.001, 4)], 0.0, 6, shape="box", size=size_w,
                           color=random_color(rng), **phys_w)
    size_p, phys_p = block()
    color = random_color(rng)
    px = float(rng.uniform(0.42, 0.5))
    py = float(rng.uniform(0.12, 0.2)) if wall_y < 0.01 else float(rng.uniform(-0.2, -0.12))
    pair = [object_entry(f"pair_{k}", [round(px + k * (size_p[0] + 0.0005), 4), round(py, 4),
                                       round(size_p[2] / 2 + 0.001, 4)], 0.0, 6, shape="box", size=size_p,
                         color=color, **phys_p) for k in (0, 1)]
    objects = [wall, by_wall, *pair]
    if rng.random() < 0.5:
        fields, r, z = _task_object(rng, "mesh", heldout)
        for _ in range(1000):
            p = rng.uniform([0.4, -0.2], [min(0.6, wall_x - 0.03 - r), 0.25])
            if all(np.linalg.norm(p - np.asarray(o["position"][:2])) > r + 0.09 for o in objects):
                objects.append(object_entry("distractor", [round(float(p[0]), 4), round(float(p[1]), 4), round(z, 4)],
                                            float(rng.uniform(-np.pi, np.pi)), 6, **fields))
                break
    label = "heldout" if heldout else "train"
    return scene_mapping(name or f"singulate_{label}_s{seed}", objects, seed=seed,
                         task={"kind": "pick_place", "objects": [o["name"] for o in objects if not o.get("fixed")],
                               "place_region": {"center": [0.45, -0.36, 0.0], "size": [0.26, 0.22]}})
