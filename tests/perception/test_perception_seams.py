"""The seam test's pieces on synthetic input (the pipeline tests run it on rendered flush pairs)."""

from __future__ import annotations

import numpy as np

from robot_wm.perception.seams import SEAM_WIDTH_PX, _enclosed, _line_through, _same_shade


def test_a_dashed_line_across_a_face_is_enclosed_and_the_outline_is_not():
    top = np.zeros((20, 30), bool)
    top[3:17, 4:26] = True
    top[3:17:2, 15] = False  # a dashed seam, one pixel wide, every other row
    top[3, 4] = False  # a corner pixel missing from the outline
    seam = _enclosed(top)
    assert seam[3:17:2, 15].all()
    assert not seam[3, 4]
    assert seam.sum() == len(range(3, 17, 2))


def test_a_seam_up_to_its_width_is_enclosed_and_a_wider_groove_is_not():
    top = np.zeros((20, 50), bool)
    top[2:18, 2:48] = True
    top[2:18, 10:10 + SEAM_WIDTH_PX] = False  # a seam seen at an angle
    top[2:18, 25:31 + SEAM_WIDTH_PX] = False  # wider: a groove, or two objects apart
    seam = _enclosed(top)
    assert seam[2:18, 10:10 + SEAM_WIDTH_PX].all()
    assert not seam[2:18, 25:31 + SEAM_WIDTH_PX].any()


def test_the_line_through_collinear_points_ignores_strays():
    rng = np.random.default_rng(0)
    s = np.linspace(-0.03, 0.03, 25)
    on = np.stack([0.5 + 0.6 * s, 0.1 + 0.8 * s], axis=1) + rng.normal(0, 0.0003, (25, 2))
    strays = rng.uniform([0.47, 0.07], [0.53, 0.13], (5, 2))
    xy = np.concatenate([on, strays])
    w, t, mask = _line_through(xy, np.full(len(xy), 0.0015), np.random.default_rng(1))
    assert abs(abs(w @ np.array([0.6, 0.8])) - 0.0) < 0.02  # normal is perpendicular to the line
    assert abs(abs(w @ np.array([0.5, 0.1]) - t)) < 0.001
    assert mask[:25].all() and mask[25:].sum() <= 1


def test_one_shade_on_both_sides_passes_and_a_turned_facet_does_not():
    rng = np.random.default_rng(0)
    colors = np.tile([0.2, 0.6, 0.3], (400, 1))
    side = rng.random(400) < 0.5
    assert _same_shade(side, colors)
    creased = colors.copy()
    creased[side] += 3 / 255  # a facet turned a little towards the light: a few levels brighter
    assert not _same_shade(side, creased)
    noisy = colors + rng.normal(0, 4 / 255, colors.shape)  # camera noise: the medians agree within their errors
    assert _same_shade(side, noisy)
    assert _same_shade(np.arange(400) < 5, creased)  # too few pixels on one side to say
