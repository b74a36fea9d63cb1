"""State/action layout helpers and the torch pose update."""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from robot_wm.model.state import (
    STATE_DIM,
    apply_planar_delta,
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
    assert push_action(0.4, 0, 0.02, 1.0, 0.1).shape == (6,)
