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


def test_slid_grasps_grip_the_same_faces_off_centre_and_keep_the_pads_on_them():
    yaw = 0.3
    pose = Pose([0.5, 0.0, 0.03], [0, 0, np.sin(yaw / 2), np.cos(yaw / 2)])
    est = ObjectEstimate("o", pose, np.array([0.05, 0.07, 0.06]))  # narrow along box x, 7 cm along box y
    grasps = top_down_grasps(est, slides=(0.0, 0.008, -0.016, 0.03))
    narrow = [g for g in grasps if g.contact_width == pytest.approx(0.05)]
    # across box x: the pads slide along box y (room 3.5 - 1.05 - 0.2 cm); 3 cm would push a pad off the face
    offsets = [pose.rotation.inv().apply(g.pose.position - [0.5, 0.0, g.pose.position[2]]) for g in narrow]
    assert [round(o[1], 6) for o in offsets] == [0.0, 0.008, -0.016] and all(abs(o[0]) < 1e-12 for o in offsets)
    assert all(np.allclose(g.pose.quaternion, narrow[0].pose.quaternion) for g in narrow)  # same closing axis
    wide = [g for g in grasps if g.contact_width == pytest.approx(0.07)]
    # across box y: the faces are 5 cm long (room 2.5 - 1.05 - 0.2 cm): the 1.6 and 3 cm slides are skipped
    assert len(wide) == 2
    assert top_down_grasps(est)[0].pose.position == pytest.approx(grasps[0].pose.position)  # centre first


def test_overhang_lets_pads_slide_past_a_narrow_faces_end():
    est = ObjectEstimate("o", Pose([0.5, 0.0, 0.02], [0, 0, 0, 1]), np.array([0.023, 0.053, 0.04]))
    along_wall = lambda gs: [g for g in gs if g.contact_width == pytest.approx(0.053)]  # noqa: E731
    # closing across the 5.3 cm side the faces are 2.3 cm long: no room for a 4 mm slide with the pads on them
    assert len(along_wall(top_down_grasps(est, slides=(0.0, 0.004, -0.004)))) == 1
    slid = along_wall(top_down_grasps(est, slides=(0.0, 0.004, -0.004, 0.008), overhang=0.006))
    # 1.15 - 1.05 - 0.2 + 0.6 cm of room: 4 mm either way, not 8 mm
    assert sorted(round(float(g.pose.position[0]) - 0.5, 6) for g in slid) == [-0.004, 0.0, 0.004]
