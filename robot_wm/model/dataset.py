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
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robot_wm.config.errors import ConfigError
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
    """The folder's manifest.json as a dict; None when there is none. Raises ConfigError (a ValueError; one
    line naming the file and the field) when it is unreadable or not a manifest (:func:`check_manifest`)."""
    p = out / "manifest.json"
    if not p.is_file():
        return None
    try:
        manifest = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(str(p), "", f"not a valid manifest (invalid JSON: {exc.msg} at line {exc.lineno})") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(str(p), "", f"not a readable manifest ({type(exc).__name__})") from None
    check_manifest(manifest, str(p))
    return manifest


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_manifest(manifest: object, source: str) -> None:
    """Raise ConfigError unless `manifest` has the shape :func:`robot_wm.model.collect_jobs.collect` writes:
    ``config`` (mapping), ``episodes`` (int >= 0) and ``shards`` {"<shard number>": {"file": a file name in the
    folder, "episodes": int >= 1, "transitions": int >= 0}}."""
    if not isinstance(manifest, dict):
        raise ConfigError(source, "", f"expected a JSON object (got {type(manifest).__name__})")
    if not isinstance(manifest.get("config"), dict):
        raise ConfigError(source, "config", "missing or not a mapping")
    if not _count(manifest.get("episodes")):
        raise ConfigError(source, "episodes", f"must be an integer >= 0 (got {manifest.get('episodes')!r})")
    shards = manifest.get("shards")
    if not isinstance(shards, dict):
        raise ConfigError(source, "shards", "missing or not a mapping of shard number -> entry")
    for key, entry in shards.items():
        where = f"shards.{key}"
        if not (isinstance(key, str) and key.isdigit()):
            raise ConfigError(source, where, "shard keys must be shard numbers")
        if not isinstance(entry, dict):
            raise ConfigError(source, where, "expected a mapping with file, episodes, transitions")
        name = entry.get("file")
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise ConfigError(source, f"{where}.file", f"must be a file name inside the folder (got {name!r})")
        if not _count(entry.get("episodes")) or entry["episodes"] == 0:
            raise ConfigError(source, f"{where}.episodes", f"must be an integer >= 1 (got {entry.get('episodes')!r})")
        if not _count(entry.get("transitions")):
            raise ConfigError(source, f"{where}.transitions",
                              f"must be an integer >= 0 (got {entry.get('transitions')!r})")


# the arrays every shard has, with their shape after the leading T (transitions) or E (episodes) axis
_PER_TRANSITION = {"before": (NMAX, STATE_DIM), "after": (NMAX, STATE_DIM), "mask": (NMAX,), "target": (),
                   "episode": (), "step": ()}
_OPTIONAL_PER_TRANSITION = {"touched": (NMAX,), "grasp_ok": (), "grasp_class": (), "grasp_mode": (),
                            "mass": (NMAX,), "friction": (NMAX,)}
_PER_EPISODE = {"scene_episode": (), "ep_shape_box": (NMAX, 6), "ep_shape_occ": (NMAX, GRID**3)}


