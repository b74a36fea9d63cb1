"""Pose: composition, inverse, canonical quaternion sign."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.geometry import Pose


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
