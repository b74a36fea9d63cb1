"""Calibration in simulation: the board file, the held board's corners found where the true camera projects
them, a short hand-eye calibration of the front camera against the truth, and the CLI's bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from robot_wm.cli.main import main
from robot_wm.config import ConfigError, load_calibration, load_scene
from robot_wm.geometry import Pose
from robot_wm.perception.calibration import Charuco, load_board, pose_error
from robot_wm.perception.calibration_capture import calibrate, render_supersampled
from robot_wm.sim import World
from robot_wm.sim.board import TexturedBoard
from tests.conftest import REPO

BOARD_FILE = REPO / "calibration" / "targets" / "charuco_board.yaml"
SCENE = REPO / "sim_scenes" / "two_blocks.yaml"


def test_shipped_board_loads():
    cfg = load_board(BOARD_FILE)
    assert (cfg.squares_x, cfg.squares_y, cfg.dictionary) == (5, 7, "DICT_4X4_50")
    assert cfg.width == pytest.approx(0.15) and cfg.height == pytest.approx(0.21)


@pytest.mark.parametrize("change, field, fragment", [
    ({"marker_size": 0.03}, "marker_size", "must be < square_size"),
    ({"squares_x": 15, "squares_y": 15}, "dictionary", "has 50 markers"),
    ({"dictionary": "DICT_9X9"}, "dictionary", "DICT_4X4_50"),
    ({"square_size": -0.03}, "square_size", "must be > 0.005"),
    ({"colour": "red"}, "colour", ""),
])
def test_bad_board_files_name_the_field(tmp_path, change, field, fragment):
    data = yaml.safe_load(BOARD_FILE.read_text()) | change
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_board(path)
    assert field in str(err.value) and fragment in str(err.value) and "\n" not in str(err.value)


def test_corners_of_the_held_board_are_found_where_the_camera_projects_them():
    cfg = load_board(BOARD_FILE)
    charuco = Charuco(cfg)
    with World(load_scene(SCENE)) as world:
        cam = world.cameras[0]
        board = TexturedBoard(world, charuco.image(), cfg.width, cfg.height)
        board2camera = Pose([-0.06, -0.1, 0.5], [0.1, 0.2, 0.0, 1.0])  # tilted, face towards the camera
        board2world = cam.camera2world @ board2camera
        board.place(board2world)
        rms = {}
        for factor in (1, 3):
            rgb = render_supersampled(world, cam, board2world.transform_points(charuco.corners), factor)
            ids, uv = charuco.detect(rgb)
            assert len(ids) == len(charuco.corners)
            pts = board2camera.transform_points(charuco.corners[ids])
            k = cam.intrinsics
            expected = np.column_stack([k.fx * pts[:, 0] / pts[:, 2] + k.cx, k.fy * pts[:, 1] / pts[:, 2] + k.cy])
            err = np.linalg.norm(uv - expected, axis=1)
            rms[factor] = np.sqrt(np.mean(err ** 2))
    assert rms[3] < 0.35 and err.max() < 0.8  # px
    assert rms[3] < 0.75 * rms[1]  # one ray per pixel snaps edges to the pixel grid


def test_hand_eye_recovers_the_front_camera():
    scene = load_scene(SCENE)
    done = calibrate(scene, "front", load_board(BOARD_FILE), "hand-eye", n_poses=6, seed=1)
    truth = scene.calibrations[0]
    assert done.report["views"] == 6
    assert abs(done.calibration["fx"] / truth.fx - 1) < 0.005 and abs(done.calibration["fy"] / truth.fy - 1) < 0.005
    dt, dr = pose_error(done.result.camera2world, Pose(truth.camera2world.position,
                                                        truth.camera2world.orientation).matrix())
    assert dt < 4.0 and dr < 0.4  # mm, deg with only 6 views
    assert done.report["reprojection_px_rms"] < 0.4
    assert set(done.report["methods"]) == {"tsai", "park", "horaud", "andreff", "daniilidis", "shah", "li"}


def test_cli_writes_a_loadable_calibration(tmp_path):
    out = tmp_path / "front_est.yaml"
    assert main(["calibrate", "intrinsics", "--scene", str(SCENE), "--camera", "front", "--poses", "4",
                 "--seed", "2", "--out", str(out)]) == 0
    cal = load_calibration(out)
    assert abs(cal.fx / 554.26 - 1) < 0.01
    assert cal.camera2world is not None and np.allclose(cal.camera2world.position, [1.15, 0.0, 0.75])
    assert (tmp_path / "front_est.json").is_file()
    assert main(["check", str(out)]) == 0


@pytest.mark.parametrize("args, fragment", [
    (["--camera", "nope"], "no camera named 'nope'"),
    (["--camera", "front", "--poses", "2"], "--poses must be >= 4"),
    (["--camera", "front", "--method", "magic"], "--method must be one of"),
    (["--camera", "front", "--corner-noise-px", "-1"], "must be >= 0"),
])
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, capsys, args, fragment):
    rc = main(["calibrate", "hand-eye", "--scene", str(SCENE), "--out", str(tmp_path / "x.yaml"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and fragment in err and "\n" not in err


def test_cli_board_never_seen_is_an_error(tmp_path, capsys):
    """A camera too far away for any held board pose: the capture finds no view and says so."""
    cal = yaml.safe_load((REPO / "calibration" / "side.yaml").read_text())
    cal["look_at"] = {"eye": [2.6, 0.0, 1.6], "target": [0.5, 0.0, 0.0], "up": [0, 0, 1]}
    (tmp_path / "far.yaml").write_text(yaml.safe_dump(cal | {"name": "far"}))
    scene = yaml.safe_load(SCENE.read_text())
    scene["cameras"] = [{"calibration": "far.yaml"}]
    (tmp_path / "scene.yaml").write_text(yaml.safe_dump(scene))
    rc = main(["calibrate", "hand-eye", "--scene", str(tmp_path / "scene.yaml"), "--camera", "far", "--poses", "5",
               "--out", str(tmp_path / "x.yaml")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "the board was found in only 0" in err and "\n" not in err
    assert not (tmp_path / "x.yaml").exists()


def test_cli_bad_board_file_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "board.yaml"
    bad.write_text(BOARD_FILE.read_text().replace("marker_size: 0.022", "marker_size: 0.05"))
    rc = main(["calibrate", "intrinsics", "--scene", str(SCENE), "--camera", "front", "--board", str(bad),
               "--out", str(tmp_path / "x.yaml")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"error: {bad}: marker_size: must be < square_size") and "\n" not in err


WRIST_SCENE = REPO / "sim_scenes" / "wrist_camera.yaml"


def test_cli_calibrates_a_wrist_camera_eye_in_hand(tmp_path):
    """A hand-mounted camera: the board lies on the table, the arm shows it to the camera; the file holds the
    camera's pose on the flange (near the truth after 6 views) and loads as a hand camera of a scene."""
    import json

    out = tmp_path / "wrist.yaml"
    assert main(["calibrate", "hand-eye", "--scene", str(WRIST_SCENE), "--camera", "wrist", "--poses", "6",
                 "--seed", "1", "--out", str(out)]) == 0
    cal, truth = load_calibration(out), load_scene(WRIST_SCENE).calibrations[1]
    est = Pose(cal.camera2world.position, cal.camera2world.orientation).matrix()
    dt, dr = pose_error(est, Pose(truth.camera2world.position, truth.camera2world.orientation).matrix())
    assert dt < 8.0 and dr < 0.6  # mm, deg with only 6 views
    assert abs(cal.fx / truth.fx - 1) < 0.02
    report = json.loads((tmp_path / "wrist.json").read_text())
    assert report["mount"] == "hand" and "target2world" in report and report["reprojection_px_rms"] < 0.4
    assert set(report["methods"]) == {"tsai", "park", "horaud", "andreff", "daniilidis", "shah", "li"}
    scene = yaml.safe_load(WRIST_SCENE.read_text())
    scene["cameras"] = [{"calibration": str(REPO / "calibration" / "front.yaml")},
                        {"calibration": str(out), "mount": "hand"}]
    (tmp_path / "scene.yaml").write_text(yaml.safe_dump(scene))
    assert load_scene(tmp_path / "scene.yaml").mount_of("wrist") == "hand"


def test_the_board_lies_on_a_free_spot_of_the_table():
    from robot_wm.perception.calibration_capture import board_spot

    cfg = load_board(BOARD_FILE)
    with World(load_scene(WRIST_SCENE)) as world:
        spot = board_spot(world, cfg)
        corners = spot.transform_points(np.array([[0, 0, 0], [cfg.width, cfg.height, 0]], float))
        lo, hi = corners.min(0), corners.max(0)
        assert np.all(np.abs(corners[:, 2] - cfg.thickness) < 1e-3)  # face up, resting on the table
        for name in world.objects:
            a, b = world.object_aabb(name)
            assert np.any(hi[:2] < a[:2]) or np.any(lo[:2] > b[:2]), name  # no overlap with any object
