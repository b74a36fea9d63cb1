"""The world model's data set on disk: recorded object-centric transitions in shards with a manifest.
Writing, loading, cleaning and indexing them needs neither the simulator nor the grasping module (the
data are made by :mod:`robot_wm.model.collect`; training reads them here).

Layout of a collected folder (``DIR``)::

    manifest.json             # config (seed, object set, actions per episode), shards done, counts
    shard_00000.npz ...       # episodes [k*E, (k+1)*E); arrays below, NumPy .npz without pickles

Arrays in a shard (T transitions, NMAX = 6 object slots, E episodes; states in the layout of
:mod:`robot_wm.model.state`, world frame, SI units):

    before, after  (T, NMAX, 15) float32   object states before / after the action (after settling)
    mask           (T, NMAX)     bool      real object slots
    action         (T, 7)        float32   [kind, x, y, z, yaw, distance | width, tilt]
    target         (T,)          int16     slot of the object the action was aimed at
    touched        (T, NMAX)     bool      the arm touched this object during a push
    grasp_ok       (T,)          int8      grasps: 1 shake test `stable`, 0 any other label; pushes: -1
    grasp_class    (T,)          int8      index into robot_wm.grasping.LABELS; pushes: -1
    grasp_mode     (T,)          int8      index into GRASP_MODES (how the grasp was sampled); pushes: -1
    mass, friction (T, NMAX)     float32   per-episode randomised physical parameters (kg, coefficient)
    episode, step  (T,)          int32     episode index and action index within it
    scenes         (E,)          str       the scene of each episode as JSON (contract scene dict)
    scene_episode  (E,)          int32     episode index of each entry of `scenes`
    ep_shape_box   (E, NMAX, 6)  float32   shape descriptors (robot_wm.model.shape), grid box part ...
    ep_shape_occ   (E, NMAX, G^3) uint8    ... occupancy x 255 ...
    ep_shape_parts (E, NMAX, PARTS_DIM) float32  ... and convex parts, per episode and object slot

Shards written before the descriptors had convex parts (no ``ep_shape_parts``; their grid is the overall
convex hull) still load when :func:`load_dataset` is given a function that recomputes a recorded scene's
descriptors (:func:`robot_wm.model.collect.scene_descriptors`, which needs the grasping module).

A grasp does not disturb the scene (the shake test runs in its own world): its `after` is `before` with
the target raised by the lift height (0.10 m) when it was stable — the state the model predicts on
success.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_wm.config.object_sets import random_urdf_index
from robot_wm.model.shape import GRID, PARTS_DIM, pack, unpack
from robot_wm.model.state import ACTION_DIM, STATE_DIM

NMAX = 6  # object slots per transition
FORMAT_VERSION = 3  # of the shards (part of a collection's config: another version is refused on resume)
# version 2 wrote 6-wide actions (no tilt): they load as tilt 0, which is what the robot did then
GRASP_MODES = ("candidate", "perturbed", "box")  # meaning of `grasp_mode` 0, 1, 2 (robot_wm.model.collect)
OFF_TABLE_Z = -0.05  # m: an object below this has fallen off the table (there is no floor)


# ---------------------------------------------------------------------------------------------- writing
@dataclass
class Transition:
    """One recorded action in an episode of n objects: object states `before` and `after` (n, 15), the
    `action` (7,), the slot it aimed at, its index in the episode, the slots the arm touched (pushes) and,
    for grasps, the shake-test label's index into ``robot_wm.grasping.LABELS``, whether it was ``stable``
    (1/0) and the sampling mode (index into GRASP_MODES); -1 for pushes."""

    before: np.ndarray
    after: np.ndarray
    action: np.ndarray
    target: int
    step: int
    touched: set[int] = field(default_factory=set)
    grasp_class: int = -1
    grasp_ok: int = -1
    grasp_mode: int = -1


def pack_episode(episode: int, transitions: Sequence[Transition], mass: np.ndarray, friction: np.ndarray,
                 descriptors: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of one episode (module doc; T = len(transitions), E = 1, padded to NMAX slots) from its
    transitions, the n objects' mass (n,) kg and friction (n,) and shape descriptors (n, SHAPE_DIM)."""
    n = len(descriptors)
    T = len(transitions)
    out = {
        "before": np.zeros((T, NMAX, STATE_DIM), np.float32), "after": np.zeros((T, NMAX, STATE_DIM), np.float32),
        "mask": np.zeros((T, NMAX), bool), "action": np.zeros((T, ACTION_DIM), np.float32),
        "target": np.zeros(T, np.int16), "touched": np.zeros((T, NMAX), bool),
        "grasp_ok": np.full(T, -1, np.int8), "grasp_class": np.full(T, -1, np.int8),
        "grasp_mode": np.full(T, -1, np.int8),
        "mass": np.zeros((T, NMAX), np.float32), "friction": np.zeros((T, NMAX), np.float32),
        "episode": np.full(T, episode, np.int32), "step": np.zeros(T, np.int32),
    }
    out["before"][..., 6] = out["after"][..., 6] = 1.0  # identity quaternions in the padding slots
    for t, r in enumerate(transitions):
        out["before"][t, :n], out["after"][t, :n] = r.before, r.after
        out["mask"][t, :n] = True
        out["action"][t], out["target"][t], out["step"][t] = r.action, r.target, r.step
        out["touched"][t, list(r.touched)] = True
        out["mass"][t, :n], out["friction"][t, :n] = mass, friction
        if r.grasp_class >= 0:
            out["grasp_class"][t], out["grasp_ok"][t], out["grasp_mode"][t] = r.grasp_class, r.grasp_ok, r.grasp_mode
    box, occ, parts = pack(np.stack(descriptors))
    out["ep_shape_box"] = np.zeros((1, NMAX, 6), np.float32)
    out["ep_shape_occ"] = np.zeros((1, NMAX, GRID**3), np.uint8)
    out["ep_shape_parts"] = np.zeros((1, NMAX, PARTS_DIM), np.float32)
    out["ep_shape_box"][0, :n], out["ep_shape_occ"][0, :n], out["ep_shape_parts"][0, :n] = box, occ, parts
    return out


