"""The closed push loop (perceive -> plan -> push -> perceive), the executability check of pushes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
from robot_wm.geometry import Pose, yaw_quaternion
from robot_wm.model.state import object_state
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.dynamics import NoMotionDynamics, Prediction
from robot_wm.planning.mpc import MPCPlanner, push_actions
from robot_wm.planning.push_loop import (
    ExecutablePushes,
    MPCPusher,
    PushLoop,
    push_start_blocked,
    sim_push_executor,
    unmoved,
)
from robot_wm.planning.scene_state import GoalMatcher, ObjectGoal, object_goals, perceived_scene
from tests.planning.fakes import Slide


def box(x, y, ext=(0.06, 0.045, 0.04), yaw=0.0) -> np.ndarray:
    return object_state([x, y, ext[2] / 2], yaw_quaternion(yaw), ext, "box")


def push_along(states: np.ndarray, heading: float, slot: int = 0, lateral: float = 0.0) -> torch.Tensor:
    s = torch.from_numpy(states)[None]
    return push_actions(s, torch.tensor([slot]), torch.tensor([[heading, lateral, 0.05]]))


def test_push_start_blocked_by_a_neighbour_or_out_of_reach():
    alone = np.stack([box(0.5, 0.0)])
    a = push_along(alone, 0.0)
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert not bool(push_start_blocked(torch.from_numpy(alone)[None], mask, a)[0])
    # a tall box 6 cm behind the pushed one, beside the hand's start: the hand body would hit it
    crowded = np.stack([box(0.5, 0.0), box(0.44, 0.07, (0.05, 0.05, 0.08))])
    a = push_along(crowded, 0.0)
    assert bool(push_start_blocked(torch.from_numpy(crowded)[None], torch.ones(1, 2, dtype=torch.bool), a)[0])
    # ... and not when that slot is padding
    assert not bool(push_start_blocked(torch.from_numpy(crowded)[None], torch.tensor([[True, False]]), a)[0])
    # a push towards the base from an object near it would end inside the arm's minimum reach
    near = np.stack([box(0.25, 0.0)])
    a = push_along(near, math.pi)
    assert bool(push_start_blocked(torch.from_numpy(near)[None], mask, a)[0])


def test_push_start_blocked_turns_the_hand_with_the_tilt():
    """A tall box where the hand body's end lies once the hand is turned by the push's tilt (0.6 rad), but
    beside the square hand: only the tilted push is refused."""
    pushed = box(0.5, 0.0)
    flat = push_along(np.stack([pushed]), 0.0)
    start = flat[0, 1:3].numpy()
    reach = start + 0.095 * np.array([math.cos(0.6 + math.pi / 2), math.sin(0.6 + math.pi / 2)])
    scene = torch.from_numpy(np.stack([pushed, box(*reach, (0.03, 0.03, 0.12))]))[None]
    mask = torch.ones(1, 2, dtype=torch.bool)
    tilted = flat.clone()
    tilted[0, 6] = 0.6
    assert not bool(push_start_blocked(scene, mask, flat)[0])
    assert bool(push_start_blocked(scene, mask, tilted)[0])


class Counting:
    """Moves every real object +x by 1 cm; records the batch sizes it was called with."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, states, mask, actions) -> Prediction:
        self.batches.append(len(states))
        out = states.clone()
        out[..., 0] += 0.01
        b, n = mask.shape
        return Prediction(out, torch.ones(b), torch.full((b, n, 4), 0.1))


def test_executable_pushes_refuse_blocked_and_refused_pushes():
    crowded = np.stack([box(0.5, 0.0), box(0.44, 0.07, (0.05, 0.05, 0.08))])
    s = torch.from_numpy(crowded)[None].repeat(2, 1, 1)
    m = torch.ones(2, 2, dtype=torch.bool)
    a = torch.cat([push_along(crowded, 0.0), push_along(crowded, math.pi / 2)])  # blocked, free
    inner = Counting()
    dyn = ExecutablePushes(inner)
    p = dyn(s, m, a)
    assert inner.batches == [1]  # the inner dynamics only rolls the free push
    assert p.p_success.tolist() == [0.0, 1.0]
    assert torch.equal(p.next_states[0], s[0]) and p.std[0].abs().sum() == 0
    assert p.next_states[1, 0, 0] == pytest.approx(float(s[1, 0, 0]) + 0.01)
    dyn.refuse(a[1].numpy())  # the executor refused the free one too: refused until the scene changes
    assert dyn(s, m, a).p_success.tolist() == [0.0, 0.0]
    dyn.forget()
    assert dyn(s, m, a).p_success.tolist() == [0.0, 1.0]


