import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.geometry import (
    Intrinsics,
    Pose,
    deproject_depth,
    depth_buffer_to_metric,
    look_at_camera2world,
    min_area_rectangle,
    opengl_projection_matrix,
    project_points,
    upright_box,
)


def random_pose(rng):
    return Pose(rng.normal(size=3), Rotation.random(random_state=rng.integers(1 << 31)).as_quat())


def test_compose_and_inverse_match_matrices():
    rng = np.random.default_rng(0)
    a, b = random_pose(rng), random_pose(rng)
    np.testing.assert_allclose((a @ b).matrix(), a.matrix() @ b.matrix(), atol=1e-12)
    np.testing.assert_allclose((a @ a.inverse()).matrix(), np.eye(4), atol=1e-12)
    pts = rng.normal(size=(5, 3))
    np.testing.assert_allclose(a.transform_points(pts), (a.matrix() @ np.c_[pts, np.ones(5)].T).T[:, :3])


def test_quaternion_sign_is_canonical():
    q = np.array([0.1, 0.2, 0.3, -0.9])
    assert Pose([0, 0, 0], q).quaternion[3] > 0
    assert Pose([0, 0, 0], q).distance(Pose([0, 0, 0], -q))[1] == pytest.approx(0.0, abs=1e-7)


def test_projection_roundtrip():
    k = Intrinsics(64, 48, 50.0, 52.0, 31.5, 23.5)
    depth = np.full((48, 64), 0.8, np.float32)
    pts = deproject_depth(depth, k).reshape(-1, 3)
    uv = project_points(pts, k)
    u, v = np.meshgrid(np.arange(64), np.arange(48))
    np.testing.assert_allclose(uv, np.c_[u.ravel(), v.ravel()], atol=1e-4)


def test_opengl_projection_maps_pixel_centres():
    k = Intrinsics(640, 480, 554.26, 554.26, 319.5, 239.5)
    p = opengl_projection_matrix(k, 0.05, 3.0)
    # optical point (X, Y, Z) -> GL (X, -Y, -Z); pixel u -> ndc = (2(u + 0.5) / W) - 1
    x, y, z = 0.1, -0.05, 1.2
    clip = p @ np.array([x, -y, -z, 1.0])
    ndc = clip[:3] / clip[3]
    u, v = project_points(np.array([[x, y, z]]), k)[0]
    assert ndc[0] == pytest.approx(2 * (u + 0.5) / 640 - 1)
    assert ndc[1] == pytest.approx(1 - 2 * (v + 0.5) / 480)
    d = (ndc[2] + 1) / 2
    assert depth_buffer_to_metric(np.array([[d]]), 0.05, 3.0)[0, 0] == pytest.approx(z, rel=1e-5)


def test_depth_at_far_plane_is_invalid():
    assert depth_buffer_to_metric(np.ones((2, 2)), 0.05, 3.0).max() == 0.0


def test_look_at_points_optical_axis_at_target():
    pose = look_at_camera2world([1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0, 0, 1])
    z_axis = pose.rotation.apply([0, 0, 1])
    np.testing.assert_allclose(z_axis, np.array([-1, 0, -1]) / np.sqrt(2), atol=1e-12)
    assert pose.rotation.apply([0, 1, 0])[2] < 0  # image down points down in the world
    with pytest.raises(ValueError):
        look_at_camera2world([0, 0, 1], [0, 0, 1], [0, 0, 1])


def test_min_area_rectangle_recovers_rotated_box():
    rng = np.random.default_rng(1)
    pts = rng.uniform([-0.05, -0.02], [0.05, 0.02], size=(500, 2))
    yaw = 0.6
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    centre, got_yaw, ext = min_area_rectangle(pts @ rot.T + [0.3, -0.1])
    np.testing.assert_allclose(centre, [0.3, -0.1], atol=2e-3)
    assert got_yaw == pytest.approx(yaw, abs=0.03)
    np.testing.assert_allclose(ext, [0.1, 0.04], atol=3e-3)
    pose, ext3 = upright_box(np.c_[pts, rng.uniform(0, 0.03, 500)])
    assert ext3[2] == pytest.approx(0.03, abs=1e-3)
