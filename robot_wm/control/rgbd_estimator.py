"""Object estimates from RGB-D perception (the product path; ``oracle`` is the baseline).

    est = RgbdEstimator()                       # all cameras of each observation
    objects = est.estimate(world.observe())     # list[ObjectEstimate], ids stable across calls
    est.last_graph                              # the full SceneGraph (relations, supports, visibility)
"""

from __future__ import annotations

import logging

from robot_wm.interface import Observation
from robot_wm.perception import Perceiver, PerceptionConfig, SceneGraph
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.perception.tracking import Tracker

log = logging.getLogger(__name__)


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

    def estimate(self, obs: Observation) -> list[ObjectEstimate]:
        frames = obs.frames if self.cameras is None else {n: obs.frames[n] for n in self.cameras}
        if not frames:
            raise ValueError("RgbdEstimator needs rendered camera frames (observe(render=True))")
        graph = self.tracker.update(self.perceiver.perceive(frames, time=obs.time), frames)
        self.last_graph = graph
        out = []
        for o in graph.objects:
            if not o.visible and not self.include_hidden:
                continue
            out.append(ObjectEstimate(
                o.id, o.pose, o.extents.copy(), o.points, o.color, fixed=o.fixed or o.kind != "object",
                extra={"visible": o.visible, "support": o.support, "confidence": o.confidence, "kind": o.kind}))
        return out
