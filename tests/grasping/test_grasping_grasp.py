"""Grasp type and file formats: native JSON, ACRONYM-style transforms, .npz; one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.config import ConfigError
from robot_wm.geometry import Pose
from robot_wm.grasping import Grasp, load_grasps, save_grasps, save_grasps_acronym


def _grasps() -> list[Grasp]:
    rng = np.random.default_rng(0)
    return [Grasp(Pose(rng.normal(size=3) * 0.05, Rotation.random(random_state=i).as_quat()), 0.01 * (i + 1), 0.5 - i)
            for i in range(4)]


def _same(a: list[Grasp], b: list[Grasp]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert np.allclose(x.pose.matrix(), y.pose.matrix(), atol=1e-7)
        assert x.width == pytest.approx(y.width) and x.score == pytest.approx(y.score)


def test_tcp_axes() -> None:
    g = Grasp(Pose([0, 0, 0], Rotation.from_matrix([[-1, 0, 0], [0, 1, 0], [0, 0, -1]]).as_quat()), 0.04)
    assert np.allclose(g.approach, [0, 0, -1]) and np.allclose(g.closing_axis, [0, 1, 0])


def test_native_roundtrip(tmp_path) -> None:
    save_grasps(tmp_path / "g.json", _grasps(), object_name="cube")
    _same(load_grasps(tmp_path / "g.json")[None], _grasps())


def test_acronym_roundtrip_and_tcp_offset(tmp_path) -> None:
    save_grasps_acronym(tmp_path / "a.json", _grasps())
    _same(load_grasps(tmp_path / "a.json")[None], _grasps())
    # Transforms of the Panda hand frame: the TCP lies 0.105 m along their z axis.
    hand = np.eye(4)
    (tmp_path / "h.json").write_text(json.dumps({"transforms": [hand.tolist()], "widths": [0.03], "tcp_offset": 0.105}))
    g = load_grasps(tmp_path / "h.json")[None][0]
    assert np.allclose(g.pose.position, [0, 0, 0.105])


def test_npz_and_per_object_mapping(tmp_path) -> None:
    gs = _grasps()
    np.savez(tmp_path / "g.npz", transforms=np.stack([g.matrix() for g in gs]), widths=[g.width for g in gs],
             scores=[g.score for g in gs])
    _same(load_grasps(tmp_path / "g.npz")[None], gs)
    (tmp_path / "m.json").write_text(json.dumps({"objects": {"a": [gs[0].to_dict()], "b": [g.to_dict() for g in gs]}}))
    loaded = load_grasps(tmp_path / "m.json")
    assert set(loaded) == {"a", "b"} and len(loaded["b"]) == 4


@pytest.mark.parametrize("content, where", [
    ("{not json", "not valid JSON"),
    ('{"grasps": [{"position": [0, 0], "quaternion": [0, 0, 0, 1], "width": 0.1}]}', "grasps[0].position"),
    ('{"grasps": [{"position": [0, 0, 0], "quaternion": [0, 0, 0, 1]}]}', "grasps[0].width: required key"),
    ('{"grasps": [{"position": [0, 0, 0], "quaternion": [0, 0, 0, 0], "width": 0.1}]}', "grasps[0].quaternion"),
    ('{"grasps": [{"position": [0, 0, 0], "quaternion": [0, 0, 0, 1], "width": -1}]}', "grasps[0].width: must be"),
    ('{"transforms": [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]], "widths": [0.1]}', "transforms[0]"),
    ('{"transforms": [[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]], "widths": [0.1]}', "transforms[0]"),
    ('{"transforms": [], "widths": [0.1]}', "widths"),
    ('{"grasp": []}', "grasp: unknown key"),
])
def test_malformed_files_give_one_line_errors(tmp_path, content: str, where: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ConfigError) as exc:
        load_grasps(p)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(p)) and where in msg


def test_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_grasps(tmp_path / "nope.json")
