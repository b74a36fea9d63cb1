"""Shape descriptors and the grasp head's gripper probes."""

import numpy as np
import torch

from robot_wm.model.grasp_head import (
    N_GRASP_IN,
    N_PROBES,
    NU,
    NV,
    NW,
    U_FINGER,
    W_PROBES,
    GraspHead,
    flip_grasp_features,
    grasp_features,
)
from robot_wm.model.shape import (
    GRID,
    OCC_DIM,
    SHAPE_DIM,
    box_descriptor,
    descriptor_from_hull,
    descriptor_from_parts,
    descriptor_from_primitive,
    pack,
    sample_occupancy,
    split_parts,
    unpack,
)
from robot_wm.model.state import grasp_action, object_state


def _volume(desc: np.ndarray) -> float:
    cell = np.prod(2 * desc[3:6] / GRID)
    return float(desc[6:6 + OCC_DIM].sum() * cell)


def test_descriptors_have_the_right_volume_and_layout():
    box = descriptor_from_primitive("box", [0.05, 0.03, 0.02])
    assert box.shape == (SHAPE_DIM,) and box.dtype == np.float32
    assert abs(_volume(box) - 0.05 * 0.03 * 0.02) < 1e-9
    cyl = descriptor_from_primitive("cylinder", [0.02, 0.06])
    assert abs(_volume(cyl) / (np.pi * 0.02**2 * 0.06) - 1) < 0.03
    sph = descriptor_from_primitive("sphere", [0.03])
    assert abs(_volume(sph) / (4 / 3 * np.pi * 0.03**3) - 1) < 0.03
    # an off-centre hull keeps its placement in the body frame
    corners = np.array([[x, y, z] for x in (0.01, 0.05) for y in (-0.02, 0.02) for z in (0.0, 0.03)])
    hull = descriptor_from_hull(corners)
    np.testing.assert_allclose(hull[0:3], [0.03, 0.0, 0.015], atol=1e-9)
    assert abs(_volume(hull) - 0.04 * 0.04 * 0.03) < 1e-8
    occ = hull[6:6 + OCC_DIM].reshape(GRID, GRID, GRID)  # [z, y, x]: the outer cells are empty
    assert occ[0].sum() == occ[-1].sum() == occ[:, 0].sum() == occ[:, :, -1].sum() == 0


def test_sampling_reads_inside_and_outside():
    d = torch.as_tensor(np.stack([box_descriptor([0.04, 0.04, 0.04]),
                                  descriptor_from_primitive("sphere", [0.02])]))
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.015, 0.0, 0.0], [0.012, 0.012, 0.0], [0.03, 0.0, 0.0]])
    occ = sample_occupancy(d, pts.expand(2, -1, -1)).numpy()
    np.testing.assert_allclose(occ[0], [1, 1, 1, 0], atol=1e-6)  # box: all but the last point inside
    assert occ[1, 0] == 1 and occ[1, 3] == 0
    corner = sample_occupancy(d[1:], torch.tensor([[[0.017, 0.017, 0.0]]]))  # outside the sphere
    assert float(corner) < 0.25


def test_packing_round_trip():
    d = descriptor_from_primitive("cylinder", [0.02, 0.05])
    np.testing.assert_allclose(unpack(*pack(d)), d, atol=1 / 255)


def _cube_grasp(width: float, yaw: float = 0.3, dz: float = 0.0):
    s = object_state([0.5, 0.1, 0.025], [0, 0, np.sin(0.2), np.cos(0.2)], [0.05] * 3, "box")
    a = grasp_action(0.5, 0.1, 0.035 + dz, yaw, width)
    return torch.as_tensor(s[None]), torch.as_tensor(box_descriptor([0.05] * 3)[None]), torch.as_tensor(a[None])


