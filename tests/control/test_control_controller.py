"""Controller.step(observation) -> Command: drives the robot from observations alone."""

import numpy as np

from robot_wm.config import load_scene
from robot_wm.control.controller import PickPlaceController
from robot_wm.control.demo import run_controller
from robot_wm.geometry import Intrinsics, Pose, panda
from robot_wm.interface import CameraFrame, Command, Observation
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.sim import Arm, KinematicModel, World


class FixedEstimator:
    """Reports the same objects every time, whatever the camera sees."""

    name = "fixed"

    def __init__(self, estimates):
        self.estimates = estimates
        self.calls = 0

    def estimate(self, obs):
        assert obs.frames, "the controller asked for images before estimating"
        self.calls += 1
        return self.estimates


def test_phantom_object_is_retried_then_given_up(repo):
    """An estimate with nothing behind it: the fingers close on air, the controller notices from the
    gripper width alone, backs off, retries up to the limit and finishes."""
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as world:
        arm = Arm(world)
        ghost = ObjectEstimate("ghost", Pose([0.4, 0.25, 0.025], [0, 0, 0, 1]), np.array([0.05, 0.05, 0.05]))
        est = FixedEstimator([ghost])
        ctrl = PickPlaceController(est, arm.kin, world.scene.config.task.place_region)
        assert ctrl.wants_images
        run_controller(world, arm, ctrl, max_sim_s=60)
        assert ctrl.phase == "done"
        assert [a.reason for a in ctrl.attempts] == ["nothing in hand after lift"] * 2
        assert est.calls == 4  # two attempts; a look that finds nothing to try; a last look from home
        arm.close()


def test_commands_stay_within_limits_and_are_smooth(repo):
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as world:
        arm = Arm(world)
        target = world.objects["red_block"]
        est = FixedEstimator([ObjectEstimate("red", world.object_pose("red_block"), np.array(target.size))])
        ctrl = PickPlaceController(est, arm.kin, world.scene.config.task.place_region)
        obs = world.observe()
        commands: list[Command] = []
        for _ in range(2400):
            cmd = ctrl.step(obs)
            commands.append(cmd)
            arm.command(cmd.joint_positions, cmd.joint_velocities)
            arm.set_gripper(cmd.gripper_width, cmd.gripper_force)
            world.step()
            obs = world.observe(render=ctrl.wants_images)
        q = np.stack([c.joint_positions for c in commands])
        assert np.all(q >= panda.LOWER - 1e-6) and np.all(q <= panda.UPPER + 1e-6)
        speed = np.abs(np.diff(q, axis=0)) * 240
        assert np.all(speed <= panda.VELOCITY_LIMIT * 1.05)
        assert any(c.phase == "grip" for c in commands) and any(c.events for c in commands)
        assert world.object_pose("red_block").position[2] > 0.1 or ctrl.attempts[0].grasped
        arm.close()


def test_image_requests_and_task_filter_are_explicit_not_read_from_the_estimator(repo):
    """The controller never looks at an estimator's name: whether it asks for images and which ids it may
    pick are constructor arguments."""
    from robot_wm.config import PlaceRegion

    region = PlaceRegion(center=[0.45, -0.35, 0.0], size=[0.2, 0.2])
    a = ObjectEstimate("a", Pose([0.5, 0.1, 0.03], [0, 0, 0, 1]), np.array([0.05, 0.05, 0.06]))
    b = ObjectEstimate("b", Pose([0.5, -0.1, 0.025], [0, 0, 0, 1]), np.array([0.05, 0.05, 0.05]))
    est = FixedEstimator([a, b])
    est.name = "oracle"
    kin = KinematicModel()
    try:
        assert PickPlaceController(est, kin, region).wants_images  # the name changes nothing
        ctrl = PickPlaceController(est, kin, region, task_objects=["b"], request_images=False)
        assert not ctrl.wants_images
        frame = CameraFrame("front", np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32),
                            Intrinsics(2, 2, 2.0, 2.0, 0.5, 0.5), Pose.identity())  # a valid frame, never read
        obs = Observation({"front": frame}, panda.HOME.copy(), 0.08, 0.0)
        cmd = ctrl.step(obs)
        assert "pick:b" in cmd.events and [t.target for t in ctrl.attempts] == ["b"]  # "a" is higher, not a task object
    finally:
        kin.close()
