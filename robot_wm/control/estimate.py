"""Where the picker's knowledge of objects comes from.

An :class:`ObjectEstimator` turns an :class:`~robot_wm.interface.Observation` into object estimates
(:class:`~robot_wm.perception.estimate.ObjectEstimate`). ``OracleEstimator`` reads the simulator's true
state through the World's public queries (a baseline and upper bound, never the product); perception-based
estimators (``RgbdEstimator``) implement the same protocol from RGB-D alone.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from robot_wm.geometry import Pose, upright_box
from robot_wm.interface import Observation
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.sim import World


class ObjectEstimator(Protocol):
    name: str

    def estimate(self, obs: Observation) -> list[ObjectEstimate]:
        """Objects visible in (or remembered from) the observation."""
        ...


class OracleEstimator:
    """Reads true poses and geometry from the simulator: the baseline perception is measured against.

    Estimate ids are the scene's object names; the observation is ignored (it needs no images). Extents:
    box size, cylinder/sphere bounding box, or for meshes the gravity-aligned box of the collision mesh
    (its world AABB when the mesh is not available).
    """

    name = "oracle"

    def __init__(self, world: World) -> None:
        self.world = world

    def estimate(self, obs: Observation) -> list[ObjectEstimate]:
        out = []
        for name, info in self.world.objects.items():
            pose = self.world.object_pose(name)
            if info.shape == "box":
                extents = np.array(info.size)
            elif info.shape == "cylinder":
                extents = np.array([2 * info.size[0], 2 * info.size[0], info.size[1]])
            elif info.shape == "sphere":
                extents = np.full(3, 2 * info.size[0])
            else:  # mesh: gravity-aligned box of the collision mesh (AABB if the mesh is not available)
                verts = self.world.object_vertices(name)
                if verts is not None:
                    pose, extents = upright_box(verts)
                else:
                    lo, hi = self.world.object_aabb(name)
                    pose, extents = Pose((lo + hi) / 2, [0, 0, 0, 1]), hi - lo
            out.append(ObjectEstimate(name, pose, extents, color=np.array(info.color[:3]), fixed=info.fixed))
        return out


__all__ = ["ObjectEstimator", "OracleEstimator"]
