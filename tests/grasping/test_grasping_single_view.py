"""Single-view grasp candidates: inferred far faces, unseen space kept out of the gripper, determinism, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from robot_wm.config import ConfigError
from robot_wm.geometry import Pose
from robot_wm.grasping import (
    Grasp,
    SingleViewConfig,
    camera_vouched,
    complete_cloud,
    sample_grasps,
    single_view_grasp_candidates,
    single_view_grasps,
)

CENTRE = np.array([0.5, 0.0, 0.025])
HALF = np.array([0.02, 0.03, 0.025])      # a 4 x 6 x 5 cm box resting on the table
CAMERA = np.array([0.95, 0.08, 0.45])     # in front, ~0.6 m away, ~45 deg down


def _hits_box(eye: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Mask (N,): the segment eye -> pts crosses the box's interior before reaching the point (slab test)."""
    d = pts - eye
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (CENTRE - HALF - eye) / d
        t2 = (CENTRE + HALF - eye) / d
    tmin = np.nanmax(np.minimum(t1, t2), axis=1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=1)
    return (tmin < tmax) & (tmin < 1.0 - 1e-6) & (tmax > 0)


def _one_view(step: float = 0.0015) -> tuple[np.ndarray, np.ndarray]:
    """(object points, table points) a camera at CAMERA sees: only the box faces that face it, and the table
    around the box minus what the box hides."""
    faces = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            normal = np.zeros(3)
            normal[axis] = sign
            centre = CENTRE + normal * HALF
            if axis == 2 and sign < 0 or np.dot(CAMERA - centre, normal) <= 0:
                continue                                        # bottom, or facing away from the camera
            u, v = [a for a in range(3) if a != axis]
            gu, gv = np.meshgrid(np.arange(-HALF[u], HALF[u] + 1e-9, step), np.arange(-HALF[v], HALF[v] + 1e-9, step))
            p = np.zeros((gu.size, 3)) + centre
            p[:, u] += gu.ravel()
            p[:, v] += gv.ravel()
            faces.append(p)
    obj = np.concatenate(faces)
    g = np.stack(np.meshgrid(np.arange(0.32, 0.68, 0.003), np.arange(-0.18, 0.18, 0.003)), -1).reshape(-1, 2)
    table = np.c_[g, np.zeros(len(g))]
    table = table[np.any(np.abs(table[:, :2] - CENTRE[:2]) > HALF[:2], axis=1)]
    table = table[~_hits_box(CAMERA, table)]
    return obj, table


def _contacts(g: Grasp) -> np.ndarray:
    r = g.pose.rotation.as_matrix()
    return np.stack([g.pose.position + s * r[:, 1] * g.width / 2 for s in (-1.0, 1.0)])


def test_box_from_one_side_gets_grasps_on_opposite_true_faces() -> None:
    obj, table = _one_view()
    back = np.abs(obj[:, 0] - (CENTRE[0] - HALF[0])) < 1e-6
    inner = np.all(np.abs(obj[:, 1:] - CENTRE[1:]) < HALF[1:] - 0.002, axis=1)
    assert not np.any(back & inner)                                   # the far (-x) face is unseen
    grasps = single_view_grasps(obj, CAMERA, np.random.default_rng(0), table)
    assert len(grasps) >= 5
    assert [g.score for g in grasps] == sorted((g.score for g in grasps), reverse=True)
    # today's sampler on the same view cannot pair the seen faces with anything
    assert len(sample_grasps(obj, np.random.default_rng(0), scene_points=table, robot_base=np.zeros(3))) < len(grasps)
    hidden = 0
    for g in grasps[:20]:
        c = _contacts(g) - CENTRE
        axis = int(np.argmax(np.abs(g.closing_axis)))
        assert np.abs(g.closing_axis[axis]) > 0.95                  # closes across a pair of faces
        assert np.allclose(np.abs(c[:, axis]), HALF[axis], atol=0.004), c
        assert np.sign(c[0, axis]) != np.sign(c[1, axis])           # on opposite faces
        assert abs(g.width - 2 * HALF[axis]) < 0.005
        hidden += int(np.any(c[:, axis] < 0))                       # one contact on an unseen face
    assert hidden == min(20, len(grasps))


