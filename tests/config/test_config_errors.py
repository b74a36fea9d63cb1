"""Malformed scene and calibration files give one line naming the file, the key path and the problem."""

import copy
import math
from pathlib import Path

import pytest
import yaml

from robot_wm.cli.main import main
from robot_wm.config import ConfigError, load_calibration, load_scene

GOOD_SCENE = {
    "name": "t",
    "cameras": [{"calibration": "front.yaml"}],
    "objects": [
        {"name": "a", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1, "position": [0.5, 0.0, 0.03]},
        {"name": "b", "shape": "cylinder", "size": [0.02, 0.05], "mass": 0.1, "position": [0.5, 0.1, 0.03]},
        {"name": "c", "urdf": "random_urdfs/001/001.urdf", "position": [0.6, 0.0, 0.05]},
    ],
}
GOOD_CAL = {
    "name": "cam", "width": 640, "height": 480, "fx": 554.26, "fy": 554.26, "cx": 319.5, "cy": 239.5,
    "near": 0.05, "far": 3.0, "camera2world": {"position": [1.2, 0.0, 0.8], "orientation": [0, 0, 0, 1]},
}


def write(tmp_path: Path, data, name="scene.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


def scene_with(path: str, value):
    data = copy.deepcopy(GOOD_SCENE)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


def cal_with(key: str, value):
    data = copy.deepcopy(GOOD_CAL)
    if value is DELETE:
        del data[key]
    else:
        data[key] = value
    return data


DELETE = object()

SCENE_CASES = [
    ("unknown key", scene_with("objects.0.colour", [1, 0, 0, 1]), "objects[0].colour", "unknown key"),
    ("missing field", scene_with("objects.0.position", DELETE), "objects[0].position", "required"),
    ("missing name", scene_with("name", DELETE), "name", "required"),
    ("wrong type", scene_with("objects.1.mass", "heavy"), "objects[1].mass", "number"),
    ("negative mass", scene_with("objects.0.mass", -1), "objects[0].mass", "must be > 0 (got -1)"),
    ("zero mass", scene_with("objects.0.mass", 0), "objects[0].mass", "must be > 0"),
    ("NaN position", scene_with("objects.0.position", [0.5, math.nan, 0.03]), "objects[0].position[1]", "finite"),
    ("non-unit quaternion", scene_with("objects.0.orientation", [0, 0, 0, 2.0]), "objects[0].orientation", "unit length"),
    ("missing URDF", scene_with("objects.2.urdf", "nowhere/none.urdf"), "objects[2].urdf", "not found"),
    ("duplicate names", scene_with("objects.1.name", "a"), "objects[1].name", "duplicate"),
    ("box size length", scene_with("objects.0.size", [0.05, 0.05]), "objects[0].size", "box takes 3"),
    ("shape and urdf", scene_with("objects.0.urdf", "cube.urdf"), "objects[0]", "exactly one of shape and urdf"),
    ("bad rgba", scene_with("objects.0.color", [1.2, 0, 0, 1]), "objects[0].color", "[0, 1]"),
    ("no cameras", scene_with("cameras", []), "cameras", "wrong length"),
    ("missing calibration", scene_with("cameras.0.calibration", "nope.yaml"), "cameras[0].calibration", "not found"),
    ("unknown shape", scene_with("objects.0.shape", "cone"), "objects[0].shape", "must be one of"),
    ("unknown task kind", scene_with("task", {"kind": "juggle"}), "task.kind", "must be one of"),
    ("push without goals", scene_with("task", {"kind": "push_to_goal"}), "task.goals", "at least one goal"),
    ("goal unknown object", scene_with("task", {"goals": [{"object": "zz", "position": [0.5, 0.1]}]}),
     "task.goals[0].object", "unknown object 'zz'"),
    ("goal NaN", scene_with("task", {"goals": [{"object": "a", "position": [0.5, math.nan]}]}),
     "task.goals[0].position[1]", "finite"),
    ("goal off the table", scene_with("task", {"goals": [{"object": "a", "position": [1.5, 0.0]}]}),
     "task.goals[0].position", "on the table"),
    ("goal out of reach", scene_with("task", {"goals": [{"object": "a", "position": [0.1, 0.0]}]}),
     "task.goals[0].position", "reach"),
    ("goal tolerance", scene_with("task", {"goals": [{"object": "a", "position": [0.5, 0.1], "tolerance_m": 0}]}),
     "task.goals[0].tolerance_m", "must be > 0"),
    ("two goals one object", scene_with("task", {"goals": [{"object": "a", "position": [0.5, 0.1]},
                                                           {"object": "a", "position": [0.5, 0.2]}]}),
     "task.goals[1].object", "second goal"),
    ("goal for a fixed obstacle", {**GOOD_SCENE, "objects": [*GOOD_SCENE["objects"], {
        "name": "wall", "shape": "box", "size": [0.02, 0.3, 0.1], "fixed": True, "position": [0.75, 0.0, 0.05]}],
        "task": {"goals": [{"object": "wall", "position": [0.5, 0.1]}]}}, "task.goals[0].object", "fixed obstacle"),
    ("primitive without mass", scene_with("objects.0.mass", DELETE), "objects[0].mass", "required"),
]


@pytest.mark.parametrize(("label", "data", "keypath", "fragment"), SCENE_CASES, ids=[c[0] for c in SCENE_CASES])
def test_bad_scene(tmp_path, label, data, keypath, fragment):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_scene(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {keypath}"), msg
    assert fragment in msg, msg


CAL_CASES = [
    ("fx <= 0", cal_with("fx", 0), "fx", "must be > 0"),
    ("principal point outside", cal_with("cx", 700), "cx", "inside the image"),
    ("far <= near", cal_with("far", 0.01), "far", "must be > near"),
    ("both poses", cal_with("look_at", {"eye": [1, 0, 1], "target": [0, 0, 0]}), "", "exactly one of camera2world and look_at"),
    ("eye == target", {**cal_with("camera2world", DELETE), "look_at": {"eye": [1, 0, 1], "target": [1, 0, 1]}},
     "look_at", "eye and target must differ"),
    ("unknown noise", cal_with("depth_noise", "gauss"), "depth_noise", "must be one of"),
    ("width type", cal_with("width", 640.5), "width", "integer"),
]


@pytest.mark.parametrize(("label", "data", "keypath", "fragment"), CAL_CASES, ids=[c[0] for c in CAL_CASES])
def test_bad_calibration(tmp_path, label, data, keypath, fragment):
    path = write(tmp_path, data, "cam.yaml")
    with pytest.raises(ConfigError) as err:
        load_calibration(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {keypath}"), msg
    assert fragment in msg, msg


def test_not_yaml(tmp_path):
    path = write(tmp_path, "name: [unclosed\n  objects: {")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_scene(path)


def test_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_scene(write(tmp_path, "- just\n- a list\n"))


def test_binary_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(ConfigError, match="not a text"):
        load_scene(path)


def test_near_unit_quaternion_is_normalised(tmp_path):
    scene = load_scene(write(tmp_path, scene_with("objects.0.orientation", [0, 0, 0, 1.01])))
    assert scene.config.objects[0].orientation == pytest.approx([0, 0, 0, 1.0])


def test_empty_objects_rejected_where_needed(tmp_path):
    path = write(tmp_path, scene_with("objects", []))
    assert load_scene(path).config.objects == []  # a scene may be empty ...
    with pytest.raises(ConfigError, match="objects: at least one object"):
        load_scene(path, require_objects=True)  # ... but not for pick-and-place


def test_look_at_and_camera2world_equivalent(repo):
    from robot_wm.sim.camera import Camera

    cam = Camera(load_calibration(repo / "calibration/side.yaml"))
    assert cam.camera2world.rotation.apply([0, 0, 1])[2] < 0  # looks down at the table


def test_cli_bad_scene_exits_2_with_one_line(tmp_path, capsys):
    path = write(tmp_path, scene_with("objects.0.mass", -1))
    code = main(["demo", "--scene", str(path), "--out", str(tmp_path / "o"), "--perception", "oracle"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"error: {path}: objects[0].mass: must be > 0 (got -1)"
    assert not any("Traceback" in line for line in err)


def test_cli_empty_scene_exits_2(tmp_path, capsys):
    path = write(tmp_path, scene_with("objects", []))
    assert main(["demo", "--scene", str(path), "--out", str(tmp_path / "o"), "--perception", "oracle"]) == 2
    assert "objects: at least one object" in capsys.readouterr().err


def test_cli_missing_scene_file(tmp_path, capsys):
    assert main(["demo", "--scene", str(tmp_path / "missing.yaml"), "--perception", "oracle"]) == 2
    assert "file not found" in capsys.readouterr().err


def test_shipped_files_are_valid(repo):
    for f in sorted((repo / "sim_scenes").glob("*.yaml")):
        assert load_scene(f).config.objects
    for f in sorted((repo / "calibration").glob("*.yaml")):
        load_calibration(f)


def test_task_goals_and_fixed_obstacles_load(tmp_path):
    data = {**GOOD_SCENE, "objects": [*GOOD_SCENE["objects"], {
        "name": "wall", "shape": "box", "size": [0.02, 0.3, 0.1], "fixed": True, "position": [0.75, 0.0, 0.05]}],
        "task": {"kind": "push_to_goal", "goals": [{"object": "a", "position": [0.55, 0.1], "yaw_deg": 30}]}}
    cfg = load_scene(write(tmp_path, data)).config
    assert cfg.task.kind == "push_to_goal" and cfg.objects[-1].fixed and cfg.objects[-1].mass is None
    goal = cfg.task.goals[0]
    assert goal.yaw == pytest.approx(math.radians(30)) and goal.tolerance_m == 0.02 and goal.tolerance_deg == 10
    assert load_scene(write(tmp_path, GOOD_SCENE, "plain.yaml")).config.task.kind == "pick_place"
