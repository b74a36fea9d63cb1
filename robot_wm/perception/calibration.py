"""Camera calibration from ChArUco views: the board (layout from ``calibration/targets/charuco_board.yaml``),
corner detection, intrinsics, the camera's pose by every OpenCV hand-eye method — eye-to-hand (a fixed camera, the
board held by the gripper) or eye-in-hand (a wrist camera, the board lying still in the world) — and a joint
least-squares refinement on reprojection error with an uncertainty estimate.

OpenCV (``opencv-python-headless`` 4.x) is imported lazily, only inside the functions that use it, so the rest
of the stack runs without it.

Frames and conventions: board frame as OpenCV's ChArUco object frame (origin at the board's outer top-left
corner, x along the squares_x side, y along squares_y, z into the board; corner coordinates (x, y, 0) m).
``tcp2world`` (4x4) is the gripper TCP pose from forward kinematics of the measured joints; ``target2tcp`` is
where the gripper holds the board (unknown to the solver); ``camera2world`` is the optical frame (x right,
y down, z forward) in the world, what a calibration file stores. Eye-in-hand (``mount="hand"``): the robot pose
of a view is ``flange2world`` (4x4, forward kinematics to the flange), the unknowns are ``camera2flange`` (what the
calibration file of a hand-mounted camera stores) and ``target2world`` (where the board lies). Pixel coordinates:
OpenCV's (pixel centres at integers). The camera model is the calibration contract's: pinhole without lens
distortion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from robot_wm.config.loader import load_yaml_model
from robot_wm.config.models import StrictModel
from robot_wm.geometry import Pose

DICTIONARIES = ("DICT_4X4_50", "DICT_4X4_100", "DICT_4X4_250", "DICT_5X5_50", "DICT_5X5_100", "DICT_5X5_250",
                "DICT_6X6_50", "DICT_6X6_100", "DICT_6X6_250", "DICT_7X7_50", "DICT_7X7_100", "DICT_7X7_250")
HANDEYE_METHODS = ("tsai", "park", "horaud", "andreff", "daniilidis")
ROBOT_WORLD_METHODS = ("shah", "li")  # cv2.calibrateRobotWorldHandEye
MIN_VIEWS = 4  # fewer views cannot constrain intrinsics and an eye-to-hand pose
MIN_CORNERS = 8  # corners a view needs to count
MIN_ROTATION_DEG = 10.0  # the views' TCP orientations must span at least this much, about two distinct axes


class CalibrationError(ValueError):
    """Bad captures (board not found, too few views, degenerate motion): the message is one line."""


class CharucoBoardConfig(StrictModel):
    """A ChArUco board (``calibration/targets/charuco_board.yaml``). Sizes in m."""

    name: str = Field(default="charuco", min_length=1)
    squares_x: int = Field(ge=3, le=30)
    squares_y: int = Field(ge=3, le=30)
    square_size: float = Field(gt=0.005, le=0.2)
    marker_size: float = Field(gt=0.002, le=0.2)
    dictionary: Literal[DICTIONARIES] = "DICT_4X4_50"  # type: ignore[valid-type]
    pixels_per_square: int = Field(default=100, ge=20, le=400)  # resolution of the printed (simulated) image
    thickness: float = Field(default=0.004, gt=0, le=0.05)  # m, the simulated board's backing
    standoff: float = Field(default=0.03, ge=0, le=0.2)  # m, board face beyond the TCP along the TCP's z (sim)

    @model_validator(mode="after")
    def _consistent(self) -> CharucoBoardConfig:
        if self.marker_size >= self.square_size:
            raise ValueError(f"marker_size: must be < square_size ({self.square_size}) (got {self.marker_size})")
        markers = (self.squares_x * self.squares_y) // 2
        capacity = int(self.dictionary.rsplit("_", 1)[1])
        if markers > capacity:
            raise ValueError(f"dictionary: {self.dictionary} has {capacity} markers, the board needs {markers}")
        return self

    @property
    def width(self) -> float:
        return self.squares_x * self.square_size

    @property
    def height(self) -> float:
        return self.squares_y * self.square_size

    def board2tcp(self) -> Pose:
        """Where the simulated gripper holds the board: printed face (normal -z_board) facing along +z_tcp, its
        centre `standoff` m beyond the TCP, board x along TCP x."""
        rot = Rotation.from_euler("x", np.pi)  # board x = tcp x, board y = -tcp y, board z = -tcp z
        centre = np.array([self.width / 2, self.height / 2, 0.0])
        return Pose(np.array([0.0, 0.0, self.standoff]) - rot.apply(centre), rot.as_quat())


def load_board(path: str | Path) -> CharucoBoardConfig:
    """Load and validate a board file; raises ConfigError (one line) on any problem."""
    return load_yaml_model(path, CharucoBoardConfig)


class Charuco:
    """The cv2 board and detector of a :class:`CharucoBoardConfig`."""

    def __init__(self, cfg: CharucoBoardConfig) -> None:
        import cv2

        self.cfg = cfg
        self.dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, cfg.dictionary))
        self.board = cv2.aruco.CharucoBoard((cfg.squares_x, cfg.squares_y), cfg.square_size, cfg.marker_size,
                                            self.dictionary)
        self.detector = cv2.aruco.CharucoDetector(self.board)
        self.corners = np.asarray(self.board.getChessboardCorners(), float).reshape(-1, 3)  # (K, 3) board frame

    def image(self) -> np.ndarray:
        """The printed board, uint8 (squares_y * pixels_per_square, squares_x * pixels_per_square), no margin."""
        p = self.cfg.pixels_per_square
        return self.board.generateImage((self.cfg.squares_x * p, self.cfg.squares_y * p), marginSize=0)

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ChArUco corners in an RGB image (H, W, 3) uint8: ids (M,) int and pixels (M, 2) float, refined with
        ``cornerSubPix`` (the detector's own interpolated corners sit ~0.5 px off on sharp images)."""
        import cv2

        gray = cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2GRAY)
        corners, ids, _, _ = self.detector.detectBoard(gray)
        if ids is None or len(ids) == 0:
            return np.zeros(0, int), np.zeros((0, 2))
        uv = np.asarray(corners, np.float32).reshape(-1, 1, 2)
        # window: a quarter of the apparent square size (distance between the closest detected corners)
        if len(uv) > 1:
            d = np.linalg.norm(uv[:, 0, None, :] - uv[None, :, 0, :], axis=2)
            d[d == 0] = np.inf
            half = int(np.clip(0.25 * float(np.min(d)), 2, 10))
        else:
            half = 3
        crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
        uv = cv2.cornerSubPix(gray, uv, (half, half), (-1, -1), crit)
        return np.asarray(ids, int).reshape(-1), np.asarray(uv, float).reshape(-1, 2)