def test_probes_see_what_the_fingers_would_enclose():
    """A grasp across a 5 cm cube (closing axis along a face normal) at width 5 cm: the pads enclose
    object near the fingertips, the fingers are clear; at width 3 cm the fingers overlap the cube."""
    s, d, a = _cube_grasp(0.05, yaw=0.4)
    x = grasp_features(s, d, a)
    assert x.shape == (1, N_GRASP_IN)
    nl = NU * NV * NW
    occ = x[0, :nl].reshape(NU, NV, NW).numpy()
    nf, mid, vc = len(U_FINGER), NU // 2, NV // 2
    low = [i for i, w in enumerate(W_PROBES) if w <= 0.005]
    assert occ[mid, vc, low].min() > 0.99  # between the pads, at the tips: object
    assert occ[mid, vc, -1] == 0 and x[0, nl:N_PROBES].max() == 0  # above the cube top: the palm is clear
    assert occ[:nf].max() == 0 and occ[-nf:].max() == 0  # fingers clear
    s, d, a = _cube_grasp(0.03, yaw=0.4)
    occ = grasp_features(s, d, a)[0, :nl].reshape(NU, NV, NW).numpy()
    assert occ[:nf].max() > 0.5 and occ[-nf:].max() > 0.5  # fingers inside the cube: a collision
    s, d, a = _cube_grasp(0.05, yaw=0.4)
    s[0, 2] += 0.045  # the cube 4.5 cm higher (top 9.5 cm): the palm (4.7 cm above the TCP) meets it
    assert grasp_features(s, d, a)[0, nl:N_PROBES].max() > 0.5


def test_half_turn_is_the_flip_of_both_axes():
    """Rotating the grasp by pi about the vertical equals flipping the probes in u and v (the
    augmentation used in training is an exact symmetry)."""
    s, d, a = _cube_grasp(0.045, yaw=0.3, dz=0.004)
    s[0, 0] += 0.007  # off-centre, so the flip is not trivially the identity
    x = grasp_features(s, d, a)
    a2 = a.clone()
    a2[0, 4] += np.pi
    x2 = grasp_features(s, d, a2)
    assert not torch.allclose(x, x2, atol=1e-3)
    t = torch.ones(1, dtype=torch.bool)
    torch.testing.assert_close(flip_grasp_features(x, t, t), x2, atol=1e-5, rtol=1e-4)


def test_grasp_head_members_are_independent():
    torch.manual_seed(0)
    head = GraspHead(k=3, hidden=8)
    x = torch.randn(5, N_GRASP_IN)
    out = head(x)
    assert out.shape == (3, 5)
    with torch.no_grad():
        head.w1[1] += 1.0
    out2 = head(x)
    torch.testing.assert_close(out2[0], out[0])
    torch.testing.assert_close(out2[2], out[2])
    assert not torch.allclose(out2[1], out[1])


def test_closed_form_box_prior_equals_sampling_the_box_grid():
    """grasp_features(shapes=None) (closed-form box) == features read from box_descriptor grids."""
    rng = np.random.default_rng(3)
    ext = rng.uniform(0.02, 0.08, (20, 3))
    states = np.stack([object_state(rng.uniform(-0.02, 0.02, 3) + [0.5, 0, 0.03],
                                    [0, 0, np.sin(y / 2), np.cos(y / 2)], e, "box")
                       for y, e in zip(rng.uniform(-3, 3, 20), ext, strict=True)])
    acts = np.stack([grasp_action(0.5, 0.0, 0.03 + rng.uniform(-0.02, 0.02), rng.uniform(-3, 3),
                                  rng.uniform(0.01, 0.07)) for _ in range(20)])
    s, a = torch.as_tensor(states), torch.as_tensor(acts)
    grids = torch.as_tensor(np.stack([box_descriptor(e) for e in ext.astype(np.float32)]))
    torch.testing.assert_close(grasp_features(s, None, a), grasp_features(s, grids, a), atol=2e-5, rtol=1e-4)


