"""The Gymnasium environment passes Gymnasium's own checker and is seeded."""

import gymnasium
import numpy as np
import pytest
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


def test_different_seeds_give_different_initial_scenes_and_the_same_seed_the_same():
    env = PickPlaceEnv()
    try:
        obs_a, _ = env.reset(seed=123)
        poses_a = {n: p.position.copy() for n, p in env.world.object_poses().items()}
        obs_b, _ = env.reset(seed=124)
        poses_b = {n: p.position.copy() for n, p in env.world.object_poses().items()}
        obs_c, _ = env.reset(seed=123)
        poses_c = {n: p.position.copy() for n, p in env.world.object_poses().items()}
        assert not np.array_equal(obs_a["depth"], obs_b["depth"]) and not np.array_equal(obs_a["rgb"], obs_b["rgb"])
        for name in poses_a:
            moved = np.linalg.norm(poses_a[name][:2] - poses_b[name][:2])
            assert 1e-4 < moved <= 2 * 0.02 + 0.005  # jittered, by at most a couple of cm
            np.testing.assert_array_equal(poses_a[name], poses_c[name])
        assert all(np.array_equal(obs_a[k], obs_c[k]) for k in obs_a)
        placed = env.world.object_poses()
        assert np.linalg.norm(placed["red_block"].position[:2] - placed["blue_block"].position[:2]) > 0.08
    finally:
        env.close()


def test_jitter_off_gives_the_scene_files_layout():
    env = PickPlaceEnv(jitter_xy=0.0, jitter_yaw=0.0)
    try:
        env.reset(seed=1)
        a = env.world.object_pose("red_block").position.copy()
        env.reset(seed=2)
        np.testing.assert_array_equal(a, env.world.object_pose("red_block").position)
        np.testing.assert_allclose(a[:2], [0.5, 0.1], atol=1e-3)
    finally:
        env.close()


def test_non_finite_or_malformed_actions_are_rejected_before_the_simulator():
    env = PickPlaceEnv()
    try:
        env.reset(seed=0)
        q0 = env.world.joint_positions().copy()
        for bad in (np.full(8, np.nan, np.float32), np.r_[np.zeros(7), np.inf].astype(np.float32), np.zeros(7),
                    ["a"] * 8):
            with pytest.raises(ValueError, match="action"):
                env.step(bad)
        np.testing.assert_array_equal(env.world.joint_positions(), q0)  # nothing reached the simulator
        obs, *_ = env.step(np.full(8, 0.5, np.float32))
        assert np.isfinite(obs["joints"]).all() and not np.allclose(obs["joints"], q0)
    finally:
        env.close()
