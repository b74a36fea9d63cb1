"""From what perception reports to what the planner reads: object states for the world model, and the
task's goals (named by the scene file's object names) as :class:`~robot_wm.planning.costs.PoseGoal` slots.

    scene = perceived_scene(estimates)                     # states (N, 15), mask (N,), ids
    matcher = GoalMatcher(object_goals(scene_config))      # goals of a push_to_goal scene
    goals = matcher.pose_goals(scene)                      # [PoseGoal(slot, xy, yaw, ...)]

States (layout of :mod:`robot_wm.model.state`, world frame, SI units): the centre of each perceived
gravity-aligned box, its yaw-only orientation, its extents along its own axes with the longer horizontal
side first (so the yaw is that of the longer side, defined modulo pi), the shape class read from the
perceived points (:func:`classify_shape`: box, cylinder, sphere or mesh; perception itself does not classify
shapes) and at_rest = 1 (the loop perceives a settled scene). Fixed obstacles (walls, trays) are left out:
the world model only knows movable objects.

Goals. A user knows what the scene file says: where each object was put (``position``, ``orientation``)
and where it should go. A goal object is identified once, at the start, as the perceived object nearest to
the scene file's position of that object, and followed by its tracker id afterwards (or, when perception
gives it a new id after a long push, as the new track nearest to where the planner expected it).

The goal is then stated in the frame of what perception sees. The scene file's pose is that of the
object's body frame, which perception cannot see (the box centre of a mesh is not its origin, and the
perceived box's x axis is the longer side, not necessarily the body's x axis). So the goal is kept as the
motion the scene file asks for, applied to what was perceived at the start:

* yaw: perceived yaw at the start + (goal yaw - the scene file's yaw); compared modulo the perceived
  footprint's symmetry by the cost. The box of a mesh need not turn with the mesh (its fitted sides change
  as other faces come into view), so a goal object is also followed by registering its points from one
  view to the next (:func:`~robot_wm.geometry.registration.planar_turn`, a turn about the vertical and a
  shift); while it is perceived as a mesh, its yaw goal is its box's yaw now + the turn left (the turn
  asked for - the turn registered so far), compared modulo a full turn
  (:func:`~robot_wm.planning.costs.yaw_period`), and its position goal is goal xy + R(turn left) (box
  centre now - body origin now), the body origin (the scene file's position at the start) moved along
  with the registered motions;
* position: goal xy + R(dyaw) (perceived centre - scene file position) at the start, with dyaw the goal's
  rotation (yaw goals) or the rotation perceived so far (goals without a yaw; the sum of the perceived
  changes, each the smallest the footprint's symmetry allows): the perceived centre's offset from the
  body origin turns with the object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from robot_wm.config.models import SceneConfig
from robot_wm.geometry.pose import yaw_of as yaw_of_quaternion
from robot_wm.geometry.registration import planar_turn, turn_about
from robot_wm.model.state import SHAPES, STATE_DIM, object_state
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.costs import BOX, CYLINDER, MESH, SPHERE, SQUARE_TOL, PoseGoal

MATCH_RADIUS = 0.08  # m: farthest a perceived object may be from where a goal object is expected
REBIND_RADIUS = 0.15  # m: ... from where it was last seen, when its tracker id is gone
REGISTER_MAX_RMS = 0.006  # m: a registration of an object's points whose trimmed rms exceeds this is not used
MIN_SHAPE_POINTS = 50  # fewer perceived points than this: shape "mesh"


def _wrap(a: float) -> float:
    return float((a + math.pi) % (2 * math.pi) - math.pi)


def classify_shape(est: ObjectEstimate) -> str:
    """The state's shape one-hot for a perceived object: ``est.extra["shape"]`` when the estimator knows it,
    else from its world-frame points (in the frame of its gravity-aligned box, centre c, half-extents h):

    * ``sphere``: ex, ey, ez within 15 % of each other and 98 % of the points' distances from c within
      6 % of ex/2;
    * ``cylinder``: a square footprint (sides within 12 %) and 99 % of the points within 1.06 h_x of the
      vertical axis (a box's top face fills the corners, out to 1.41 h_x);
    * ``box``: 92 % of the points within max(3 mm, 4 % of the extent) of the top face or of a side face;
    * ``mesh`` otherwise (or with fewer than MIN_SHAPE_POINTS points).

    The world model was trained with the shape one-hot of each primitive; a box given as ``mesh``
    moves a pushed box 8 mm (median) further from where physics puts it than the same box given as ``box``.
    """
    known = est.extra.get("shape") if est.extra else None
    if known in SHAPES:
        return str(known)
    pts = est.points
    if pts is None or len(pts) < MIN_SHAPE_POINTS:
        return "mesh"
    local = est.pose.inverse().transform_points(np.asarray(pts, float))
    half = np.maximum(np.asarray(est.extents, float) / 2, 1e-4)
    ex, ey, ez = 2 * half
    if max(ex, ey, ez) <= 1.15 * min(ex, ey, ez):
        d = np.linalg.norm(local, axis=1)
        if np.quantile(np.abs(d / half[0] - 1.0), 0.98) <= 0.06:
            return "sphere"
    if abs(ex - ey) <= 0.12 * max(ex, ey):
        r = np.hypot(local[:, 0], local[:, 1])
        if np.quantile(r, 0.99) <= 1.06 * max(half[0], half[1]):
            return "cylinder"
    tol = np.maximum(0.003, 0.04 * 2 * half)
    on_face = ((np.abs(local[:, 2] - half[2]) <= tol[2])
               | (np.abs(np.abs(local[:, 0]) - half[0]) <= tol[0])
               | (np.abs(np.abs(local[:, 1]) - half[1]) <= tol[1]))
    return "box" if float(on_face.mean()) >= 0.92 else "mesh"


def yaw_symmetry(state: np.ndarray) -> float:
    """Yaw period (rad) of a perceived state (15,), as the planner's cost reads it: inf for cylinders and
    spheres, pi/2 for a square footprint (sides within costs.SQUARE_TOL), pi otherwise."""
    if state[CYLINDER] > 0.5 or state[SPHERE] > 0.5:
        return math.inf
    ex, ey = float(state[7]), float(state[8])
    return math.pi / 2 if abs(ex - ey) <= SQUARE_TOL * max(ex, ey) else math.pi


def estimate_state(est: ObjectEstimate) -> np.ndarray:
    """One perceived object as a state vector (15,): box centre (m), yaw-only quaternion of the longer
    horizontal side, extents (longer horizontal side first, m), shape from :func:`classify_shape`, at_rest 1."""
    ext = np.asarray(est.extents, float)
    yaw = yaw_of_quaternion(np.asarray(est.pose.quaternion, float))
    if ext[1] > ext[0]:
        ext = ext[[1, 0, 2]]
        yaw += math.pi / 2
    yaw = _wrap(yaw)
    q = [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]
    return object_state(np.asarray(est.pose.position, float), q, ext, classify_shape(est), True)


@dataclass
class PerceivedScene:
    """The movable perceived objects as the planner reads them: states (N, 15) float32, mask (N,) bool
    (True = real object; padding after the real ones), ids (N_real,) the estimates' (tracker) ids, and
    `points`: per real slot its world-frame points (K, 3) m or None (empty list: none known)."""

    states: np.ndarray
    mask: np.ndarray
    ids: list[str]
    points: list[np.ndarray | None] = field(default_factory=list)

    def points_of(self, slot: int) -> np.ndarray | None:
        """The slot's points (K, 3) or None."""
        return self.points[slot] if slot < len(self.points) else None

    def index(self, object_id: str) -> int | None:
        """Slot of the object with this id, or None."""
        return self.ids.index(object_id) if object_id in self.ids else None

    def xy(self) -> np.ndarray:
        """(N_real, 2) centres, m."""
        return self.states[: len(self.ids), 0:2].astype(float)

    def yaw(self, slot: int) -> float:
        """Yaw (rad) of slot's longer horizontal side."""
        return float(yaw_of_quaternion(self.states[slot, 3:7].astype(float)))


def perceived_scene(estimates: Sequence[ObjectEstimate], n_max: int | None = None) -> PerceivedScene:
    """States of the movable estimates (fixed ones left out), padded to `n_max` slots when given."""
    movable = [e for e in estimates if not e.fixed]
    n = len(movable) if n_max is None else n_max
    if len(movable) > n:
        raise ValueError(f"{len(movable)} movable objects perceived, more than n_max={n}")
    states = np.zeros((max(n, 1), STATE_DIM), np.float32)
    states[:, 6] = 1.0  # identity quaternion in padding rows
    mask = np.zeros(max(n, 1), bool)
    for i, e in enumerate(movable):
        states[i] = estimate_state(e)
        mask[i] = True
    return PerceivedScene(states, mask, [e.id for e in movable], [e.points for e in movable])


@dataclass(frozen=True)
class ObjectGoal:
    """A goal of the scene file for the object `name`: where the scene file put it (`start_xy` m,
    `start_yaw` rad, its body frame) and where it should go (`xy` m, `yaw` rad or None), tolerances."""

    name: str
    start_xy: tuple[float, float]
    start_yaw: float
    xy: tuple[float, float]
    yaw: float | None
    tolerance_m: float
    tolerance_rad: float


def object_goals(config: SceneConfig) -> list[ObjectGoal]:
    """The goals of a scene's task (task.goals) with the scene file's pose of each goal object."""
    objects = {o.name: o for o in config.objects}
    out = []
    for g in config.task.goals:
        o = objects[g.object]
        q = np.asarray(o.orientation if o.orientation is not None else [0, 0, 0, 1], float)
        out.append(ObjectGoal(g.object, (float(o.position[0]), float(o.position[1])), yaw_of_quaternion(q),
                              (float(g.position[0]), float(g.position[1])), g.yaw,
                              g.tolerance_m, math.radians(g.tolerance_deg)))
    return out


@dataclass
class _Binding:
    id: str
    offset: np.ndarray  # (2,) perceived centre - scene file position at the start (m, world frame)
    yaw0: float  # perceived yaw at the start (rad)
    last_xy: np.ndarray = field(default_factory=lambda: np.zeros(2))
    last_yaw: float = 0.0  # perceived yaw when last seen (rad)
    turn: float = 0.0  # rotation perceived since the start (rad): the sum of the wrapped changes
    cloud: np.ndarray | None = None  # its points when last seen (K, 3)
    registered: float = 0.0  # rotation since the start (rad): the sum of the point registrations' turns
    anchor: np.ndarray = field(default_factory=lambda: np.zeros(2))  # its body origin now (x-y m), followed


class GoalMatcher:
    """Turns the scene file's goals into PoseGoals on a :class:`PerceivedScene`, following each goal object
    (see the module docstring). The first :meth:`pose_goals` call binds the goals; :meth:`reset` forgets."""

    def __init__(self, goals: Sequence[ObjectGoal], match_radius: float = MATCH_RADIUS,
                 rebind_radius: float = REBIND_RADIUS) -> None:
        self.goals = list(goals)
        self.match_radius, self.rebind_radius = match_radius, rebind_radius
        self._bound: dict[str, _Binding] = {}
        self._seen: set[str] = set()  # ids perceived in the last scene

    def reset(self) -> None:
        self._bound = {}
        self._seen: set[str] = set()

    @property
    def bound_ids(self) -> dict[str, str]:
        """Goal object name -> the perceived id it is followed by."""
        return {n: b.id for n, b in self._bound.items()}

    def _nearest(self, scene: PerceivedScene, xy: np.ndarray, taken: set[str], radius: float) -> int | None:
        pts = scene.xy()
        best, best_d = None, radius
        for i, oid in enumerate(scene.ids):
            if oid in taken:
                continue
            d = float(np.linalg.norm(pts[i] - xy))
            if d <= best_d:
                best, best_d = i, d
        return best

    def _bind(self, scene: PerceivedScene) -> None:
        taken: set[str] = set()
        for g in self.goals:
            i = self._nearest(scene, np.asarray(g.start_xy), taken, self.match_radius)
            if i is None:
                raise LookupError(f"goal object {g.name!r}: nothing perceived within {self.match_radius} m of "
                                  f"its position in the scene file {list(g.start_xy)}")
            oid = scene.ids[i]
            taken.add(oid)
            xy = scene.xy()[i]
            self._bound[g.name] = _Binding(oid, xy - np.asarray(g.start_xy), scene.yaw(i), xy.copy(), scene.yaw(i),
                                           cloud=scene.points_of(i), anchor=np.asarray(g.start_xy, float))

    def slots(self, scene: PerceivedScene, expected: Mapping[str, Sequence[float]] | None = None) -> dict[str, int]:
        """Goal object name -> its slot in `scene`. The first call binds the goals; afterwards each goal
        object keeps its tracker id. When its id is gone (a long push can outrun the tracker), it is
        re-bound to the object nearest to where it is `expected` (name -> xy m, e.g. the planner's
        prediction; default: where it was last seen) within `rebind_radius`, preferring ids that are new
        in this scene (the lost object's new track) over objects that kept theirs. Raises LookupError when
        a goal object is not found."""
        if not self._bound:
            self._bind(scene)
        out: dict[str, int] = {}
        taken = {b.id for b in self._bound.values() if b.id in scene.ids}
        for name, b in self._bound.items():
            i = scene.index(b.id)
            if i is None:
                where = np.asarray(expected[name], float)[:2] if expected and name in expected else b.last_xy
                old = taken | (self._seen & set(scene.ids))
                i = self._nearest(scene, where, old, self.rebind_radius)
                if i is None:
                    i = self._nearest(scene, where, taken, self.rebind_radius)
                if i is None:
                    raise LookupError(f"goal object {name!r} (was {b.id}) is no longer perceived")
                b.id = scene.ids[i]
                taken.add(b.id)
            old_xy, b.last_xy = b.last_xy, scene.xy()[i].copy()
            yaw, period = scene.yaw(i), yaw_symmetry(scene.states[i])
            change = math.remainder(yaw - b.last_yaw, period) if math.isfinite(period) else 0.0
            b.turn += change  # each change taken as the smallest one the symmetry allows
            b.registered += self._follow(b, scene.points_of(i), old_xy, change)
            b.last_yaw = yaw
            out[name] = i
        self._seen = set(scene.ids)
        return out

    @staticmethod
    def _follow(b: _Binding, points: np.ndarray | None, old_xy: np.ndarray, fallback: float) -> float:
        """The turn (rad) of a followed object since it was last seen (its centre then: `old_xy`), by
        registering its points then and now (:func:`~robot_wm.geometry.registration.planar_turn`), or
        `fallback` (the perceived box's change) when either cloud is missing or the fit is poor (trimmed rms
        over :data:`REGISTER_MAX_RMS`). Moves `b.anchor` (the body origin) with the registered motion, or with
        the box (turned about its old centre, shifted to its new one)."""
        prev, b.cloud = b.cloud, points
        fit = planar_turn(prev, points) if prev is not None and points is not None else None
        if fit is not None and fit.rms <= REGISTER_MAX_RMS:
            b.anchor = turn_about(b.anchor, fit.turn, fit.center) + fit.shift
            return fit.turn
        b.anchor = turn_about(b.anchor, fallback, old_xy) + (b.last_xy - old_xy)
        return fallback

    def pose_goals(self, scene: PerceivedScene, expected: Mapping[str, Sequence[float]] | None = None
                   ) -> list[PoseGoal]:
        """The goals as PoseGoals on `scene`'s slots, in the perceived frame (see the module docstring);
        `expected`: see :meth:`slots`. A goal object with a yaw goal that perception classed as round (a
        cylinder or sphere, whose yaw the cost would ignore) is re-classed as a mesh in `scene.states`: a
        user who asks for its yaw says that it has one."""
        slots = self.slots(scene, expected)
        out = []
        for g in self.goals:
            b, i = self._bound[g.name], slots[g.name]
            if g.yaw is not None and (scene.states[i, CYLINDER] > 0.5 or scene.states[i, SPHERE] > 0.5):
                # asked for a yaw, it has one: perceived round, it is taken as a mesh (changed in `scene`)
                scene.states[i, BOX:MESH + 1] = 0.0
                scene.states[i, MESH] = 1.0
            if scene.states[i, MESH] > 0.5:  # a mesh's box need not move with it: follow its points
                left = _wrap(g.yaw - g.start_yaw - b.registered) if g.yaw is not None else 0.0
                xy = np.asarray(g.xy) + turn_about(scene.xy()[i] - b.anchor, left, np.zeros(2))
                yaw = None if g.yaw is None else _wrap(scene.yaw(i) + left)
                out.append(PoseGoal(i, (float(xy[0]), float(xy[1])), yaw, g.tolerance_m, g.tolerance_rad))
                continue
            turn = _wrap(g.yaw - g.start_yaw) if g.yaw is not None else b.turn
            xy = np.asarray(g.xy) + turn_about(b.offset, turn, np.zeros(2))
            yaw = None if g.yaw is None else _wrap(b.yaw0 + turn)
            out.append(PoseGoal(i, (float(xy[0]), float(xy[1])), yaw, g.tolerance_m, g.tolerance_rad))
        return out


__all__ = ["GoalMatcher", "ObjectGoal", "PerceivedScene", "classify_shape", "estimate_state", "object_goals",
           "perceived_scene", "yaw_symmetry"]