@dataclass
class View:
    """One capture: detected corner `ids` (M,), their pixels `uv` (M, 2) and the robot pose from the measured
    joints, `tcp2world` (4x4): the TCP's pose for a fixed camera (the board held by the gripper), the flange's
    pose (flange2world) for a hand-mounted camera."""

    ids: np.ndarray
    uv: np.ndarray
    tcp2world: np.ndarray


@dataclass
class CalibrationResult:
    """Intrinsics (px), `camera2world` (4x4), `target2tcp` (4x4), per-method OpenCV estimates and the joint
    refinement's residuals and 1-sigma uncertainties.

    `mount` ``world``: `camera2world` is the fixed camera's pose in the world and `target2tcp` the board's pose on
    the TCP. ``hand``: `camera2world` is camera2flange (the camera's pose on the flange, what the calibration file
    of a hand-mounted camera stores) and `target2tcp` is target2world (where the board lay); each method's
    ``camera2world`` likewise."""

    fx: float
    fy: float
    cx: float
    cy: float
    camera2world: np.ndarray
    target2tcp: np.ndarray
    reprojection_px_rms: float
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {camera2world, reprojection_px_rms}
    sigma: dict[str, float] = field(default_factory=dict)
    views: int = 0
    corners: int = 0
    mount: str = "world"

    def camera2world_pose(self) -> Pose:
        return Pose.from_matrix(self.camera2world)


