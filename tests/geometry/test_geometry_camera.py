"""Pinhole camera math: projection round trip, the OpenGL projection, depth buffer, look-at."""

import numpy as np
import pytest

from robot_wm.geometry import (
    Intrinsics,
    deproject_depth,
    depth_buffer_to_metric,
    look_at_camera2world,
    opengl_projection_matrix,
    project_points,
)


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
