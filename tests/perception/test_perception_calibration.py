"""The calibration solvers on synthetic corner data (no rendering): exact recovery of a known fixed camera and of
a known wrist camera (eye-in-hand) from perfect corners, a small error under corner noise, and clear errors for
too few views and degenerate motion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.perception.calibration import (
    CalibrationError,
    Charuco,
    CharucoBoardConfig,
    View,
    calibrate_fixed_camera,
    calibrate_hand_camera,
    calibrate_intrinsics,
    pose_error,
)

BOARD = CharucoBoardConfig(squares_x=5, squares_y=7, square_size=0.03, marker_size=0.022)
K = np.array([[554.26, 0.0, 319.5], [0.0, 554.26, 239.5], [0.0, 0.0, 1.0]])
SIZE = (640, 480)


def _mat(rot: Rotation, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot.as_matrix(), t
    return m


CAMERA2WORLD = _mat(Rotation.from_quat([-0.662512, -0.662512, 0.247139, 0.247139]), [1.15, 0.0, 0.75])
TARGET2TCP = _mat(Rotation.from_euler("xz", [180, 3], degrees=True), [-0.075, 0.105, 0.03])


# a wrist camera 7 cm off the flange axis, looking along the flange z; the board lying face up on the table
CAMERA2FLANGE = _mat(Rotation.from_euler("z", -135, degrees=True), [0.0495, -0.0495, 0.04])
TARGET2WORLD = _mat(Rotation.from_euler("xz", [180, 5], degrees=True), [0.43, 0.1, 0.004])


def synthetic_views(n: int, rng: np.random.Generator, noise_px: float = 0.0, rotate: bool = True,
                    mount: str = "world") -> list[View]:
    """Views of the board seen by the camera at 0.5-0.8 m (world: held at TARGET2TCP, the TCP placed so the
    board faces the fixed camera) or 0.25-0.5 m (hand: the wrist camera at CAMERA2FLANGE moved over the board at
    TARGET2WORLD), tilted up to 35 deg (`rotate`) or all at one orientation. Robot poses: TCP (world) or flange
    (hand)."""
    charuco = Charuco(BOARD)
    views = []
    while len(views) < n:
        tilt = Rotation.from_rotvec(rng.normal(size=3) * 0.35) if rotate else Rotation.identity()
        far = (0.5, 0.8) if mount == "world" else (0.25, 0.5)
        board2cam = _mat(tilt, [rng.uniform(-0.1, 0.0), rng.uniform(-0.12, -0.05), rng.uniform(*far)])
        if mount == "hand":
            tcp2world = TARGET2WORLD @ np.linalg.inv(board2cam) @ np.linalg.inv(CAMERA2FLANGE)  # the flange
        else:
            tcp2world = CAMERA2WORLD @ board2cam @ np.linalg.inv(TARGET2TCP)
        pts = charuco.corners @ board2cam[:3, :3].T + board2cam[:3, 3]
        uv = (pts @ K.T)[:, :2] / pts[:, 2:]
        inside = np.all((uv > 5) & (uv < np.array(SIZE) - 5), axis=1)
        if inside.sum() < 12:
            continue
        ids = np.flatnonzero(inside)
        views.append(View(ids, uv[ids] + rng.normal(0.0, noise_px, (len(ids), 2)) * (noise_px > 0), tcp2world))
    return views


def test_perfect_corners_recover_the_camera_exactly():
    res = calibrate_fixed_camera(synthetic_views(10, np.random.default_rng(0)), Charuco(BOARD), SIZE)
    dt, dr = pose_error(res.camera2world, CAMERA2WORLD)
    assert dt < 1e-3 and dr < 1e-4  # mm, deg
    assert abs(res.fx - K[0, 0]) < 1e-3 and abs(res.cy - K[1, 2]) < 1e-3
    assert res.reprojection_px_rms < 1e-4
    for name, m in res.methods.items():  # every OpenCV method is fed the eye-to-hand form correctly
        assert pose_error(m["camera2world"], CAMERA2WORLD)[0] < 1.0, name


def test_corner_noise_gives_a_small_error_and_a_matching_uncertainty():
    res = calibrate_fixed_camera(synthetic_views(15, np.random.default_rng(1), noise_px=0.2), Charuco(BOARD), SIZE)
    dt, dr = pose_error(res.camera2world, CAMERA2WORLD)
    assert dt < 2.0 and dr < 0.1
    assert 0.15 < res.sigma["corner_px"] < 0.25
    assert dt < 5 * res.sigma["camera_trans_mm"]  # the 1-sigma estimate is of the right size
    best = min(pose_error(m["camera2world"], CAMERA2WORLD)[0] for m in res.methods.values())
    assert res.reprojection_px_rms <= min(m["reprojection_px_rms"] for m in res.methods.values()) + 1e-9
    assert dt < best + 0.5


def test_perfect_corners_recover_a_wrist_camera_exactly():
    res = calibrate_hand_camera(synthetic_views(10, np.random.default_rng(4), mount="hand"), Charuco(BOARD), SIZE)
    assert res.mount == "hand"
    dt, dr = pose_error(res.camera2world, CAMERA2FLANGE)  # camera2flange
    assert dt < 1e-3 and dr < 1e-4  # mm, deg
    assert pose_error(res.target2tcp, TARGET2WORLD)[0] < 1e-3  # where the board lies
    assert abs(res.fx - K[0, 0]) < 1e-3 and res.reprojection_px_rms < 1e-4
    assert set(res.methods) == {"tsai", "park", "horaud", "andreff", "daniilidis", "shah", "li"}
    for name, m in res.methods.items():  # every OpenCV method is fed the eye-in-hand form correctly
        assert pose_error(m["camera2world"], CAMERA2FLANGE)[0] < 1.0, name


def test_wrist_camera_under_corner_noise_is_at_least_as_good_as_the_best_method():
    res = calibrate_hand_camera(synthetic_views(15, np.random.default_rng(5), noise_px=0.2, mount="hand"),
                                Charuco(BOARD), SIZE)
    dt, dr = pose_error(res.camera2world, CAMERA2FLANGE)
    assert dt < 1.0 and dr < 0.1
    assert dt < 5 * res.sigma["camera_trans_mm"]
    best = min(pose_error(m["camera2world"], CAMERA2FLANGE)[0] for m in res.methods.values())
    assert dt < best + 0.2


def test_wrist_camera_translation_only_motion_is_degenerate():
    views = synthetic_views(8, np.random.default_rng(6), rotate=False, mount="hand")
    with pytest.raises(CalibrationError, match="degenerate motion"):
        calibrate_hand_camera(views, Charuco(BOARD), SIZE)


def test_too_few_views_is_an_error():
    with pytest.raises(CalibrationError, match="too few views"):
        calibrate_intrinsics(synthetic_views(3, np.random.default_rng(2)), Charuco(BOARD), SIZE)


def test_translation_only_motion_is_degenerate():
    views = synthetic_views(8, np.random.default_rng(3), rotate=False)
    with pytest.raises(CalibrationError, match="degenerate motion"):
        calibrate_fixed_camera(views, Charuco(BOARD), SIZE)