def _rt(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return m[:3, :3], m[:3, 3]


def _mat(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, np.asarray(t).reshape(3)
    return m


def _vec_to_mat(v: np.ndarray) -> np.ndarray:
    return _mat(Rotation.from_rotvec(v[:3]).as_matrix(), v[3:6])


def _mat_to_vec(m: np.ndarray) -> np.ndarray:
    return np.concatenate([Rotation.from_matrix(m[:3, :3]).as_rotvec(), m[:3, 3]])


def _check_motion(views: list[View]) -> None:
    """CalibrationError when the TCP orientations do not span two rotation axes by MIN_ROTATION_DEG."""
    rots = Rotation.from_matrix(np.stack([v.tcp2world[:3, :3] for v in views]))
    axes = []
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            rv = (rots[i].inv() * rots[j]).as_rotvec()
            if np.linalg.norm(rv) > math.radians(MIN_ROTATION_DEG):
                axes.append(rv / np.linalg.norm(rv))
    if len(axes) < 2 or np.linalg.svd(np.asarray(axes), compute_uv=False)[1] < 0.1 * math.sqrt(len(axes)):
        raise CalibrationError(f"degenerate motion: the {len(views)} views' gripper orientations do not differ by "
                               f">= {MIN_ROTATION_DEG:g} deg about two distinct axes (hand-eye is unobservable)")


def calibrate_intrinsics(views: list[View], charuco: Charuco, size: tuple[int, int]
                         ) -> tuple[np.ndarray, list[np.ndarray], float, np.ndarray]:
    """``cv2.calibrateCamera`` (pinhole, no distortion) on the views: K (3, 3), target2camera (4x4) per view,
    RMS reprojection error (px) and the 1-sigma uncertainties (4,) of fx, fy, cx, cy (px). `size`: (width,
    height) px."""
    import cv2

    if len(views) < MIN_VIEWS:
        raise CalibrationError(f"too few views with the board found: {len(views)} (need >= {MIN_VIEWS})")
    obj = [charuco.corners[v.ids].astype(np.float32) for v in views]
    img = [v.uv.astype(np.float32).reshape(-1, 1, 2) for v in views]
    flags = (cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3)
    rms, k, _, rvecs, tvecs, sd, _, _ = cv2.calibrateCameraExtended(obj, img, size, None, np.zeros(5), flags=flags)
    t2c = [_mat(cv2.Rodrigues(r)[0], t) for r, t in zip(rvecs, tvecs, strict=True)]
    return np.asarray(k, float), t2c, float(rms), np.asarray(sd, float).ravel()[:4]


def project(k: np.ndarray, pts_cam: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) of points (N, 3) in the camera's optical frame through the pinhole `k` (3x3)."""
    z = pts_cam[:, 2:3]
    return np.column_stack([k[0, 0] * pts_cam[:, 0:1] / z + k[0, 2], k[1, 1] * pts_cam[:, 1:2] / z + k[1, 2]])


def target2camera(robot: np.ndarray, camera: np.ndarray, target: np.ndarray, mount: str) -> np.ndarray:
    """The board's pose in the camera (4x4) through the kinematic chain of one view whose robot pose is `robot`
    (4x4: tcp2world, or flange2world for a hand camera). `mount` world: `camera` is camera2world, `target`
    target2tcp; hand: `camera` is camera2flange, `target` target2world."""
    if mount == "hand":
        return np.linalg.inv(camera) @ np.linalg.inv(robot) @ target
    return np.linalg.inv(camera) @ robot @ target


def _reprojection(views: list[View], charuco: Charuco, k: np.ndarray, camera2world: np.ndarray,
                  target2tcp: np.ndarray, mount: str = "world") -> np.ndarray:
    """Residuals (N, 2) px of every corner through the kinematic chain (`mount`: see :func:`target2camera`)."""
    out = []
    for v in views:
        m = target2camera(v.tcp2world, camera2world, target2tcp, mount)
        pts = charuco.corners[v.ids] @ m[:3, :3].T + m[:3, 3]
        out.append(project(k, pts) - v.uv)
    return np.concatenate(out)


def _target2tcp_from(views: list[View], t2c: list[np.ndarray], camera2world: np.ndarray,
                     mount: str = "world") -> np.ndarray:
    """The board's pose given the camera's, as the mean over views (rotation mean, translation mean) of
    world2tcp @ camera2world @ target2camera (`mount` world: target2tcp) or flange2world @ camera2flange @
    target2camera (hand: target2world)."""
    if mount == "hand":
        ms = [v.tcp2world @ camera2world @ t for v, t in zip(views, t2c, strict=True)]
    else:
        ms = [np.linalg.inv(v.tcp2world) @ camera2world @ t for v, t in zip(views, t2c, strict=True)]
    r = Rotation.from_matrix(np.stack([m[:3, :3] for m in ms])).mean().as_matrix()
    return _mat(r, np.mean([m[:3, 3] for m in ms], axis=0))


def handeye_opencv(views: list[View], t2c: list[np.ndarray], method: str, mount: str = "world") -> np.ndarray:
    """The camera's pose (4x4) by one OpenCV method. `mount` world: camera2world of a fixed camera,
    ``calibrateHandEye`` fed the inverted robot poses (world2tcp as "gripper2base", the eye-to-hand form) or
    ``calibrateRobotWorldHandEye`` (shah, li). hand: camera2flange of a wrist camera, ``calibrateHandEye`` in its
    native eye-in-hand form (flange2world as "gripper2base"; it returns "cam2gripper") or
    ``calibrateRobotWorldHandEye`` with the board as its "world", the robot base as "base" and the flange as
    "gripper" (it returns "gripper2cam", flange-to-camera coordinates: the inverse of camera2flange)."""
    import cv2

    if mount == "hand":
        f2w = [v.tcp2world for v in views]
        if method in HANDEYE_METHODS:
            r, t = cv2.calibrateHandEye([m[:3, :3] for m in f2w], [m[:3, 3] for m in f2w],
                                        [m[:3, :3] for m in t2c], [m[:3, 3] for m in t2c],
                                        method=getattr(cv2, f"CALIB_HAND_EYE_{method.upper()}"))
            return _mat(r, t)
        w2f = [np.linalg.inv(m) for m in f2w]
        _, _, r, t = cv2.calibrateRobotWorldHandEye([m[:3, :3] for m in t2c], [m[:3, 3] for m in t2c],
                                                    [m[:3, :3] for m in w2f], [m[:3, 3] for m in w2f],
                                                    method=getattr(cv2, f"CALIB_ROBOT_WORLD_HAND_EYE_{method.upper()}"))
        return np.linalg.inv(_mat(r, t))
    if method in HANDEYE_METHODS:
        w2t = [np.linalg.inv(v.tcp2world) for v in views]
        r, t = cv2.calibrateHandEye([m[:3, :3] for m in w2t], [m[:3, 3] for m in w2t],
                                    [m[:3, :3] for m in t2c], [m[:3, 3] for m in t2c],
                                    method=getattr(cv2, f"CALIB_HAND_EYE_{method.upper()}"))
        return _mat(r, t)
    # cMw = cMg gMb bMw with w := target, g := world, b := tcp: inputs target2camera and tcp2world; outputs
    # target2tcp ("base2world") and world2camera ("gripper2cam")
    t2w = [v.tcp2world for v in views]
    _, _, r, t = cv2.calibrateRobotWorldHandEye([m[:3, :3] for m in t2c], [m[:3, 3] for m in t2c],
                                                [m[:3, :3] for m in t2w], [m[:3, 3] for m in t2w],
                                                method=getattr(cv2, f"CALIB_ROBOT_WORLD_HAND_EYE_{method.upper()}"))
    return np.linalg.inv(_mat(r, t))


def calibrate_fixed_camera(views: list[View], charuco: Charuco, size: tuple[int, int],
                           methods: tuple[str, ...] = HANDEYE_METHODS + ROBOT_WORLD_METHODS) -> CalibrationResult:
    """A fixed camera (eye-to-hand; views' robot poses are TCP poses): :func:`calibrate_camera` with mount
    world."""
    return calibrate_camera(views, charuco, size, methods, "world")


def calibrate_hand_camera(views: list[View], charuco: Charuco, size: tuple[int, int],
                          methods: tuple[str, ...] = HANDEYE_METHODS + ROBOT_WORLD_METHODS) -> CalibrationResult:
    """A hand-mounted camera (eye-in-hand; views' robot poses are flange poses, the board lies still):
    :func:`calibrate_camera` with mount hand; the result's `camera2world` is camera2flange."""
    return calibrate_camera(views, charuco, size, methods, "hand")


def calibrate_camera(views: list[View], charuco: Charuco, size: tuple[int, int],
                     methods: tuple[str, ...] = HANDEYE_METHODS + ROBOT_WORLD_METHODS,
                     mount: str = "world") -> CalibrationResult:
    """Intrinsics, then hand-eye by each of `methods` (eye-to-hand for `mount` world, eye-in-hand for hand),
    then a joint refinement (scipy least squares over fx, fy, cx, cy, the camera's pose and the board's pose on
    every corner's reprojection through the robot's kinematic chain) started from the method with the lowest
    reprojection error. Uncertainty: 1-sigma from the Gauss-Newton covariance (J^T J)^-1 * residual variance."""
    if mount not in ("world", "hand"):
        raise ValueError(f"mount must be world or hand (got {mount!r})")
    views = [v for v in views if len(v.ids) >= MIN_CORNERS]
    k, t2c, _, _ = calibrate_intrinsics(views, charuco, size)
    _check_motion(views)
    found: dict[str, dict[str, Any]] = {}
    for m in methods:
        c2w = handeye_opencv(views, t2c, m, mount)
        if not np.all(np.isfinite(c2w)):
            continue
        res = _reprojection(views, charuco, k, c2w, _target2tcp_from(views, t2c, c2w, mount), mount)
        found[m] = {"camera2world": c2w, "reprojection_px_rms": float(np.sqrt(np.mean(np.sum(res ** 2, axis=1))))}
    if not found:
        raise CalibrationError("every hand-eye method failed on these views")
    best = min(found, key=lambda m: found[m]["reprojection_px_rms"])
    c2w0 = found[best]["camera2world"]
    x0 = np.concatenate([[k[0, 0], k[1, 1], k[0, 2], k[1, 2]], _mat_to_vec(c2w0),
                         _mat_to_vec(_target2tcp_from(views, t2c, c2w0, mount))])

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kk = np.array([[x[0], 0, x[2]], [0, x[1], x[3]], [0, 0, 1.0]])
        return kk, _vec_to_mat(x[4:10]), _vec_to_mat(x[10:16])

    def fun(x: np.ndarray) -> np.ndarray:
        return _reprojection(views, charuco, *unpack(x), mount).ravel()

    sol = least_squares(fun, x0, method="lm", x_scale="jac")
    kk, c2w, t2t = unpack(sol.x)
    r = sol.fun.reshape(-1, 2)
    dof = max(1, sol.fun.size - sol.x.size)
    s2 = float(np.sum(sol.fun ** 2) / dof)
    cov = np.linalg.pinv(sol.jac.T @ sol.jac) * s2
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    sigma = {"fx_px": sd[0], "fy_px": sd[1], "cx_px": sd[2], "cy_px": sd[3],
             "camera_rot_deg": math.degrees(float(np.linalg.norm(sd[4:7]))),
             "camera_trans_mm": 1e3 * float(np.linalg.norm(sd[7:10])),
             "corner_px": math.sqrt(s2)}
    return CalibrationResult(float(kk[0, 0]), float(kk[1, 1]), float(kk[0, 2]), float(kk[1, 2]), c2w, t2t,
                             float(np.sqrt(np.mean(np.sum(r ** 2, axis=1)))), found,
                             {a: float(b) for a, b in sigma.items()}, len(views), int(sum(len(v.ids) for v in views)),
                             mount)


def pose_error(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(translation error mm, rotation error deg) between two 4x4 poses."""
    dt = 1e3 * float(np.linalg.norm(estimate[:3, 3] - truth[:3, 3]))
    dr = math.degrees(float(np.linalg.norm(Rotation.from_matrix(estimate[:3, :3] @ truth[:3, :3].T).as_rotvec())))
    return dt, dr
