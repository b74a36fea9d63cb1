"""grasp-eval's `protocol: arm_table` (the Panda arm on a table judges each grasp): labels that need the arm
and the table, the same labels for 1 and 2 workers, the Ray backend and after an interrupted and resumed
run, and one-line errors for bad settings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import robot_wm.grasping.evaluate as evaluate_mod
from robot_wm.cli.main import main
from robot_wm.geometry import Pose, top_down_quaternion
from robot_wm.grasping import Grasp, load_shake_config, parse_object_specs, shake_test
from robot_wm.grasping.evaluate import ARM_TABLE_FIELDS, ROW_FIELDS, RunMismatch, evaluate
from robot_wm.grasping.shake import ARM_TABLE_LABELS, arm_table_trials, table_spawn_pose

OBJECTS = ["box:0.05x0.04x0.06", "random_urdfs/701/701.urdf,scale=0.6"]
SEED, GRASPS = 3, 3  # labels: stable x2, unreachable x2, table_collision, collision


def _arm_config():
    return load_shake_config().model_copy(update={"protocol": "arm_table"})


def _run(out: Path, **kw) -> dict:
    return evaluate(parse_object_specs(OBJECTS), out, _arm_config(), seed=SEED, grasps_per_object=GRASPS,
                    progress=False, **{"plots": False, **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("arm_ref")
    _run(out, workers=1)
    return out


BOX = "box:0.05x0.04x0.06"


def _box_grasps() -> list[Grasp]:
    """Object-frame grasps on the 5 x 4 x 6 cm box: top-down across the 4 cm side; the same with the TCP 5 mm
    below the table; from below; top-down across the 5 cm side; wider than the gripper."""
    up = (Rotation.from_euler("x", np.pi) * Rotation.from_quat(top_down_quaternion(0.0))).as_quat()
    return [Grasp(Pose([0, 0, 0.01], top_down_quaternion(0.0)), 0.04, 1.0),
            Grasp(Pose([0, 0, -0.035], top_down_quaternion(0.0)), 0.04, 1.0),
            Grasp(Pose([0, 0, -0.01], up), 0.04, 1.0),
            Grasp(Pose([0, 0, 0.01], top_down_quaternion(np.pi / 2)), 0.05, 1.0),
            Grasp(Pose([0, 0, 0.01], top_down_quaternion(0.0)), 0.09, 1.0)]


def _key(results) -> list[tuple]:
    return [(r.label, r.slip, r.rise, r.closed_width, r.max_table_force) for r in results]


@pytest.fixture(scope="module")
def box_trials():
    return arm_table_trials(parse_object_specs([BOX])[0], _box_grasps(), _arm_config())


def test_labels_need_the_arm_and_the_table(box_trials) -> None:
    """A centred top-down grasp holds; the same grasp with the TCP 5 mm below the table presses on it; a
    grasp from below the table, which the free-floating hand holds, cannot be reached by the arm; a width
    beyond the gripper is unreachable."""
    start, results = box_trials
    labels = [r.label for r in results]
    assert labels[0] == "stable" and labels[3] == "stable" and labels[4] == "unreachable"
    assert labels[1] == "table_collision" and results[1].max_table_force > 5.0
    assert labels[2] in ("unreachable", "collision")
    box = parse_object_specs([BOX])[0]
    assert shake_test(box, _box_grasps()[2]).label == "stable"  # the free hand does not know about the table
    # the box rests on the table where the config put it
    assert np.allclose(start.position, [0.5, 0.0, 0.03], atol=1e-3)
    assert table_spawn_pose(box, _arm_config().arm_table).position[2] == pytest.approx(0.033)
    assert set(labels) <= set(ARM_TABLE_LABELS)


def test_trials_do_not_depend_on_the_trials_before(box_trials) -> None:
    """Every trial starts from the same freshly reset world: the reversed sequence gives the same numbers."""
    _, rev = arm_table_trials(parse_object_specs([BOX])[0], _box_grasps()[::-1], _arm_config())
    assert str(_key(rev)[::-1]) == str(_key(box_trials[1]))  # str: NaN == NaN


def test_outputs(reference: Path) -> None:
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["protocol"] == "arm_table" and summary["trials"] == len(OBJECTS) * GRASPS
    assert set(summary["labels"]) <= set(ARM_TABLE_LABELS) and summary["labels"].get("stable", 0) >= 1
    rows = [json.loads(x) for x in (reference / "trials.jsonl").read_text().splitlines()]
    assert all(tuple(r) == ROW_FIELDS + ARM_TABLE_FIELDS for r in rows)
    with open(reference / "trials.csv", newline="") as f:
        assert tuple(next(csv.reader(f))) == ROW_FIELDS + ARM_TABLE_FIELDS
    assert json.loads((reference / "run.json").read_text())["config"]["protocol"] == "arm_table"


def test_two_workers_same_rows(reference: Path, tmp_path: Path) -> None:
    _run(tmp_path, workers=2)
    assert (tmp_path / "trials.jsonl").read_text() == (reference / "trials.jsonl").read_text()


def test_interrupted_then_resumed_same_rows(reference: Path, tmp_path: Path, monkeypatch) -> None:
    real = evaluate_mod.run_unit

    def stop_at_second(unit, seed, config):
        if unit.index == 1:
            raise KeyboardInterrupt
        return real(unit, seed, config)

    monkeypatch.setattr(evaluate_mod, "run_unit", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, workers=1)
    assert [p.name for p in (tmp_path / "shards").glob("*.jsonl")] == ["00000_box_0.05x0.04x0.06.jsonl"]
    monkeypatch.setattr(evaluate_mod, "run_unit", real)
    summary = _run(tmp_path, workers=1)
    assert summary["objects_resumed"] == 1
    assert (tmp_path / "trials.jsonl").read_text() == (reference / "trials.jsonl").read_text()


def test_ray_backend_same_rows(reference: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray not installed: pip install 'robot-wm[ray]' to test the ray backend")
    _run(tmp_path, workers=2, backend="ray")
    assert (tmp_path / "trials.jsonl").read_text() == (reference / "trials.jsonl").read_text()


def test_other_protocol_is_another_run(reference: Path) -> None:
    with pytest.raises(RunMismatch, match="different arguments"):
        evaluate(parse_object_specs(OBJECTS), reference, load_shake_config(), seed=SEED, grasps_per_object=GRASPS,
                 progress=False, plots=False)


@pytest.mark.parametrize("yaml_text, needle", [
    ("protocol: arm_tabel\n", "protocol: must be one of 'free_hand' or 'arm_table'"),
    ("arm_table:\n  table_force: -1\n", "arm_table.table_force: must be > 0 (got -1)"),
    ("arm_table:\n  carry_distance: 0.1\n", "arm_table.carry_distance: unknown key"),
    ("arm_table:\n  object_position: [2.0, 0.0]\n", "arm_table.object_position: must lie on the table"),
    ("arm_table:\n  object_position: [0.1, 0.0]\n", "arm_table.object_position: out of the arm's reach"),
    ("arm_table:\n  object_orientation: [0, 0, 0, 2]\n", "arm_table.object_orientation: quaternion (xyzw) must"),
    ("arm_table:\n  approach: 0\n", "arm_table.approach: must be > 0"),
    ("protocol: arm_table\narm:\n  enabled: true\n", "arm.enabled: the arm_table protocol brings its own arm"),
])
def test_bad_settings_exit_2_with_one_line(tmp_path: Path, capsys, yaml_text: str, needle: str) -> None:
    cfg = tmp_path / "shake.yaml"
    cfg.write_text(yaml_text)
    code = main(["grasp-eval", "--objects", "box:0.05x0.05x0.05", "--config", str(cfg), "--out", str(tmp_path / "o"),
                 "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and f"{cfg}: {needle}" in err[0]
