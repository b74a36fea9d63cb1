"""Choosing calibration views by information: the design's model is the solver's, and what it prefers is what
helps (edges and tilts over centred, face-on boards)."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.perception.calibration import View, _reprojection
from robot_wm.perception.calibration_design import (
    PARAMS,
    ViewDesign,
    _turn,
    interest_weights,
    prior_sigma,
    view_information,
)

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
CORNERS = np.array([[0.03 * i, 0.03 * j, 0.0] for i in range(1, 5) for j in range(1, 7)])  # (24, 3) board frame
CENTRE = CORNERS.mean(axis=0)


def _mat(rot: Rotation, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = rot.as_matrix()
    m[:3, 3] = t
    return m


def _board_at(u: float, v: float, depth: float, tilt: np.ndarray) -> np.ndarray:
    """board2world (= the robot pose with target2tcp = identity) centred on pixel (u, v) of a camera at the
    origin looking along +z, `depth` m away, turned by rotation vector `tilt`."""
    rot = Rotation.from_rotvec(tilt)
    c = depth * np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
    return _mat(rot, c - rot.apply(CENTRE))


class _Board:
    corners = CORNERS


@pytest.mark.parametrize("mount", ["world", "hand"])
def test_information_is_the_solvers_model(mount):
    """The design's Jacobian predicts how the solver's reprojection moves when the camera turns and shifts."""
    rng = np.random.default_rng(0)
    camera = _mat(Rotation.from_rotvec(rng.normal(0, 0.3, 3)), rng.normal(0, 0.2, 3))
    target = _mat(Rotation.from_rotvec(rng.normal(0, 0.3, 3)), rng.normal(0, 0.05, 3))
    seen = _board_at(300, 250, 0.6, np.array([0.2, -0.1, 0.3]))  # target2camera: 0.6 m in front, tilted
    # the robot pose that shows it: world mount inv(camera) robot target = seen; hand inv(camera) inv(robot) target
    robot = camera @ seen @ np.linalg.inv(target) if mount == "world" else \
        target @ np.linalg.inv(seen) @ np.linalg.inv(camera)
    view = View(np.arange(len(CORNERS)), np.zeros((len(CORNERS), 2)), robot)
    base = _reprojection([view], _Board(), K, camera, target, mount).ravel()
    assert np.all(np.isfinite(base))
    info = view_information(K, camera, target, robot, CORNERS, mount, sigma_px=1.0)
    assert info.shape == (PARAMS, PARAMS)
    assert np.allclose(info, info.T)
    assert np.linalg.eigvalsh(info).min() > -1e-6 * np.abs(info).max()
    # J^T J with sigma 1: recover J's action along a direction from the solver's own model
    d = np.r_[np.zeros(4), 1e-4 * np.array([1.0, -2.0, 0.5]), 1e-4 * np.array([0.3, 0.2, -0.4]), np.zeros(6)]
    moved = _reprojection([view], _Board(), K, _turn(camera, d[4:10]), target, mount).ravel()
    change = moved - base
    assert np.linalg.norm(change) > 1e-3
    assert d @ info @ d == pytest.approx(change @ change, rel=1e-3)


def _criterion(views: list[np.ndarray]) -> float:
    design = ViewDesign(np.stack([view_information(K, np.eye(4), np.eye(4), v, CORNERS) for v in views]),
                        interest_weights(500.0), prior_sigma(500.0))
    for i in range(len(views)):
        design.accept(i)
    return float(design.criterion())


def test_edges_and_tilts_teach_more_than_centred_face_on_boards():
    """The principal point and a turn of the camera look alike near the image centre: boards near the edges at
    varied tilt pin the rotation down better than the same number of boards in the middle."""
    rng = np.random.default_rng(1)
    centred = [_board_at(320 + rng.normal(0, 10), 240 + rng.normal(0, 10), rng.uniform(0.5, 0.7),
                         rng.normal(0, 0.05, 3)) for _ in range(10)]
    spread = [_board_at(rng.choice([100, 540]), rng.choice([90, 390]), rng.uniform(0.5, 0.7),
                        rng.normal(0, 0.5, 3)) for _ in range(10)]
    assert _criterion(spread) < 0.5 * _criterion(centred)


def test_greedy_choice_beats_taking_candidates_as_they_come():
    rng = np.random.default_rng(2)
    pool = [_board_at(rng.uniform(100, 540), rng.uniform(90, 390), rng.uniform(0.4, 0.9), rng.normal(0, 0.4, 3))
            for _ in range(60)]
    infos = np.stack([view_information(K, np.eye(4), np.eye(4), v, CORNERS) for v in pool])
    design = ViewDesign(infos, interest_weights(500.0), prior_sigma(500.0))
    before = design.criterion()
    chosen = []
    for _ in range(8):
        i = design.next()
        design.accept(i)
        chosen.append(i)
        after = design.criterion()
        assert after < before  # each view adds information
        before = after
    assert len(set(chosen)) == 8
    assert design.criterion() < _criterion(pool[:8])


def test_next_respects_allowed_and_dropped():
    infos = np.stack([np.eye(PARAMS) * s for s in (1.0, 5.0, 3.0)])
    design = ViewDesign(infos, np.ones(PARAMS), np.ones(PARAMS))
    assert design.next() == 1  # the most information
    design.drop(1)
    assert design.next() == 2
    assert design.next(np.array([True, False, False])) == 0
    design.accept(0)
    assert design.next(np.array([True, True, False])) is None
    assert math.isfinite(design.criterion())