class FakeWorld:
    """A scene the fake estimator reports and the fake executor moves: each push moves the object whose
    centre is nearest the push line by `gain` x the push's travel along its heading."""

    def __init__(self, xy, gain: float = 1.0, ok: bool = True) -> None:
        self.xy = np.asarray(xy, float)
        self.gain, self.ok = gain, ok
        self.pushes = 0

    def observe(self):
        return None

    def estimate(self, obs) -> list[ObjectEstimate]:
        return [ObjectEstimate("obj_0", Pose([*self.xy, 0.02], yaw_quaternion(0.0)), np.array([0.06, 0.045, 0.04]))]

    def execute(self, action: np.ndarray) -> bool:
        self.pushes += 1
        if self.ok:
            travel = max(0.0, float(action[5]) - 0.01)  # after the planner's 1 cm gap
            self.xy = self.xy + self.gain * travel * np.array([math.cos(action[4]), math.sin(action[4])])
        return self.ok


class Straight:
    """A pusher that pushes the goal object straight at its goal (records its calls)."""

    def __init__(self) -> None:
        self.calls = 0

    def reset(self, seed=None) -> None:
        pass

    def act(self, scene, goals):
        self.calls += 1
        g = goals[0]
        d = np.asarray(g.xy) - scene.states[g.index, 0:2]
        return push_actions(torch.from_numpy(scene.states)[None], torch.tensor([g.index]),
                            torch.tensor([[math.atan2(d[1], d[0]), 0.0, float(np.linalg.norm(d))]]))[0].numpy()


def matcher(start=(0.5, 0.0), xy=(0.58, 0.0)) -> GoalMatcher:
    return GoalMatcher([ObjectGoal("box", start, 0.0, xy, None, 0.02, math.radians(10))])


def test_push_loop_stops_at_once_when_the_goal_is_met():
    w, pusher = FakeWorld((0.5, 0.0)), Straight()
    res = PushLoop(pusher).run(w.observe, w, w.execute, matcher(xy=(0.505, 0.0)))
    assert (res.reached, res.reason, res.pushes, pusher.calls, w.pushes) == (True, "reached", 0, 0, 0)
    assert res.errors["box"][0] == pytest.approx(0.005)


def test_push_loop_pushes_until_the_goal_is_met_within_the_margin():
    w = FakeWorld((0.5, 0.0), gain=0.6)  # 8 cm to go, then 3.2, 1.28 (> 1 cm), 0.08
    res = PushLoop(Straight(), margin=0.5).run(w.observe, w, w.execute, matcher())
    assert res.reached and res.reason == "reached"
    assert res.errors["box"][0] <= 0.01  # half the 2 cm tolerance
    assert res.pushes == w.pushes == len(res.steps) == 3
    assert all(s.ok for s in res.steps)


def test_push_loop_gives_up_after_max_pushes_and_when_the_object_is_lost():
    w = FakeWorld((0.5, 0.0), ok=False)
    res = PushLoop(Straight(), max_pushes=3).run(w.observe, w, w.execute, matcher())
    assert (res.reached, res.reason, res.pushes) == (False, "max_pushes", 3)
    assert not any(s.ok for s in res.steps)
    res = PushLoop(Straight()).run(w.observe, w, w.execute, matcher(start=(0.3, 0.3)))
    assert (res.reason, res.pushes) == ("lost", 0)


def test_mpc_pusher_with_no_motion_has_nothing_worth_doing():
    w = FakeWorld((0.5, 0.0))
    pusher = MPCPusher(MPCPlanner(NoMotionDynamics(), samples=64, horizon=2, seed=0), replans=2)
    res = PushLoop(pusher).run(w.observe, w, w.execute, matcher())
    assert (res.reason, res.pushes) == ("no_action", 0)
    assert pusher.last_plan is not None and pusher.last_plan.first_action() is None


