"""State/action layout helpers and the torch pose update."""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from robot_wm.model.state import (
    STATE_DIM,
    apply_planar_delta,
    grasp_action,
    grasp_action_from_tcp,
    grasp_action_to_tcp,
    object_state,
    push_action,
    rotation_error_deg,
    stack_scenes,
    yaw_of_quats,
)
from robot_wm.model.world_model import apply_delta


def test_object_state_layout():
    s = object_state([0.5, 0.1, 0.02], [0, 0, 0, 2.0], [0.05, 0.04, 0.03], "cylinder", at_rest=False)
    assert s.shape == (STATE_DIM,)
    np.testing.assert_allclose(s[3:7], [0, 0, 0, 1])  # normalised
    np.testing.assert_allclose(s[10:14], [0, 1, 0, 0])
    assert s[14] == 0.0
    assert object_state([0, 0, 0], [0, 0, 0, 1], [1, 1, 1], None)[13] == 1.0  # unknown -> mesh


def test_stack_scenes_pads_and_masks():
    a = object_state([0.5, 0, 0.02], [0, 0, 0, 1], [0.05] * 3, "box")
    states, mask = stack_scenes([[a], [a, a, a]])
    assert states.shape == (2, 3, STATE_DIM) and mask.tolist() == [[True, False, False], [True, True, True]]
    assert states[0, 1, 6] == 1.0  # padding carries an identity quaternion


def test_apply_delta_matches_numpy_reference():
    rng = np.random.default_rng(0)
    q = Rotation.random(8, random_state=1).as_quat()
    states = np.zeros((8, STATE_DIM), np.float32)
    states[:, :3] = rng.normal(size=(8, 3))
    states[:, 3:7] = q
    delta = rng.normal(size=(8, 4)).astype(np.float32)
    ref = apply_planar_delta(states, delta)
    got = apply_delta(torch.as_tensor(states), torch.as_tensor(delta)).numpy()
    np.testing.assert_allclose(got[:, :3], ref[:, :3], atol=1e-6)
    assert np.all(rotation_error_deg(got[:, 3:7], ref[:, 3:7]) < 1e-2)


def test_yaw_and_rotation_error():
    q = Rotation.from_euler("z", [[0.3], [-2.0]]).as_quat()
    np.testing.assert_allclose(yaw_of_quats(q), [0.3, -2.0], atol=1e-6)
    assert abs(rotation_error_deg(q[:1], Rotation.from_euler("z", [[0.3 + np.radians(10)]]).as_quat())[0] - 10) < 1e-3
    assert push_action(0.4, 0, 0.02, 1.0, 0.1).shape == (7,)


def test_grasp_action_to_tcp_and_back():
    """The TCP of a grasp action points straight down (TCP z = world -z) with its closing axis (TCP y) at
    the action's yaw; converting back gives the same row (to rounding). A float64 row keeps its values exact."""
    for yaw in (-3.0, -1.2, 0.0, 0.4, 2.9):
        a = grasp_action(0.5, -0.1, 0.03, yaw, 0.04)
        position, quaternion, width = grasp_action_to_tcp(a)
        assert position.dtype == np.float64 and width == float(np.float32(0.04))
        np.testing.assert_array_equal(position, a[1:4])
        m = Rotation.from_quat(quaternion).as_matrix()
        np.testing.assert_allclose(m[:, 2], [0, 0, -1], atol=1e-12)
        np.testing.assert_allclose(m[:, 1], [np.cos(a[4]), np.sin(a[4]), 0], atol=1e-12)
        np.testing.assert_allclose(grasp_action_from_tcp(position, quaternion, width), a, rtol=0, atol=1e-6)
    exact = np.array([1, 0.5, 0.0, 0.03, 0.1, 0.04]) + 1e-9
    assert grasp_action_to_tcp(exact)[0][0] == 0.5 + 1e-9
    # a tilted TCP: the heading of its closing axis
    q = (Rotation.from_euler("z", 0.7) * Rotation.from_euler("x", np.pi) * Rotation.from_euler("y", 0.2)).as_quat()
    back = grasp_action_from_tcp([0.5, 0, 0.03], q, 0.05)
    closing = Rotation.from_quat(q).as_matrix()[:, 1]
    assert back.dtype == np.float32 and back[0] == 1 and back[4] == np.float32(np.arctan2(closing[1], closing[0]))
