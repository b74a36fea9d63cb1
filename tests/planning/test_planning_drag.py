"""Dragging an object away from a fixture: direction, distance, press point, and when there is none."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_wm.geometry import Pose, yaw_quaternion
from robot_wm.grasping import SamplerConfig
from robot_wm.grasping.candidates import FINGER_Z, PALM_X, PALM_Z, collision_free
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.decision import push_rotation
from robot_wm.planning.drag import MAX_DRAG, MIN_DRAG, PRESS_DEPTH, plan_drag
from robot_wm.planning.grasp_planner import box_surface
from robot_wm.planning.singulation import footprint, rect_gap

SAMPLER = SamplerConfig(collision_tolerance=-0.003, table_z=0.0, table_clearance=0.003)
GAP = 0.035


def box(name: str, x: float, y: float, ext, yaw: float = 0.0, fixed: bool = False) -> ObjectEstimate:
    """A box estimate without points (its faces stand in for them)."""
    return ObjectEstimate(name, Pose([x, y, ext[2] / 2], yaw_quaternion(yaw)), np.array(ext, float), fixed=fixed)


def wall_and_box(yaw: float = 0.0, height: float = 0.032):
    """A 9 x 5 cm box (wider than the gripper along the wall, and its 5 cm side blocked by it) 1 mm from a
    7 cm wall that runs along the box's long side; the wall on the box's +x side, turned by `yaw`."""
    c, s = math.cos(yaw), math.sin(yaw)
    centre = np.array([0.55, 0.05])
    wall_xy = centre + (0.025 + 0.001 + 0.01) * np.array([c, s])
    wall = box("wall", *wall_xy, (0.02, 0.3, 0.07), yaw, fixed=True)
    target = box("t", *centre, (0.05, 0.09, height), yaw)
    return target, wall


@pytest.mark.parametrize("yaw", [0.0, 0.6, -2.0])
def test_a_box_pressed_against_a_wall_is_dragged_straight_away_from_it(yaw):
    target, wall = wall_and_box(yaw)
    drag = plan_drag(target, [], [wall], GAP, SAMPLER)
    assert drag is not None and drag.fixture == "wall" and drag.target == "t"
    away = yaw + math.pi  # the wall is on the box's +x side
    assert abs(math.remainder(drag.heading - away, 2 * math.pi)) < 1e-6
    assert drag.gap_before < 0.002 and drag.gap_after >= GAP
    assert MIN_DRAG <= drag.distance <= MAX_DRAG
    assert drag.distance == pytest.approx(GAP - drag.gap_before, abs=0.006)  # no further than it needs
    # the fingertips press on the box's top, inside its footprint, by PRESS_DEPTH
    assert drag.start[2] == pytest.approx(target.top_z - PRESS_DEPTH + FINGER_Z[1], abs=1e-3)
    local = target.pose.inverse().transform_points(drag.start[None])[0]
    assert abs(local[0]) < 0.025 and abs(local[1]) < 0.045
    action = drag.action()
    assert action.target == "t" and action.tilt == 0.0 and action.distance == drag.distance


def test_a_low_box_is_pressed_off_centre_so_the_palm_clears_the_wall():
    """A 1.6 cm tall box 5 cm deep beside a 7 cm wall: the palm, 4.7 cm above the TCP, is below the wall's top,
    so the hand presses on the box's half away from the wall, where the palm's 6.3 cm depth clears it."""
    target, wall = wall_and_box(0.0, height=0.016)
    drag = plan_drag(target, [], [wall], GAP, SAMPLER)
    assert drag is not None
    assert drag.start[0] < target.pose.position[0] - 0.002  # off centre, away from the wall (at +x)
    assert drag.start[2] - PALM_Z[1] < 0.07  # the palm is lower than the wall's top ...
    wall_face = 0.55 + 0.025 + 0.001
    assert drag.start[0] + PALM_X[1] < wall_face  # ... and beside it
    assert drag.lean == 0.0
    rot = push_rotation(drag.heading, 0.0, drag.lean).as_matrix()
    assert collision_free(rot[None], drag.start[None], np.zeros(1), box_surface(wall), SAMPLER)[0]


def test_a_low_small_object_under_a_tall_wall_is_dragged_with_the_hand_leaning_away():
    """A 4 x 4 cm block 1.8 cm tall 1 mm from a 7 cm wall: upright, the palm (4.7 cm above the fingertips' TCP,
    6.3 cm deep) meets the wall wherever the fingers press on the block; leaning 30 deg about the closing axis,
    the palm forward (away from the wall), the hand clears it and the fingers' lowest edge presses the top."""
    wall = box("wall", 0.55 + 0.02 + 0.001 + 0.01, 0.05, (0.02, 0.3, 0.07), fixed=True)
    target = box("t", 0.55, 0.05, (0.04, 0.04, 0.018))
    drag = plan_drag(target, [], [wall], GAP, SAMPLER)
    assert drag is not None and drag.lean == pytest.approx(math.radians(30))
    rot = push_rotation(drag.heading, 0.0, drag.lean)
    palm = drag.start - 0.08 * rot.apply([0.0, 0.0, 1.0])
    assert palm[0] < drag.start[0] - 0.03  # the palm leans away from the wall (at +x), along the drag (-x)
    assert collision_free(rot.as_matrix()[None], drag.start[None], np.zeros(1), box_surface(wall), SAMPLER)[0]
    # the fingers' lowest point is PRESS_DEPTH into the block's top, over the block
    corners = np.array([[x, y, z] for x in (-0.0105, 0.0105) for y in (-0.02, 0.02) for z in FINGER_Z])
    world = drag.start + rot.apply(corners)
    lowest = world[world[:, 2] < world[:, 2].min() + 1e-6].mean(0)  # the lowest edge's middle
    assert lowest[2] == pytest.approx(0.018 - PRESS_DEPTH, abs=1e-3)
    assert abs(lowest[0] - 0.55) < 0.02 and abs(lowest[1] - 0.05) < 0.02
    assert drag.action().lean == drag.lean


