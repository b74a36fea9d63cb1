"""The Panda parallel-jaw grasp and the grasp file formats.

A :class:`Grasp` is the pose of the gripper's TCP frame (Panda ``panda_grasptarget``): origin midway
between the fingertip pads, z = approach direction (out of the palm, towards the object), y = finger
closing axis, x = y cross z. Poses are given in the frame the file says ("object" or "world").

File formats (see docs/grasping.md):

* JSON, native::

    {"format": "robot_wm.grasps/1", "frame": "object",
     "grasps": [{"position": [x, y, z], "quaternion": [x, y, z, w], "width": 0.04, "score": 0.3}, ...]}

* JSON, ACRONYM style (4x4 transforms + widths)::

    {"transforms": [[[...4x4...]], ...], "widths": [0.04, ...], "scores": [...optional...],
     "tcp_offset": 0.0}

  `tcp_offset` (m, default 0) is the distance along each transform's z axis from the file's gripper
  frame to the TCP (e.g. 0.105 for transforms of the Panda hand frame ``panda_hand``).
* ``.npz`` with arrays ``transforms`` (N, 4, 4), ``widths`` (N,), optional ``scores`` (N,) and
  ``tcp_offset`` (scalar); loaded with ``allow_pickle=False``.

Either JSON form may instead hold ``"objects": {name: <grasp list or transforms/widths mapping>}`` to give
different grasps per object.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_wm.config import ConfigError
from robot_wm.geometry import Pose, panda

log = logging.getLogger(__name__)

FORMAT = "robot_wm.grasps/1"
MAX_WIDTH = panda.MAX_OPENING  # m


@dataclass(frozen=True)
class Grasp:
    """A parallel-jaw grasp: TCP `pose`, opening `width` (m, distance between the contacts) and `score`
    (higher is better; the sampler's analytic quality)."""

    pose: Pose
    width: float
    score: float = 0.0

    @property
    def approach(self) -> np.ndarray:
        """Approach axis (3,): TCP z."""
        return self.pose.rotation.as_matrix()[:, 2]

    @property
    def closing_axis(self) -> np.ndarray:
        """Finger closing axis (3,): TCP y."""
        return self.pose.rotation.as_matrix()[:, 1]

    def matrix(self) -> np.ndarray:
        """4x4 transform TCP -> frame of the pose."""
        return self.pose.matrix()

    def transformed(self, a2b: Pose) -> Grasp:
        """The same grasp expressed in frame b, given the pose is in frame a."""
        return Grasp(a2b @ self.pose, self.width, self.score)

    def to_dict(self) -> dict[str, Any]:
        return {"position": [round(float(v), 9) for v in self.pose.position],
                "quaternion": [round(float(v), 9) for v in self.pose.quaternion],
                "width": round(float(self.width), 9), "score": round(float(self.score), 9)}


def _num_list(value: Any, n: int, where: str, source: str) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != n:
        raise ConfigError(source, where, f"expected a list of {n} numbers")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(source, where, f"expected a list of {n} finite numbers (got {v!r})")
        out.append(float(v))
    return out


def _finite(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(source, where, f"must be a finite number (got {value!r})")
    return float(value)


MAX_POSITION = 10.0  # m: a grasp farther than this from its frame's origin is a unit or frame mistake
MAX_TCP_OFFSET = 0.5  # m
QUAT_NORM_TOLERANCE = 0.05  # a quaternion further than this from unit length is not a rotation


def _width(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(source, where, f"must be a number >= 0 (got {value!r})")
    return float(value)


def _check_width(width: float, where: str, source: str) -> None:
    if not 0.0 <= width <= MAX_WIDTH + 1e-9:
        raise ConfigError(source, where, f"must lie in [0, {MAX_WIDTH:g}] m, the Panda's opening (got {width!r})")


def grasps_from_data(data: Any, source: str = "<grasps>", where: str = "") -> list[Grasp]:
    """Parse one grasp list in either JSON form (native list or transforms/widths mapping)."""
    pre = f"{where}." if where else ""
    if isinstance(data, dict) and "transforms" in data:
        tf = data.get("transforms")
        widths = data.get("widths")
        if not isinstance(tf, list):
            raise ConfigError(source, f"{pre}transforms", "expected a list of 4x4 matrices")
        if not isinstance(widths, list) or len(widths) != len(tf):
            raise ConfigError(source, f"{pre}widths", f"expected a list of {len(tf)} widths (one per transform)")
        scores = data.get("scores", [0.0] * len(tf))
        if not isinstance(scores, list) or len(scores) != len(tf):
            raise ConfigError(source, f"{pre}scores", f"expected a list of {len(tf)} numbers")
        offset = data.get("tcp_offset", 0.0)
        if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
            raise ConfigError(source, f"{pre}tcp_offset", f"must be a finite number (got {offset!r})")
        mats = []
        for i, m in enumerate(tf):
            if not isinstance(m, list) or len(m) != 4:
                raise ConfigError(source, f"{pre}transforms[{i}]", "expected a 4x4 matrix")
            mats.append([_num_list(row, 4, f"{pre}transforms[{i}]", source) for row in m])
        return grasps_from_arrays(np.asarray(mats, float).reshape(-1, 4, 4),
                                  np.asarray([_width(w, f"{pre}widths[{i}]", source) for i, w in enumerate(widths)]),
                                  np.asarray([_finite(s, f"{pre}scores[{i}]", source) for i, s in enumerate(scores)]),
                                  float(offset), source, f"{pre}transforms", f"{pre}widths")
    if isinstance(data, dict) and "grasps" in data:
        data = data["grasps"]
        pre = f"{pre}grasps"
    else:
        pre = where or "grasps"
    if not isinstance(data, list):
        raise ConfigError(source, pre, "expected a list of grasps")
    out = []
    for i, g in enumerate(data):
        w = f"{pre}[{i}]"
        if not isinstance(g, dict):
            raise ConfigError(source, w, "expected a mapping with position, quaternion, width")
        unknown = set(g) - {"position", "quaternion", "width", "score"}
        if unknown:
            raise ConfigError(source, f"{w}.{sorted(unknown)[0]}", "unknown key")
        for key in ("position", "quaternion", "width"):
            if key not in g:
                raise ConfigError(source, f"{w}.{key}", "required key is missing")
        pos = _num_list(g["position"], 3, f"{w}.position", source)
        if np.linalg.norm(pos) > MAX_POSITION:
            raise ConfigError(source, f"{w}.position", f"must lie within {MAX_POSITION:g} m of the frame's origin "
                              f"(got {pos})")
        quat = _num_list(g["quaternion"], 4, f"{w}.quaternion", source)
        if np.linalg.norm(quat) < 1e-6:
            raise ConfigError(source, f"{w}.quaternion", "must be a non-zero quaternion (xyzw)")
        if abs(np.linalg.norm(quat) - 1.0) > QUAT_NORM_TOLERANCE:
            raise ConfigError(source, f"{w}.quaternion", f"must have unit length, a rotation (got norm "
                              f"{np.linalg.norm(quat):.3g})")
        width = _width(g["width"], f"{w}.width", source)
        _check_width(width, f"{w}.width", source)
        score = _finite(g.get("score", 0.0), f"{w}.score", source)
        out.append(Grasp(Pose(pos, quat), width, score))
    if not out:
        raise ConfigError(source, pre, "no grasps (the list is empty)")
    return out


def grasps_from_arrays(transforms: np.ndarray, widths: np.ndarray, scores: np.ndarray | None = None,
                       tcp_offset: float = 0.0, source: str = "<grasps>", where: str = "transforms",
                       widths_where: str = "widths") -> list[Grasp]:
    """Grasps from (N, 4, 4) rigid gripper transforms (TCP at `tcp_offset` m along their z) and widths (N,) m,
    each in [0, MAX_WIDTH]. Raises ConfigError (naming `source` and the array) on anything else."""
    try:
        transforms = np.asarray(transforms, float)
        widths = np.asarray(widths, float)
        scores = None if scores is None else np.asarray(scores, float)
    except (TypeError, ValueError):
        raise ConfigError(source, where, "expected arrays of numbers") from None
    if transforms.ndim != 3 or transforms.shape[1:] != (4, 4) or not np.all(np.isfinite(transforms)):
        raise ConfigError(source, where, f"expected finite transforms of shape (N, 4, 4) (got {transforms.shape})")
    if len(transforms) == 0:
        raise ConfigError(source, where, "no grasps (0 transforms)")
    if widths.ndim != 1 or len(widths) != len(transforms):
        raise ConfigError(source, widths_where, f"expected {len(transforms)} widths (got shape {widths.shape})")
    scores = np.zeros(len(widths)) if scores is None else scores
    if scores.ndim != 1 or len(scores) != len(transforms) or not np.all(np.isfinite(scores)):
        raise ConfigError(source, "scores", f"expected {len(transforms)} finite scores (got shape {scores.shape})")
    if not (math.isfinite(tcp_offset) and abs(tcp_offset) <= MAX_TCP_OFFSET):
        raise ConfigError(source, "tcp_offset", f"must be a finite number within +-{MAX_TCP_OFFSET:g} m "
                          f"(got {tcp_offset!r})")
    out = []
    for i, m in enumerate(transforms):
        r = m[:3, :3]
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
            raise ConfigError(source, f"{where}[{i}]", "rotation part is not a proper rotation matrix "
                              "(not a rigid transform)")
        if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
            raise ConfigError(source, f"{where}[{i}]", f"last row must be [0, 0, 0, 1] (got {m[3].tolist()}; not a "
                              "rigid transform)")
        if np.linalg.norm(m[:3, 3]) > MAX_POSITION:
            raise ConfigError(source, f"{where}[{i}]", f"translation must lie within {MAX_POSITION:g} m of the "
                              f"frame's origin (got {m[:3, 3].tolist()})")
    for i, w in enumerate(widths):
        _check_width(float(w), f"{widths_where}[{i}]", source)
    for i, m in enumerate(transforms):
        pose = Pose.from_matrix(m) @ Pose([0.0, 0.0, tcp_offset], [0, 0, 0, 1])
        out.append(Grasp(pose, float(widths[i]), float(scores[i])))
    return out


def load_grasps(path: str | Path) -> dict[str | None, list[Grasp]]:
    """Read a grasp file (.json or .npz). Returns {object name: grasps}; key None = for every object.

    Raises :class:`ConfigError` (one line naming file and field) on a missing or malformed file.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, "", "file not found")
    if path.suffix == ".npz":
        try:
            z = np.load(path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ConfigError(source, "", "a single array, not an .npz archive of transforms and widths")
            with z:
                if "transforms" not in z or "widths" not in z:
                    raise ConfigError(source, "transforms" if "transforms" not in z else "widths", "array is missing")
                arrays = {k: z[k] for k in ("transforms", "widths", "scores", "tcp_offset") if k in z}
        except ConfigError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise ConfigError(source, "", f"not a readable .npz grasp file ({type(exc).__name__})") from None
        offset = arrays.get("tcp_offset", np.float64(0.0))
        if offset.size != 1 or offset.dtype.kind not in "fiu":
            raise ConfigError(source, "tcp_offset", f"must be one number (got shape {offset.shape})")
        return {None: grasps_from_arrays(arrays["transforms"], arrays["widths"], arrays.get("scores"),
                                         float(offset.reshape(())), source)}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"not valid JSON ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(source, "", "not valid JSON (nested too deeply)") from None
    if isinstance(data, dict) and "objects" in data:
        objs = data["objects"]
        if not isinstance(objs, dict) or not objs:
            raise ConfigError(source, "objects", "expected a non-empty mapping of object name -> grasps")
        return {str(k): grasps_from_data(v, source, f"objects.{k}") for k, v in objs.items()}
    if isinstance(data, dict):
        unknown = set(data) - {"format", "frame", "object", "grasps", "transforms", "widths", "scores", "tcp_offset"}
        if unknown:
            raise ConfigError(source, sorted(unknown)[0], "unknown key")
        if data.get("frame", "object") not in ("object", "world"):
            raise ConfigError(source, "frame", f"must be 'object' or 'world' (got {data.get('frame')!r})")
    return {None: grasps_from_data(data, source)}


def save_grasps(path: str | Path, grasps: list[Grasp], frame: str = "object", object_name: str | None = None) -> None:
    """Write grasps in the native JSON format (atomically: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"format": FORMAT, "frame": frame}
    if object_name is not None:
        data["object"] = object_name
    data["grasps"] = [g.to_dict() for g in grasps]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def save_grasps_acronym(path: str | Path, grasps: list[Grasp]) -> None:
    """Write grasps as ACRONYM-style JSON (4x4 TCP transforms + widths + scores, tcp_offset 0)."""
    path = Path(path)
    data = {"transforms": [np.round(g.matrix(), 9).tolist() for g in grasps],
            "widths": [float(g.width) for g in grasps], "scores": [float(g.score) for g in grasps],
            "tcp_offset": 0.0}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data) + "\n")
    tmp.replace(path)
