"""What the rest of the stack needs to know about one perceived object (planning and control consume it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from robot_wm.geometry import Pose


@dataclass
class ObjectEstimate:
    """An object as seen: an oriented box (centre/orientation `pose` in the world frame, full `extents` (3,) m
    along the pose's axes), and optionally its world-frame points (N, 3) and mean RGB colour in [0, 1]."""

    id: str
    pose: Pose
    extents: np.ndarray
    points: np.ndarray | None = None
    color: np.ndarray | None = None
    fixed: bool = False  # containers and other things not to pick
    extra: dict = field(default_factory=dict)

    def corners(self) -> np.ndarray:
        """The oriented box's 8 corners (8, 3), world frame."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
        return self.pose.transform_points(signs * np.asarray(self.extents, float) / 2)

    @property
    def top_z(self) -> float:
        """Highest z (m) of the oriented box."""
        return float(np.max(self.corners()[:, 2]))

    @property
    def bottom_z(self) -> float:
        """Lowest z (m) of the oriented box."""
        return float(np.min(self.corners()[:, 2]))
