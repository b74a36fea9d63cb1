"""The control-loop interface: what a robot's sensors deliver each tick (:class:`Observation`: calibrated
RGB-D frames, joint state, time) and what the controller answers (:class:`Command`).

NumPy only: a real robot's loop talks to the controller through these types without importing PyBullet.
"""

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


@dataclass
class Command:
    """What the robot should do this tick: joint position targets (7,) rad with feed-forward velocities
    (7,) rad/s, a gripper opening target (m) under a force limit (N per finger). `events` name milestones
    reached this tick (e.g. ``grasp_checked``) so a runner can log or evaluate them."""

    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    gripper_width: float
    gripper_force: float
    done: bool = False
    phase: str = ""
    events: list[str] = field(default_factory=list)
