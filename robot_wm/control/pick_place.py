"""Pick-and-place geometry from object estimates alone: placement slots (the box grasps moved to
``robot_wm.planning.box_grasps``).

The ground-truth check of a finished task lives on the simulator side (``robot_wm.sim.truth``).
"""

from __future__ import annotations

import math

import numpy as np

from robot_wm.config import PlaceRegion


def place_slots(region: PlaceRegion, n: int) -> list[np.ndarray]:
    """Grid of n placement points (x, y) inside the region (row-major, centred)."""
    cx, cy = region.center[:2]
    sx, sy = region.size
    cols = max(1, math.ceil(math.sqrt(n * sx / sy)))
    rows = max(1, math.ceil(n / cols))
    xs = cx + (np.arange(cols) + 0.5 - cols / 2) * sx / cols
    ys = cy + (np.arange(rows) + 0.5 - rows / 2) * sy / rows
    return [np.array([x, y]) for y in ys for x in xs][:n] or [np.array([cx, cy])]
