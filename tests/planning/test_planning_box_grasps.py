"""Box grasps from an estimate's oriented box: the narrow side first, the wide side when it fits, depths capped."""

import numpy as np
import pytest

from robot_wm.geometry import Pose
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.box_grasps import MAX_GRASP_WIDTH, MIN_TCP_HEIGHT, top_down_grasps


@pytest.mark.parametrize("yaw", [0.0, 0.4, -1.2, 1.57])
def test_top_down_grasp_closes_across_the_narrow_side(yaw):
    pose = Pose([0.5, 0.0, 0.03], [0, 0, np.sin(yaw / 2), np.cos(yaw / 2)])
    est = ObjectEstimate("o", pose, np.array([0.07, 0.04, 0.06]))
    g = top_down_grasps(est)[0]  # the narrow side comes first
    closing = g.pose.rotation.apply([0, 1, 0])
    narrow_axis = pose.rotation.apply([0, 1, 0])
    assert abs(np.dot(closing, narrow_axis)) == pytest.approx(1.0, abs=1e-9)
    assert g.pose.rotation.apply([0, 0, 1])[2] == pytest.approx(-1.0)  # approach straight down
    assert g.pose.position[2] == pytest.approx(0.06 - 0.025)
    assert g.width == pytest.approx(0.06)


def test_too_wide_objects_are_refused():
    est = ObjectEstimate("o", Pose.identity(), np.array([0.1, MAX_GRASP_WIDTH + 0.01, 0.05]))
    assert top_down_grasps(est) == []


def test_wide_side_follows_when_it_fits_and_depths_are_capped():
    est = ObjectEstimate("o", Pose([0.5, 0.0, 0.03], [0, 0, 0, 1]), np.array([0.06, 0.04, 0.06]))
    grasps = top_down_grasps(est, depths=(0.025, 0.04))
    assert [round(g.contact_width, 6) for g in grasps] == [0.04, 0.04, 0.06, 0.06]
    assert [round(g.pose.position[2], 6) for g in grasps] == [0.035, 0.03, 0.035, 0.03]  # 0.04 capped at h/2


def test_low_objects_keep_the_fingertips_off_the_table():
    est = ObjectEstimate("o", Pose([0.5, 0.0, 0.005], [0, 0, 0, 1]), np.array([0.06, 0.04, 0.01]))
    assert all(g.pose.position[2] == pytest.approx(MIN_TCP_HEIGHT) for g in top_down_grasps(est))
