"""bench calibration's pieces: the bump check at a tiny size (a large bump is caught, an undisturbed camera is
not flagged) and, marked slow, the bench's fields end to end at --quick size."""

from __future__ import annotations

import numpy as np
import pytest

import robot_wm.bench.calibration as bench
from robot_wm.config import REPO_SCENES_DEFAULT, load_scene
from robot_wm.sim import Camera


def test_a_large_bump_is_caught_and_a_still_camera_is_not(monkeypatch):
    monkeypatch.setattr(bench, "BUMP_M", 0.05)
    monkeypatch.setattr(bench, "BUMP_DEG", 4.0)
    scene = load_scene(REPO_SCENES_DEFAULT)
    cam = Camera(scene.calibrations[0])
    det, fa, det_t, fa_t = bench._bump_runs(scene, cam.name, cam.camera2world, cam.intrinsics, 2,
                                             np.random.default_rng(0))
    assert det == 1.0 and fa == 0.0 and det_t == 1.0 and fa_t == 0.0


@pytest.mark.slow
def test_bench_fields_at_quick_size():
    out = bench.run(None, 0, quick=True)
    for key in ("reprojection_px_rms", "focal_err_pct", "handeye_trans_mm_fixed", "handeye_rot_deg_fixed",
                "best_opencv_trans_mm_fixed", "methods", "poses", "calibrate_wall_s", "bump_detection_rate",
                "bump_false_alarm_rate", "handeye_trans_mm_random", "handeye_rot_deg_random", "cameras_random"):
        assert key in out
    assert out["cameras_random"] == 1 and out["handeye_trans_mm_random"] < 5.0
    assert out["handeye_trans_mm_fixed"] < 5.0 and out["focal_err_pct"] < 1.0
    assert set(next(iter(out["methods"].values()))) == {"tsai", "park", "horaud", "andreff", "daniilidis", "shah",
                                                         "li"}
