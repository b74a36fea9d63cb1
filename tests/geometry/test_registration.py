"""Point-to-plane registration of a depth camera's points to a model surface (robot_wm.geometry.registration)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.geometry import Intrinsics, Pose, look_at_camera2world
from robot_wm.geometry.registration import depth_surface, point_to_plane_icp

K = Intrinsics(160, 120, 120.0, 120.0, 80.0, 60.0)


def _render(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Depth (h, w) m and a 'robot' mask of a table (z = 0) with a 10 cm cube standing on it at (0.5, 0.1),
    seen by K at `pose`: ray casting."""
    vv, uu = np.mgrid[0:K.height, 0:K.width]
    rays = np.stack([(uu - K.cx) / K.fx, (vv - K.cy) / K.fy, np.ones_like(uu, float)], -1)
    d = rays @ pose.rotation.as_matrix().T
    o = pose.position
    t_table = np.where(d[..., 2] < 0, -o[2] / np.minimum(d[..., 2], -1e-9), np.inf)
    lo, hi = np.array([0.45, 0.05, 0.0]), np.array([0.55, 0.15, 0.1])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    tn = np.nanmax(np.minimum(t1, t2), -1)
    tf = np.nanmin(np.maximum(t1, t2), -1)
    hit_box = (tn <= tf) & (tn > 0)
    t = np.where(hit_box & (tn < t_table), tn, t_table)
    depth = np.where(np.isfinite(t), t, 0.0)  # along the ray of unit z in the camera frame: t is the depth
    return depth, hit_box & (tn < t_table)


CAM = look_at_camera2world(np.array([1.1, 0.4, 0.6]), np.array([0.5, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))


def _observed(true_pose: Pose) -> np.ndarray:
    depth, _ = _render(true_pose)
    pts, _, _ = depth_surface(depth, K, CAM)  # deprojected with the calibrated pose, as the monitor does
    return pts


def test_an_unmoved_camera_fits_at_the_identity():
    depth, robot = _render(CAM)
    model, normals, flags = depth_surface(depth, K, CAM, robot)
    assert flags.any() and (~flags).any()
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    fit = point_to_plane_icp(_observed(CAM), model, normals, flags)
    assert fit is not None and fit.displacement(CAM.position) < 1e-4 and fit.angle_deg < 0.01


@pytest.mark.parametrize("move", [("shift", [0.01, 0.0, 0.0]), ("shift", [0.0, -0.006, 0.004]),
                                  ("turn", [0.0, 1.0, 0.0]), ("turn", [0.6, 0.0, 0.6])])
def test_a_moved_camera_is_measured(move):
    kind, v = move
    if kind == "shift":
        moved = Pose(CAM.position + np.array(v), CAM.quaternion)
    else:
        moved = Pose(CAM.position, (Rotation.from_rotvec(np.radians(v)) * CAM.rotation).as_quat())
    depth, robot = _render(CAM)
    model, normals, flags = depth_surface(depth, K, CAM, robot)
    fit = point_to_plane_icp(_observed(moved), model, normals, flags)
    assert fit is not None
    if kind == "shift":
        assert fit.displacement(CAM.position) == pytest.approx(np.linalg.norm(v), rel=0.25)
    else:  # a turn the table cannot see is held by the small cube alone: under-read by up to a third
        assert 0.6 * np.linalg.norm(v) <= fit.angle_deg <= 1.2 * np.linalg.norm(v)


def test_a_plane_alone_leaves_its_free_directions_at_zero():
    """A table alone cannot tell a sideways shift: the damped fit stays put there instead of drifting."""
    depth, robot = _render(CAM)
    keep = ~robot
    model, normals, _ = depth_surface(np.where(keep, depth, 0.0), K, CAM)
    moved = Pose(CAM.position + np.array([0.0, 0.0, 0.01]), CAM.quaternion)
    d2, r2 = _render(moved)
    obs, _, _ = depth_surface(np.where(~r2, d2, 0.0), K, CAM)
    fit = point_to_plane_icp(obs, model, normals)
    assert fit is not None
    assert abs(fit.translation[2]) == pytest.approx(0.01, abs=0.002)  # the height is seen
    assert np.linalg.norm(fit.translation[:2]) < 0.005
    assert fit.information[0] < 1e-2 * fit.information[-1]  # and the free directions are reported
    # ... and taken out: what the plane does not constrain (its in-plane shift, its turn about the vertical)
    # is no evidence of motion, the height it sees stays
    c = fit.constrained()
    assert np.linalg.norm(c.translation[:2] + (c.rotation - np.eye(3))[:2] @ c.center) < 1e-4
    assert c.displacement(c.center) == pytest.approx(abs(fit.translation[2]), abs=0.001)
    assert abs(Rotation.from_matrix(c.rotation).as_rotvec()[2]) < 1e-6


def test_too_few_points_give_none():
    pts = np.random.default_rng(0).normal(size=(50, 3))
    assert point_to_plane_icp(pts, pts, np.tile([0.0, 0.0, 1.0], (50, 1))) is None


def _l_shape(rng: np.random.Generator, n: int = 4000) -> np.ndarray:
    """Points on the top and the side faces of an L-shaped block (two 2.5 cm thick arms, 9 and 7 cm long,
    4 cm tall) standing on the table at (0.5, 0): no symmetry, so its turn is defined over a full turn."""
    outline = np.array([[0, 0], [0.09, 0], [0.09, 0.025], [0.025, 0.025], [0.025, 0.07], [0, 0.07]])
    edges = np.roll(outline, -1, 0) - outline
    lengths = np.linalg.norm(edges, axis=1)
    k = rng.choice(len(outline), n // 2, p=lengths / lengths.sum())
    sides = outline[k] + rng.random((n // 2, 1)) * edges[k]
    sides = np.c_[sides, rng.uniform(0, 0.04, n // 2)]
    top = np.r_[rng.uniform([0, 0], [0.09, 0.025], (n // 4, 2)), rng.uniform([0, 0], [0.025, 0.07], (n // 4, 2))]
    return np.r_[sides, np.c_[top, np.full(len(top), 0.04)]] + [0.5, 0.0, 0.0]


@pytest.mark.parametrize("turn", [0.0, 0.3, -0.7, 1.2])
def test_planar_turn_recovers_turn_and_shift_of_a_partly_seen_object(turn):
    from robot_wm.geometry.registration import _turn_xy, planar_turn

    rng = np.random.default_rng(1)
    before = _l_shape(rng)
    after = _turn_xy(_l_shape(rng), turn, before[:, :2].mean(0), np.array([0.03, -0.02]))
    after = after[after[:, 1] > after[:, 1].min() + 0.01]  # one side not seen any more
    after = after + rng.normal(0.0, 0.001, after.shape)  # depth noise
    fit = planar_turn(before, after)
    assert fit is not None
    assert fit.turn == pytest.approx(turn, abs=np.radians(2.0))
    assert fit.rms < 0.004


def test_planar_turn_needs_points():
    from robot_wm.geometry.registration import planar_turn

    assert planar_turn(np.zeros((10, 3)), np.zeros((500, 3))) is None
