"""Bad RGB-D input gives one clear line (or the documented handling); an empty table gives an empty graph."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robot_wm.config import scene_from_dict
from robot_wm.geometry import Intrinsics
from robot_wm.perception import Perceiver, PerceptionInputError, validate_frame
from robot_wm.sim import World

K = Intrinsics(64, 48, 55.4, 55.4, 31.5, 23.5)


@pytest.fixture(scope="module")
def frame():
    data = {"name": "one", "cameras": [{"calibration": "front.yaml"}],
            "objects": [{"name": "b", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1,
                         "color": [0.9, 0.1, 0.1, 1], "position": [0.5, 0.0, 0.025]}]}
    with World(scene_from_dict(data)) as w:
        return w.observe().frames["front"]


def _err(fn) -> str:
    with pytest.raises(PerceptionInputError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_wrong_shape_and_dtype():
    rgb = np.zeros((48, 64, 3), np.uint8)
    assert "(H, W)" in _err(lambda: validate_frame("c", rgb, np.zeros((48, 64, 2), np.float32), K))
    assert "dtype" in _err(lambda: validate_frame("c", rgb, np.ones((48, 64), np.int32), K))
    assert "rgb dtype" in _err(lambda: validate_frame("c", rgb.astype(np.float32), np.ones((48, 64), np.float32), K))


def test_size_mismatches():
    d = np.ones((48, 64), np.float32)
    assert "rgb is 32x48 but depth is 64x48" in _err(lambda: validate_frame("c", np.zeros((48, 32, 3), np.uint8), d, K))
    assert "calibration says 64x48" in _err(lambda: validate_frame("c", None, np.ones((24, 32), np.float32), K))


def test_calibration_that_cannot_be_this_camera():
    d = np.ones((48, 64), np.float32)
    bad = Intrinsics(64, 48, 55.4, 55.4, 319.5, 239.5)  # principal point of a 640x480 calibration
    assert "principal point" in _err(lambda: validate_frame("c", None, d, bad))


def test_all_zero_nan_and_millimetres():
    rgb = np.zeros((48, 64, 3), np.uint8)
    assert "no valid pixels" in _err(lambda: validate_frame("c", rgb, np.zeros((48, 64), np.float32), K))
    assert "no valid pixels" in _err(lambda: validate_frame("c", rgb, np.full((48, 64), np.nan, np.float32), K))
    assert "millimetres" in _err(lambda: validate_frame("c", rgb, np.full((48, 64), 950.0, np.float32), K))
    # documented handling: NaN / inf / negative -> invalid (0); uint16 is millimetres -> metres
    d = np.ones((48, 64), np.float32)
    d[0, 0], d[0, 1], d[0, 2] = np.nan, np.inf, -1.0
    out = validate_frame("c", rgb, d, K)
    assert out.dtype == np.float32 and np.all(out[0, :3] == 0) and np.all(out[1:] == 1)
    mm = validate_frame("c", rgb, np.full((48, 64), 1234, np.uint16), K)
    assert np.allclose(mm, 1.234)


def test_perceiver_rejects_bad_frames_and_survives_nan(frame):
    p = Perceiver()
    assert "millimetres" in _err(lambda: p.perceive([replace(frame, depth=frame.depth * 1000)]))
    assert "no valid pixels" in _err(lambda: p.perceive([replace(frame, depth=np.zeros_like(frame.depth))]))
    assert "calibration says" in _err(lambda: p.perceive([replace(frame, depth=frame.depth[:, :-1], rgb=frame.rgb[:, :-1])]))
    d = frame.depth.copy()
    d[::7, ::5] = np.nan
    graph = p.perceive([replace(frame, depth=d)])
    assert len(graph.objects) == 1
    assert np.linalg.norm(graph.objects[0].pose.position - [0.5, 0.0, 0.025]) < 0.004


def test_empty_table_gives_empty_graph():
    data = {"name": "empty", "cameras": [{"calibration": "front.yaml"}, {"calibration": "side.yaml"}], "objects": []}
    with World(scene_from_dict(data)) as w:
        obs = w.observe()
    graph = Perceiver().perceive(obs.frames, obs.time)
    assert graph.objects == [] and graph.relations == []
    assert graph.supports[0].kind == "table" and abs(graph.supports[0].height) < 0.002
