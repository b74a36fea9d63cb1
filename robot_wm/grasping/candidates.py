"""Antipodal 6-DoF grasp candidates from point clouds, collision and reachability filters, ranking.

Pipeline (all NumPy-vectorised; open3d only for voxel downsampling and normals):

1. Object cloud (N, 3), world frame -> voxel downsample, outward normals (PCA over neighbours, oriented
   away from the cloud's centroid unless normals are given).
2. Antipodal pairs: for sampled contacts p1, the best partner p2 within the gripper's width such that
   the line p1 -> p2 lies inside both friction cones (half-angle atan(mu)). Friction-cone margin =
   atan(mu) - max(angle at p1, angle at p2) (rad, > 0 for force closure with two soft-finger contacts).
3. Full 6-DoF: each pair is expanded to `approach_angles` approach directions about the closing axis.
4. Collision: points of the scene cloud (and the object cloud) inside the fingers (opened to width +
   clearance) or the palm; any gripper box corner below the table plane; fingers inside the object's
   convex hull (so a finger never has to enter a concavity the physics fills in); with a table, the
   hull includes the points' shadows on the table plane (the unseen space under an object is occupied).
5. Reachability: a cheap workspace test for every candidate (distance from the Panda shoulder, no
   approach from below); exact Panda IK (:class:`robot_wm.sim.KinematicModel`) for the top-ranked ones in
   :func:`grasp_candidates`.
6. Quality = margin / atan(mu) - com_weight * (distance of the grasp centre from the cloud centroid)
   / max_width: friction-cone margin, with a torque proxy that prefers grasps near the centre of mass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import open3d as o3d
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

from robot_wm.geometry import Pose
from robot_wm.grasping.grasp import MAX_WIDTH, Grasp

log = logging.getLogger(__name__)

# Gripper geometry in the TCP frame (m), from the Panda hand/finger collision meshes.
FINGER_HALF_X = 0.0105
FINGER_THICK = 0.02
FINGER_Z = (-0.0466, 0.0074)          # finger extent along the approach axis
PALM_X = (-0.0316, 0.0316)
PALM_Y = (-0.104, 0.1004)
PALM_Z = (-0.131, -0.0466)
SHOULDER = np.array([0.0, 0.0, 0.333])  # Panda joint-2 axis height above the base


@dataclass(frozen=True)
class SamplerConfig:
    """Parameters of :func:`sample_grasps` (SI units)."""

    num_contacts: int = 200          # first contacts p1 sampled per call
    approach_angles: int = 8         # approach directions per antipodal pair
    depth_offsets: tuple[float, ...] = (0.0, 0.005)  # m the TCP backs off along -approach (contacts nearer the tips)
    friction: float = 0.5            # mu used for the friction cones (conservative)
    voxel: float = 0.003             # m, downsampling of the clouds
    normal_neighbours: int = 16
    min_width: float = 0.004
    max_width: float = MAX_WIDTH - 0.005
    clearance: float = 0.01          # m the fingers open beyond the grasp width
    collision_tolerance: float = 0.0    # m the gripper boxes shrink by (negative: a safety margin)
    table_z: float | None = 0.0      # table plane height (world z); None: no table
    table_clearance: float = 0.003
    convex_hull_check: bool = True
    com_weight: float = 0.5
    reach_radius: float = 0.80       # m from the shoulder; None-equivalent: a large number
    max_upward_approach: float = 0.35  # reject approach vectors with z > this (from below the object)
    # rad: when set, only grasps approaching within this angle of straight down (world -z) are kept,
    # before the collision check (the same survivors as filtering the full list afterwards, cheaper)
    max_approach_tilt: float | None = None


def downsample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Voxel-grid downsampled copy of points (N, 3)."""
    if voxel <= 0 or len(points) == 0:
        return np.asarray(points, float)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, float)))
    return np.asarray(pc.voxel_down_sample(voxel).points)


def estimate_normals(points: np.ndarray, neighbours: int = 16, viewpoint: np.ndarray | None = None) -> np.ndarray:
    """Unit normals (N, 3) by PCA over `neighbours` nearest points, oriented away from the centroid
    (or towards `viewpoint` (3,) when given)."""
    pts = np.asarray(points, float)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(neighbours))
    n = np.asarray(pc.normals).copy()
    ref = (viewpoint - pts) if viewpoint is not None else (pts - pts.mean(0))
    n[np.sum(n * ref, axis=1) < 0] *= -1
    return n


