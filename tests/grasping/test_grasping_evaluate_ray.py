"""The Ray backend gives the same labels as the local pool (needs the robot-wm[ray] extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_wm.grasping import load_shake_config, parse_object_specs
from robot_wm.grasping.evaluate import evaluate

pytest.importorskip("ray", reason="Ray not installed: pip install 'robot-wm[ray]' to test the ray backend")


def test_ray_backend_matches_local(tmp_path: Path) -> None:
    objs = parse_object_specs(["box:0.05x0.04x0.06", "random_urdfs/702/702.urdf,scale=0.6"])
    cfg = load_shake_config()
    evaluate(objs, tmp_path / "local", cfg, seed=1, grasps_per_object=2, workers=1, progress=False, plots=False)
    evaluate(objs, tmp_path / "ray", cfg, seed=1, grasps_per_object=2, workers=2, backend="ray", progress=False,
             plots=False)
    a, b = ((tmp_path / d / "trials.jsonl").read_text() for d in ("local", "ray"))
    assert [json.loads(x)["label"] for x in a.splitlines()] == [json.loads(x)["label"] for x in b.splitlines()]
    assert a == b
