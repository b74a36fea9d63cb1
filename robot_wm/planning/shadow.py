"""Shadow-world grasp verification: before the arm moves, the chosen grasp is executed — close, lift,
shake, pull — in a physics world rebuilt only from what perception reported, never the true state.

The shadow object is the convex hull of the object's perceived points extended straight down to its
support (the camera never sees the underside), or the perceived oriented box when there are too few
points. Mass and friction cannot be seen: the shadow uses deliberately unfavourable values, so a grasp
that holds there should hold on the real object.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from robot_wm.geometry import Pose
from robot_wm.grasping import Grasp, ObjectModel, ShakeConfig, load_shake_config, robust_shake_test
from robot_wm.perception.estimate import ObjectEstimate

SHADOW_MASS = 0.2  # kg: the heavy end of the objects the demo handles, so verification errs on the safe side
SHADOW_FRICTION = 0.5  # lateral friction coefficient, below what table-top objects usually have
MIN_HULL_POINTS = 30


def shadow_model(est: ObjectEstimate, mass: float = SHADOW_MASS,
                 friction: float = SHADOW_FRICTION) -> tuple[ObjectModel, Pose]:
    """(object model, its world pose) of a perceived object, from its points (world frame) or its box."""
    pose = est.pose
    pts = None if est.points is None else np.asarray(est.points, float).reshape(-1, 3)
    if pts is not None and len(pts) >= MIN_HULL_POINTS:
        footprint = pts.copy()
        footprint[:, 2] = est.bottom_z
        local = pose.inverse().transform_points(np.vstack([pts, footprint]))
        try:
            hull = local[ConvexHull(local).vertices]
            return ObjectModel(est.id, "hull", tuple(hull.reshape(-1).tolist()), mass=mass, friction=friction), pose
        except QhullError:
            pass  # flat or degenerate cloud: use the box
    return ObjectModel(est.id, "box", tuple(float(e) for e in est.extents), mass=mass, friction=friction), pose


@dataclass
class Verdict:
    """Result of verifying one grasp: fraction of robust trials labelled stable, and label counts."""

    grasp: Grasp
    success_rate: float
    labels: dict[str, int] = field(default_factory=dict)
    passed: bool = False


class ShadowVerifier:
    """Runs the shake test (robot_wm.grasping, protocol in planners/shake_test.yaml) on perceived
    geometry with `trials` perturbed repetitions; a grasp passes at `min_success` or better.

    Seeded: the k-th call of :meth:`verify` on this verifier (k = 1, 2, ... counted over all objects and
    grasps since construction) draws its trials from ``SeedSequence([seed, crc32(estimate id), k])``. So a
    verdict depends on every verification before it; the same sequence of calls gives the same verdicts.
    """

    def __init__(self, config: ShakeConfig | None = None, trials: int = 3, min_success: float = 0.6,
                 seed: int = 0) -> None:
        self.config = config or load_shake_config()
        self.trials, self.min_success, self.seed = trials, min_success, seed
        self._calls = 0

    def verify(self, est: ObjectEstimate, grasp: Grasp) -> Verdict:
        model, pose = shadow_model(est)
        self._calls += 1
        seq = np.random.SeedSequence([self.seed, zlib.crc32(est.id.encode()), self._calls])
        result = robust_shake_test(model, grasp, seq, pose, self.config, trials=self.trials)
        return Verdict(grasp, result.success_rate, result.labels, result.success_rate >= self.min_success)
