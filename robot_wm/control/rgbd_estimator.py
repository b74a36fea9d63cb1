"""Object estimates from RGB-D perception (the product path; ``oracle`` is the baseline).

    est = RgbdEstimator()                       # all cameras of each observation
    objects = est.estimate(world.observe())     # list[ObjectEstimate], ids stable across calls
    est.last_graph                              # the full SceneGraph (relations, supports, visibility)

A remembered (currently invisible) object that overlaps a movable object seen now is stale — two objects cannot
share the same space — and is forgotten: after a push the hand may hide part of where the pushed object was,
and the tracker then keeps its old place as "occluded" next to the object's new place.
"""

from __future__ import annotations

import logging

import numpy as np

from robot_wm.interface import Observation
from robot_wm.perception import Perceiver, PerceptionConfig, SceneGraph
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.perception.tracking import Tracker

log = logging.getLogger(__name__)

STALE_DEPTH = 0.01  # m: a remembered object this deep inside one seen now is stale


def overlap_depth(a: ObjectEstimate, b: ObjectEstimate) -> float:
    """How deep (m) two gravity-aligned estimates interpenetrate: the smallest overlap of their upright
    footprints along the footprints' edge normals (separating axes) and of their height ranges; 0 when
    they are apart or only touch."""
    depth = min(a.top_z, b.top_z) - max(a.bottom_z, b.bottom_z)
    pa, pb = a.corners()[:, :2], b.corners()[:, :2]
    for est in (a, b):
        rot = est.pose.rotation.as_matrix()
        for axis in rot[:2, :].T:  # each box axis's horizontal part: the footprint's edge normals
            n = np.linalg.norm(axis)
            if n < 0.5:  # the vertical axis
                continue
            da, db = pa @ (axis / n), pb @ (axis / n)
            depth = min(depth, min(da.max(), db.max()) - max(da.min(), db.min()))
    return max(0.0, float(depth))


class RgbdEstimator:
    """Implements the ``ObjectEstimator`` protocol from the observation's RGB-D frames alone.

    cameras: names of the frames to use (None: all). include_hidden: also return tracked objects that are
    currently occluded (``extra["visible"] is False``, pose as last seen). Containers (e.g. a tray) come
    back with ``fixed=True``. Poses are gravity-aligned oriented boxes in the world frame.
    """

    name = "rgbd"

    def __init__(self, config: PerceptionConfig | None = None, cameras: list[str] | None = None,
                 include_hidden: bool = True, tracker: Tracker | None = None) -> None:
        self.perceiver = Perceiver(config)
        self.tracker = tracker or Tracker()
        self.cameras = cameras
        self.include_hidden = include_hidden
        self.last_graph: SceneGraph | None = None

    def reset(self) -> None:
        """Forget all tracks (e.g. for a new episode)."""
        self.tracker.reset()
        self.last_graph = None

    def expect(self, positions: dict[str, np.ndarray]) -> None:
        """Object id -> world (x, y) m where the next :meth:`estimate` should look for it first (where a
        commanded push was predicted to leave it): keeps its id across a push longer than the tracker's
        gate (:meth:`Tracker.expect <robot_wm.perception.tracking.Tracker.expect>`)."""
        self.tracker.expect(positions)

    def estimate(self, obs: Observation) -> list[ObjectEstimate]:
        frames = obs.frames if self.cameras is None else {n: obs.frames[n] for n in self.cameras}
        if not frames:
            raise ValueError("RgbdEstimator needs rendered camera frames (observe(render=True))")
        graph = self.tracker.update(self.perceiver.perceive(frames, time=obs.time), frames)
        self.last_graph = graph
        out = [ObjectEstimate(o.id, o.pose, o.extents.copy(), o.points, o.color, fixed=o.fixed or o.kind != "object",
                              extra={"visible": o.visible, "support": o.support, "confidence": o.confidence,
                                     "kind": o.kind})
               for o in graph.objects]
        seen = [e for e in out if e.extra["visible"] and not e.fixed]  # (objects lie inside containers)
        keep = []
        for e in out:
            if not e.extra["visible"]:
                if not e.fixed and any(overlap_depth(e, v) > STALE_DEPTH for v in seen):
                    log.debug("forgetting %s: an object seen now overlaps where it was", e.id)
                    self.tracker.tracks.pop(e.id, None)
                    continue
                if not self.include_hidden:
                    continue
            keep.append(e)
        return keep
