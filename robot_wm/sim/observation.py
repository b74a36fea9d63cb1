"""What a robot's sensors deliver each tick: RGB-D frames with calibration, joint state and time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_wm.geometry import Intrinsics, Pose, deproject_depth


@dataclass
class CameraFrame:
    """One calibrated RGB-D frame.

    rgb: (H, W, 3) uint8. depth: (H, W) float32 z-depth in metres along the optical axis, 0 = invalid.
    segmentation: (H, W) int32 simulator body ids (-1 = nothing), present only in simulation;
    perception must not use it except as ground truth in benchmarks.
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    camera2world: Pose
    segmentation: np.ndarray | None = None

    def points_world(self) -> np.ndarray:
        """Organised world-frame point cloud (H, W, 3); pixels with depth 0 are NaN."""
        pts = deproject_depth(self.depth, self.intrinsics)
        out = self.camera2world.transform_points(pts.reshape(-1, 3)).reshape(pts.shape).astype(np.float32)
        out[self.depth <= 0] = np.nan
        return out


@dataclass
class Observation:
    """Sensor snapshot. joint_positions: (7,) rad; gripper_width: m between the fingers; time: s."""

    frames: dict[str, CameraFrame]
    joint_positions: np.ndarray
    gripper_width: float
    time: float
    body_names: dict[int, str] = field(default_factory=dict)
