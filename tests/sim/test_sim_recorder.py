"""VideoRecorder annotations: world-frame outlines projected with the recording camera, and a zoomed inset."""

from __future__ import annotations

import numpy as np
import pytest

from robot_wm.config import load_scene
from robot_wm.geometry import Intrinsics, Pose
from robot_wm.sim import World
from robot_wm.sim.recorder import (
    INSET_SCALE,
    Annotation,
    Polyline,
    VideoRecorder,
    annotate_frame,
    zoom_window,
)

K = Intrinsics(240, 180, 200.0, 200.0, 119.5, 89.5)
EYE = Pose.identity()  # optical frame = world frame: the camera looks along world +z


def test_polylines_land_where_the_camera_projects_them():
    rgb = np.zeros((180, 240, 3), np.uint8)
    line = Polyline(np.array([[-0.2, 0.0, 1.0], [0.2, 0.0, 1.0]]), (255, 0, 0), width=1)
    behind = Polyline(np.array([[0.0, 0.1, -1.0], [0.0, 0.2, -1.0]]), (0, 255, 0))  # behind the camera
    out = annotate_frame(rgb, K, EYE, Annotation([line, behind]))
    assert rgb.max() == 0  # the input is not drawn on
    rows, cols = np.nonzero(np.all(out == (255, 0, 0), axis=-1))
    assert set(rows) <= {89, 90} and cols.min() <= 80 and cols.max() >= 159  # u = 119.5 -/+ 200 * 0.2
    assert not np.any(np.all(out == (0, 255, 0), axis=-1))


def test_the_inset_sits_top_right_and_zooms_in_on_its_shapes():
    rgb = np.full((180, 240, 3), 90, np.uint8)
    small = Polyline(np.array([[0.0, 0.0, 1.0], [0.02, 0.0, 1.0], [0.02, 0.02, 1.0]]), (0, 255, 255), width=1)
    x0, y0, w, h = zoom_window([small], K, EYE)
    assert w == pytest.approx(0.25 * 240) and h == pytest.approx(0.25 * 180)  # at least a quarter of the frame
    assert x0 <= 119.5 and 119.5 + 4 <= x0 + w  # around the shape
    assert zoom_window([], K, EYE) == (0.0, 0.0, 240.0, 180.0)
    out = annotate_frame(rgb, K, EYE, Annotation(inset=[small], inset_text=["push a 5 cm"]))
    iw = round(240 * INSET_SCALE)
    assert np.all(out[4, 240 - iw - 4] == 255)  # the inset's white border, top right
    assert np.all(out[-1, 0] == 90) and np.all(out[170, 10] == 90)  # the rest of the frame is untouched
    inset = out[4:4 + round(180 * INSET_SCALE), 240 - iw - 4:240 - 4]
    # zoomed in 4 x 1/3: the 4 px long segment is about 5 px long in the inset
    cyan = np.nonzero(np.all(inset == (0, 255, 255), axis=-1))[1]
    assert 3 <= np.ptp(cyan) <= 6


def test_the_recorder_annotates_every_frame(repo):
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as world:
        region = world.scene.config.task.place_region
        cx, cy = region.center[:2]
        square = np.array([[cx - 0.1, cy - 0.1, 0.0], [cx + 0.1, cy - 0.1, 0.0], [cx + 0.1, cy + 0.1, 0.0],
                           [cx - 0.1, cy + 0.1, 0.0]])
        calls = []

        def annotate():
            calls.append(1)
            return Annotation([Polyline(square, (255, 0, 255), closed=True)])

        rec = VideoRecorder(world, every_s=0.1, annotate=annotate)
        world.step(60)
        rec.detach()
        assert len(rec.frames) == len(calls) == 3
        magenta = np.all(rec.frames[-1] == (255, 0, 255), axis=-1)
        assert magenta.sum() > 100  # the outline is there ...
        bare = world.render(rec.camera, segmentation=False, noise=False).rgb
        assert not np.all(bare == (255, 0, 255), axis=-1).any()  # ... and only in the recording
