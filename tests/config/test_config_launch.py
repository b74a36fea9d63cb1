"""Launch and planner files: shipped ones load; broken references and values give one-line errors."""

import pytest
import yaml

from robot_wm.cli.main import main
from robot_wm.config import ConfigError, load_launch, load_planner


def test_shipped_launch_files_load(repo):
    files = sorted((repo / "launch").glob("*.yaml"))
    assert files
    for f in files:
        launch = load_launch(f)
        assert launch.scene.config.objects
    assert load_planner(repo / "planners/pick_place.yaml").lift > 0


def test_launch_with_missing_scene(tmp_path):
    f = tmp_path / "l.yaml"
    f.write_text(yaml.safe_dump({"name": "x", "scene": "nowhere.yaml"}))
    with pytest.raises(ConfigError, match=r"l.yaml: scene: scene file not found: nowhere.yaml"):
        load_launch(f)


def test_bad_planner_value(tmp_path, repo):
    planner = tmp_path / "p.yaml"
    planner.write_text(yaml.safe_dump({"lift": -0.1}))
    f = tmp_path / "l.yaml"
    f.write_text(yaml.safe_dump({"name": "x", "scene": str(repo / "sim_scenes/two_blocks.yaml"), "planner": "p.yaml"}))
    with pytest.raises(ConfigError, match=r"p.yaml: lift: must be > 0.05 \(got -0.1\)"):
        load_launch(f)
    assert main(["demo", "--launch", str(f)]) == 2