def pack_shard(episodes: Sequence[tuple[dict[str, np.ndarray], dict]], first_episode: int) -> dict[str, np.ndarray]:
    """One shard's arrays from consecutive episodes ``first_episode, first_episode + 1, ...``, each given
    as (its :func:`pack_episode` arrays, its scene dict)."""
    parts = [arrays for arrays, _ in episodes]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out["scenes"] = np.array([json.dumps(scene) for _, scene in episodes], dtype=str)
    out["scene_episode"] = np.arange(first_episode, first_episode + len(episodes), dtype=np.int32)
    return out


def shard_path(out: Path, shard: int) -> Path:
    """File of shard number `shard` in the folder `out`."""
    return out / f"shard_{shard:05d}.npz"


def write_shard(out: Path, shard: int, arrays: dict[str, np.ndarray]) -> None:
    """Atomic write of one shard."""
    tmp = out / f".shard_{shard:05d}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, shard_path(out, shard))


def read_manifest(out: Path) -> dict | None:
    """The folder's manifest.json as a dict; None when there is none. Raises ValueError when unreadable."""
    p = out / "manifest.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not a valid manifest ({exc.msg})") from None


def write_manifest(out: Path, manifest: dict) -> None:
    """Atomic write of the folder's manifest.json."""
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")


# ---------------------------------------------------------------------------------------------- reading
def load_dataset(paths: Path | Iterable[Path],
                 scene_descriptors: Callable[[dict], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Concatenate the shards of one or more collected folders (manifest order). No pickles are loaded.

    Per-transition arrays as in the module doc, plus the per-episode ``ep_shape_box``, ``ep_shape_occ``,
    ``ep_shape_parts`` and ``ep_index`` (E,) (their episode numbers). Episodes of the second and later
    folders are renumbered after the previous folders' so that they stay distinct.

    `scene_descriptors`: scene dict -> descriptors (NMAX, SHAPE_DIM), used for shards written before the
    descriptors had convex parts; without it such a shard raises ValueError (as does any unreadable one)."""
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
                if scene_descriptors is None:
                    raise ValueError(f"{f}: shard without convex-part descriptors (load it with "
                                     "robot_wm.model.collect.scene_descriptors, or recollect)")
                part["ep_shape_box"], part["ep_shape_occ"], part["ep_shape_parts"] = pack(
                    np.stack([scene_descriptors(json.loads(str(sc))) for sc in scenes]))
            if part["action"].shape[1] == ACTION_DIM - 1:  # format 2: pushes had no tilt
                part["action"] = np.pad(part["action"], ((0, 0), (0, 1)))
            part["ep_index"] = part.pop("scene_episode") + offset
            part["episode"] = part["episode"] + offset
            top = max(top, int(part["ep_index"].max(initial=-1)) + 1)
            parts.append(part)
        offset = top
    if not parts:
        raise ValueError(f"{dirs[0]}: no shards collected yet")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_scenes(path: Path) -> dict[int, dict]:
    """Episode index -> scene dict, from a collected folder."""
    manifest = read_manifest(path)
    out: dict[int, dict] = {}
    for v in (manifest or {}).get("shards", {}).values():
        with np.load(path / v["file"], allow_pickle=False) as z:
            for e, s in zip(z["scene_episode"], z["scenes"], strict=True):
                out[int(e)] = json.loads(str(s))
    return out


def unseen_object_episodes(path: Path, modulus: int = 10) -> set[int]:
    """Episodes of a collected folder that contain a random_urdfs object whose id is a multiple of
    `modulus`. Validating on exactly these (and training on the rest) means the validation objects were
    never seen in training, like the benchmark's held-out objects."""
    out = set()
    for e, scene in load_scenes(path).items():
        for obj in scene.get("objects", []):
            index = random_urdf_index(obj.get("urdf") or "")
            if index is not None and index % modulus == 0:
                out.add(e)
    return out


# ---------------------------------------------------------------------------------------------- loaded data
def per_episode_keys(data: dict[str, np.ndarray]) -> set[str]:
    """Names of the per-episode arrays of a loaded data set (the others have one row per transition)."""
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


def clean(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Objects that fell off the table before a transition are masked out (removed from the scene);
    transitions in which a remaining object falls off the table are dropped."""
    mask = data["mask"] & (data["before"][..., 2] > OFF_TABLE_Z)
    keep = ~np.any(mask & (data["after"][..., 2] <= OFF_TABLE_Z), axis=1)
    keep &= mask[np.arange(len(mask)), data["target"].astype(int)]
    per_episode = per_episode_keys(data)
    out = {k: v if k in per_episode else v[keep] for k, v in data.items()}
    out["mask"] = mask[keep]
    return out


__all__ = ["FORMAT_VERSION", "GRASP_MODES", "NMAX", "OFF_TABLE_Z", "Transition", "clean", "load_dataset", "load_scenes",
           "pack_episode", "pack_shard", "per_episode_keys", "read_manifest", "shard_path", "target_descriptors",
           "transition_descriptors", "unseen_object_episodes", "write_manifest", "write_shard"]