def test_no_drag_without_a_fixture_beside_the_object_or_when_it_has_room():
    target, wall = wall_and_box()
    assert plan_drag(target, [], [], GAP, SAMPLER) is None
    far = box("wall", 0.55 + 0.025 + 0.05 + 0.01, 0.05, (0.02, 0.3, 0.07), fixed=True)  # 5 cm away
    assert plan_drag(target, [], [far], GAP, SAMPLER) is None
    assert plan_drag(target, [], [wall], GAP, SAMPLER) is not None


def test_a_drag_turns_aside_from_a_neighbour_in_its_way_and_gives_up_when_boxed_in():
    target, wall = wall_and_box()
    straight = plan_drag(target, [], [wall], GAP, SAMPLER)
    behind = box("n", 0.50, 0.0, (0.02, 0.02, 0.04))  # 1.5 cm behind the box's -y end, away from the wall
    drag = plan_drag(target, [behind], [wall], GAP, SAMPLER)
    assert drag is not None and abs(math.remainder(drag.heading - straight.heading, 2 * math.pi)) > 0.3
    moved = footprint(target) + drag.distance * np.array([math.cos(drag.heading), math.sin(drag.heading)])
    assert rect_gap(moved, footprint(behind)) > 0.004
    boxed = [box("n", 0.55 - 0.025 - 0.012 - 0.005, y, (0.024, 0.05, 0.04)) for y in (-0.04, 0.05, 0.14)]
    assert plan_drag(target, boxed, [wall], GAP, SAMPLER) is None


def test_the_floor_a_fixture_carries_is_not_the_rim_to_drag_away_from():
    """An object on a tray's floor near its rim: the floor's points (under the object's bottom + 5 mm) are its
    support, not an obstacle; the rim's points say which way is away."""
    target = box("t", 0.5, 0.0, (0.05, 0.05, 0.04))
    target = ObjectEstimate("t", Pose([0.5, 0.0, 0.005 + 0.02], [0, 0, 0, 1]), target.extents)
    xs, ys = np.meshgrid(np.linspace(0.4, 0.56, 33), np.linspace(-0.1, 0.1, 41))
    floor = np.c_[xs.ravel(), ys.ravel(), np.full(xs.size, 0.005)]
    zs, ys2 = np.meshgrid(np.linspace(0.005, 0.03, 6), np.linspace(-0.1, 0.1, 41))
    rim = np.c_[np.full(zs.size, 0.5 + 0.025 + 0.002), ys2.ravel(), zs.ravel()]
    tray = ObjectEstimate("tray", Pose([0.48, 0.0, 0.015], [0, 0, 0, 1]), np.array([0.16, 0.2, 0.03]),
                          np.r_[floor, rim], fixed=True)
    drag = plan_drag(target, [], [tray], GAP, SAMPLER)
    assert drag is not None and abs(math.remainder(drag.heading - math.pi, 2 * math.pi)) < 0.05


