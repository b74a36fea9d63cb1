"""Ground truth for scoring (robot_wm.sim.truth): task objects, placement, the object in the hand."""

import numpy as np

from robot_wm.config import load_scene, scene_from_dict
from robot_wm.geometry import Pose, top_down_quaternion
from robot_wm.sim import Arm, World
from robot_wm.sim.truth import evaluate_task, held_object, task_objects, true_poses
from tests.conftest import box_scene_dict


def test_task_objects_default_to_every_movable_object(repo):
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as w:
        assert task_objects(w) == list(w.objects)
    data = box_scene_dict(objects=[
        {"name": "a", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1, "position": [0.5, 0.1, 0.025]},
        {"name": "b", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1, "position": [0.5, -0.1, 0.025]},
    ], task={"place_region": {"center": [0.45, -0.35, 0.0], "size": [0.2, 0.2]}, "objects": ["b"]})
    with World(scene_from_dict(data, "ab", repo / "sim_scenes")) as w:
        assert task_objects(w) == ["b"]


def test_evaluate_task_reads_true_positions(repo):
    data = box_scene_dict(objects=[
        {"name": "inside", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1, "position": [0.45, -0.35, 0.025]},
        {"name": "outside", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1, "position": [0.5, 0.1, 0.025]},
    ], task={"place_region": {"center": [0.45, -0.35, 0.0], "size": [0.2, 0.2]}})
    with World(scene_from_dict(data, "place", repo / "sim_scenes")) as w:
        assert evaluate_task(w, ["inside", "outside"]) == {"inside": True, "outside": False}
        poses = true_poses(w)
        assert set(poses) == {"inside", "outside"}
        assert poses["inside"] == w.object_pose("inside").as_list()
        assert np.array(poses["outside"][0]).shape == (3,) and len(poses["outside"][1]) == 4


def test_held_object_is_the_one_between_the_fingers(repo):
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as w:
        arm = Arm(w)
        try:
            assert held_object(arm) is None
            p = w.object_pose("red_block").position
            q = top_down_quaternion(0.0)
            assert arm.move_to_pose(Pose(p + [0, 0, 0.1], q)).ok
            arm.open_gripper()
            assert arm.move_linear(Pose(p, q)).ok
            arm.close_gripper()
            assert held_object(arm) == "red_block"
            arm.open_gripper()
            w.step(240)
            assert held_object(arm) is None
        finally:
            arm.close()


def test_fixed_obstacles_stay_and_are_not_task_objects(repo):
    from robot_wm.config import load_scene
    from robot_wm.sim import World
    from robot_wm.sim.truth import task_objects

    with World(load_scene(repo / "sim_scenes/singulate.yaml")) as world:
        before = world.object_pose("wall").position.copy()
        world.step(120)
        assert world.objects["wall"].fixed and world.objects["wall"].mass == 0.0
        assert (world.object_pose("wall").position == before).all()
        assert "wall" not in task_objects(world) and "by_wall" in task_objects(world)
    with World(load_scene(repo / "sim_scenes/push_to_goal.yaml")) as world:
        assert task_objects(world) == ["wide_box"]
