"""Layer 1: poses, rigid transforms and pinhole camera math (NumPy/SciPy only)."""

from robot_wm.geometry.boxes import min_area_rectangle, to_rectangle_frame, upright_box
from robot_wm.geometry.camera import (
    Intrinsics,
    deproject_depth,
    depth_buffer_to_metric,
    look_at_camera2world,
    opengl_projection_matrix,
    opengl_view_matrix,
    project_points,
)
from robot_wm.geometry.pose import (
    Pose,
    pusher_heading,
    quat_normalize,
    top_down_quaternion,
    yaw_of,
    yaw_quaternion,
)

__all__ = [
    "Intrinsics",
    "Pose",
    "deproject_depth",
    "depth_buffer_to_metric",
    "look_at_camera2world",
    "min_area_rectangle",
    "to_rectangle_frame",
    "upright_box",
    "opengl_projection_matrix",
    "opengl_view_matrix",
    "project_points",
    "quat_normalize",
    "pusher_heading",
    "top_down_quaternion",
    "yaw_of",
    "yaw_quaternion",
]