def test_a_tall_thin_box_is_not_dragged_over_onto_its_side():
    """Pulled at its top, a box 3.5 cm deep and 5.4 cm tall turns over its leading edge (the table's friction
    at its bottom against the pull at its top: 0.6 x 5.4 cm > 1.75 cm); the same box lying on its side is
    dragged."""
    wall = box("wall", 0.55 + 0.0175 + 0.001 + 0.01, 0.05, (0.02, 0.3, 0.075), fixed=True)
    standing = box("t", 0.55, 0.05, (0.035, 0.09, 0.054))
    assert plan_drag(standing, [], [wall], GAP, SAMPLER) is None
    lying = box("t", 0.55 + 0.0175 - 0.027, 0.05, (0.054, 0.09, 0.035))
    assert plan_drag(lying, [], [wall], GAP, SAMPLER) is not None


def test_a_drag_the_arm_cannot_reach_is_not_proposed():
    """With the arm's kinematics the drag's way (above the start, the start, the end) must have IK: the same
    drag is proposed for an arm at the origin and refused for one whose base stands 1.5 m away."""
    from robot_wm.sim import KinematicModel

    target, wall = wall_and_box()
    near, far = KinematicModel(), KinematicModel(base_position=np.array([-1.0, 1.2, 0.0]))
    try:
        drag = plan_drag(target, [], [wall], GAP, SAMPLER, kin=near)
        assert drag is not None and np.allclose(drag.start, plan_drag(target, [], [wall], GAP, SAMPLER).start)
        assert plan_drag(target, [], [wall], GAP, SAMPLER, kin=far) is None
    finally:
        near.close()
        far.close()


def test_a_low_box_beside_an_oblique_wall_is_dragged_until_one_of_its_grasps_clears_it():
    """Hard-suite scene 5's case: a 2 cm low box 3.9 cm from a 7.4 cm wall that stands at 45 degrees to its
    faces. A finger's gap is there, so the gap rule has nothing to drag; yet every grasp along the box's faces
    puts the 20 cm hand body across the wall. Given those grasps, the drag goes on until one of them, carried
    along, is free — and no further than that."""
    from robot_wm.planning.drag import HAND_MAX_DRAG
    from robot_wm.planning.grasp_planner import GraspPlanner, candidate_arrays

    target = box("t", 0.45, 0.10, (0.06, 0.055, 0.02))
    wall_yaw = math.radians(45)
    normal = np.array([-math.sin(wall_yaw), math.cos(wall_yaw)])  # the wall's face normal, towards +y
    wall = box("wall", *(np.array([0.45, 0.10]) + 0.09 * normal), (0.25, 0.02, 0.074), wall_yaw, fixed=True)
    cfg = SAMPLER
    plan = GraspPlanner(None).plan(target, [target, wall])
    assert plan.candidates and not any(c.collision_free for c in plan.candidates)
    grasps = candidate_arrays(plan.candidates[:64])
    assert rect_gap(footprint(target)[None], footprint(wall)[None]).min() >= GAP
    assert plan_drag(target, [], [wall], GAP, cfg) is None  # the finger's gap is there
    drag = plan_drag(target, [], [wall], GAP, cfg, grasps=grasps)
    assert drag is not None and drag.fixture == "wall"
    assert np.dot([math.cos(drag.heading), math.sin(drag.heading)], normal) < -0.8  # away from the wall
    assert MIN_DRAG <= drag.distance <= HAND_MAX_DRAG
    rot, pos, opening = grasps
    obstacles = np.asarray(box_surface(wall), float)
    u = np.array([math.cos(drag.heading), math.sin(drag.heading), 0.0])
    assert collision_free(rot, pos + drag.distance * u, opening, obstacles, cfg).any()
    shorter = drag.distance - 0.005
    assert shorter < MIN_DRAG or not collision_free(rot, pos + shorter * u, opening, obstacles, cfg).any()
