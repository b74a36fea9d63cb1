"""The scene contract's camera `mount` (world | hand): default world, a bad value and a hand camera given a world
pose are one-line errors naming the field, and a hand camera is not held to the fixed cameras' table-view check
(its pose is relative to the flange)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from robot_wm.cli.main import main
from robot_wm.config import ConfigError, load_scene
from tests.conftest import REPO

SCENE = REPO / "sim_scenes" / "wrist_camera.yaml"


def _write(tmp_path, cameras, wrist_change=None):
    scene = yaml.safe_load(SCENE.read_text()) | {"cameras": cameras}
    shutil.copy(REPO / "calibration" / "front.yaml", tmp_path / "front.yaml")
    wrist = yaml.safe_load((REPO / "calibration" / "hand" / "wrist.yaml").read_text()) | (wrist_change or {})
    (tmp_path / "wrist.yaml").write_text(yaml.safe_dump(wrist))
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(scene))
    return path


def test_mount_defaults_to_world_and_hand_is_accepted():
    scene = load_scene(SCENE)
    assert scene.mounts == ["world", "hand"]
    assert load_scene(REPO / "sim_scenes" / "two_blocks.yaml").mounts == ["world", "world"]


def test_bad_mount_is_one_line_naming_the_field(tmp_path, capsys):
    path = _write(tmp_path, [{"calibration": "front.yaml"}, {"calibration": "wrist.yaml", "mount": "wrist"}])
    with pytest.raises(ConfigError) as err:
        load_scene(path)
    msg = str(err.value)
    assert "cameras[1].mount" in msg and "'world' or 'hand' (got 'wrist')" in msg and "\n" not in msg
    assert main(["scene", "check", str(path)]) == 2
    out = capsys.readouterr().err.strip()
    assert out.startswith("error: ") and "cameras[1].mount" in out and "\n" not in out


def test_a_world_pose_given_to_a_hand_camera_is_refused(tmp_path):
    path = _write(tmp_path, [{"calibration": "front.yaml"}, {"calibration": "wrist.yaml", "mount": "hand"}],
                  {"camera2world": {"position": [1.15, 0.0, 0.75], "orientation": [0, 0, 0, 1]}})
    with pytest.raises(ConfigError) as err:
        load_scene(path)
    msg = str(err.value)
    assert "wrist.yaml" in msg and "camera2world.position" in msg and "within 0.3 m of the flange" in msg
    assert "cameras[1]" in msg and "\n" not in msg


def test_the_wrist_calibration_as_a_fixed_camera_fails_the_view_check(tmp_path):
    """Without mount: hand, wrist.yaml's pose (4 cm above the world origin, looking up) cannot see the table."""
    path = _write(tmp_path, [{"calibration": "front.yaml"}, {"calibration": "wrist.yaml"}])
    with pytest.raises(ConfigError, match="does not see the table|below the table"):
        load_scene(path)


def test_shipped_hand_calibrations_are_flange_poses():
    """calibration/hand/ holds hand-mounted cameras (their poses are relative to the flange, so they are kept out
    of the fixed cameras' calibration/*.yaml and its table-view check)."""
    from robot_wm.config import load_calibration
    from robot_wm.config.loader import hand_camera_problem

    files = sorted((REPO / "calibration" / "hand").glob("*.yaml"))
    assert files
    for f in files:
        assert hand_camera_problem(load_calibration(f)) is None, f.name
