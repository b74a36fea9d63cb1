"""Top-down grasps from an object estimate's oriented box alone: across its narrow horizontal side, then
across the wide one. One candidate source of :mod:`robot_wm.planning.grasp_planner` (the antipodal sampler
on the perceived points is the other); NumPy only.

World frame, metres; the TCP frame is the Panda's ``panda_grasptarget`` (z = approach, y = closing axis),
a top-down grasp with yaw θ has orientation ``Rz(θ)·Rx(π)`` (:func:`robot_wm.geometry.top_down_quaternion`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_wm.geometry import Pose, panda, top_down_quaternion
from robot_wm.perception.estimate import ObjectEstimate

MAX_GRASP_WIDTH = panda.MAX_OPENING - 0.005  # m: 5 mm of clearance when the fingers are fully open
MIN_TCP_HEIGHT = 0.012  # m above the table: keeps the fingertips off it
PAD_HALF_WIDTH = 0.0105  # m: half the finger pad's width, across the closing axis
SLIDE_MARGIN = 0.002  # m: a slid grasp keeps the pads this far inside the face's ends


@dataclass
class TopDownGrasp:
    """A vertical grasp: TCP `pose` (world; z down, y = closing axis), pre-close opening `width` (m) and the
    object's width between the fingers `contact_width` (m)."""

    pose: Pose
    width: float
    target: str
    contact_width: float = 0.0


def top_down_grasps(est: ObjectEstimate, depth: float = 0.025, depths: tuple[float, ...] | None = None,
                    slides: tuple[float, ...] = (0.0,), overhang: float = 0.0) -> list[TopDownGrasp]:
    """Vertical grasps of the estimate's box, closing across its narrower horizontal side first, then
    across the wider one when that also fits between the fingers. Empty when neither side fits.

    `depth` (m): how far below the object's top the TCP goes (at most half the object's height); `depths`
    gives several, tried in order for each side (duplicates after the half-height cap are dropped).
    `slides` (m): the TCP moved along the gripped faces (across the closing axis) from the box centre — the
    same two faces gripped off centre, e.g. away from a wall or a neighbour the palm would touch; a slide
    that would put a pad (PAD_HALF_WIDTH) within SLIDE_MARGIN of a face's end is skipped, unless `overhang`
    (m) lets the pad reach that far past it (a flat pad still grips a face it overhangs a little, and a
    cylinder wherever it covers the cylinder's axis). 0 is the centre.
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
        along = rot[:, 3 - vertical - axis_index]  # the other horizontal box axis: along the gripped faces
        room = float(est.extents[3 - vertical - axis_index]) / 2 - PAD_HALF_WIDTH - SLIDE_MARGIN + overhang
        offsets = [s for s in slides if abs(s) <= max(room, 0.0) or s == 0.0]
        # TCP y (closing axis) = Rz(yaw) @ [0, -1, 0]  =>  yaw = atan2(axis) + pi/2 (the axis sign is irrelevant)
        yaw = math.atan2(axis[1], axis[0]) + math.pi / 2
        yaw = (yaw + math.pi / 2) % math.pi - math.pi / 2  # the gripper is symmetric: keep yaw in [-pi/2, pi/2)
        for s in offsets:
            for z in heights:
                pos = np.array([est.pose.position[0] + s * along[0], est.pose.position[1] + s * along[1], z])
                out.append(TopDownGrasp(Pose(pos, top_down_quaternion(yaw)), min(width + 0.02, panda.MAX_OPENING),
                                        est.id, width))
    return out
