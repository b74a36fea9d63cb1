"""Pick-and-place geometry from object estimates alone: top-down grasps and placement slots.

The ground-truth check of a finished task lives on the simulator side (``robot_wm.sim.truth``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from robot_wm.config import PlaceRegion
from robot_wm.geometry import Pose, panda, top_down_quaternion
from robot_wm.perception.estimate import ObjectEstimate

log = logging.getLogger(__name__)

MAX_GRASP_WIDTH = panda.MAX_OPENING - 0.005  # m: 5 mm of clearance when the fingers are fully open
MIN_TCP_HEIGHT = 0.012  # m above the table: keeps the fingertips off it


@dataclass
class TopDownGrasp:
    """A vertical grasp: TCP `pose` (world; z down, y = closing axis), pre-close opening `width` (m) and the
    object's width between the fingers `contact_width` (m)."""

    pose: Pose
    width: float
    target: str
    contact_width: float = 0.0


def top_down_grasps(est: ObjectEstimate, depth: float = 0.025, depths: tuple[float, ...] | None = None
                    ) -> list[TopDownGrasp]:
    """Vertical grasps of the estimate's box, closing across its narrower horizontal side first, then
    across the wider one when that also fits between the fingers. Empty when neither side fits.

    `depth` (m): how far below the object's top the TCP goes (at most half the object's height); `depths`
    gives several, tried in order for each side (duplicates after the half-height cap are dropped).
    """
    rot = est.pose.rotation.as_matrix()
    vertical = int(np.argmax(np.abs(rot[2, :])))
    horizontal = sorted((i for i in range(3) if i != vertical), key=lambda i: est.extents[i])
    half_height = (est.top_z - est.bottom_z) / 2
    heights = list(dict.fromkeys(round(max(est.top_z - min(d, half_height), MIN_TCP_HEIGHT), 6)
                                 for d in (depths or (depth,))))
    out = []
    for axis_index in horizontal:
        width = float(est.extents[axis_index])
        if width > MAX_GRASP_WIDTH:
            continue
        axis = rot[:, axis_index]
        # TCP y (closing axis) = Rz(yaw) @ [0, -1, 0]  =>  yaw = atan2(axis) + pi/2 (the axis sign is irrelevant)
        yaw = math.atan2(axis[1], axis[0]) + math.pi / 2
        yaw = (yaw + math.pi / 2) % math.pi - math.pi / 2  # the gripper is symmetric: keep yaw in [-pi/2, pi/2)
        for z in heights:
            pos = np.array([est.pose.position[0], est.pose.position[1], z])
            out.append(TopDownGrasp(Pose(pos, top_down_quaternion(yaw)), min(width + 0.02, panda.MAX_OPENING), est.id, width))
    return out


def place_slots(region: PlaceRegion, n: int) -> list[np.ndarray]:
    """Grid of n placement points (x, y) inside the region (row-major, centred)."""
    cx, cy = region.center[:2]
    sx, sy = region.size
    cols = max(1, math.ceil(math.sqrt(n * sx / sy)))
    rows = max(1, math.ceil(n / cols))
    xs = cx + (np.arange(cols) + 0.5 - cols / 2) * sx / cols
    ys = cy + (np.arange(rows) + 0.5 - rows / 2) * sy / rows
    return [np.array([x, y]) for y in ys for x in xs][:n] or [np.array([cx, cy])]
