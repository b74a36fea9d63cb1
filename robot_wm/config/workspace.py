"""The robot's workspace in the world frame (m): the table and what the arm can reach.

World frame: z up, robot base at the origin, table top at z = 0. The simulator builds its table from these
numbers and the scene validator checks goals against them, so the two never disagree.
"""

from __future__ import annotations

import math

TABLE_SIZE = (1.4, 1.4, 0.05)  # m, x y z extents of the table slab; its top face is z = 0
TABLE_CENTER_XY = (0.4, 0.0)  # m
# Horizontal distance from the base (m) within which the Panda's hand reaches the table top pointing down;
# goals and pushes are planned inside this annulus.
REACH_MIN = 0.25
REACH_MAX = 0.78
# Scene validation: an object's origin lies over the table and at most this high above it (m) ...
WORKSPACE_Z_MAX = 1.0
# ... no primitive is larger than the table along any axis (m) ...
MAX_OBJECT_EXTENT = max(TABLE_SIZE[:2])
# ... and objects may touch (rest on each other, on the table, against a wall) but not interpenetrate by more
# than this (m): a spawn inside another body or the table makes the simulator throw it out.
CONTACT_TOLERANCE = 0.002


def on_table(x: float, y: float, margin: float = 0.0) -> bool:
    """True when (x, y) m lies on the table top at least `margin` m inside its edges."""
    hx, hy = TABLE_SIZE[0] / 2 - margin, TABLE_SIZE[1] / 2 - margin
    return abs(x - TABLE_CENTER_XY[0]) <= hx and abs(y - TABLE_CENTER_XY[1]) <= hy


def in_reach(x: float, y: float) -> bool:
    """True when (x, y) m is within the arm's top-down reach annulus around the base."""
    return REACH_MIN <= math.hypot(x, y) <= REACH_MAX
