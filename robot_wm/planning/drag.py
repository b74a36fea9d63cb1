"""Dragging an object away from a fixture it is pressed against (a wall, a tray rim), so the fingers find room.

An object flush against a wall cannot be pushed away from it — the pads would have to start between the two —
and when no grasp fits beside the wall either (a box wider than the gripper along the wall, a disc lower
than the palm's reach under the wall's top), what is left is to *drag* it: the closed fingertips are lowered
onto its top until they press into it by :data:`PRESS_DEPTH`, moved straight away from the fixture, and
lifted. Friction under the pressed fingertips carries the object along (the table's friction acts on the
object's weight plus the press; the fingertips' on the press alone, so a drag slips on a slippery object
and the next look says so).

:func:`plan_drag` chooses it from the perceived scene (world frame, m, rad):

* the fixture's points beside the object (within ``reach`` of its footprint, above its support) give the
  direction: from their centroid to the object's centre, tried also ±:data:`SIDE_TURNS` off it;
* the distance leaves ``needed_gap`` between the footprint and those points (at least :data:`MIN_DRAG`, at
  most :data:`MAX_DRAG`), with the moved footprint clear of every other object and on the table, in reach;
  given the object's grasp candidates (none free where it stands: a low object beside a tall wall at an
  angle to its faces, whose fingers have room but whose hand body crosses the wall), the drag also goes on
  until one of them, carried along, clears the fixtures and the other objects (fixtures within
  :data:`HAND_REACH`, up to :data:`HAND_MAX_DRAG`);
* the press point: along the drag line through the footprint's centre, as near the centre as the closed
  hand — fingers and palm, :func:`robot_wm.grasping.candidates.collision_free` with a zero opening — clears
  every obstacle point (the fixture and the other objects), where the object's own top under the
  fingertips was seen (:data:`MIN_TOP_POINTS`); the fingers' lowest edge goes :data:`PRESS_DEPTH` below that
  local top. Upright first; where no upright hand clears the fixture (a low object under a wall taller than
  the palm's reach: the palm, 4.7 cm above the fingertips and 6.3 cm deep, meets the wall wherever the
  fingers press) the hand leans by :data:`PRESS_LEANS` about its closing axis, the palm forward along the
  drag (:func:`~robot_wm.planning.decision.push_rotation`), and presses with its fingers' lowest edge;
* and where the drag does not tip the object over: the table's friction, μ (mg + N) at its bottom, against
  the fingertips' pull at height h turns it about its leading bottom edge unless the press N lies far enough
  behind that edge — quasi-statically (N ≫ mg) μ h < w/2 − s for a press s ahead of the centre, w the
  footprint's length along the drag; μ is :data:`TIP_FRICTION`, the most the table (0.6) and an object
  (≤ 1) make together. A tall, thin box pressed against a wall is not dragged (it would fall onto its side).

The result is a :class:`~robot_wm.planning.decision.PushAction` the controller executes as any push (close,
above the start, straight down, along the heading, up) — the start is on top of the object instead of
behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from robot_wm.config.workspace import in_reach, on_table
from robot_wm.geometry import Pose
from robot_wm.grasping import SamplerConfig
from robot_wm.grasping.candidates import FINGER_HALF_X, FINGER_THICK, FINGER_Z, collision_free
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.decision import PushAction, push_rotation
from robot_wm.planning.grasp_planner import box_surface
from robot_wm.planning.singulation import footprint, point_polygon_distances, rect_gap

if TYPE_CHECKING:
    from robot_wm.sim import KinematicModel

PRESS_DEPTH = 0.004  # m the fingertips are commanded below the object's top
MIN_DRAG, MAX_DRAG = 0.02, 0.08  # m
SIDE_TURNS = (0.0, math.radians(25), -math.radians(25))  # rad off the direction straight away from the fixture
PRESS_STEP = 0.004  # m between press points tried along the drag line
PRESS_LEANS = (0.0, math.radians(30))  # rad the hand may lean about its closing axis, the palm forward
PRESS_STRIP = 0.004  # m: half the strip along the drag where a leaning hand's finger edge meets the top
MIN_TOP_POINTS = 5  # object points under the fingertips that say where its top is there
TIP_FRICTION = 0.6  # friction the drag's tipping test assumes between the object and its support
SUPPORT_SKIP = 0.005  # m: fixture points this little above the object's bottom are its support (a tray floor)
OTHERS_CLEARANCE = 0.005  # m the moved footprint keeps from every other object's
HAND_REACH = 0.1  # m: with the target's grasps given, fixtures this near may still be in the hand's way
HAND_MAX_DRAG = 0.12  # m: ... and a drag may go this far for a grasp of it to clear them


@dataclass
class Drag:
    """A drag of `target` away from `fixture`: the push's parts (`start` TCP (3,), `heading` rad, `distance` m,
    the hand's `lean` rad), the gap (m) the footprint had to the fixture's points and will have after it."""

    target: str
    fixture: str
    start: np.ndarray
    heading: float
    distance: float
    gap_before: float
    gap_after: float
    lean: float = 0.0

    def action(self) -> PushAction:
        """The PushAction the controller executes (closed pads, no tilt, leaning by `lean`)."""
        return PushAction(self.target, self.start, self.heading, self.distance, 0.0, self.lean)

    def to_dict(self) -> dict:
        return {"target": self.target, "fixture": self.fixture, "start": np.round(self.start, 4).tolist(),
                "heading": round(self.heading, 4), "distance": round(self.distance, 4),
                "gap_before": round(self.gap_before, 4), "gap_after": round(self.gap_after, 4),
                "lean": round(self.lean, 4)}


def _points(est: ObjectEstimate) -> np.ndarray:
    """The estimate's finite points (M, 3), or its box's faces when it has none."""
    if est.points is None or len(est.points) == 0:
        return box_surface(est)
    pts = np.asarray(est.points, float).reshape(-1, 3)
    return pts[np.all(np.isfinite(pts), axis=1)]


def _gap_to_points(poly: np.ndarray, pts: np.ndarray) -> float:
    """Smallest distance (m) from points (M, 2) to the polygon (inf without points)."""
    return float(point_polygon_distances(pts, poly).min()) if len(pts) else math.inf


def plan_drag(target: ObjectEstimate, others: list[ObjectEstimate], fixtures: list[ObjectEstimate],
              needed_gap: float, sampler: SamplerConfig, reach: float = 0.03, kin: KinematicModel | None = None,
              approach: float = 0.12, grasps: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
              ) -> Drag | None:
    """A drag of `target` away from the nearest fixture whose points lie within `reach` m of its footprint
    (None when none does, or no drag has a free press point, a free end and — with `kin`, the arm's
    KinematicModel — IK for the hand above the start (`approach` m up), at the start and at the end).
    `others`: the other movable objects (obstacles for the hand and for the moved footprint); `sampler`: the
    collision test's settings (margin, table). Upright on any of the lines before leaning on any.

    `grasps` (TCP rotations (G, 3, 3), positions (G, 3), openings (G,); world frame): the target's grasp
    candidates, none of them free where it stands. A finger's gap is then not enough: the drag ends where one
    of them, carried along, clears the fixtures and the other objects — the whole hand (a 20 cm hand body
    aligned with a box's faces crosses a tall wall that stands obliquely several centimetres away) — looking
    for fixtures within HAND_REACH and dragging up to HAND_MAX_DRAG."""
    poly = footprint(target)
    centre = poly.mean(0)
    bottom = target.bottom_z
    reach = max(reach, HAND_REACH) if grasps is not None else reach
    near: list[tuple[float, ObjectEstimate, np.ndarray]] = []
    for f in fixtures:
        pts = _points(f)
        pts = pts[pts[:, 2] > bottom + SUPPORT_SKIP]
        if not len(pts):
            continue
        d = point_polygon_distances(pts[:, :2], poly)
        if d.min() <= reach:
            near.append((float(d.min()), f, pts[d <= reach]))
    if not near:
        return None
    gap0, fixture, wall = min(near, key=lambda x: x[0])
    movable = np.concatenate([_points(o) for o in others if o is not target] or [np.zeros((0, 3))])
    obstacles = np.concatenate([movable, *(_points(f) for f in fixtures if f is not target)])
    hand_free = _hand_free(grasps, obstacles, sampler)
    if gap0 >= needed_gap and hand_free(np.zeros(2)):
        return None
    if grasps is not None and not _hand_free(grasps, movable, sampler)(np.zeros(2)):
        return None  # the other objects are in the way too: dragging away from the fixture does not free it
    away = centre - wall[:, :2].mean(0)
    if np.linalg.norm(away) < 1e-6:
        return None
    base = math.atan2(away[1], away[0])
    own = _points(target)
    other_polys = np.stack([footprint(o) for o in others if o is not target]) if len(others) else np.zeros((0, 4, 2))
    all_fixture = np.concatenate([_points(f) for f in fixtures])
    all_fixture = all_fixture[all_fixture[:, 2] > bottom + SUPPORT_SKIP][:, :2]
    lines = []  # (heading, distance, gap after) of the drags whose end is free
    for turn in SIDE_TURNS:
        heading = base + turn
        u = np.array([math.cos(heading), math.sin(heading)])
        distance = None
        for dist in np.arange(MIN_DRAG, (MAX_DRAG if grasps is None else HAND_MAX_DRAG) + 1e-9, 0.005):
            if _gap_to_points(poly + dist * u, all_fixture) >= needed_gap and hand_free(dist * u):
                distance = float(dist)
                break
        if distance is None:
            continue
        moved = poly + distance * u
        end = centre + distance * u
        if not (on_table(*end, margin=0.05) and in_reach(*end)):
            continue
        if len(other_polys) and float(rect_gap(moved[None], other_polys).min()) < OTHERS_CLEARANCE:
            continue
        lines.append((heading, distance, _gap_to_points(moved, all_fixture)))
    for lean in PRESS_LEANS:  # upright on any line before leaning on any
        for heading, distance, gap_after in lines:
            u = np.array([math.cos(heading), math.sin(heading)])
            start = _press_point(target, own, obstacles, poly, centre, u, heading, lean, sampler)
            if start is None or not _reachable(kin, start, heading, lean, distance, approach):
                continue
            return Drag(target.id, fixture.id, start, float(heading), distance, float(gap0), float(gap_after), lean)
    return None


def _hand_free(grasps: tuple[np.ndarray, np.ndarray, np.ndarray] | None, obstacles: np.ndarray,
               sampler: SamplerConfig):
    """`offset (2,) m -> bool`: whether some grasp of `grasps` (rotations, positions, openings), moved by the
    offset, clears every point of `obstacles` (M, 3) and the table; always True without grasps."""
    if grasps is None:
        return lambda offset: True
    rot, pos, opening = grasps
    if not len(pos):
        return lambda offset: False

    def free(offset: np.ndarray) -> bool:
        moved = pos + np.array([offset[0], offset[1], 0.0])
        return bool(collision_free(rot, moved, opening, obstacles, sampler).any())

    return free


def _reachable(kin: KinematicModel | None, start: np.ndarray, heading: float, lean: float, distance: float,
               approach: float) -> bool:
    """IK for the drag's way: above the start (`approach` m up), the start, the end (True without `kin`)."""
    if kin is None:
        return True
    quat = push_rotation(heading, 0.0, lean).as_quat()
    end = start + distance * np.array([math.cos(heading), math.sin(heading), 0.0])
    q = kin.ik(Pose(start + [0.0, 0.0, approach], quat))
    for p in (start, end):
        q = None if q is None else kin.ik(Pose(p, quat), q)
    return q is not None


def _press_point(target: ObjectEstimate, own: np.ndarray, obstacles: np.ndarray, poly: np.ndarray,
                 centre: np.ndarray, u: np.ndarray, heading: float, lean: float, sampler: SamplerConfig
                 ) -> np.ndarray | None:
    """The TCP (3,) of the hand leaning by `lean` rad (the palm forward) pressing on the target's top along
    the drag line, at the press point nearest the centre whose closed hand clears the obstacles; None when
    there is none. The press point is where the fingers' lowest edge meets the top."""
    half = float(np.max(np.abs((poly - centre) @ u)))
    across = np.array([-u[1], u[0]])
    bottom = target.bottom_z
    rot = push_rotation(heading, 0.0, lean).as_matrix()
    corners = np.array([[x, y, z] for x in (-FINGER_HALF_X, FINGER_HALF_X) for y in (-FINGER_THICK, FINGER_THICK)
                        for z in FINGER_Z]) @ rot.T  # closed fingers' corners, world offsets from the TCP
    low = corners[corners[:, 2] < corners[:, 2].min() + 1e-3]
    tip = low.mean(0)  # the lowest edge's middle: where the fingers meet the top
    foot = max(float(np.ptp(low @ np.r_[u, 0.0])) / 2, PRESS_STRIP)  # its half-length along the drag
    usable = half - foot
    if usable < 0:
        return None
    offsets = np.arange(-usable, usable + 1e-9, PRESS_STEP)
    for off in offsets[np.argsort(np.abs(offsets), kind="stable")]:
        xy = centre + off * u
        d = own[:, :2] - xy
        under = (np.abs(d @ u) <= foot) & (np.abs(d @ across) <= FINGER_THICK)
        if under.sum() < MIN_TOP_POINTS:
            continue
        top = float(np.quantile(own[under, 2], 0.9))
        if TIP_FRICTION * (top - bottom) >= half - off:  # the pull would turn it over its leading edge
            continue
        pos = np.r_[xy, top - PRESS_DEPTH] - tip
        if collision_free(rot[None], pos[None], np.zeros(1), obstacles, sampler)[0]:
            return pos
    return None


__all__ = ["Drag", "PRESS_DEPTH", "plan_drag"]
