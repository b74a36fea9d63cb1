"""The world model's grasp head: P(stable) of a top-down grasp from what the gripper would enclose.

Gripper probes. Two fixed lattices of points in the grasp frame G (origin at the TCP, u = closing axis
at the action's yaw, v = u rotated +90 deg about world z, w = world up):

* fingers and pads (NU x NV x NW): u: 3 columns inside each finger (o/2 + 3, 10, 17 mm) and
  N_BETWEEN between the pads (o = opening); v across the 21-mm pads; w from below the fingertips
  (-7.4 mm) up to the palm (46.6 mm), denser near the tips where contacts form;
* palm (PU x PV x PW): its 20 x 6 cm underside and 1 cm above it.

Each probe is moved into the target object's body frame and reads its occupancy
(:func:`robot_wm.model.shape.sample_occupancy`): "is there object between the pads, at which depth,
and do fingers or palm overlap it?" — the geometry a shake test turns into a label.

Overlaps. The grid is too coarse to tell whether the open hand overlaps the object by more than the shake
test's 2-mm collision tolerance, or whether anything lies between the pads at all, so these come exactly
from the descriptor's convex parts: for each of four boxes in G — the left finger, the right finger, the
palm and the slab the pads sweep when closing — the separating-axis overlap (m, > 0: they intersect, by
about that much; <= 0: apart) with the nearest part, maximised over the parts (:func:`box_overlaps`).

With the object's centre of mass in G (torque on the pads), its extents and the opening, these are the
head's inputs. Both lattices and the boxes are symmetric under u -> -u and v -> -v, as the gripper is
(training uses both flips).

The head is an ensemble of K small MLPs (members evaluated as batched products, bootstrap-trained
with the rest of the model); its logit adds to the interaction network's own grasp logit.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robot_wm.geometry import panda
from robot_wm.model.shape import GRID, MIN_HALF, box_occupancy, sample_grid, split_parts

MAX_OPENING = panda.MAX_OPENING  # m
OPENING_CLEARANCE = 0.01  # m the fingers open beyond the grasp width (planners/shake_test.yaml)
U_FINGER = (0.003, 0.010, 0.017)  # m beyond the pad faces
N_BETWEEN = 9
V_PROBES = (-0.008, 0.0, 0.008)
W_PROBES = (-0.005, 0.005, 0.015, 0.025, 0.035, 0.045)
NU, NV, NW = 2 * len(U_FINGER) + N_BETWEEN, len(V_PROBES), len(W_PROBES)
PALM_U = (-0.06, 0.0, 0.06)
PALM_V = (-0.025, 0.0, 0.025)
PALM_W = (0.049, 0.056)
PU, PV, PW = len(PALM_U), len(PALM_V), len(PALM_W)
N_PROBES = NU * NV * NW + PU * PV * PW
# The hand's collision boxes in G (assets/panda_hand): fingers 20 mm thick along u beyond the pad faces,
# 21 mm wide (v), from 7.4 mm below the TCP to 46.6 mm above it; the palm above them.
FINGER_THICKNESS, FINGER_HALF_WIDTH, FINGER_W = 0.02, 0.0105, (-0.0074, 0.0466)
PALM_HALF_U, PALM_HALF_V, PALM_W = 0.1022, 0.0315, (0.0466, 0.131)
N_OVERLAP = 4  # left finger, right finger, palm, between the pads
OVERLAP_SCALE, OVERLAP_CLIP = 0.005, 4.0  # m per unit, units
N_EXTRA = 7  # centre of mass in G (3), opening (1), extents (3); all / EXTRA_SCALE
N_GRASP_IN = N_PROBES + N_OVERLAP + N_EXTRA
EXTRA_SCALE = 0.05  # m


def opening_of(width: torch.Tensor) -> torch.Tensor:
    """Finger opening (m) for grasp widths (m): width + clearance, capped at the gripper's 8 cm."""
    return (width + OPENING_CLEARANCE).clamp(max=MAX_OPENING)