def _basis(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (K, 3) completing unit vectors y (K, 3) to orthonormal frames."""
    helper = np.where(np.abs(y[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    e1 = np.cross(y, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return e1, np.cross(y, e1)


def antipodal_pairs(points: np.ndarray, normals: np.ndarray, rng: np.random.Generator,
                    cfg: SamplerConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i1 (K,), i2 (K,), margin (K,) rad) of antipodal contact pairs within the gripper width."""
    n = len(points)
    if n < 2:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    i1 = rng.choice(n, min(cfg.num_contacts, n), replace=False)
    d = points[None, :, :] - points[i1][:, None, :]                     # (K, N, 3)
    dist = np.linalg.norm(d, axis=2)
    u = d / np.maximum(dist, 1e-9)[..., None]
    cos1 = -np.einsum("knd,kd->kn", u, normals[i1])                      # closing dir vs -n1
    cos2 = np.einsum("knd,nd->kn", u, normals)                           # outward n2 along the line
    cone = np.arctan(cfg.friction)
    worst = np.arccos(np.clip(np.minimum(cos1, cos2), -1.0, 1.0))
    margin = np.where((dist >= cfg.min_width) & (dist <= cfg.max_width), cone - worst, -np.inf)
    i2 = np.argmax(margin, axis=1)
    best = margin[np.arange(len(i1)), i2]
    ok = best > 0
    return i1[ok], i2[ok], best[ok]


def _boxes(opening: np.ndarray) -> np.ndarray:
    """Gripper boxes (G, 3, 2, 3): for each grasp, [left finger, right finger, palm] x [min, max] corners
    in the TCP frame, fingers opened to `opening` (G,)."""
    g = len(opening)
    half = opening / 2
    b = np.zeros((g, 3, 2, 3))
    b[:, :2, 0, 0], b[:, :2, 1, 0] = -FINGER_HALF_X, FINGER_HALF_X
    b[:, :2, 0, 2], b[:, :2, 1, 2] = FINGER_Z
    b[:, 0, 0, 1], b[:, 0, 1, 1] = half, half + FINGER_THICK
    b[:, 1, 0, 1], b[:, 1, 1, 1] = -half - FINGER_THICK, -half
    b[:, 2, 0] = [PALM_X[0], PALM_Y[0], PALM_Z[0]]
    b[:, 2, 1] = [PALM_X[1], PALM_Y[1], PALM_Z[1]]
    return b


def hull_planes(points: np.ndarray, voxel: float = 0.005) -> np.ndarray | None:
    """Facet planes (F, 4) [normal, offset] of the convex hull of points (N, 3), coarsened to `voxel` so
    F stays small; a point p is inside when ``planes[:, :3] @ p + planes[:, 3] < 0`` for every facet."""
    pts = downsample(points, voxel)
    if len(pts) < 5:
        return None
    try:
        return ConvexHull(pts).equations
    except QhullError:
        return None


def collision_free(rot: np.ndarray, pos: np.ndarray, opening: np.ndarray, obstacles: np.ndarray,
                   cfg: SamplerConfig, hull: np.ndarray | None = None, chunk: int = 256) -> np.ndarray:
    """Mask (G,) of grasps (TCP rotations (G, 3, 3), positions (G, 3), world frame) whose fingers and palm
    contain no obstacle point (M, 3), stay above the table, and keep the fingers out of `hull`
    (facet planes from :func:`hull_planes`)."""
    g = len(pos)
    ok = np.ones(g, bool)
    boxes = _boxes(opening)
    tol = cfg.collision_tolerance
    if cfg.table_z is not None:
        corners = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(8, 3)
        # (G, 3 boxes, 8 corners, 3) in the TCP frame -> world z
        c = np.where(corners[None, None] == 0, boxes[:, :, None, 0], boxes[:, :, None, 1])
        wz = np.einsum("gj,gbkj->gbk", rot[:, 2, :], c) + pos[:, None, None, 2]
        ok &= wz.min(axis=(1, 2)) > cfg.table_z + cfg.table_clearance
        # a point this low can only be inside a box (grown by a negative tolerance) that reaches below the
        # table's clearance, which was just rejected: the table's own points cost time and change nothing
        obstacles = obstacles[obstacles[:, 2] > cfg.table_z + cfg.table_clearance + min(tol, 0.0)]
    lo, hi = boxes[:, :, 0] + tol, boxes[:, :, 1] - tol             # (G, 3, 3)
    # Only points within reach of the gripper's bounding sphere (about the TCP) can collide.
    reach = float(np.linalg.norm([PALM_X[1], PALM_Y[0], PALM_Z[0]])) + tol
    for s in range(0, g, chunk):
        sl = slice(s, min(g, s + chunk))
        idx = np.flatnonzero(ok[sl]) + s
        if len(idx) == 0 or len(obstacles) == 0:
            continue
        near = np.all((obstacles > pos[idx].min(0) - reach) & (obstacles < pos[idx].max(0) + reach), axis=1)
        obs = obstacles[near]
        if len(obs) == 0:
            continue
        local = np.matmul(obs[None] - pos[idx, None], rot[idx])                    # (g, M, 3) TCP frame
        hit = np.zeros(len(idx), bool)
        for b in range(3):
            bl, bh = lo[idx, b][:, None], hi[idx, b][:, None]
            inside = ((local[..., 0] > bl[..., 0]) & (local[..., 0] < bh[..., 0])
                      & (local[..., 1] > bl[..., 1]) & (local[..., 1] < bh[..., 1])
                      & (local[..., 2] > bl[..., 2]) & (local[..., 2] < bh[..., 2]))
            hit |= inside.any(axis=1)
        ok[idx] &= ~hit
    if hull is not None and ok.any():
        idx = np.flatnonzero(ok)
        gx = np.array([-1.0, 0.0, 1.0]) * FINGER_HALF_X
        gz = np.linspace(FINGER_Z[0], FINGER_Z[1], 5)
        gy = np.array([0.0, 0.5, 1.0]) * FINGER_THICK      # from the inner (pad) face outwards
        grid = np.stack(np.meshgrid(gx, gy, gz, indexing="ij"), -1).reshape(-1, 3)   # (P, 3)
        half = opening[idx] / 2
        left = grid[None] + np.stack([np.zeros_like(half), half, np.zeros_like(half)], 1)[:, None]
        right = left * np.array([1.0, -1.0, 1.0])
        fp = np.concatenate([left, right], 1)                                          # (g, 2P, 3)
        world = np.matmul(fp, np.transpose(rot[idx], (0, 2, 1))) + pos[idx, None]      # (g, 2P, 3)
        depth = world.reshape(-1, 3) @ hull[:, :3].T + hull[:, 3]                     # <0 inside a facet
        inside = np.all(depth < -tol, axis=1).reshape(len(idx), -1)
        ok[idx] &= ~inside.any(axis=1)
    return ok


def workspace_reachable(rot: np.ndarray, pos: np.ndarray, cfg: SamplerConfig,
                        robot_base: np.ndarray | None) -> np.ndarray:
    """Cheap reachability mask (G,): TCP within `reach_radius` of the shoulder and not approaching from
    below. Everything passes when `robot_base` is None (free-floating hand)."""
    if robot_base is None:
        return np.ones(len(pos), bool)
    shoulder = np.asarray(robot_base, float) + SHOULDER
    near = np.linalg.norm(pos - shoulder, axis=1) < cfg.reach_radius
    return near & (rot[:, 2, 2] < cfg.max_upward_approach)


def sample_grasps(object_points: np.ndarray, rng: np.random.Generator, object_normals: np.ndarray | None = None,
                  scene_points: np.ndarray | None = None, config: SamplerConfig | None = None,
                  robot_base: np.ndarray | None = None) -> list[Grasp]:
    """Collision-free antipodal grasps (TCP poses in the clouds' frame) on one object, best first.

    object_points (N, 3): the object's cloud; object_normals (N, 3): outward normals (estimated if None);
    scene_points (M, 3): everything else the gripper must not hit (the object's own points are added);
    robot_base (3,): when given, candidates outside the Panda's workspace are dropped (frame = world).
    """
    cfg = config or SamplerConfig()
    pts = np.asarray(object_points, float)
    if object_normals is None:
        pts = downsample(pts, cfg.voxel)
        if len(pts) < 10:
            return []
        nrm = estimate_normals(pts, cfg.normal_neighbours)
    else:
        nrm = np.asarray(object_normals, float)
        nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    i1, i2, margin = antipodal_pairs(pts, nrm, rng, cfg)
    if len(i1) == 0:
        return []
    p1, p2 = pts[i1], pts[i2]
    y = (p2 - p1) / np.linalg.norm(p2 - p1, axis=1, keepdims=True)
    centre = (p1 + p2) / 2
    width = np.linalg.norm(p2 - p1, axis=1)
    a = cfg.approach_angles
    theta = (np.arange(a)[None] / a + rng.random((len(i1), 1))) * 2 * np.pi           # (K, A)
    e1, e2 = _basis(y)
    z = np.cos(theta)[..., None] * e1[:, None] + np.sin(theta)[..., None] * e2[:, None]  # (K, A, 3)
    yy = np.broadcast_to(y[:, None], z.shape)
    x = np.cross(yy, z)
    rot = np.stack([x, yy, z], axis=-1).reshape(-1, 3, 3)                               # columns x, y, z
    pos = np.repeat(centre, a, axis=0)
    w = np.repeat(width, a)
    marg = np.repeat(margin, a)
    if len(cfg.depth_offsets) > 1 or cfg.depth_offsets[0] != 0.0:
        d = np.asarray(cfg.depth_offsets, float)
        nd = len(d)
        pos = (pos[:, None] - rot[:, None, :, 2] * d[None, :, None]).reshape(-1, 3)
        rot, w, marg = np.repeat(rot, nd, axis=0), np.repeat(w, nd), np.repeat(marg, nd)
    opening = np.minimum(w + cfg.clearance, MAX_WIDTH)
    keep = workspace_reachable(rot, pos, cfg, robot_base)
    if cfg.max_approach_tilt is not None:
        keep &= rot[:, 2, 2] <= -np.cos(cfg.max_approach_tilt)
    own = downsample(pts, max(cfg.voxel, 0.004))
    obstacles = own if scene_points is None or len(scene_points) == 0 else np.concatenate(
        [own, downsample(np.asarray(scene_points, float), cfg.voxel)])
    hull = None
    if cfg.convex_hull_check:
        # An object resting on the table fills the unseen space below its visible points (physics
        # collides the convex hull anyway): include their shadows on the table plane.
        shadow = own if cfg.table_z is None else np.concatenate([own, np.c_[own[:, :2], np.full(len(own), cfg.table_z)]])
        hull = hull_planes(shadow)
    idx = np.flatnonzero(keep)
    keep[idx] = collision_free(rot[idx], pos[idx], opening[idx], obstacles, cfg, hull)
    centroid = pts.mean(0)
    score = marg / np.arctan(cfg.friction) - cfg.com_weight * np.linalg.norm(pos - centroid, axis=1) / MAX_WIDTH
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-score[idx], kind="stable")]
    quats = Rotation.from_matrix(rot[idx]).as_quat()
    return [Grasp(Pose(pos[i], q), float(w[i]), float(score[i])) for i, q in zip(idx, quats, strict=True)]


