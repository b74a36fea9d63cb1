"""The Gymnasium environment passes Gymnasium's own checker and is seeded."""

import gymnasium
import numpy as np
from gymnasium.utils.env_checker import check_env

import robot_wm.envs  # noqa: F401  (registers the id)
from robot_wm.envs import ENV_ID, PickPlaceEnv


def test_passes_gymnasium_checker():
    env = gymnasium.make(ENV_ID, render_mode="rgb_array").unwrapped
    assert isinstance(env, PickPlaceEnv)
    try:
        check_env(env, skip_render_check=False)
    finally:
        env.close()


def test_registered_and_seeded():
    env = gymnasium.make(ENV_ID)
    try:
        obs1, _ = env.reset(seed=3)
        actions = np.random.default_rng(0).uniform(-1, 1, (5, 8)).astype(np.float32)
        traj1 = [env.step(a)[0]["joints"] for a in actions]
        obs2, _ = env.reset(seed=3)
        traj2 = [env.step(a)[0]["joints"] for a in actions]
        np.testing.assert_array_equal(obs1["depth"], obs2["depth"])
        np.testing.assert_array_equal(np.stack(traj1), np.stack(traj2))
        assert not np.allclose(traj1[0], obs1["joints"])  # the actions moved the arm
    finally:
        env.close()
