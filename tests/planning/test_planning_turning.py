"""The turning push that learns its turn rate, and pushes that reach further after one fell short."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_wm.geometry import yaw_quaternion
from robot_wm.model.state import object_state
from robot_wm.planning.costs import PoseGoal
from robot_wm.planning.scene_state import PerceivedScene
from robot_wm.planning.turning import MAX_TURN_DEPTH, TURN_LATERAL, TURN_RATE_PRIOR, TURN_TILT, PushFeedback


def box(x, y, yaw=0.0, ext=(0.08, 0.05, 0.04)) -> np.ndarray:
    return object_state([x, y, ext[2] / 2], yaw_quaternion(yaw), ext, "box")


def scene_of(*states: np.ndarray) -> PerceivedScene:
    return PerceivedScene(np.stack(states).astype(np.float32), np.ones(len(states), bool),
                          [f"obj_{i}" for i in range(len(states))])


def left_of_line(action: np.ndarray, centre: np.ndarray) -> float:
    """Offset (m) of the object's centre to the left of the push line, seen from the pad's start."""
    h = action[4]
    rel = centre[0:2] - action[1:3]
    return -math.sin(h) * rel[0] + math.cos(h) * rel[1]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_turning_push_is_off_centre_on_a_long_side_with_the_leading_corner(sign):
    """A push with the object's centre right of its line (the pads' contact left of it) turns the object
    clockwise; the pad corner on the offset's side leads."""
    fb = PushFeedback()
    s = box(0.52, 0.0, yaw=0.2)
    goal = PoseGoal(0, (0.52, 0.0), yaw=0.2 + sign * math.radians(40))
    _, a = fb.turn(scene_of(s), [goal])
    assert math.remainder(a[4] - (0.2 + math.pi / 2), math.pi) == pytest.approx(0.0, abs=1e-6)  # across x
    assert a[6] == pytest.approx(TURN_TILT * sign)
    assert sign * left_of_line(a, s) > 0.8 * TURN_LATERAL * 0.04  # contact on the turning side's end
    assert fb.turn(scene_of(s), [PoseGoal(0, (0.52, 0.0), yaw=0.2 + math.pi)]) is None  # a half turn: same box
    assert fb.turn(scene_of(s), [PoseGoal(0, (0.7, 0.0), yaw=0.9)]) is None  # far from its position: no turn


def test_turning_push_comes_from_the_side_towards_the_goal_and_alternates_at_the_goal():
    fb = PushFeedback()
    s = box(0.5, 0.0)  # long side along x: turning pushes head +-y
    _, a = fb.turn(scene_of(s), [PoseGoal(0, (0.5, 0.02), yaw=0.6)])
    assert math.sin(a[4]) > 0.99  # pushes towards +y, where the goal is
    _, a = fb.turn(scene_of(s), [PoseGoal(0, (0.5, -0.02), yaw=0.6)])
    assert math.sin(a[4]) < -0.99
    fb.reset()
    at_goal = [PoseGoal(0, (0.5, 0.0), yaw=0.6)]
    headings = []
    for _ in range(3):
        _, a = fb.turn(scene_of(s), at_goal)
        fb.executed(a, True)
        headings.append(math.sin(a[4]))
    assert headings[0] * headings[1] < 0 and headings[1] * headings[2] < 0


def test_turn_rate_is_learnt_from_the_turns_seen():
    """A box that turned half as much as the prior expects gets a turning push about twice as long."""
    fb = PushFeedback()
    goals = [PoseGoal(0, (0.5, 0.0), yaw=0.5)]
    s0 = box(0.5, 0.0, yaw=0.0)
    _, a0 = fb.turn(scene_of(s0), goals)
    fb.executed(a0, True)
    travel = fb._sent.depth
    assert travel == pytest.approx(0.5 * 0.08 / TURN_RATE_PRIOR, rel=1e-3)
    turned = 0.5 * TURN_RATE_PRIOR * travel / 0.08  # half the prior's turn
    fb.observe(scene_of(box(0.5, 0.003, yaw=turned)), goals)
    assert fb.turn_rate(0, 0.08) < 0.75 * TURN_RATE_PRIOR
    _, a1 = fb.turn(scene_of(box(0.5, 0.003, yaw=turned)), goals)
    assert fb._sent.depth > 1.3 * (0.5 - turned) * 0.08 / TURN_RATE_PRIOR
    assert fb._sent.depth <= MAX_TURN_DEPTH
    # a turn the wrong way: the rate falls to its floor and the push is as long as allowed
    fb.executed(a1, True)
    fb.observe(scene_of(box(0.5, 0.0, yaw=turned - 0.3)), goals)
    fb.turn(scene_of(box(0.5, 0.0, yaw=turned - 0.3)), goals)
    assert fb._sent.depth == pytest.approx(MAX_TURN_DEPTH)


def test_a_turning_push_that_did_nothing_is_tried_from_the_other_side_and_further():
    fb = PushFeedback()
    s = box(0.5, 0.0)
    goals = [PoseGoal(0, (0.5, 0.0), yaw=0.6)]
    _, a0 = fb.turn(scene_of(s), goals)
    fb.executed(a0, True)
    fb.observe(scene_of(s), goals)  # nothing moved
    _, a1 = fb.turn(scene_of(s), goals)
    assert math.cos(a1[4] - a0[4]) < -0.99  # the other side
    assert a1[5] > a0[5] + 0.019


def test_a_refused_side_is_left_and_blocked_sides_are_never_chosen():
    fb = PushFeedback()
    s = box(0.5, 0.0)
    goals = [PoseGoal(0, (0.5, 0.0), yaw=0.6)]
    _, a0 = fb.turn(scene_of(s), goals)
    fb.executed(a0, False)  # the arm could not start it
    _, a1 = fb.turn(scene_of(s), goals)
    assert math.cos(a1[4] - a0[4]) < -0.99
    fb.executed(a1, False)
    assert fb.turn(scene_of(s), goals) is None  # both sides refused until a push runs
    # a neighbour flush against the -y side: the hand cannot start there, whatever the goal's direction
    fb.reset()
    wall = box(0.5, -0.052, ext=(0.2, 0.05, 0.1))
    _, a = fb.turn(scene_of(s, wall), [PoseGoal(0, (0.5, 0.01), yaw=0.6)])  # towards +y would start at the wall
    assert math.sin(a[4]) < -0.99  # pushed from +y towards -y