def read_shard(f: Path) -> dict[str, np.ndarray]:
    """A shard's arrays (no pickles), checked with :func:`check_shard`; ConfigError (one line naming the file
    and the array) when the file is missing, truncated, not an .npz or holds arrays of the wrong shape."""
    if not f.is_file():
        raise ConfigError(str(f), "", "shard listed in manifest.json is missing")
    try:
        z = np.load(f, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with z:
            part = {key: z[key] for key in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ConfigError(str(f), "", f"unreadable shard, truncated or not an .npz ({msg})") from None
    check_shard(part, str(f))
    return part


def check_shard(part: dict[str, np.ndarray], source: str) -> None:
    """Raise ConfigError unless a shard's arrays have the module doc's shapes (T >= 1 transitions, E >= 1
    episodes), finite states and actions, and object slots and episode numbers in range."""
    for key in (*_PER_TRANSITION, "action", *_PER_EPISODE):
        if key not in part:
            raise ConfigError(source, key, "array is missing (not a shard of this data format)")
    t = part["action"].shape[0] if part["action"].ndim == 2 else -1
    if part["action"].ndim != 2 or part["action"].shape[1] not in (ACTION_DIM - 1, ACTION_DIM):
        raise ConfigError(source, "action", f"expected shape (T, {ACTION_DIM}) (got {part['action'].shape})")
    if t == 0:
        raise ConfigError(source, "action", "empty shard (0 transitions): recollect it")
    for key, shape in (_PER_TRANSITION | {k: v for k, v in _OPTIONAL_PER_TRANSITION.items() if k in part}).items():
        if part[key].shape != (t, *shape):
            raise ConfigError(source, key, f"expected shape {(t, *shape)} (got {part[key].shape})")
    e = part["scene_episode"].shape[0] if part["scene_episode"].ndim == 1 else -1
    if e <= 0:
        raise ConfigError(source, "scene_episode", f"expected shape (E,) with E >= 1 (got {part['scene_episode'].shape})")
    for key, shape in _PER_EPISODE.items():
        if part[key].shape != (e, *shape):
            raise ConfigError(source, key, f"expected shape {(e, *shape)} (got {part[key].shape})")
    if "ep_shape_parts" in part and part["ep_shape_parts"].shape != (e, NMAX, PARTS_DIM):
        raise ConfigError(source, "ep_shape_parts",
                          f"expected shape {(e, NMAX, PARTS_DIM)} (got {part['ep_shape_parts'].shape})")
    if "scenes" in part and part["scenes"].shape != (e,):
        raise ConfigError(source, "scenes", f"expected shape ({e},) (got {part['scenes'].shape})")
    for key in ("before", "after", "action", "mass", "friction", "ep_shape_box", "ep_shape_parts"):
        if key in part:
            if part[key].dtype.kind not in "fiu":
                raise ConfigError(source, key, f"expected numbers (got dtype {part[key].dtype})")
            if not np.all(np.isfinite(part[key])):
                raise ConfigError(source, key, "holds NaN or infinite values")
    for key in ("target", "episode", "step", "scene_episode"):
        if part[key].dtype.kind not in "iu":
            raise ConfigError(source, key, f"expected integers (got dtype {part[key].dtype})")
    if part["target"].min() < 0 or part["target"].max() >= NMAX:
        raise ConfigError(source, "target", f"object slots must lie in [0, {NMAX})")
    if not np.isin(part["episode"], part["scene_episode"]).all():
        raise ConfigError(source, "episode", "a transition's episode has no entry in scene_episode")


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
        if not d.is_dir():
            raise ConfigError(str(d), "", "not a folder (a collected data folder: robot-wm collect --out)")
        manifest = read_manifest(d)
        if manifest is None:
            raise ConfigError(str(d), "", "no manifest.json (not a collected data folder)")
        top = offset
        for k in sorted(manifest["shards"], key=int):
            f = d / manifest["shards"][k]["file"]
            part = read_shard(f)
            scenes = part.pop("scenes", None)
            if "ep_shape_parts" not in part:  # written before descriptors had convex parts: recompute them
                if scene_descriptors is None:
                    raise ConfigError(str(f), "ep_shape_parts", "shard without convex-part descriptors (load it "
                                      "with robot_wm.model.collect.scene_descriptors, or recollect)")
                if scenes is None:
                    raise ConfigError(str(f), "scenes", "array is missing (needed to recompute the descriptors)")
                try:
                    recorded = [json.loads(str(sc)) for sc in scenes]
                except json.JSONDecodeError as exc:
                    raise ConfigError(str(f), "scenes", f"not a JSON scene ({exc.msg})") from None
                part["ep_shape_box"], part["ep_shape_occ"], part["ep_shape_parts"] = pack(
                    np.stack([scene_descriptors(sc) for sc in recorded]))
            if part["action"].shape[1] == ACTION_DIM - 1:  # format 2: pushes had no tilt
                part["action"] = np.pad(part["action"], ((0, 0), (0, 1)))
            part["ep_index"] = part.pop("scene_episode") + offset
            part["episode"] = part["episode"] + offset
            top = max(top, int(part["ep_index"].max(initial=-1)) + 1)
            parts.append(part)
        offset = top
    if not parts:
        raise ConfigError(str(dirs[0]), "", "no shards collected yet")
    missing = next((k for p in parts for k in parts[0] if k not in p), None)
    if missing is not None:
        raise ConfigError(str(dirs[0]), missing, "array missing from some shards (mixed data formats)")
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


__all__ = ["FORMAT_VERSION", "GRASP_MODES", "NMAX", "OFF_TABLE_Z", "Transition", "check_manifest", "check_shard", "clean",
           "load_dataset", "load_scenes", "pack_episode", "pack_shard", "per_episode_keys", "read_manifest", "read_shard",
           "shard_path", "target_descriptors", "transition_descriptors", "unseen_object_episodes", "write_manifest",
           "write_shard"]
