"""Free spots for objects hemmed in by neighbours or walls."""

from __future__ import annotations

import numpy as np
import pytest

from robot_wm.geometry import Pose, yaw_quaternion
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.singulation import clearance, footprint, free_spot, rect_gap


def box(name: str, x: float, y: float, ext=(0.05, 0.09, 0.05), yaw: float = 0.0, fixed: bool = False) -> ObjectEstimate:
    return ObjectEstimate(name, Pose([x, y, ext[2] / 2], yaw_quaternion(yaw)), np.array(ext, float), fixed=fixed)


def test_footprint_and_gap():
    a, b = box("a", 0.5, 0.0), box("b", 0.6, 0.0)
    fa = footprint(a)
    assert np.ptp(fa[:, 0]) == pytest.approx(0.05) and np.ptp(fa[:, 1]) == pytest.approx(0.09)
    assert float(rect_gap(fa, footprint(b))) == pytest.approx(0.05)
    assert float(rect_gap(fa, footprint(box("c", 0.52, 0.0)))) == 0.0  # overlapping
    turned = box("t", 0.5, 0.2, yaw=np.pi / 4)
    assert float(rect_gap(footprint(turned), footprint(box("u", 0.5, 0.2 + 0.2)))) > 0.05


def test_flush_pair_gets_a_spot_with_room_for_a_finger():
    a, b = box("a", 0.45, 0.15), box("b", 0.50, 0.15)
    assert clearance(a, [b]) == pytest.approx(0.0, abs=1e-9)
    spot = free_spot(a, [b], needed_gap=0.035)
    assert spot is not None and spot.gap >= 0.035 and spot.current_gap == pytest.approx(0.0, abs=1e-9)
    moved = box("m", *spot.goal_xy)
    assert clearance(moved, [b]) >= 0.035 - 1e-6
    # not straight away from b: that push would need the pads between the two blocks
    d = spot.goal_xy - np.array([0.45, 0.15])
    assert abs(d[1]) > abs(d[0])
    assert np.linalg.norm(d) <= 0.14 + 1e-9


def test_against_a_wall_the_pads_never_start_behind_it():
    """A block flush against a wall: the spot it is pushed to must be reachable with the pads' way in free
    of the wall, so it is not straight away from the wall (that push would start inside the wall)."""
    block = box("blk", 0.685, 0.0)
    wall = box("wall", 0.72, 0.10, ext=(0.02, 0.30, 0.08), fixed=True)
    spot = free_spot(block, [wall], needed_gap=0.035)
    assert spot is not None and spot.gap >= 0.035
    d = spot.goal_xy - np.array([0.685, 0.0])
    assert d[1] < -0.05  # slid off along the wall past its end, not pulled through it


def test_nothing_to_do_for_an_object_with_room():
    a = box("a", 0.5, 0.0)
    assert clearance(a, [box("b", 0.5, 0.25)]) > 0.1
    assert free_spot(a, []) is None  # alone on the table: no spot is better than where it is
    assert clearance(a, []) == np.inf
