"""Baseline pushers: the scripted pusher and random shooting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_wm.geometry import yaw_quaternion
from robot_wm.model.state import object_state
from robot_wm.planning.baselines import RandomShootingPlanner, ScriptedPusher, TurnFirst
from robot_wm.planning.costs import PoseGoal
from robot_wm.planning.dynamics import Prediction
from robot_wm.planning.scene_state import PerceivedScene
from tests.planning.fakes import Slide


def scene_of(*states: np.ndarray) -> PerceivedScene:
    return PerceivedScene(np.stack(states).astype(np.float32), np.ones(len(states), bool),
                          [f"obj_{i}" for i in range(len(states))])


def box(x, y, yaw=0.0, ext=(0.08, 0.05, 0.04)) -> np.ndarray:
    return object_state([x, y, ext[2] / 2], yaw_quaternion(yaw), ext, "box")


class _Recorder:
    """A pusher that records its calls and always pushes (a fixed row)."""

    def __init__(self) -> None:
        self.calls = 0
        self.last_plan = "plan"

    def reset(self, seed=None) -> None:
        self.calls = 0

    def act(self, scene, goals):
        self.calls += 1
        return np.array([0, 0.4, 0.0, 0.02, 0.0, 0.05, 0.0], np.float32)


def test_turn_first_turns_a_placed_object_without_asking_the_pusher():
    inner = _Recorder()
    tf = TurnFirst(inner)
    placed = scene_of(box(0.5, 0.0, yaw=0.0))
    a = tf.act(placed, [PoseGoal(0, (0.5, 0.0), yaw=0.6)])  # at its position, 34 deg off its yaw
    assert inner.calls == 0 and tf.last_source == "turn" and tf.last_plan is None
    assert abs(a[6]) > 0.3  # the tilted pad
    tf.executed(a, True)
    a = tf.act(scene_of(box(0.42, 0.0)), [PoseGoal(0, (0.5, 0.0), yaw=0.6)])  # 8 cm off: the pusher decides
    assert inner.calls == 1 and tf.last_source == "mpc" and tf.last_plan == "plan"
    assert tf.act(placed, [PoseGoal(0, (0.5, 0.0), yaw=0.0)]) is not None and inner.calls == 2  # yaw met


def test_scripted_pusher_pushes_through_the_centre_towards_the_goal():
    p = ScriptedPusher()
    s = box(0.5, 0.0)
    heading, lateral, depth, tilt = p.params(s, PoseGoal(0, (0.5, 0.06)))
    assert heading == pytest.approx(math.pi / 2) and lateral == 0.0 and depth == pytest.approx(0.06)
    assert tilt == 0.0  # towards the goal: the face square to the push
    assert p.params(s, PoseGoal(0, (0.5, 0.3)))[2] == pytest.approx(p.push.depth[1])  # capped
    assert p.params(s, PoseGoal(0, (0.505, 0.0))) is None  # within tolerance
    a = p.act(scene_of(box(0.4, 0.2), s), [PoseGoal(1, (0.5, 0.06))])
    assert a[0] == 0 and a[4] == pytest.approx(math.pi / 2)
    assert a[1] == pytest.approx(0.5, abs=1e-6) and a[2] < 0.0 - 0.025  # behind the object's centre
    assert p.act(scene_of(s), [PoseGoal(0, (0.5, 0.0), yaw=0.0)]) is None


def test_scripted_pusher_turns_near_its_goal_and_pushes_further_when_a_push_did_not_reach():
    p = ScriptedPusher()
    s = box(0.52, 0.0, yaw=0.2)
    a = p.act(scene_of(s), [PoseGoal(0, (0.52, 0.0), yaw=0.9)])
    assert abs(a[6]) > 0.3  # the turning push's tilted pad
    p.executed(a, True)
    far = box(0.4, 0.0)
    goal = [PoseGoal(0, (0.5, 0.0))]
    first = p.act(scene_of(far), goal)
    p.executed(first, True)
    second = p.act(scene_of(far), goal)  # the box did not move: the same push, 2 cm further
    assert second[5] == pytest.approx(first[5] + 0.02, abs=1e-6)
    assert np.allclose(second[1:5], first[1:5])


class Recorder:
    """Dynamics that move nothing and record the pushes they were asked about."""

    def __init__(self) -> None:
        self.actions: list[torch.Tensor] = []

    def __call__(self, states, mask, actions) -> Prediction:
        self.actions.append(actions.clone())
        b, n = mask.shape
        return Prediction(states, torch.ones(b), torch.zeros(b, n, 4))


def test_random_shooting_samples_uniformly_once():
    rec = Recorder()
    planner = RandomShootingPlanner(rec, samples=2000, horizon=2, iterations=5, warm_start=True, seed=0)
    assert planner.config.iterations == 1 and not planner.config.warm_start
    states = np.stack([box(0.5, 0.0), box(0.42, 0.15), box(0.6, -0.15), box(0, 0)])
    mask = np.array([True, True, True, False])
    plan = planner.plan(states, mask, [PoseGoal(0, (0.6, 0.05))])
    assert plan.samples == 2000 and plan.iterations == 1
    first = rec.actions[0]
    # a sequence is its pushes first: it pushes at step 1 unless both steps are no-ops (P = 0.3 ** 2)
    assert 0.87 * 2000 < len(first) < 0.95 * 2000
    heading = first[:, 4]
    assert heading.min() < -3.0 and heading.max() > 3.0 and abs(float(heading.mean())) < 0.15
    # pushes of every real object, none of the padding slot (whose centre is at the origin)
    near = torch.cdist(first[:, 1:3], torch.from_numpy(states[:, 0:2])).argmin(1)
    counts = torch.bincount(near, minlength=4)
    assert counts[3] == 0 and counts[:3].min() > 0.2 * len(first)


def test_random_shooting_keeps_the_best_sequence():
    planner = RandomShootingPlanner(Slide(), samples=3000, horizon=2, seed=1)
    plan = planner.plan(np.stack([box(0.5, 0.0)]), None, [PoseGoal(0, (0.5, 0.1))])
    assert plan.first_action() is not None
    assert np.linalg.norm(plan.states[-1, 0, 0:2] - [0.5, 0.1]) < 0.03


def test_turn_first_finishes_a_turned_objects_position_with_a_straight_push():
    inner = _Recorder()
    tf = TurnFirst(inner)
    goal = [PoseGoal(0, (0.5, 0.0), yaw=0.0)]
    a = tf.act(scene_of(box(0.47, 0.0)), goal)  # yaw met, 3 cm off (within 3 tolerances): straight at it
    assert tf.last_source == "finish" and inner.calls == 0
    assert a[4] == pytest.approx(0.0, abs=1e-6) and a[6] == 0.0
    tf.act(scene_of(box(0.47, 0.0)), [PoseGoal(0, (0.5, 0.0))])  # no yaw goal: the pusher decides
    assert tf.last_source == "mpc" and inner.calls == 1
