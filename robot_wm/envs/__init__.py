"""Layer 6: Gymnasium environments. Importing this package registers ``robot_wm/PickPlace-v0``."""

import gymnasium

from robot_wm.envs.pick_place_env import PickPlaceEnv

ENV_ID = "robot_wm/PickPlace-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="robot_wm.envs.pick_place_env:PickPlaceEnv", max_episode_steps=400)

__all__ = ["ENV_ID", "PickPlaceEnv"]
