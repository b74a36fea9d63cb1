"""Hand-mounted (wrist) cameras in the simulator: each frame carries the optical frame's true world pose, the
flange pose composed with the calibration's camera2flange, the image agrees with that pose wherever the arm is,
and fixed cameras are untouched by the new key (bit-identical frames with and without ``mount: world``)."""

from __future__ import annotations

import numpy as np
import yaml

from robot_wm.config import load_scene
from robot_wm.config.loader import scene_from_dict
from robot_wm.geometry import Pose, panda
from robot_wm.sim import World
from robot_wm.sim.kinematics import KinematicModel
from tests.conftest import REPO

SCENE = REPO / "sim_scenes" / "wrist_camera.yaml"


def _depth_at(frame, point: np.ndarray) -> tuple[float, float]:
    """(rendered depth, expected depth) m at the pixel where `frame`'s camera projects world `point` (3,)."""
    p = frame.camera2world.inverse().transform_points(point[None])[0]
    k = frame.intrinsics
    u, v = k.fx * p[0] / p[2] + k.cx, k.fy * p[1] / p[2] + k.cy
    assert 5 < u < k.width - 5 and 5 < v < k.height - 5, (u, v)
    return float(frame.depth[int(round(v)), int(round(u))]), float(p[2])


def test_wrist_frame_pose_follows_the_flange_and_matches_the_image():
    scene = load_scene(SCENE)
    assert scene.mounts == ["world", "hand"] and scene.mount_of("wrist") == "hand"
    cal = scene.calibrations[1]
    camera2flange = Pose(cal.camera2world.position, cal.camera2world.orientation)
    kin = KinematicModel()
    poses = []
    try:
        with World(scene) as world:
            cam = next(c for c in world.cameras if c.name == "wrist")
            assert cam.mount == "hand"
            top = world.object_pose("red_block").position + np.array([0.0, 0.0, 0.025])  # top face centre
            for q in (panda.HOME, panda.HOME + np.array([0.15, 0.1, 0.0, 0.05, 0.0, -0.1, 0.4])):
                world.reset_arm(q)
                frame = world.render("wrist", noise=False)
                truth = kin.fk(q, panda.FLANGE_LINK) @ camera2flange
                assert np.allclose(frame.camera2world.position, truth.position, atol=1e-6)
                assert np.allclose(np.abs(frame.camera2world.quaternion @ truth.quaternion), 1.0, atol=1e-9)
                rendered, expected = _depth_at(frame, top)
                assert abs(rendered - expected) < 2e-3  # the image is rendered from the pose the frame carries
                poses.append(frame.camera2world.position)
                obs = world.observe(segmentation=False)
                assert np.allclose(obs.frames["wrist"].camera2world.position, frame.camera2world.position)
    finally:
        kin.close()
    assert np.linalg.norm(poses[0] - poses[1]) > 0.03  # the camera moved with the arm


def test_fixed_cameras_are_unchanged_by_the_mount_key():
    data = yaml.safe_load((REPO / "sim_scenes" / "two_blocks.yaml").read_text())
    explicit = dict(data, cameras=[{"calibration": "front.yaml", "mount": "world"}, {"calibration": "side.yaml"}])
    frames = []
    for d in (data, explicit):
        with World(scene_from_dict(d, d["name"], REPO / "sim_scenes")) as world:
            world.reset_arm(panda.HOME + 0.2)
            frames.append(world.observe())
    for name in ("front", "side"):
        a, b = frames[0].frames[name], frames[1].frames[name]
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
        assert a.camera2world.position.tolist() == b.camera2world.position.tolist()