def grasp_candidates(object_points: np.ndarray, rng: np.random.Generator, scene_points: np.ndarray | None = None,
                     robot_base: np.ndarray | None = (0.0, 0.0, 0.0), top_k: int = 10,
                     config: SamplerConfig | None = None, kinematics=None) -> list[Grasp]:
    """Ranked, collision-free, IK-reachable grasps for one object (world frame), best first, at most `top_k`.

    object_points (N, 3): the object's world-frame cloud (e.g. segmented depth); scene_points (M, 3): the
    rest of the scene (table, other objects). Exact Panda IK (`kinematics`: a
    :class:`robot_wm.sim.KinematicModel`, created if None) is checked for the grasp pose in rank order.
    With `robot_base` None no reachability is checked (free-floating hand).
    """
    grasps = sample_grasps(object_points, rng, None, scene_points, config, robot_base)
    if robot_base is None:
        return grasps[:top_k]
    own = kinematics is None
    if own:
        from robot_wm.sim import KinematicModel

        kinematics = KinematicModel(base_position=np.asarray(robot_base, float))
    try:
        out = []
        for g in grasps:
            if kinematics.ik(g.pose) is not None:
                out.append(g)
                if len(out) >= top_k:
                    break
        return out
    finally:
        if own:
            kinematics.close()
