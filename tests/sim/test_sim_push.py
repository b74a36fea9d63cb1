"""Pushes executed by the Panda with its closed fingertips (robot_wm.sim.push)."""

import numpy as np
import pytest

from robot_wm.config import load_scene
from robot_wm.model.network import PAD_THICKNESS
from robot_wm.sim import Arm, World
from robot_wm.sim.push import execute_push, pusher_heading


def test_pusher_heading_is_the_push_line_within_a_quarter_turn():
    for yaw in np.linspace(-2 * np.pi, 2 * np.pi, 73):
        h = pusher_heading(yaw)
        assert abs(h) <= np.pi / 2 + 1e-12
        assert abs(np.sin(h - yaw)) < 1e-9  # same line: equal or a half turn apart


@pytest.mark.parametrize("yaw", [np.pi, 0.0])  # towards the robot (hand turned a half turn) and away
def test_push_moves_the_block_along_the_push(request, yaw):
    world = World(load_scene(request.config.rootpath / "sim_scenes/two_blocks.yaml"))
    arm = Arm(world)
    try:
        p0 = world.object_pose("red_block").position
        d = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        start = p0 - d * (0.025 + 0.02 + PAD_THICKNESS)  # 2 cm before the block's face
        start[2] = 0.02
        res = execute_push(world, arm, start, yaw, 0.02 + 0.05)
        assert res.ok and res.touched == {"red_block"}
        moved = world.object_pose("red_block").position - p0
        assert 0.035 < moved @ d < 0.06  # ~5 cm past first contact
        assert abs(moved @ np.array([-d[1], d[0], 0.0])) < 0.01
        assert world.at_rest()
    finally:
        arm.close()
        world.close()



def _turn_deg(root, tilt: float) -> float:
    """Yaw change (deg) of a 10 x 6 cm box pushed 8 cm across its long side, 4 cm off its centre."""
    from robot_wm.config import scene_from_dict
    from robot_wm.geometry import yaw_of

    data = {"name": "turn", "cameras": [{"calibration": "front.yaml"}],
            "objects": [{"name": "box", "shape": "box", "size": [0.10, 0.06, 0.05], "position": [0.5, 0.0, 0.026],
                         "mass": 0.2, "friction": 0.5, "color": [1, 0, 0, 1]}]}
    world = World(scene_from_dict(data, "turn", root / "sim_scenes"))
    arm = Arm(world)
    try:
        start = np.array([0.5 - 0.04, -0.03 - PAD_THICKNESS - 0.02, 0.025])
        assert execute_push(world, arm, start, np.pi / 2, 0.02 + 0.08, tilt=tilt).ok
        return float(np.degrees(yaw_of(world.object_pose("box").quaternion)))
    finally:
        arm.close()
        world.close()


def test_a_tilted_pad_turns_a_box_that_a_square_pad_slides(request):
    """Why pushes have a tilt: the pad face held square against the side slides the box without turning it;
    turned so that its corner on the offset side leads (a point contact), it turns the box clockwise."""
    root = request.config.rootpath
    assert abs(_turn_deg(root, 0.0)) < 3.0
    assert _turn_deg(root, -0.5) < -10.0
