"""What the controller checks with its cameras: a pick's target still in place or in the hand (TargetWatch),
cameras that agree with their calibration (CalibrationMonitor); gripper readings that cannot be true
(grip_problem); object identities across tracker ids."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.config import REPO_SCENES_DIR, load_scene
from robot_wm.control.estimate import OracleEstimator
from robot_wm.control.executor import grip_problem
from robot_wm.control.faults import (
    GONE,
    PRESENT,
    UNKNOWN,
    CalibrationMonitor,
    TargetWatch,
    box_surface_points,
)
from robot_wm.geometry import Pose, yaw_quaternion
from robot_wm.interface import Observation
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.decision import ObjectIdentities
from robot_wm.sim import World
from robot_wm.sim.push import set_object_pose


@pytest.fixture(scope="module")
def world():
    w = World(load_scene(REPO_SCENES_DIR / "two_blocks.yaml"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def monitor():
    m = CalibrationMonitor()
    yield m
    m.close()


def shifted(obs: Observation, camera: str, pose: Pose) -> Observation:
    frames = dict(obs.frames)
    frames[camera] = dataclasses.replace(frames[camera], camera2world=pose)
    return Observation(frames, obs.joint_positions, obs.gripper_width, obs.time)


def test_box_surface_points_cover_top_and_sides_not_the_bottom():
    est = ObjectEstimate("b", Pose([0.5, 0.0, 0.025], yaw_quaternion(0.3)), np.array([0.04, 0.06, 0.05]))
    pts = box_surface_points(est)
    local = est.pose.inverse().transform_points(pts)
    assert np.abs(local).max(axis=0) == pytest.approx([0.02, 0.03, 0.025])
    assert np.isclose(local[:, 2], 0.025).any() and not np.isclose(local[:, 2], -0.025).all()
    on_bottom_only = np.isclose(local[:, 2], -0.025) & (np.abs(local[:, 0]) < 0.019) & (np.abs(local[:, 1]) < 0.029)
    assert not on_bottom_only.any()


def test_target_watch_tells_in_place_gone_and_in_hand(world):
    world.reset()
    obs = world.observe(segmentation=False)
    est = next(e for e in OracleEstimator(world).estimate(obs) if e.id == "red_block")
    watch = TargetWatch.from_estimate(est, obs.frames)
    assert watch.pixels > 100 and set(watch.views) == {"front", "side"}
    assert watch.at_place(obs.frames).state == PRESENT
    # the same surface moved with an (imagined) hand 20 cm up: not where it was, not there in the image either
    up = Pose([0.0, 0.0, 0.2], [0, 0, 0, 1])
    assert watch.in_hand(obs.frames, up).state == GONE
    assert watch.in_hand(obs.frames, Pose.identity()).state == PRESENT
    # the block really moved 8 cm: its place shows the table now
    pose = world.object_pose("red_block")
    set_object_pose(world, "red_block", Pose(pose.position + [0.0, 0.08, 0.0], pose.quaternion))
    moved = world.observe(segmentation=False)
    v = watch.at_place(moved.frames)
    assert v.state == GONE and v.gone > 3 * v.present
    # a camera that is not the one remembered (moved with the hand) gives no verdict
    other = shifted(moved, "front", Pose(moved.frames["front"].camera2world.position + 0.01,
                                         moved.frames["front"].camera2world.quaternion))
    assert watch.at_place({"front": other.frames["front"]}).state == UNKNOWN
    world.reset()


def test_calibrated_cameras_agree_and_a_moved_one_is_named(world, monitor):
    world.reset()
    obs = world.observe(segmentation=False)
    for a in monitor.check(obs):
        assert a.robot_points > 100 and np.linalg.norm(a.robot_offset) < 0.008
        assert abs(a.table_height) < 0.003 and a.table_tilt_deg < 0.3
    assert monitor.disagreement(obs) == ""
    pose = obs.frames["side"].camera2world
    sideways = shifted(obs, "side", Pose(pose.position + [0.0, 0.03, 0.0], pose.quaternion))
    message = monitor.disagreement(sideways)
    assert "camera 'side' no longer agrees with its calibration" in message and "'front'" not in message
    side = next(a for a in monitor.check(sideways) if a.camera == "side")
    assert side.robot_offset[1] == pytest.approx(0.03, abs=0.008)  # the direction is measured, not only the size
    down = shifted(obs, "front", Pose(obs.frames["front"].camera2world.position + [0.0, 0.0, -0.03],
                                      obs.frames["front"].camera2world.quaternion))
    assert "table top is seen at z = -3.0 cm" in monitor.disagreement(down)
    turn = Rotation.from_euler("x", 2.0, degrees=True) * pose.rotation
    assert "'side'" in monitor.disagreement(shifted(obs, "side", Pose(pose.position, turn.as_quat())))


def test_a_one_centimetre_or_one_degree_bump_is_caught_by_the_pose_fit(world, monitor):
    """Too small for the table and robot-offset limits (15 mm, 1 deg), seen by the 6-DoF fit of the depth to
    the workcell: a 1 cm shift along the table (which the table plane alone cannot see) and a 1 deg turn."""
    world.reset()
    obs = world.observe(segmentation=False)
    for a in monitor.check(obs):
        assert a.pose_shift < 0.0015 and a.pose_turn_deg < 0.1
    for name in ("front", "side"):
        pose = obs.frames[name].camera2world
        along = shifted(obs, name, Pose(pose.position + [0.01, 0.0, 0.0], pose.quaternion))
        a = next(a for a in monitor.check(along) if a.camera == name)
        assert a.pose_shift == pytest.approx(0.01, abs=0.003)
        assert f"camera {name!r}" in monitor.disagreement(along) and "fits the robot and table" in \
            monitor.disagreement(along)
        turned = shifted(obs, name, Pose(pose.position, (Rotation.from_euler("z", 1.0, degrees=True)
                                                         * pose.rotation).as_quat()))
        a = next(a for a in monitor.check(turned) if a.camera == name)
        # a camera that sees little of the robot (front) cannot tell a turn about the vertical from the sideways
        # shift it causes where it looks: one or the other is measured
        assert a.pose_turn_deg > 0.4 and a.pose_shift > 0.008
        assert f"camera {name!r}" in monitor.disagreement(turned)
    without = CalibrationMonitor(shift_m=None, turn_deg=None)
    try:
        pose = obs.frames["front"].camera2world
        assert without.disagreement(shifted(obs, "front", Pose(pose.position + [0.01, 0.0, 0.0],
                                                                pose.quaternion))) == ""
    finally:
        without.close()


def test_workcell_renders_are_reused_while_the_arm_and_camera_stay(world, monitor, monkeypatch):
    """Looks from the same arm pose reuse the model render; a moved arm or camera renders again."""
    world.reset()
    obs = world.observe(segmentation=False)
    monitor.check(obs)  # renders (or reuses the renders of an earlier test's identical look)
    model = monitor._model
    calls = []
    real = model.world.render
    monkeypatch.setattr(model.world, "render", lambda *a, **k: calls.append(1) or real(*a, **k))
    monitor.check(obs)
    assert calls == []
    moved = Observation(obs.frames, obs.joint_positions + 0.05, obs.gripper_width, obs.time)
    monitor.check(moved)
    assert len(calls) == len(obs.frames)
    pose = obs.frames["side"].camera2world
    monitor.check(shifted(moved, "side", Pose(pose.position + [0.0, 0.01, 0.0], pose.quaternion)))
    assert len(calls) == len(obs.frames) + 1


def test_small_frames_are_not_checked(monitor):
    from robot_wm.geometry import Intrinsics
    from robot_wm.interface import CameraFrame

    tiny = CameraFrame("cam", np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32),
                       Intrinsics(2, 2, 2.0, 2.0, 0.5, 0.5), Pose.identity())
    assert monitor.check(Observation({"cam": tiny}, np.zeros(7), 0.08, 0.0)) == []


@pytest.mark.parametrize(("target", "widths", "bad"), [
    (0.07, [0.0] * 20, True),  # stuck at 0 while opening
    (0.0, [0.05] * 20, True),  # stuck while closing
    (0.0, list(np.linspace(0.07, 0.05, 20)), False),  # closed on a 5 cm object
    (0.0, list(np.linspace(0.07, 0.0, 20)), False),  # closed on air
    (0.08, list(np.linspace(0.05, 0.03, 20)), True),  # "opening" that reads closing
    (0.08, list(np.linspace(0.05, 0.08, 20)), False),  # a release
    (0.0, [0.0] * 20, False),  # nothing commanded
])
def test_grip_problem(target, widths, bad):
    assert bool(grip_problem(target, widths)) is bad


def est(oid: str, x: float, y: float, ext=(0.05, 0.05, 0.05), color=None) -> ObjectEstimate:
    return ObjectEstimate(oid, Pose([x, y, ext[2] / 2], [0, 0, 0, 1]), np.array(ext, float),
                          color=None if color is None else np.array(color, float))


def test_identities_follow_objects_across_tracker_ids():
    ids = ObjectIdentities()
    first = ids.update([est("t1", 0.5, 0.1, color=[0.9, 0.1, 0.1]), est("t2", 0.6, -0.1, ext=(0.03, 0.06, 0.05))])
    assert first == {"t1": "obj0", "t2": "obj1"}
    # t1 fell back 4 cm away and is now t7; t2 kept its id
    assert ids.update([est("t7", 0.52, 0.13, color=[0.85, 0.12, 0.1]), est("t2", 0.6, -0.1,
                                                                        ext=(0.03, 0.06, 0.05))])["t7"] == "obj0"
    # far away, another size or another colour: a new object
    assert ids.update([est("t8", 0.8, 0.3)])["t8"] == "obj2"
    assert ids.update([est("t9", 0.52, 0.13, ext=(0.02, 0.02, 0.02))])["t9"] not in ("obj0", "obj1")
    assert ids.update([est("t10", 0.52, 0.13, color=[0.1, 0.1, 0.9])])["t10"] not in ("obj0", "obj1")
    assert ids.key("t7") == "obj0" and ids.key("never-seen") == "never-seen"
