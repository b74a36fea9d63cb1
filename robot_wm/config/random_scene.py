"""Random contract-valid scenes, and the pieces every scene generator of the project shares.

:func:`random_scene` draws 1..K objects from an object set, placed apart on the table (``robot-wm scene
random``, the pick-and-place bench). The benches and the world-model collector draw their own kinds of
scenes (stacks, touching groups, clusters, single objects) from their own distributions, built from the
shared pieces here: :func:`random_color`, :func:`primitive_footprint`, :func:`object_entry` and
:func:`scene_mapping`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_wm.config.object_sets import BROKEN_URDF_IDS, HELDOUT_URDF_IDS, TRAIN_URDF_IDS, random_urdf_path
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