def test_unmoved_compares_position_and_yaw():
    before = box(0.5, 0.0, yaw=0.3)
    scene = perceived_scene([ObjectEstimate("a", Pose([0.501, 0.0, 0.02], yaw_quaternion(0.3 + math.pi)),
                                            np.array([0.06, 0.045, 0.04]))])
    assert unmoved(scene, before)  # 1 mm and a half turn (the same footprint)
    turned = perceived_scene([ObjectEstimate("a", Pose([0.5, 0.0, 0.02], yaw_quaternion(0.35)),
                                             np.array([0.06, 0.045, 0.04]))])
    assert not unmoved(turned, before)
    moved = perceived_scene([ObjectEstimate("a", Pose([0.505, 0.0, 0.02], yaw_quaternion(0.3)),
                                            np.array([0.06, 0.045, 0.04]))])
    assert not unmoved(moved, before)


def test_mpc_pusher_does_not_repeat_a_push_that_moved_nothing():
    """The executor ran the push but the object did not move (the pads stopped short of it): the MPC,
    whose model says such pushes move it, refuses that push (and pushes like it) in its next plan, and
    pushes that object further than planned from then on."""
    dyn = ExecutablePushes(Slide())
    pusher = MPCPusher(MPCPlanner(dyn, samples=200, horizon=2, seed=0))
    w = FakeWorld((0.5, 0.0))
    scene = perceived_scene(w.estimate(None))
    goals = matcher().pose_goals(scene)
    a = pusher.act(scene, goals)
    pusher.executed(a, True)
    assert dyn.refused == []
    b = pusher.act(scene, goals)  # the same scene: nothing moved
    assert dyn.refused == [pytest.approx((float(a[1]), float(a[2]), float(a[4])))]
    assert pusher.reach == {"obj_0": pytest.approx(0.02)}  # and its pushes now go 2 cm further than planned
    assert b[5] == pytest.approx(float(pusher.last_plan.first_action()[5]) + 0.02)
    far = np.hypot(b[1] - a[1], b[2] - a[2]) > 0.01
    assert far or abs(math.remainder(float(b[4] - a[4]), 2 * math.pi)) > 0.26
    pusher.executed(b, True)
    w.xy = w.xy + [0.03, 0.0]  # this one moved it
    pusher.act(perceived_scene(w.estimate(None)), matcher().pose_goals(perceived_scene(w.estimate(None))))
    assert dyn.refused == []


def _sim_scene(goal_xy) -> dict:
    return {"name": "push_easy", "seed": 0, "cameras": [{"calibration": "front.yaml"}, {"calibration": "side.yaml"}],
            "objects": [{"name": "block", "shape": "box", "size": [0.06, 0.045, 0.04], "mass": 0.15, "friction": 0.6,
                         "color": [0.2, 0.5, 0.9, 1.0], "position": [0.5, 0.0, 0.02]}],
            "task": {"kind": "push_to_goal", "goals": [{"object": "block", "position": list(goal_xy)}]}}


@pytest.mark.parametrize("goal_xy, max_pushes", [((0.5, 0.0), 0), ((0.56, 0.03), 4)])
def test_world_model_push_loop_on_a_simulated_scene(goal_xy, max_pushes):
    """Perception -> world-model MPC -> the sim's push primitive: an already met goal takes no push; an
    easy one (6.7 cm away) a few, and the block really ends within tolerance."""
    from robot_wm.control.rgbd_estimator import RgbdEstimator
    from robot_wm.planning.dynamics import make_dynamics
    from robot_wm.sim import Arm, World

    torch.set_num_threads(1)
    scene = scene_from_dict(_sim_scene(goal_xy), "push_easy", REPO_SCENES_DIR)
    with World(scene) as world:
        arm = Arm(world)
        pusher = MPCPusher(MPCPlanner(ExecutablePushes(make_dynamics("world_model")), samples=300, horizon=3,
                                      seed=0), replans=2)
        res = PushLoop(pusher).run(lambda: world.observe(segmentation=False), RgbdEstimator(),
                                   sim_push_executor(world, arm), GoalMatcher(object_goals(scene.config)), seed=0)
        final = world.object_pose("block").position
        arm.close()
    assert res.reached and res.pushes <= max_pushes
    assert np.linalg.norm(final[:2] - np.asarray(goal_xy)) <= 0.02
