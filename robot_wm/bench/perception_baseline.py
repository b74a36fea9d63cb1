"""The naive Open3D tabletop baseline ``robot-wm bench perception`` measures the product pipeline against
(as in ROS tabletop detection): depth -> world cloud, 5 mm voxels, RANSAC plane removal, DBSCAN clusters.
Returns a label image so it is scored with the same mask metrics as the product pipeline."""

from __future__ import annotations

import time

import numpy as np
from scipy.spatial import cKDTree

from robot_wm.perception.segment import PerceptionConfig, world_rays
from robot_wm.perception.validate import validate_frame


def naive_open3d_labels(frame, voxel: float = 0.005, plane_threshold: float = 0.005, eps: float = 0.012,
                        min_points: int = 10, config: PerceptionConfig | None = None, seed: int = 0,
                        timing: dict | None = None) -> np.ndarray:
    """Label image (H, W) int32 (0 = background, 1..K clusters) for one calibrated RGB-D frame.

    Uses the same workspace crop as the product (so neither is charged for the robot or far background).
    `timing["ms"]` receives the time of the baseline itself (depth -> clusters on the voxels); mapping the
    clusters back to pixels for scoring is not counted.
    """
    import open3d as o3d

    t0, c0 = time.perf_counter(), time.process_time()
    cfg = config or PerceptionConfig()
    depth = validate_frame(frame.name, frame.rgb, frame.depth, frame.intrinsics)
    rays = world_rays(frame.intrinsics, frame.camera2world)
    idx = np.flatnonzero(depth.ravel() > 0)
    pts = depth.ravel()[idx, None] * rays.reshape(-1, 3)[idx] + frame.camera2world.position.astype(np.float32)
    keep = ((pts[:, 0] > cfg.workspace_x[0]) & (pts[:, 0] < cfg.workspace_x[1]) & (pts[:, 1] > cfg.workspace_y[0])
            & (pts[:, 1] < cfg.workspace_y[1]) & (pts[:, 2] < cfg.max_height)
            & ((pts[:, 0] - cfg.robot_xy[0]) ** 2 + (pts[:, 1] - cfg.robot_xy[1]) ** 2 > cfg.robot_radius ** 2))
    idx, pts = idx[keep], pts[keep]
    labels = np.zeros(depth.size, np.int32)
    if len(pts) < 10:
        return labels.reshape(depth.shape)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
    down = pcd.voxel_down_sample(voxel)
    o3d.utility.random.seed(seed)
    _, inliers = down.segment_plane(plane_threshold, 3, 200)
    mask = np.ones(len(down.points), bool)
    mask[np.asarray(inliers, int)] = False
    objs = down.select_by_index(np.flatnonzero(mask).tolist())
    cl = np.asarray(objs.cluster_dbscan(eps, min_points), dtype=np.int32) if len(objs.points) else np.zeros(0, np.int32)
    if timing is not None:
        timing["ms"] = (time.perf_counter() - t0) * 1e3
        timing["cpu_ms"] = (time.process_time() - c0) * 1e3
    vox_label = np.zeros(len(down.points), np.int32)
    vox_label[np.flatnonzero(mask)] = cl + 1  # DBSCAN noise (-1) -> 0
    _, nearest = cKDTree(np.asarray(down.points)).query(pts, k=1)
    labels[idx] = vox_label[nearest]
    return labels.reshape(depth.shape)
