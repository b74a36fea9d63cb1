"""Layer 4: RGB-D perception. Calibrated RGB-D frames -> a :class:`SceneGraph` of support surfaces,
objects (oriented boxes in the world frame) and relations; a :class:`Tracker` keeps ids stable over time.

    from robot_wm.perception import Perceiver, Tracker
    graph = Tracker().update(Perceiver().perceive(obs.frames, time=obs.time), obs.frames)
"""

from robot_wm.perception.graph import PerceivedObject, Relation, SceneGraph, SupportSurface
from robot_wm.perception.pipeline import Perceiver
from robot_wm.perception.relations import RelationConfig, compute_relations
from robot_wm.perception.segment import PerceptionConfig, segment_frame
from robot_wm.perception.validate import PerceptionInputError, validate_frame

__all__ = [
    "PerceivedObject",
    "Perceiver",
    "PerceptionConfig",
    "PerceptionInputError",
    "Relation",
    "RelationConfig",
    "SceneGraph",
    "SupportSurface",
    "compute_relations",
    "segment_frame",
    "validate_frame",
]
