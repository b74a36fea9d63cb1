"""Choosing calibration views by what they will teach (sequential optimal experiment design).

A pose of the board in front of a camera constrains the unknowns of the joint refinement
(:func:`robot_wm.perception.calibration.calibrate_camera`) — fx, fy, cx, cy, the camera's pose and the board's —
unequally. The principal point and a small turn of the camera move every corner nearly alike (a turn by d rad
shifts a pixel at u px from the centre by f (1 + u^2 / f^2) d, a principal-point shift moves it by a constant), so
views whose boards sit near the image centre at similar depths leave the camera's rotation uncertain by ~0.1 deg
even with 0.1 px corners. Views near the image's edges, at several depths and tilts, separate them.

:class:`ViewDesign` ranks candidate views (reachable, board in view; nothing rendered yet) by the Fisher
information each adds, predicted from the camera's nominal calibration, and picks greedily the one that most
lowers the expected error of what a calibration is judged by — camera rotation (per `ROT_SCALE_DEG`), camera
translation (per `TRANS_SCALE_M`) and focal length (per `FOCAL_SCALE`): a weighted A-optimal design. A rough
nominal calibration is enough: the ranking changes little with small errors in it.

Parameter order (16): fx, fy, cx, cy (px); the camera's rotation (3, rad: a small turn about the parent frame's
axes through the camera origin) and position (3, m); the board's rotation (3, rad) and position (3, m). Parent
frame: world for a fixed camera (the board's pose is board2tcp), flange for a hand camera (the board's pose is
board2world).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.perception.calibration import project, target2camera

CORNER_SIGMA_PX = 0.3  # expected corner noise (1 sigma) after detection
ROT_SCALE_DEG = 0.1  # the errors a design trades against each other: 0.1 deg of camera rotation,
TRANS_SCALE_M = 0.001  # 1 mm of camera translation,
FOCAL_SCALE = 0.002  # 0.2 % of focal length (the targets a calibration is held to)
# the design's prior (1 sigma): what a rough nominal calibration is trusted to — focal length to 5 %, the principal
# point to 20 px, the camera's and the board's poses to 5 / 10 deg and 5 cm. It keeps the first choices finite and
# does not enter the solve.
PRIOR_FOCAL_FRACTION, PRIOR_CENTRE_PX = 0.05, 20.0
PRIOR_CAMERA_DEG, PRIOR_TARGET_DEG, PRIOR_POSITION_M = 5.0, 10.0, 0.05
PARAMS = 16


def _turn(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Pose `m` (4x4) turned by rotation vector d[:3] about its origin (parent axes) and moved by d[3:6]."""
    out = m.copy()
    out[:3, :3] = Rotation.from_rotvec(d[:3]).as_matrix() @ m[:3, :3]
    out[:3, 3] = m[:3, 3] + d[3:6]
    return out


def _pixels(p: np.ndarray, camera: np.ndarray, target: np.ndarray, robot: np.ndarray, corners: np.ndarray,
            mount: str) -> np.ndarray:
    """Projected corners (2M,) for parameters `p` (16,) applied as offsets to `camera` and `target` (4x4), through
    the solver's own chain (:func:`robot_wm.perception.calibration.target2camera`)."""
    t2c = target2camera(robot, _turn(camera, p[4:10]), _turn(target, p[10:16]), mount)
    k = np.array([[p[0], 0.0, p[2]], [0.0, p[1], p[3]], [0.0, 0.0, 1.0]])
    return project(k, corners @ t2c[:3, :3].T + t2c[:3, 3]).ravel()


def view_information(k: np.ndarray, camera: np.ndarray, target: np.ndarray, robot: np.ndarray,
                     corners: np.ndarray, mount: str = "world", sigma_px: float = CORNER_SIGMA_PX) -> np.ndarray:
    """Fisher information (16, 16) of one view about the parameters (module docstring): J^T J / sigma_px^2, J
    (2M, 16) the derivative of the M `corners` (board frame, (M, 3) m) projected through intrinsics `k` (3x3),
    the camera (camera2world, or camera2flange for `mount` hand), the robot pose of the view (tcp2world or
    flange2world) and the board's pose (target2tcp, or target2world), by central differences."""
    base = np.r_[k[0, 0], k[1, 1], k[0, 2], k[1, 2], np.zeros(12)]
    steps = np.r_[[1e-2] * 4, [1e-5] * 12]
    jac = np.empty((2 * len(corners), PARAMS))
    for i in range(PARAMS):
        d = np.zeros(PARAMS)
        d[i] = steps[i]
        jac[:, i] = (_pixels(base + d, camera, target, robot, corners, mount)
                     - _pixels(base - d, camera, target, robot, corners, mount)) / (2 * steps[i])
    return jac.T @ jac / sigma_px ** 2


def prior_sigma(focal_px: float) -> np.ndarray:
    """(16,) 1-sigma of the design's prior (see PRIOR_*) for a camera of focal length `focal_px`."""
    return np.r_[[PRIOR_FOCAL_FRACTION * focal_px] * 2, [PRIOR_CENTRE_PX] * 2, [math.radians(PRIOR_CAMERA_DEG)] * 3,
                 [PRIOR_POSITION_M] * 3, [math.radians(PRIOR_TARGET_DEG)] * 3, [PRIOR_POSITION_M] * 3]


def interest_weights(focal_px: float) -> np.ndarray:
    """(16,) weights of the design criterion: 1 / scale^2 on fx, fy, the camera's rotation and translation, 0 on
    the principal point and the board's pose (they matter only through what they do to the others)."""
    w = np.zeros(PARAMS)
    w[0:2] = 1.0 / (FOCAL_SCALE * focal_px) ** 2
    w[4:7] = 1.0 / math.radians(ROT_SCALE_DEG) ** 2
    w[7:10] = 1.0 / TRANS_SCALE_M ** 2
    return w


class ViewDesign:
    """Greedy weighted A-optimal choice among candidate views: :meth:`next` returns the allowed candidate that
    minimises sum_i w_i Var_i of (information so far + its information)^-1; :meth:`accept` adds a candidate's
    information once its view has been captured, :meth:`drop` removes one that failed (board not detected)."""

    def __init__(self, infos: np.ndarray, weights: np.ndarray, prior: np.ndarray) -> None:
        """`infos` (P, 16, 16): each candidate's :func:`view_information`; `weights` (16,); `prior` (16,):
        1-sigma of what is known before any view (:func:`prior_sigma`)."""
        self.infos = np.asarray(infos, float)
        self.weights = np.asarray(weights, float)
        self.total = np.diag(1.0 / np.asarray(prior, float) ** 2)
        self.open = np.ones(len(self.infos), bool)

    def criterion(self, extra: np.ndarray | None = None) -> np.ndarray | float:
        """The weighted variance sum with the information so far plus each of `extra` (P, 16, 16) (None: alone)."""
        if extra is None:
            return float(np.diag(np.linalg.inv(self.total)) @ self.weights)
        cov = np.linalg.inv(self.total[None] + extra)
        return np.einsum("pii,i->p", cov, self.weights)

    def next(self, allowed: np.ndarray | None = None) -> int | None:
        """Index of the best open candidate (restricted to `allowed` (P,) bool), or None when none is left."""
        ok = self.open if allowed is None else self.open & allowed
        if not ok.any():
            return None
        idx = np.flatnonzero(ok)
        return int(idx[np.argmin(self.criterion(self.infos[idx]))])

    def accept(self, i: int) -> None:
        self.total = self.total + self.infos[i]
        self.open[i] = False

    def drop(self, i: int) -> None:
        self.open[i] = False
