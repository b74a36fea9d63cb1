"""Antipodal candidate sampler: antipodality, 6-DoF approaches, collision and reachability filters."""

from __future__ import annotations

import numpy as np

from robot_wm.grasping import ObjectModel, SamplerConfig, grasp_candidates, sample_grasps, surface_points
from robot_wm.grasping.candidates import FINGER_HALF_X, FINGER_THICK, FINGER_Z, estimate_normals

CUBE = ObjectModel("cube", "box", (0.05, 0.05, 0.05))


def _cube_on_table(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pts, _ = surface_points(CUBE, 3000, rng)
    pts = pts[pts[:, 2] > -0.0249] + [0.5, 0.0, 0.025]            # no bottom face (it rests on the table)
    g = np.stack(np.meshgrid(np.linspace(0.3, 0.7, 80), np.linspace(-0.2, 0.2, 80)), -1).reshape(-1, 2)
    table = np.c_[g, np.zeros(len(g))]
    table = table[np.any(np.abs(table[:, :2] - [0.5, 0.0]) > 0.026, axis=1)]
    return pts, table


def test_cube_grasps_are_antipodal_and_full_6dof() -> None:
    rng = np.random.default_rng(0)
    pts, nrm = surface_points(CUBE, 2000, rng)
    grasps = sample_grasps(pts, rng, nrm, config=SamplerConfig(table_z=None))
    assert len(grasps) > 100
    scores = [g.score for g in grasps]
    assert scores == sorted(scores, reverse=True)
    for g in grasps[:50]:
        # closing axis along a face normal, width = the cube's size
        assert np.max(np.abs(g.closing_axis)) > 0.97
        assert abs(g.width - 0.05) < 0.004
    approaches = np.array([g.approach for g in grasps])
    assert approaches[:, 2].min() < -0.9 and approaches[:, 2].max() > 0.9   # from above and below
    assert np.abs(approaches[:, 0]).max() > 0.9                                 # and from the sides


def test_same_seed_same_candidates() -> None:
    pts, _ = surface_points(CUBE, 1500, np.random.default_rng(1))
    a = sample_grasps(pts, np.random.default_rng(3))
    b = sample_grasps(pts, np.random.default_rng(3))
    assert len(a) == len(b) and all(np.allclose(x.matrix(), y.matrix()) for x, y in zip(a, b, strict=True))


def test_table_and_scene_collisions_are_filtered() -> None:
    rng = np.random.default_rng(0)
    pts, table = _cube_on_table(rng)
    grasps = sample_grasps(pts, rng, scene_points=table)
    assert grasps
    for g in grasps:
        r = g.pose.rotation.as_matrix()
        # finger tips never below the table
        for side in (1, -1):
            tip = g.pose.position + r @ [0.0, side * (g.width / 2 + 0.01), FINGER_Z[1]]
            assert tip[2] > 0.0
    # A wall of points right next to the cube removes every grasp closing towards it.
    yy, zz = np.meshgrid(np.linspace(-0.1, 0.1, 60), np.linspace(0.0, 0.15, 50))
    wall = np.c_[np.full(yy.size, 0.5 + 0.03), yy.ravel(), zz.ravel()]
    walled = sample_grasps(pts, np.random.default_rng(0), scene_points=np.r_[table, wall])
    assert walled and len(walled) < len(grasps)
    for g in walled:
        local = (wall - g.pose.position) @ g.pose.rotation.as_matrix()
        for side in (1, -1):
            y0 = side * (min(g.width + 0.01, 0.08) / 2)
            inside = ((np.abs(local[:, 0]) < FINGER_HALF_X - 0.002) & (local[:, 2] > FINGER_Z[0] + 0.002)
                      & (local[:, 2] < FINGER_Z[1] - 0.002)
                      & (np.sign(side) * (local[:, 1] - y0) > 0.002) & (np.sign(side) * (local[:, 1] - y0) < FINGER_THICK - 0.002))
            assert not inside.any()


def test_reachability_filter() -> None:
    rng = np.random.default_rng(0)
    pts, table = _cube_on_table(rng)
    near = grasp_candidates(pts, np.random.default_rng(0), table, robot_base=(0.0, 0.0, 0.0), top_k=3)
    assert len(near) == 3
    for g in near:
        assert g.approach[2] < 0.35                       # nothing from below the object
    far = grasp_candidates(pts, np.random.default_rng(0), table, robot_base=(-2.0, 0.0, 0.0), top_k=3)
    assert far == []


def test_estimated_normals_point_outwards() -> None:
    pts, nrm = surface_points(ObjectModel("s", "sphere", (0.03,)), 800, np.random.default_rng(0))
    est = estimate_normals(pts)
    assert np.mean(np.sum(est * nrm, axis=1) > 0.9) > 0.98


def test_approach_tilt_filter_equals_filtering_afterwards() -> None:
    """max_approach_tilt drops grasps before the collision check; the survivors, their order and poses are
    exactly those of the full list filtered by approach angle."""
    pts, table = _cube_on_table(np.random.default_rng(4))
    tilt = np.radians(30.0)
    full = sample_grasps(pts, np.random.default_rng(5), scene_points=table)
    cut = sample_grasps(pts, np.random.default_rng(5), scene_points=table,
                        config=SamplerConfig(max_approach_tilt=tilt))
    expect = [g for g in full if g.pose.rotation.as_matrix()[2, 2] <= -np.cos(tilt) + 1e-12]
    assert 0 < len(cut) < len(full)
    assert len(cut) == len(expect)
    assert all(np.array_equal(a.matrix(), b.matrix()) and a.width == b.width for a, b in zip(cut, expect, strict=True))
