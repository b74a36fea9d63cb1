"""Random cameras: ranges, the workspace in view, the robot out of the way, determinism, the loader's view
check on user calibrations, and ``robot-wm scene random --cameras``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from robot_wm.cli.main import main
from robot_wm.config import CalibrationConfig, ConfigError, load_calibration, load_scene, scene_from_dict
from robot_wm.config import random_camera as rc
from robot_wm.geometry import look_at_camera2world
from tests.conftest import REPO, box_scene_dict

SEEDS = range(150)


@pytest.fixture(scope="module")
def drawn() -> dict[int, list[dict]]:
    return {s: rc.random_calibrations(s) for s in SEEDS}


def _geometry(cal: CalibrationConfig) -> tuple[float, float, np.ndarray]:
    """(elevation deg, distance m, look-at point (3,)) of a drawn camera: its optical axis meets the table
    top at the look-at point."""
    pose = rc.calibration_pose(cal)
    axis = pose.rotation.apply([0.0, 0.0, 1.0])
    elevation = math.degrees(math.asin(-axis[2]))
    distance = pose.position[2] / -axis[2]
    return elevation, distance, pose.position + distance * axis


def test_ranges_over_many_draws(drawn):
    front = yaml.safe_load((REPO / "calibration/front.yaml").read_text())
    cams = [c for cals in drawn.values() for c in cals]
    counts = {len(cals) for cals in drawn.values()}
    assert counts == {1, 2, 3}
    assert {c["depth_noise"] for c in cams} == set(rc.DEPTH_NOISES) == {"none", "nguyen2012", "nguyen2012_dropout"}
    for cals in drawn.values():
        assert len({c["depth_noise"] for c in cals}) == 1  # one noise model per scene
        assert len({c["name"] for c in cals}) == len(cals)
    elev, dist, fx = [], [], []
    for data in cams:
        assert list(data) == list(front)  # exactly the keys of calibration/front.yaml, in its order
        cal = CalibrationConfig.model_validate(data)
        assert (cal.width, cal.height, cal.near, cal.far) == (640, 480, front["near"], front["far"])
        assert cal.fy == cal.fx and 450 <= cal.fx <= 750
        assert math.hypot(cal.cx - 319.5, cal.cy - 239.5) <= 20 + 0.01
        e, d, target = _geometry(cal)
        assert 25 - 0.05 <= e <= 85 + 0.05 and 0.6 - 1e-3 <= d <= 1.5 + 1e-3
        assert rc.VIEW_REGION_X[0] - 1e-3 <= target[0] <= rc.VIEW_REGION_X[1] + 1e-3
        assert rc.VIEW_REGION_Y[0] - 1e-3 <= target[1] <= rc.VIEW_REGION_Y[1] + 1e-3
        elev.append(e)
        dist.append(d)
        fx.append(cal.fx)
    # the rejection rules thin the ranges but leave them covered
    assert min(elev) < 32 and max(elev) > 78
    assert min(dist) < 0.7 and max(dist) > 1.4
    assert min(fx) < 480 and max(fx) > 720
    offsets = [math.hypot(c["cx"] - 319.5, c["cy"] - 239.5) for c in cams]
    assert max(offsets) > 15


def test_workspace_in_view_and_robot_out_of_the_way(drawn):
    centre = np.array([[np.mean(rc.VIEW_REGION_X), np.mean(rc.VIEW_REGION_Y), 0.0]])
    azimuths = []
    for cals in drawn.values():
        for data in cals:
            cal = CalibrationConfig.model_validate(data)
            assert rc.in_image(cal, centre, margin_px=rc.VIEW_MARGIN_PX).all()
            assert rc.camera_sees_workspace(cal)
            assert not rc.camera_blocked_by_robot(cal)
            assert rc.view_problem(cal) is None  # the loader accepts every drawn camera
            eye = rc.calibration_pose(cal).position
            azimuths.append(math.degrees(math.atan2(eye[1] - centre[0, 1], eye[0] - centre[0, 0])))
    # cameras come from every side the robot leaves open: front, both sides, and obliquely behind the base
    hist = np.histogram(azimuths, bins=8, range=(-180, 180))[0]
    assert (hist[1:7] > 0).all(), hist


def test_robot_envelope_is_the_home_posture():
    """The hard-coded link chain is the Panda's forward kinematics at HOME (pybullet_data's URDF)."""
    from robot_wm.geometry import panda
    from robot_wm.sim.kinematics import KinematicModel

    km = KinematicModel()
    try:
        chain = np.array([km.fk(panda.HOME, link).position for link in (0, 2, 3, 4, 6, 8, panda.TCP_LINK)])
    finally:
        km.close()
    np.testing.assert_allclose(rc._HOME_CHAIN, chain, atol=1.5e-3)


def test_blocking_rule_rejects_views_through_the_robot():
    target = np.array([0.53, 0.05, 0.0])
    behind = look_at_camera2world(target + [-1.1, 0.0, 0.7], target, [0, 0, 1])
    cal = CalibrationConfig.model_validate({**_cal_dict("behind"), "camera2world": {
        "position": behind.position.tolist(), "orientation": behind.quaternion.tolist()}})
    assert rc.camera_blocked_by_robot(cal)  # looks at the workspace over the base and through the arm
    assert not rc.camera_blocked_by_robot(load_calibration(REPO / "calibration/front.yaml"))
    assert not rc.camera_blocked_by_robot(load_calibration(REPO / "calibration/side.yaml"))
    assert rc.robot_clearance(np.array([0.0, 0.0, 0.2]), target[None]) < 0  # a camera in the base column


def test_rendered_views_show_the_workspace_not_the_robot(tmp_path):
    """Rendered: a grid on the view region is table in every drawn camera (no robot in front of it);
    the rejected camera behind the robot sees the robot there."""
    from robot_wm.sim import World

    cams = [c for s in range(4) for c in rc.random_calibrations(s, depth_noise="none", prefix=f"s{s}_")]
    target = np.array([0.53, 0.05, 0.0])
    behind = look_at_camera2world(target + [-1.1, 0.0, 0.7], target, [0, 0, 1])
    cams.append({**_cal_dict("behind"), "camera2world": {"position": behind.position.tolist(),
                                                         "orientation": behind.quaternion.tolist()}})
    names = rc.write_calibrations(cams, tmp_path, "t")
    data = box_scene_dict(cameras=[{"calibration": n} for n in names], objects=[])
    data["cameras"] = data["cameras"][:-1]  # the loader would accept it (it sees the table): render it apart
    grid = rc.view_region_points(0.0, 7)[:49]
    from robot_wm.sim.camera import Camera

    def seg_at_grid(w: World, cal: dict) -> np.ndarray:
        frame = w.render(Camera(CalibrationConfig.model_validate(cal)))
        px = np.rint(rc.project_world(CalibrationConfig.model_validate(cal), grid)[0]).astype(int)
        return frame.segmentation[px[:, 1], px[:, 0]]

    with World(scene_from_dict(data, "views", tmp_path)) as w:
        for cal in cams[:-1]:
            assert (seg_at_grid(w, cal) == w.table).mean() >= 0.95, cal["name"]
        assert (seg_at_grid(w, cams[-1]) == w.robot).mean() > 0.1


def test_same_seed_same_cameras():
    assert rc.random_calibrations(5) == rc.random_calibrations(5)
    assert rc.random_calibrations(5, 3, "nguyen2012") == rc.random_calibrations(5, 3, "nguyen2012")
    assert rc.random_calibrations(5) != rc.random_calibrations(6)
    with pytest.raises(ValueError, match="n_cameras"):
        rc.random_calibrations(0, 4)
    with pytest.raises(ValueError, match="depth_noise"):
        rc.random_calibrations(0, 1, "gauss")


def _cal_dict(name: str) -> dict:
    data = yaml.safe_load((REPO / "calibration/front.yaml").read_text())
    return {**data, "name": name}


def _write_scene(tmp_path, cal: dict, objects=None) -> object:
    (tmp_path / "cam.yaml").write_text(yaml.safe_dump(cal))
    data = box_scene_dict(cameras=[{"calibration": "cam.yaml"}])
    if objects is not None:
        data["objects"] = objects
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("label", "pose", "field", "fragment"), [
    ("looks at the sky", {"camera2world": {"position": [1.2, 0.0, 0.8], "orientation": [0, 0, 0, 1]}},
     "camera2world", "does not see the table: 0.0 %"),
    ("looks away", {"look_at": {"eye": [1.3, 0.0, 0.5], "target": [2.5, 0.0, 0.3]}}, "look_at",
     "does not see the table"),
    ("below the table", {"look_at": {"eye": [0.4, 0.0, -0.2], "target": [0.5, 0.0, 0.0]}}, "look_at.eye",
     "below the table top"),
    ("inside the box", {"look_at": {"eye": [0.5, 0.0, 0.02], "target": [0.9, 0.0, 0.0]}}, "look_at.eye",
     "inside object 'box'"),
])
def test_loader_rejects_a_camera_that_cannot_see_the_table(tmp_path, label, pose, field, fragment):
    cal = {k: v for k, v in _cal_dict("cam").items() if k != "camera2world"} | pose
    path = _write_scene(tmp_path, cal)
    with pytest.raises(ConfigError) as err:
        load_scene(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'cam.yaml'}: {field}: "), msg
    assert fragment in msg and f"scene {path}, cameras[0]" in msg, msg
    assert main(["scene", "check", str(path)]) == 2


def test_shipped_calibrations_pass_the_view_check():
    for f in sorted((REPO / "calibration").glob("*.yaml")):
        cal = load_calibration(f)
        assert rc.view_problem(cal) is None and rc.table_view_fraction(cal) > 0.5
        assert rc.camera_sees_workspace(cal), f.name


@pytest.mark.parametrize("argv", [
    ["--cameras", "4"], ["--cameras", "banana"], ["--cameras", "2", "--depth-noise", "gauss"],
    ["--depth-noise", "nguyen2012"],
])
def test_cli_bad_camera_options_exit_2_with_one_line(tmp_path, capsys, argv):
    out = tmp_path / "x.yaml"
    assert main(["scene", "random", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: scene random: --")
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_drawn_scene_loads_renders_and_is_seeded(tmp_path, capsys):
    """``scene random --cameras 2``: calibration files next to the scene, loaded by load_scene; every object
    is visible (segmentation and valid depth) in every rendered RGB-D frame; same seed, same files."""
    from robot_wm.sim import World

    out = tmp_path / "a" / "scene.yaml"
    args = ["scene", "random", "--seed", "11", "--objects", "3", "--cameras", "2", "--depth-noise",
            "nguyen2012_dropout"]
    assert main([*args, "--out", str(out)]) == 0
    assert main([*args, "--out", str(tmp_path / "b" / "scene.yaml")]) == 0
    files = sorted(p.name for p in out.parent.iterdir())
    assert files == ["scene.yaml", "scene_random0.yaml", "scene_random1.yaml"]
    for name in files:
        assert (out.parent / name).read_text() == (tmp_path / "b" / name).read_text()
    assert main(["scene", "random", "--seed", "11", "--objects", "3", "--out", str(tmp_path / "c.yaml")]) == 0
    same_objects = yaml.safe_load((tmp_path / "c.yaml").read_text())["objects"]
    assert yaml.safe_load(out.read_text())["objects"] == same_objects  # the cameras draw from their own stream
    scene = load_scene(out)
    assert [c.depth_noise for c in scene.calibrations] == ["nguyen2012_dropout"] * 2
    with World(scene) as w:
        obs = w.observe()
        assert set(obs.frames) == {"random0", "random1"}
        for frame in obs.frames.values():
            assert frame.rgb.shape == (480, 640, 3) and frame.depth.shape == (480, 640)
            dropped = float(((frame.depth == 0) & (frame.segmentation == w.table)).mean())
            assert 0.002 < dropped < 0.03  # dropout (and lateral noise at edges) on the table
            for name, obj in w.objects.items():
                mask = frame.segmentation == obj.body
                assert mask.sum() > 80, (frame.name, name)
                assert (frame.depth[mask] > 0).mean() > 0.8, (frame.name, name)


def test_cli_random_cameras_for_task_scenes(tmp_path):
    out = tmp_path / "push.yaml"
    assert main(["scene", "random", "--task", "push_to_goal", "--seed", "2", "--cameras", "random",
                 "--out", str(out)]) == 0
    scene = load_scene(out)
    assert 1 <= len(scene.calibrations) <= 3
    assert [c.name for c in scene.calibrations] == [f"random{i}" for i in range(len(scene.calibrations))]
