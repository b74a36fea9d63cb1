"""RgbdEstimator: a remembered object that overlaps one seen now is forgotten (it cannot be there)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_wm.config import load_scene
from robot_wm.control.rgbd_estimator import RgbdEstimator, overlap_depth
from robot_wm.geometry import Pose, panda, yaw_quaternion
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.sim import Arm, World
from robot_wm.sim.push import set_object_pose, top_down


def box(x, y, yaw=0.0, size=(0.1, 0.06, 0.05), z=0.025):
    return ObjectEstimate("o", Pose([x, y, z], yaw_quaternion(yaw)), np.array(size))


def test_overlap_depth_of_boxes():
    assert overlap_depth(box(0.5, 0.0), box(0.6, 0.0)) == pytest.approx(0.0, abs=1e-12)  # flush: touching only
    assert overlap_depth(box(0.5, 0.0), box(0.58, 0.0)) == pytest.approx(0.02)
    assert overlap_depth(box(0.5, 0.0), box(0.5, 0.0, z=0.075)) == pytest.approx(0.0, abs=1e-12)  # stacked
    assert overlap_depth(box(0.5, 0.0), box(0.5, 0.05, yaw=np.pi / 2)) == pytest.approx(0.03 + 0.05 - 0.05)
    assert overlap_depth(box(0.5, 0.0, yaw=np.pi / 4), box(0.59, 0.09, yaw=np.pi / 4)) == 0.0  # diagonal gap


def test_where_a_pushed_object_was_is_not_remembered_next_to_where_it_is(repo):
    """The hand above the object after a push hides part of its old place; the tracker alone would keep the
    old place as an occluded object beside the new one."""
    with World(load_scene(repo / "sim_scenes/push_to_goal.yaml")) as world:
        arm = Arm(world)
        est = RgbdEstimator()

        def move_box_and_hover(xy, yaw):
            set_object_pose(world, "wide_box", Pose([*xy, 0.025], yaw_quaternion(yaw)))
            world.settle()
            world.reset_arm(arm.ik(top_down([*xy, 0.145], 0.5)), 0.0)
            return est.estimate(world.observe())

        first = move_box_and_hover([0.514, 0.068], 0.181)
        assert len(first) == 1
        after = move_box_and_hover([0.585, 0.109], 0.223)
        assert len(after) == 1 and after[0].extra["visible"]
        np.testing.assert_allclose(after[0].pose.position[:2], [0.585, 0.109], atol=0.005)
        assert first[0].id not in est.tracker.tracks
        world.reset_arm(panda.HOME)
        assert [e.id for e in est.estimate(world.observe())] == [after[0].id]
        arm.close()
