"""The world-model bench's grasp oracles (geometry known; mass and friction redrawn, or the true ones)."""

import numpy as np

from robot_wm.bench.model import grasp_oracle
from robot_wm.model.state import grasp_action, object_state


def test_grasp_oracle_holds_a_centred_grasp_and_misses_beside_the_object():
    cube = object_state([0.5, 0.0, 0.025], [0, 0, 0, 1], [0.05] * 3, "box")
    before = np.zeros((2, 6, 15), np.float32)
    before[..., 6] = 1
    before[:, 0] = cube
    data = {
        "before": before, "episode": np.zeros(2, np.int32), "target": np.zeros(2, np.int16),
        "action": np.stack([grasp_action(0.5, 0.0, 0.04, 0.0, 0.05), grasp_action(0.5, 0.08, 0.04, 0.0, 0.05)]),
    }
    data["mass"] = np.full((2, 6), 0.1, np.float32)
    data["friction"] = np.full((2, 6), 0.8, np.float32)
    scenes = {0: {"objects": [{"name": "cube", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1}]}}
    p_unknown, p_known = grasp_oracle(data, scenes, np.arange(2), seed=0)
    # mass (0.05-0.5 kg) and friction (0.3-1.0) are redrawn: heavy, slippery draws may slip out
    assert p_unknown[0] >= 0.5 and p_unknown[1] == 0.0
    # the true 0.1 kg at friction 0.8 holds whatever the 0.1 mm jitter; beside the object nothing holds
    assert p_known[0] == 1.0 and p_known[1] == 0.0
    again = grasp_oracle(data, scenes, np.arange(2), seed=0, workers=2)  # seeded, whatever the workers
    np.testing.assert_array_equal(again[0], p_unknown)
    np.testing.assert_array_equal(again[1], p_known)