def _u_values(opening: torch.Tensor) -> torch.Tensor:
    """(R,) openings -> (R, NU) probe u coordinates, ascending."""
    h = opening[:, None] / 2
    f = torch.tensor(U_FINGER, dtype=opening.dtype)
    between = torch.linspace(-1.0, 1.0, N_BETWEEN, dtype=opening.dtype)
    return torch.cat([-(h + f.flip(0)), h * between, h + f], dim=1)


def _quat_matrix(q: torch.Tensor) -> torch.Tensor:
    """(R, 4) xyzw -> (R, 3, 3) rotation matrices (body -> world)."""
    q = q / q.norm(dim=-1, keepdim=True)
    x, y, z, w = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(-1, 3, 3)


def _lattice_coords(origin: torch.Tensor, axes: tuple[torch.Tensor, torch.Tensor, torch.Tensor], u: torch.Tensor,
                    v: tuple[float, ...], w: tuple[float, ...]) -> torch.Tensor:
    """Coordinates (R, nu * nv * nw, 3), order [u, v, w], of the lattice points origin + u a_u + v a_v +
    w a_w for per-grasp u values (R, nu), fixed v and w, and per-grasp vectors origin, a_u, a_v, a_w
    (R, 3) — one broadcast sum, no per-point matrix products."""
    au, av, aw = axes
    vt = torch.tensor(v, dtype=u.dtype)
    wt = torch.tensor(w, dtype=u.dtype)
    uv = u[:, :, None, None, None] * au[:, None, None, None, :] + vt[None, None, :, None, None] * av[:, None, None, None, :]
    ow = origin[:, None, None, None, :] + wt[None, None, None, :, None] * aw[:, None, None, None, :]
    return (uv + ow).reshape(u.shape[0], -1, 3)  # one full-size tensor