def _box_points(lo, hi):
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def test_a_union_of_parts_keeps_its_concavity():
    """Two 2-cm cubes 4 cm apart (an object PyBullet collides as two convex parts): the gap between them is
    empty in the descriptor, where the overall convex hull would have filled it."""
    parts = [_box_points([-0.03, -0.01, -0.01], [-0.01, 0.01, 0.01]), _box_points([0.01, -0.01, -0.01], [0.03, 0.01, 0.01])]
    d = torch.as_tensor(descriptor_from_parts(parts)[None])
    inside = sample_occupancy(d, torch.tensor([[[-0.02, 0.0, 0.0], [0.02, 0.0, 0.0], [0.0, 0.0, 0.0]]]))[0]
    assert inside[0] > 0.99 and inside[1] > 0.99 and inside[2] < 0.01
    assert abs(_volume(d[0].numpy()) / (2 * 0.02**3) - 1) < 0.06  # grid partial volumes
    verts, planes = split_parts(d)
    assert verts.shape[1:] == (8, 32, 3) and planes.shape[1:] == (8, 64, 5)
    # every part's vertices lie within [m, b] along each of its own face normals, touching both ends
    proj = torch.einsum("rpfk,rpvk->rpfv", planes[..., :3], verts)
    torch.testing.assert_close(proj.amax(-1), planes[..., 3], atol=1e-7, rtol=0)
    torch.testing.assert_close(proj.amin(-1), planes[..., 4], atol=1e-7, rtol=0)


def test_overlaps_are_exact_for_fingers_and_between_the_pads():
    """A 5 cm cube grasped across a face: width 5 cm -> fingers clear by the 5 mm clearance each, the cube
    fills the slab between the pads; width 3 cm -> each finger overlaps the cube by 5 mm (collision); the
    grasp moved 6 cm sideways -> nothing between the pads."""
    from robot_wm.model.grasp_head import N_OVERLAP, OVERLAP_SCALE

    def overlaps(width, dy=0.0):
        s = object_state([0.5, 0.0, 0.025], [0, 0, 0, 1], [0.05] * 3, "box")
        a = grasp_action(0.5, dy, 0.035, 0.0, width)
        x = grasp_features(torch.as_tensor(s[None]), torch.as_tensor(box_descriptor([0.05] * 3)[None]),
                           torch.as_tensor(a[None]))
        return x[0, N_PROBES:N_PROBES + N_OVERLAP].numpy() * OVERLAP_SCALE

    left, right, palm, slab = overlaps(0.05)
    assert abs(left + 0.005) < 1e-6 and abs(right + 0.005) < 1e-6 and palm < 0 and slab > 0.019  # (clipped at 2 cm)
    left, right, _, _ = overlaps(0.03)
    assert abs(left - 0.005) < 1e-6 and abs(right - 0.005) < 1e-6
    assert overlaps(0.05, dy=0.06)[3] < 0


def test_symmetric_logits_are_exactly_symmetric():
    """The head's symmetric logits are the mean over the four reflections: the same for a grasp and any
    of its reflections (e.g. the grasp turned by pi), while the plain head is not."""
    torch.manual_seed(1)
    head = GraspHead(k=3, hidden=8)
    s, d, a = _cube_grasp(0.045, yaw=0.3, dz=0.004)
    s[0, 0] += 0.007
    x = grasp_features(s, d, a).repeat(2, 1)
    t, f = torch.tensor([True, False]), torch.tensor([False, True])
    xr = flip_grasp_features(x, t, f)  # row 0 reflected in u, row 1 in v
    with torch.no_grad():
        assert not torch.allclose(head(x), head(xr), atol=1e-4)
        torch.testing.assert_close(head.symmetric(xr), head.symmetric(x), atol=1e-5, rtol=1e-5)
        ref = torch.stack([head(flip_grasp_features(x, u.expand(2), v.expand(2)))
                           for u in (torch.tensor([False]), torch.tensor([True]))
                           for v in (torch.tensor([False]), torch.tensor([True]))]).mean(0)
        torch.testing.assert_close(head.symmetric(x), ref, atol=1e-6, rtol=1e-6)
