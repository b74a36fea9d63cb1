"""Scene validation before anything runs: what it refuses is covered by tests/cli/bad_inputs.py; here, what it
must keep accepting (touching, stacked, leaning, falling objects; every scene the project's generators
draw), YAML merge keys, and URDF checks on the shipped objects."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import yaml

from robot_wm.config import REPO_SCENES_DIR, ConfigError, load_scene, read_yaml, scene_from_dict
from robot_wm.config.loader import check_urdf, resolve_asset
from robot_wm.config.models import ObjectConfig, primitives_overlap
from robot_wm.config.random_scene import push_to_goal_scene, random_scene, singulate_scene


def box(position, size=(0.05, 0.05, 0.05), orientation=(0, 0, 0, 1), shape="box") -> ObjectConfig:
    return ObjectConfig(name="o", shape=shape, size=list(size), mass=0.1, position=list(position),
                        orientation=list(orientation))


@pytest.mark.parametrize(("a", "b", "overlap"), [
    (box([0.5, 0, 0.025]), box([0.55, 0, 0.025]), False),  # faces touching
    (box([0.5, 0, 0.025]), box([0.549, 0, 0.025]), False),  # 1 mm into each other: within the tolerance
    (box([0.5, 0, 0.025]), box([0.547, 0, 0.025]), True),  # 3 mm
    (box([0.5, 0, 0.025]), box([0.5, 0, 0.076]), False),  # stacked, 1 mm gap
    (box([0.5, 0, 0.025]), box([0.5, 0, 0.3]), False),  # dropped from above
    (box([0.5, 0, 0.025]), box([0.5, 0, 0.07]), True),  # sunk 5 mm into the one below
    # a box turned 45 deg: its corner 0.0354 m from its centre, 5 mm into the other's face / 1 mm short of it
    (box([0.5, 0, 0.025]), box([0.555, 0.0, 0.025], orientation=[0, 0, 0.3826834, 0.9238795]), True),
    (box([0.5, 0, 0.025]), box([0.5614, 0.0, 0.025], orientation=[0, 0, 0.3826834, 0.9238795]), False),
    (box([0.5, 0, 0.02], (0.02,), shape="sphere"), box([0.54, 0, 0.02], (0.02,), shape="sphere"), False),
    (box([0.5, 0, 0.02], (0.02,), shape="sphere"), box([0.535, 0, 0.02], (0.02,), shape="sphere"), True),
    (box([0.5, 0, 0.025], (0.02, 0.05), shape="cylinder"), box([0.5445, 0, 0.025]), False),
    (box([0.5, 0, 0.025], (0.02, 0.05), shape="cylinder"), box([0.54, 0, 0.025]), True),
])
def test_overlap_allows_touching_and_stacking(a, b, overlap):
    assert primitives_overlap(a, b) is overlap
    assert primitives_overlap(b, a) is overlap


def test_an_object_in_the_air_or_leaning_on_another_is_fine():
    tilt = math.radians(30)
    slab = box([0.55, 0.0, 0.04], (0.015, 0.05, 0.08), [0, math.sin(tilt / 2), 0, math.cos(tilt / 2)])
    assert slab.placement_problem() is None
    assert box([0.5, 0.0, 0.8]).placement_problem() is None
    assert "under the table" in box([0.5, 0.0, 0.02]).placement_problem()
    assert "outside the workspace" in box([0.5, 0.0, 1.5]).placement_problem()


@pytest.mark.parametrize("seed", range(6))
def test_every_generated_scene_passes_the_placement_checks(seed):
    """The generators (scene random, bench scenes, data collection) never draw a scene the checks refuse."""
    import numpy as np

    from robot_wm.bench.hard_scenes import hard_scene
    from robot_wm.model.collect import sample_collection_scene

    scenes = [random_scene(seed, 6), random_scene(seed, 4, heldout=True), push_to_goal_scene(seed),
              push_to_goal_scene(seed, heldout=False), singulate_scene(seed), hard_scene(seed),
              sample_collection_scene(np.random.default_rng([seed, 0]), "train")]
    for data in scenes:
        scene_from_dict(data, data["name"], REPO_SCENES_DIR, check_placement=True)


def test_placement_is_checked_for_files_not_for_recorded_states(tmp_path):
    """A recorded mid-episode state (an object fallen off the table) is a valid scene mapping; a scene file
    with the same contents is refused."""
    data = {"name": "fallen", "cameras": [{"calibration": "front.yaml"}],
            "objects": [{"name": "a", "shape": "box", "size": [0.05] * 3, "mass": 0.1, "position": [0.5, 0.0, -0.3]}]}
    assert scene_from_dict(data, "<state>", REPO_SCENES_DIR).config.objects[0].position[2] == -0.3
    path = tmp_path / "fallen.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"objects\[0\].position: under the table"):
        load_scene(path)


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")
    assert read_yaml(p) == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}}
    p.write_text("a:\n  x: 1\n  y: 2\n  x: 3\n")
    with pytest.raises(ConfigError, match=r"m.yaml: x: duplicate key at line 4, column 3 \(first at line 2"):
        read_yaml(p)


def test_shipped_and_sampled_urdfs_pass_the_urdf_check():
    from robot_wm.config.object_sets import BROKEN_URDF_IDS, random_urdf_path

    for name in ["franka_panda/panda.urdf", "tray/traybox.urdf", *(random_urdf_path(i) for i in range(0, 1000, 37))]:
        check_urdf(resolve_asset(name, None))
    for i in BROKEN_URDF_IDS:  # the one pybullet_data mesh with NaN vertices is refused, with its reason
        with pytest.raises(ConfigError, match="not 3 finite numbers"):
            check_urdf(resolve_asset(random_urdf_path(i), None))


def test_a_urdf_with_package_mesh_paths_resolves(tmp_path):
    pkg = Path(tempfile.mkdtemp(dir=tmp_path))
    (pkg / "meshes").mkdir()
    (pkg / "meshes" / "m.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    (pkg / "urdf").mkdir()
    (pkg / "urdf" / "o.urdf").write_text('<robot name="o"><link name="l"><collision><geometry>'
                                         '<mesh filename="package://mypkg/meshes/m.obj"/></geometry></collision>'
                                         '</link></robot>')
    check_urdf(pkg / "urdf" / "o.urdf")