def hand_boxes(opening: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners lo, hi (R, N_OVERLAP, 3) in G of the left finger, right finger, palm and the slab between
    the pads, for finger openings (R,) m."""
    h = opening / 2
    z = torch.zeros_like(h)
    w0, w1 = FINGER_W
    lo = torch.stack([
        torch.stack([-h - FINGER_THICKNESS, z - FINGER_HALF_WIDTH, z + w0], -1),
        torch.stack([h, z - FINGER_HALF_WIDTH, z + w0], -1),
        torch.stack([z - PALM_HALF_U, z - PALM_HALF_V, z + PALM_W[0]], -1),
        torch.stack([-h, z - FINGER_HALF_WIDTH, z + w0], -1)], 1)
    hi = torch.stack([
        torch.stack([-h, z + FINGER_HALF_WIDTH, z + w1], -1),
        torch.stack([h + FINGER_THICKNESS, z + FINGER_HALF_WIDTH, z + w1], -1),
        torch.stack([z + PALM_HALF_U, z + PALM_HALF_V, z + PALM_W[1]], -1),
        torch.stack([h, z + FINGER_HALF_WIDTH, z + w1], -1)], 1)
    return lo, hi


def box_overlaps(verts: torch.Tensor, planes: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Separating-axis overlaps (R, M) of M axis-aligned boxes [lo, hi] (R, M, 3) with a union of convex
    parts, all in the same frame: vertices (R, P, V, 3) and planes (R, P, F, 5) [n, b, m] (the part spans
    [m, b] along n). Per part and box, the smallest interval overlap over the box's 3 axes and the part's
    face normals (> 0: they intersect, roughly by that much; <= 0: a separating plane exists); then the
    largest over parts."""
    n, b, m = planes[..., :3], planes[..., 3], planes[..., 4]
    part_lo, part_hi = verts.amin(2), verts.amax(2)  # (R, P, 3)
    ov_axes = torch.minimum(part_hi[:, :, None] - lo[:, None], hi[:, None] - part_lo[:, :, None]).amin(-1)
    c, e = (lo + hi) / 2, (hi - lo) / 2  # (R, M, 3)
    nc = torch.einsum("rpfk,rmk->rpmf", n, c)
    ne = torch.einsum("rpfk,rmk->rpmf", n.abs(), e)
    ov_faces = torch.minimum(b[:, :, None] - (nc - ne), (nc + ne) - m[:, :, None]).amin(-1)  # (R, P, M)
    return torch.minimum(ov_axes, ov_faces).amax(1)


def _box_parts(extents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The filled bounding box (R, 3) extents centred on the body frame as one part: vertices (R, 1, 8, 3),
    planes (R, 1, 6, 5)."""
    h = extents / 2
    signs = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)], dtype=h.dtype)
    verts = signs[None] * h[:, None]
    eye = torch.eye(3, dtype=h.dtype)
    n = torch.cat([eye, -eye])[None].expand(len(h), 6, 3)
    hh = torch.cat([h, h], 1)[..., None]
    planes = torch.cat([n, hh, -hh], -1)
    return verts[:, None], planes[:, None]


def grasp_features(obj_states: torch.Tensor, shapes: torch.Tensor | None, actions: torch.Tensor) -> torch.Tensor:
    """Head inputs (R, N_GRASP_IN) for R grasps, each on one object.

    obj_states (R, 15): the grasped object's state (robot_wm.model.state layout); shapes (R, SHAPE_DIM):
    its descriptor, or None for the filled bounding box (computed in closed form, same values);
    actions (R, 6): grasp actions [1, x, y, z, yaw, width].
    Probe values: the finger lattice as (NU, NV, NW), then the palm lattice as (PU, PV, PW), each [u, v, w]
    order (u slowest), so flips are flips of those views; then the extras.
    """
    r = actions.shape[0]
    yaw, width = actions[:, 4], actions[:, 5]
    opening = opening_of(width)
    cu, su = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    b2w = _quat_matrix(obj_states[:, 3:7])  # rows: world axes x, y, z expressed in the body frame
    d = actions[:, 1:4] - obj_states[:, 0:3]  # TCP relative to the body origin, world frame
    origin = (d[:, :, None] * b2w).sum(1)  # R^T d
    au, av, aw = cu * b2w[:, 0] + su * b2w[:, 1], cu * b2w[:, 1] - su * b2w[:, 0], b2w[:, 2]
    if shapes is None:
        centre = torch.zeros_like(origin)
        half = obj_states[:, 7:10].clamp_min(2 * MIN_HALF) / 2 * GRID / (GRID - 2)
    else:
        centre, half = shapes[:, 0:3], shapes[:, 3:6]
    # normalised grid coordinates ((body point - centre) / half) of the probes
    axes = (au / half, av / half, aw / half)
    o = (origin - centre) / half
    palm_u = torch.tensor(PALM_U, dtype=actions.dtype).expand(r, PU)
    occ = []
    for g in (_lattice_coords(o, axes, _u_values(opening), V_PROBES, W_PROBES),
              _lattice_coords(o, axes, palm_u, PALM_V, PALM_W)):  # (R, P, 3) each
        occ.append(box_occupancy(g, inplace=True) if shapes is None else sample_grid(shapes, g))
    # the object's convex parts in G: x_G = A (x_body - origin), rows of A = the G axes in the body frame
    verts, planes = _box_parts(obj_states[:, 7:10]) if shapes is None else split_parts(shapes)
    def to_g(x: torch.Tensor) -> torch.Tensor:  # body-frame vectors (R, P, Q, 3) -> G
        return torch.stack([(x * ax[:, None, None]).sum(-1) for ax in (au, av, aw)], -1)

    vg = to_g(verts - origin[:, None, None])
    ng = to_g(planes[..., :3])
    shift = (planes[..., :3] * origin[:, None, None]).sum(-1, keepdim=True)  # n . origin: extents move with it
    overlap = box_overlaps(vg, torch.cat([ng, planes[..., 3:5] - shift], -1), *hand_boxes(opening))
    overlap = (overlap / OVERLAP_SCALE).clamp(-OVERLAP_CLIP, OVERLAP_CLIP)
    com = torch.stack([-(d[:, 0:1] * cu + d[:, 1:2] * su)[:, 0], -(d[:, 1:2] * cu - d[:, 0:1] * su)[:, 0],
                       -d[:, 2]], dim=1)  # centre of mass in G
    extra = torch.cat([com, opening[:, None], obj_states[:, 7:10]], dim=1) / EXTRA_SCALE
    return torch.cat([*occ, overlap, extra], dim=1)


def flip_grasp_features(x: torch.Tensor, flip_u: torch.Tensor, flip_v: torch.Tensor) -> torch.Tensor:
    """Reflect head inputs (R, N_GRASP_IN) about the grasp's u = 0 and/or v = 0 plane where `flip_u` /
    `flip_v` (R,) bool are True: the gripper is symmetric and physics mirror-symmetric, so the label is
    unchanged (training augmentation)."""
    r = x.shape[0]
    parts = []
    n0 = NU * NV * NW
    for lo, shape in ((0, (NU, NV, NW)), (n0, (PU, PV, PW))):
        n = shape[0] * shape[1] * shape[2]
        occ = x[:, lo:lo + n].reshape(r, *shape)
        occ = torch.where(flip_u[:, None, None, None], occ.flip(1), occ)
        occ = torch.where(flip_v[:, None, None, None], occ.flip(2), occ)
        parts.append(occ.reshape(r, n))
    ov = x[:, N_PROBES:N_PROBES + N_OVERLAP]
    ov = torch.where(flip_u[:, None], ov[:, [1, 0, 2, 3]], ov)  # u -> -u swaps the fingers
    extra = x[:, N_PROBES + N_OVERLAP:].clone()
    extra[:, 0] = torch.where(flip_u, -extra[:, 0], extra[:, 0])
    extra[:, 1] = torch.where(flip_v, -extra[:, 1], extra[:, 1])
    return torch.cat([*parts, ov, extra], dim=1)


def reflections(x: torch.Tensor) -> torch.Tensor:
    """Head inputs x (R, N_GRASP_IN) and their reflections in u, in v and in both, stacked (4R, N_GRASP_IN)."""
    r = x.shape[0]
    t, f = torch.ones(r, dtype=torch.bool), torch.zeros(r, dtype=torch.bool)
    return torch.cat([x, flip_grasp_features(x, t, f), flip_grasp_features(x, f, t), flip_grasp_features(x, t, t)])


class GraspHead(nn.Module):
    """K independent MLPs (N_GRASP_IN -> hidden -> hidden/2 -> 1) on standardised inputs, run as batched
    products. forward: (R, N_GRASP_IN) -> logits (K, R)."""

    def __init__(self, k: int = 5, hidden: int = 32) -> None:
        super().__init__()
        self.k, self.hidden = k, hidden
        # input standardisation (fitted on the training grasps and their flips; part of the model file)
        self.register_buffer("in_mean", torch.zeros(N_GRASP_IN))
        self.register_buffer("in_std", torch.ones(N_GRASP_IN))
        h2 = hidden // 2
        self.w1 = nn.Parameter(torch.empty(k, N_GRASP_IN, hidden))
        self.b1 = nn.Parameter(torch.zeros(k, 1, hidden))
        self.w2 = nn.Parameter(torch.empty(k, hidden, h2))
        self.b2 = nn.Parameter(torch.zeros(k, 1, h2))
        self.w3 = nn.Parameter(torch.empty(k, h2, 1))
        self.b3 = nn.Parameter(torch.zeros(k, 1, 1))
        with torch.no_grad():
            for wt in (self.w1, self.w2, self.w3):
                bound = 1 / math.sqrt(wt.shape[1])
                wt.uniform_(-bound, bound)

    def fit_input_scale(self, x: torch.Tensor) -> None:
        """Standardise inputs with the mean and std of head inputs x (R, N_GRASP_IN) and their u/v flips
        (so the scaling is as symmetric as the gripper)."""
        allx = reflections(x)
        with torch.no_grad():
            self.in_mean.copy_(allx.mean(0))
            self.in_std.copy_(allx.std(0).clamp_min(1e-3))

    def symmetric(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (K, R) of inputs x (R, N_GRASP_IN) averaged over their four reflections (none, u, v,
        both): the gripper and physics are symmetric under them, which training only teaches by random
        flips; averaging makes the prediction exactly symmetric (what predict and validation use)."""
        return self(reflections(x)).reshape(self.k, 4, x.shape[0]).mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.in_mean) / self.in_std
        xk = x[None].expand(self.k, -1, -1)
        h = torch.baddbmm(self.b1, xk, self.w1).relu()
        h = torch.baddbmm(self.b2, h, self.w2).relu()
        return torch.baddbmm(self.b3, h, self.w3)[..., 0]
