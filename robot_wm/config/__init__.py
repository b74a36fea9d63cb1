"""Layer 2: typed, validated configs loaded from YAML (scene, calibration, planner, launch)."""

from robot_wm.config.errors import ConfigError
from robot_wm.config.loader import (
    REPO_ROOT,
    REPO_SCENES_DEFAULT,
    REPO_SCENES_DIR,
    Scene,
    load_calibration,
    load_scene,
    load_yaml_model,
    read_yaml,
    resolve_asset,
    scene_from_dict,
)
from robot_wm.config.models import (
    CalibrationConfig,
    CameraRef,
    LookAt,
    ObjectConfig,
    PlaceRegion,
    PoseConfig,
    RobotConfig,
    SceneConfig,
    TaskConfig,
)

__all__ = [
    "REPO_ROOT",
    "REPO_SCENES_DEFAULT",
    "REPO_SCENES_DIR",
    "CalibrationConfig",
    "CameraRef",
    "ConfigError",
    "LookAt",
    "ObjectConfig",
    "PlaceRegion",
    "PoseConfig",
    "RobotConfig",
    "Scene",
    "SceneConfig",
    "TaskConfig",
    "load_calibration",
    "load_scene",
    "load_yaml_model",
    "read_yaml",
    "resolve_asset",
    "scene_from_dict",
]
