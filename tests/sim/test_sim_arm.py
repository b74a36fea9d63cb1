"""The arm reaches sampled workspace targets to 2 mm / 1 deg, grasps, and checks motions for collisions."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.config import load_scene
from robot_wm.geometry import Pose, panda
from robot_wm.sim import Arm, World


@pytest.fixture(scope="module")
def rig(request):
    world = World(load_scene(request.config.rootpath / "sim_scenes/two_blocks.yaml"))
    arm = Arm(world)
    yield world, arm
    arm.close()
    world.close()


def sample_targets(rng, n):
    """Reachable TCP targets across the workspace: tilted up to 30 deg from top-down, any yaw."""
    out = []
    for _ in range(n):
        r = rng.uniform(0.3, 0.72)
        a = rng.uniform(-0.9, 0.9)
        pos = [r * np.cos(a), r * np.sin(a), rng.uniform(0.05, 0.45)]
        tilt = Rotation.from_rotvec(np.r_[rng.normal(size=2), 0.0] / 1.5 * rng.uniform(0, np.deg2rad(30)) * 1.5)
        rot = tilt * Rotation.from_euler("z", rng.uniform(-np.pi, np.pi)) * Rotation.from_euler("x", np.pi)
        out.append(Pose(pos, rot.as_quat()))
    return out


def test_ik_accuracy_across_workspace(rig):
    world, arm = rig
    rng = np.random.default_rng(0)
    solved = 0
    for target in sample_targets(rng, 40):
        q = arm.ik(target)
        if q is None:
            continue
        solved += 1
        assert np.all(q >= panda.LOWER - 1e-9) and np.all(q <= panda.UPPER + 1e-9)
        dp, dr = arm.kin.fk(q).distance(target)
        assert dp <= 2e-3 and dr <= np.deg2rad(1.0)
    assert solved >= 36  # nearly all sampled targets are reachable


def test_executed_motion_reaches_targets(rig):
    world, arm = rig
    rng = np.random.default_rng(1)
    for target in sample_targets(rng, 6):
        res = arm.move_to_pose(target)
        if not res.ok:
            continue
        assert res.pos_err <= 2e-3, res
        assert res.rot_err <= np.deg2rad(1.0), res


def test_unreachable_target_is_reported(rig):
    _, arm = rig
    res = arm.move_to_pose(Pose([1.5, 0.0, 0.3], [1, 0, 0, 0]))
    assert not res.ok and res.reason == "unreachable"


def test_joint_motion_respects_velocity_limits(rig):
    world, arm = rig
    arm.move_joints(panda.HOME)
    q_prev, t_prev, peak = arm.q(), world.time, np.zeros(7)

    def hook(w):
        nonlocal q_prev, t_prev, peak
        q = arm.q()
        peak = np.maximum(peak, np.abs(q - q_prev) / (w.time + 1 / 240 - t_prev + 1e-12))
        q_prev, t_prev = q, w.time + 1 / 240

    world.add_step_hook(hook)
    try:
        arm.move_joints(panda.HOME + np.array([0.8, 0.3, -0.5, 0.4, 0.6, -0.3, 0.9]), speed=0.5)
    finally:
        world.remove_step_hook(hook)
    assert np.all(peak <= 0.5 * panda.VELOCITY_LIMIT * 1.15), peak / panda.VELOCITY_LIMIT


def test_straight_line_stays_on_the_line(rig):
    world, arm = rig
    start = Pose([0.45, -0.2, 0.3], Rotation.from_euler("x", np.pi).as_quat())
    goal = Pose([0.55, 0.2, 0.15], start.quaternion)
    assert arm.move_to_pose(start).ok
    deviations = []

    def hook(w):
        p = arm.tcp_pose().position
        d = goal.position - start.position
        t = np.clip(np.dot(p - start.position, d) / np.dot(d, d), 0, 1)
        deviations.append(np.linalg.norm(p - (start.position + t * d)))

    world.add_step_hook(hook)
    try:
        res = arm.move_linear(goal)
    finally:
        world.remove_step_hook(hook)
    assert res.ok and res.pos_err < 2e-3
    assert max(deviations) < 5e-3


def test_grasp_lift_and_release(repo):
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as world:
        arm = Arm(world)
        block = world.object_pose("red_block").position
        down = Rotation.from_euler("x", np.pi).as_quat()
        assert arm.move_to_pose(Pose(block + [0, 0, 0.1], down)).ok
        arm.open_gripper()
        assert arm.move_linear(Pose(block, down)).ok
        width = arm.close_gripper()
        assert 0.045 < width < 0.052  # stopped by the 5 cm block
        assert arm.is_holding("red_block") and not arm.is_holding("blue_block")
        arm.move_linear(Pose(block + [0, 0, 0.12], down))
        assert world.object_pose("red_block").position[2] > 0.13
        arm.open_gripper()
        world.step(240)
        assert not arm.is_holding("red_block")
        assert world.object_pose("red_block").position[2] < 0.03
        arm.close()


def test_motion_collision_check(rig):
    world, arm = rig
    block = world.object_pose("blue_block").position
    down = Rotation.from_euler("x", np.pi).as_quat()
    q_above = arm.ik(Pose(block + [0, 0, 0.15], down))
    q_through = arm.ik(Pose(block + [0, 0, 0.0], Rotation.from_euler("xz", [np.pi, 0.3]).as_quat()))
    q_home = panda.HOME
    assert arm.check_motion(np.stack([q_home, q_above]), gripper_width=0.08) is None
    hit = arm.check_motion(np.stack([q_above, q_through]), gripper_width=0.0)
    assert hit is not None and hit[1] in ("blue_block", "table")


def test_shared_kinematic_model_stays_open_and_answers_alike(rig):
    world, arm = rig
    shared = Arm(world, kin=arm.kin)
    home = arm.kin.fk(panda.HOME)
    target = Pose(home.position + [0.05, -0.1, -0.2], home.quaternion)
    q = shared.ik(target, panda.HOME)
    shared.close()  # does not close the model it was given
    assert q is not None and np.array_equal(q, arm.ik(target, panda.HOME))