def _grasp(position: list[float], approach: list[float], closing: list[float], width: float) -> Grasp:
    z, y = np.asarray(approach, float), np.asarray(closing, float)
    m = np.eye(4)
    m[:3, :3] = np.stack([np.cross(y, z), y, z], 1)
    m[:3, 3] = position
    return Grasp(Pose.from_matrix(m), width)


def test_unseen_space_behind_the_seen_faces_is_not_free() -> None:
    obj, table = _one_view()
    comp = complete_cloud(obj, CAMERA, table)
    assert comp is not None and comp.inferred.any() and len(comp.occupied) + len(comp.band) > 0
    c = CENTRE
    grasps = [
        # top-down across the box's y sides (6 cm): both fingers in seen space beside the box
        _grasp([c[0], c[1], 0.035], [0, 0, -1], [0, 1, 0], 2 * HALF[1]),
        # "pinching" the seen front (+x) face as if it were a thin wall: one finger sweeps into the hidden
        # space behind that face (inside the box)
        _grasp([c[0] + HALF[0] - 0.006, c[1], 0.035], [0, 0, -1], [1, 0, 0], 0.012),
        # top-down across the view direction (x): the far finger goes down behind the unseen back (-x) face,
        # into the box's shadow, which the camera cannot vouch for
        _grasp([c[0], c[1], 0.035], [0, 0, -1], [1, 0, 0], 2 * HALF[0]),
    ]
    ok = camera_vouched(grasps, comp, table)
    assert ok.tolist() == [True, False, False]
    # the shadow behind the box (along view rays, beyond its far face) is filled with obstacle points
    behind = np.concatenate([comp.occupied, comp.band])
    assert np.any(behind[:, 0] < c[0] - HALF[0] - 0.01)
    # every returned candidate passes the same check
    out = single_view_grasps(obj, CAMERA, np.random.default_rng(1), table)
    assert out and camera_vouched(out, comp, table).all()


def test_same_seed_same_grasps_and_multiview_input_is_the_plain_sampler() -> None:
    obj, table = _one_view()
    a = single_view_grasps(obj, CAMERA, np.random.default_rng(4), table)
    b = single_view_grasps(obj, CAMERA, np.random.default_rng(4), table)
    assert a and len(a) == len(b) and all(np.array_equal(x.matrix(), y.matrix()) for x, y in zip(a, b, strict=True))
    # camera_position None: the cloud is complete (several views) -> exactly today's sampler
    full = np.concatenate([obj, 2 * CENTRE * [1, 1, 0] + obj * [-1, -1, 1]])   # both halves of the box
    m = single_view_grasps(full, None, np.random.default_rng(2), table)
    s = sample_grasps(full, np.random.default_rng(2), None, table, None, np.zeros(3))
    assert m and len(m) == len(s) and all(np.array_equal(x.matrix(), y.matrix()) for x, y in zip(m, s, strict=True))


def test_ik_variant_returns_reachable_subset() -> None:
    obj, table = _one_view()
    top = single_view_grasp_candidates(obj, CAMERA, np.random.default_rng(0), table, top_k=3)
    assert 1 <= len(top) <= 3
    free = single_view_grasp_candidates(obj, CAMERA, np.random.default_rng(0), table, robot_base=None, top_k=3)
    assert len(free) == 3


def test_bad_input_is_reported_clearly() -> None:
    obj, table = _one_view()
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="object_points: expected shape"):
        single_view_grasps(obj[:, :2], CAMERA, rng)
    with pytest.raises(ConfigError, match="camera_position: expected shape"):
        single_view_grasps(obj, CAMERA[:2], rng)
    with pytest.raises(ConfigError, match="scene_points: expected shape"):
        single_view_grasps(obj, CAMERA, rng, table.ravel())
    with pytest.raises(ConfigError, match="object_points: must be finite"):
        single_view_grasps(np.full((20, 3), np.nan), CAMERA, rng)
    assert single_view_grasps(obj[:5], CAMERA, rng, table) == []         # too few points: no candidates
    assert complete_cloud(obj[:5], CAMERA, table) is None
    assert single_view_grasp_candidates(obj[:5], CAMERA, rng, table) == []
    with pytest.raises(ConfigError, match="completion"):
        single_view_grasps(obj, CAMERA, rng, config=SingleViewConfig(completion="magic"))
