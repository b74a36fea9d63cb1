"""Minimum-area rectangles (exact hull calipers, the fast angle search, its trimmed form) and upright boxes."""

import numpy as np
import pytest

from robot_wm.geometry import min_area_rectangle, upright_box


def _rotated_box_points(rng: np.random.Generator, n: int, yaw: float, half: tuple[float, float],
                        centre: tuple[float, float]) -> np.ndarray:
    pts = rng.uniform(-np.asarray(half), np.asarray(half), size=(n, 2))
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    return pts @ rot.T + np.asarray(centre)


def test_min_area_rectangle_recovers_rotated_box():
    rng = np.random.default_rng(1)
    pts = rng.uniform([-0.05, -0.02], [0.05, 0.02], size=(500, 2))
    yaw = 0.6
    rot = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
    centre, got_yaw, ext = min_area_rectangle(pts @ rot.T + [0.3, -0.1])
    np.testing.assert_allclose(centre, [0.3, -0.1], atol=2e-3)
    assert got_yaw == pytest.approx(yaw, abs=0.03)
    np.testing.assert_allclose(ext, [0.1, 0.04], atol=3e-3)
    pose, ext3 = upright_box(np.c_[pts, rng.uniform(0, 0.03, 500)])
    assert ext3[2] == pytest.approx(0.03, abs=1e-3)


@pytest.mark.parametrize("method", ["hull", "search"])
@pytest.mark.parametrize("yaw", [-1.2, 0.0, 0.3, 1.5])
def test_methods_agree_on_a_rotated_box(method: str, yaw: float):
    rng = np.random.default_rng(2)
    pts = _rotated_box_points(rng, 3000, yaw, (0.04, 0.015), (0.5, 0.1))  # > 1000: the search subsamples
    centre, got_yaw, ext = min_area_rectangle(pts, method)
    np.testing.assert_allclose(centre, [0.5, 0.1], atol=1e-3)
    assert abs((got_yaw - yaw + np.pi / 2) % np.pi - np.pi / 2) < np.deg2rad(1)  # same axis, modulo pi
    np.testing.assert_allclose(ext, [0.08, 0.03], atol=2e-3)
    assert -np.pi / 2 < got_yaw <= np.pi / 2 and ext[0] >= ext[1]


def test_hull_rectangle_encloses_every_point():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(200, 2)) * [0.05, 0.02] + [0.2, -0.3]
    centre, yaw, ext = min_area_rectangle(pts)
    c, s = np.cos(yaw), np.sin(yaw)
    local = (pts - centre) @ np.array([[c, -s], [s, c]])
    assert np.all(np.abs(local) <= ext / 2 + 1e-12)


def test_trimmed_search_ignores_outliers():
    rng = np.random.default_rng(4)
    pts = _rotated_box_points(rng, 2000, 0.4, (0.03, 0.02), (0.6, 0.0))
    outliers = rng.uniform(-0.2, 0.2, size=(10, 2)) + [0.6, 0.0]
    noisy = np.concatenate([pts, outliers])
    _, _, ext_plain = min_area_rectangle(noisy, "search")
    centre, yaw, ext = min_area_rectangle(noisy, "search", trim_percent=1.5)
    assert ext_plain[0] > 0.1  # the outliers stretch the untrimmed rectangle
    np.testing.assert_allclose(centre, [0.6, 0.0], atol=2e-3)
    assert yaw == pytest.approx(0.4, abs=np.deg2rad(3))
    np.testing.assert_allclose(ext, [0.06, 0.04], atol=4e-3)


def test_degenerate_inputs_and_bad_arguments():
    assert min_area_rectangle(np.zeros((0, 2)))[2].tolist() == [0.0, 0.0]
    assert min_area_rectangle(np.zeros((0, 2)), "search")[2].tolist() == [0.0, 0.0]
    centre, _, ext = min_area_rectangle(np.array([[0.1, 0.2]]))
    assert centre.tolist() == [0.1, 0.2] and ext.tolist() == [0.0, 0.0]
    line = np.c_[np.linspace(0, 0.1, 20), np.linspace(0, 0.1, 20)]  # collinear: no hull
    _, yaw, ext = min_area_rectangle(line)
    assert ext[0] == pytest.approx(0.1 * np.sqrt(2)) and ext[1] == pytest.approx(0.0, abs=1e-12)
    assert yaw == pytest.approx(np.pi / 4)
    with pytest.raises(ValueError, match="unknown method"):
        min_area_rectangle(line, "exact")
    with pytest.raises(ValueError, match="trim_percent needs"):
        min_area_rectangle(line, "hull", trim_percent=1.0)
