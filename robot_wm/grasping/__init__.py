"""Layer 4: Panda parallel-jaw grasps — candidates from point clouds, the physics shake test, and
offline evaluation at scale (local process pool or Ray). See docs/grasping.md."""

from robot_wm.grasping.candidates import SamplerConfig, estimate_normals, grasp_candidates, sample_grasps
from robot_wm.grasping.config import ShakeConfig, load_shake_config
from robot_wm.grasping.grasp import Grasp, grasps_from_arrays, load_grasps, save_grasps, save_grasps_acronym
from robot_wm.grasping.objects import parse_object_spec, parse_object_specs, surface_points
from robot_wm.grasping.quality import (
    QualityModel,
    candidate_pool,
    grasp_features,
    rank_grasps,
    ranked_single_view_grasps,
)
from robot_wm.grasping.shake import LABELS, RobustResult, ShakeResult, robust_shake_test, shake_test
from robot_wm.grasping.single_view import (
    Completion,
    SingleViewConfig,
    camera_vouched,
    complete_cloud,
    single_view_grasp_candidates,
    single_view_grasps,
)
from robot_wm.sim.hand import ObjectModel

__all__ = [
    "LABELS",
    "Completion",
    "Grasp",
    "ObjectModel",
    "QualityModel",
    "RobustResult",
    "SamplerConfig",
    "ShakeConfig",
    "ShakeResult",
    "SingleViewConfig",
    "camera_vouched",
    "candidate_pool",
    "complete_cloud",
    "estimate_normals",
    "grasp_candidates",
    "grasp_features",
    "grasps_from_arrays",
    "load_grasps",
    "load_shake_config",
    "parse_object_spec",
    "parse_object_specs",
    "rank_grasps",
    "ranked_single_view_grasps",
    "robust_shake_test",
    "sample_grasps",
    "save_grasps",
    "save_grasps_acronym",
    "shake_test",
    "single_view_grasp_candidates",
    "single_view_grasps",
    "surface_points",
]
