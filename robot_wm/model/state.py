"""Object-centric state and action layouts shared by data collection, the model and the planner.

State of one object: a float vector of length ``STATE_DIM`` = 15, world frame, SI units:

====== ========= ==============================================================
index  name      meaning
====== ========= ==============================================================
0:3    position  base (centre of mass) position, m
3:7    quat      orientation quaternion, xyzw
7:10   extents   bounding-box extents in the object's own frame, m
10:14  shape     one-hot: box, cylinder, sphere, mesh (URDF / perceived)
14     at_rest   1.0 when the object is not moving
====== ========= ==============================================================

A scene is ``states (B, N, 15)`` plus ``mask (B, N)`` (True = real object, False = padding).

Action: a float vector of length ``ACTION_DIM`` = 7: ``[kind, x, y, z, yaw, distance | width, tilt]``:

* push  (kind 0): the closed fingertips start at (x, y, z) and move ``distance`` m along
  (cos yaw, sin yaw, 0). The fingertip face is ~2 cm wide, perpendicular to the motion when ``tilt`` = 0;
  ``tilt`` (rad) turns the hand (and so the face) about world z, so that one corner of the face leads: a
  point contact that turns what it pushes off-centre (a face held flat against a face translates it
  instead, in this simulator and with rubber pads alike).
* grasp (kind 1): top-down Panda grasp with the TCP (between the fingertip pads) at (x, y, z), the
  closing axis at heading ``yaw``, and the last element the grasp width (m; the fingers open 1 cm more,
  at most 8 cm). Outcome: the grasping module's shake test (close, lift 0.10 m, shakes, pulls, hold);
  success = labelled ``stable``. :func:`grasp_action_to_tcp` and :func:`grasp_action_from_tcp` convert
  between this row and a TCP pose + width (what the grasping module's ``Grasp`` holds). Its tilt is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.geometry import top_down_quaternion

STATE_DIM = 15
ACTION_DIM = 7
TILT = 6  # index of the push's face tilt (rad) in an action row
SHAPES = ("box", "cylinder", "sphere", "mesh")
PUSH, GRASP = 0, 1
LIFT = 0.10  # m, the shake test's lift: a grasp's outcome on success is its object raised by this
POS, QUAT, EXT, SHAPE, REST = slice(0, 3), slice(3, 7), slice(7, 10), slice(10, 14), 14


def object_state(position: Sequence[float], quaternion: Sequence[float], extents: Sequence[float],
                 shape: str = "mesh", at_rest: bool = True) -> np.ndarray:
    """One object's state vector (15,). `shape` is one of SHAPES (None/unknown -> 'mesh')."""
    s = np.zeros(STATE_DIM, np.float32)
    s[POS] = position
    q = np.asarray(quaternion, float)
    s[QUAT] = q / np.linalg.norm(q)
    s[EXT] = extents
    s[SHAPE][SHAPES.index(shape if shape in SHAPES else "mesh")] = 1.0
    s[REST] = float(at_rest)
    return s


def stack_scenes(scenes: Sequence[Sequence[np.ndarray]], n_max: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pad a list of scenes (each a list of (15,) object states) to ``states (B, N, 15)`` and
    ``mask (B, N)`` with N = max objects (or `n_max`)."""
    n = max([len(s) for s in scenes] + [1]) if n_max is None else n_max
    states = np.zeros((len(scenes), n, STATE_DIM), np.float32)
    states[..., 6] = 1.0  # identity quaternion in padding rows
    mask = np.zeros((len(scenes), n), bool)
    for b, scene in enumerate(scenes):
        if len(scene) > n:
            raise ValueError(f"scene {b} has {len(scene)} objects, more than n_max={n}")
        for i, obj in enumerate(scene):
            states[b, i] = obj
            mask[b, i] = True
    return states, mask


def push_action(x: float, y: float, z: float, yaw: float, distance: float, tilt: float = 0.0) -> np.ndarray:
    """A push action (7,): fingertips from (x, y, z) m along heading `yaw` rad for `distance` m, the face
    turned by `tilt` rad about z (0: perpendicular to the motion)."""
    return np.array([PUSH, x, y, z, yaw, distance, tilt], np.float32)


def grasp_action(x: float, y: float, z: float, yaw: float, width: float = 0.07) -> np.ndarray:
    """A grasp action (7,): top-down TCP at (x, y, z) m, closing axis at `yaw` rad, grasp `width` m
    (default 7 cm: a blind grasp, the fingers open fully)."""
    return np.array([GRASP, x, y, z, yaw, width, 0.0], np.float32)


def grasp_action_to_tcp(action: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The TCP of a grasp action row (7,) ``[GRASP, x, y, z, yaw, width, 0]``: position (3,) float64 in m
    (world frame), quaternion (4,) xyzw pointing straight down with the closing axis (TCP y) at heading
    `yaw` (``top_down_quaternion(yaw + pi/2)``), and the width in m. The row may be float64 (e.g. a
    jittered grasp) to keep its values exact."""
    return np.asarray(action[1:4], float), top_down_quaternion(float(action[4]) + np.pi / 2), float(action[5])


def grasp_action_from_tcp(position: Sequence[float], quaternion: Sequence[float], width: float) -> np.ndarray:
    """A grasp action (7,) float32 from a TCP pose (position (3,) m, quaternion (4,) xyzw, world frame) and
    a width in m: the yaw is the heading of the TCP's closing axis (y) projected on the table, so a tilted
    TCP is snapped to top-down. Inverse of :func:`grasp_action_to_tcp` (yaw wrapped to (-pi, pi])."""
    closing = Rotation.from_quat(quaternion).as_matrix()[:, 1]
    return grasp_action(*position, np.arctan2(closing[1], closing[0]), width)


def yaw_of_quats(q: np.ndarray) -> np.ndarray:
    """Heading (rad) of the body x axis projected on the table, for quaternions (..., 4) xyzw."""
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def apply_planar_delta(states: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Next states from world-frame deltas (..., 4) = (dx, dy, dz, dyaw): translate, then rotate the
    orientation about world z by dyaw. NumPy reference of what the model does in torch."""
    out = states.copy()
    out[..., POS] += delta[..., :3]
    flat_q = out[..., QUAT].reshape(-1, 4)
    rz = Rotation.from_euler("z", delta[..., 3].reshape(-1, 1))
    out[..., QUAT] = (rz * Rotation.from_quat(flat_q)).as_quat().reshape(out[..., QUAT].shape)
    return out


def rotation_error_deg(q_pred: np.ndarray, q_true: np.ndarray) -> np.ndarray:
    """Geodesic angle (deg) between quaternion arrays (..., 4)."""
    d = np.abs(np.sum(q_pred * q_true, axis=-1)) / (
        np.linalg.norm(q_pred, axis=-1) * np.linalg.norm(q_true, axis=-1))
    return np.degrees(2 * np.arccos(np.clip(d, 0.0, 1.0)))
