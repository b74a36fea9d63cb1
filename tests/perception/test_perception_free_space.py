"""The free-space test (robot_wm.perception.free_space): seen through, seen at, or unseen."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from robot_wm.geometry import Intrinsics, look_at_camera2world
from robot_wm.perception.free_space import seen_through
from robot_wm.perception.segment import world_rays


def table_frame(occluder_px: tuple[slice, slice] | None = None, invalid_px: tuple[slice, slice] | None = None):
    """A camera 1 m above the table (z = 0) looking straight down at (0.5, 0); its depth image sees the table,
    except a patch at 0.3 m depth (something close to the camera) and a patch with no depth."""
    k = Intrinsics(160, 120, 150.0, 150.0, 80.0, 60.0)
    pose = look_at_camera2world(np.array([0.5, 0.0, 1.0]), np.array([0.5, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    rays = world_rays(k, pose)
    depth = (-1.0 / rays[..., 2]).astype(np.float32)  # z-depth to the plane z = 0
    if occluder_px is not None:
        depth[occluder_px] = 0.3
    if invalid_px is not None:
        depth[invalid_px] = 0.0
    return SimpleNamespace(depth=depth, intrinsics=k, camera2world=pose)


def test_points_above_the_table_are_seen_free_and_points_on_it_are_seen_not_free():
    f = table_frame()
    pts = np.array([[0.5, 0.0, 0.05], [0.52, 0.03, 0.02], [0.5, 0.0, 0.0], [0.48, -0.02, 0.001]])
    free, seen = seen_through([f], pts, sigma=0.0)
    assert free.tolist() == [True, True, False, False]
    assert seen.all()


def test_hidden_points_points_without_depth_and_points_outside_the_image_are_unseen():
    f = table_frame(occluder_px=(slice(50, 70), slice(70, 90)), invalid_px=(slice(0, 20), slice(0, 20)))
    cam = f.camera2world
    centre_point = cam.transform_points(np.array([[0.0, 0.0, 0.9]]))[0]  # the image centre, under the occluder
    corner = cam.transform_points(np.array([[(5 - 80) / 150 * 0.95, (5 - 60) / 150 * 0.95, 0.95]]))[0]
    pts = np.array([centre_point, corner, [3.0, 0.0, 0.05]])
    free, seen = seen_through([f], pts, sigma=0.0)
    assert not free.any() and not seen.any()


def test_a_second_camera_that_sees_through_makes_a_point_free_and_noise_widens_the_tolerance():
    hidden = table_frame(occluder_px=(slice(0, 120), slice(0, 160)))
    clear = table_frame()
    p = np.array([[0.5, 0.0, 0.006]])
    assert seen_through([hidden, clear], p, sigma=0.0)[0].tolist() == [True]
    assert seen_through([hidden], p, sigma=0.0)[1].tolist() == [False]
    # 6 mm above the table is within 3 sigma of 2.5 mm depth noise: it reads as on the table
    free, seen = seen_through([clear], p, sigma=0.0025)
    assert free.tolist() == [False] and seen.tolist() == [True]


def oblique_frame(elevation_deg: float, depth_error: float = 0.0):
    """A camera 1 m from (0.5, 0, 0) looking down at it from `elevation_deg` above the table's plane; its depth
    image sees the table, every pixel `depth_error` m too far."""
    k = Intrinsics(160, 120, 150.0, 150.0, 80.0, 60.0)
    e = np.deg2rad(elevation_deg)
    eye = np.array([0.5 - np.cos(e), 0.0, np.sin(e)])
    pose = look_at_camera2world(eye, np.array([0.5, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    rays = world_rays(k, pose)
    depth = np.where(rays[..., 2] < -1e-6, -eye[2] / np.minimum(rays[..., 2], -1e-6) + depth_error, 0.0)
    return SimpleNamespace(depth=depth.astype(np.float32), intrinsics=k, camera2world=pose)


def test_the_tolerance_is_the_height_noise_carried_along_each_cameras_ray():
    """sigma is the table's height scatter; along a ray looking down at 30 deg a depth error is twice its height
    error. Depth 8 mm too far is 8 mm of height seen (nearly) straight down (beyond 3 x 1.8 mm: free) but 4 mm seen at
    30 deg (noise: the point on the table is not free)."""
    on_table = np.array([[0.5, 0.0, 0.0]])
    assert seen_through([oblique_frame(89.0, 0.008)], on_table, sigma=0.0018)[0].tolist() == [True]
    assert seen_through([oblique_frame(30.0, 0.008)], on_table, sigma=0.0018)[0].tolist() == [False]
    # a point 7 mm above the table is free at either angle (its depth gap grows along the ray as well)
    above = np.array([[0.5, 0.0, 0.007]])
    assert seen_through([oblique_frame(30.0)], above, sigma=0.0018)[0].tolist() == [True]
    assert seen_through([oblique_frame(89.0)], above, sigma=0.0018)[0].tolist() == [True]


def test_each_camera_is_judged_by_its_own_noise():
    p = np.array([[0.5, 0.0, 0.006]])
    clear = table_frame()
    assert seen_through([clear, clear], p, sigma=[0.0025, 0.0025])[0].tolist() == [False]
    assert seen_through([clear, clear], p, sigma=[0.0025, 0.0])[0].tolist() == [True]


def test_a_box_hides_what_lies_behind_it_from_every_camera_that_sees_the_spot():
    """A 6 cm tall box at x 0.45-0.55 seen from a camera low on its +x side (30 deg) hides a point on a lower
    top just beyond it (x 0.43, 3.5 cm up); seen from above (89 deg) it does not; a point beside the box is
    hidden from neither; with both cameras only what both look at through the box counts."""
    from robot_wm.perception.free_space import FreeSpace

    def low_camera(elevation_deg: float):
        f = oblique_frame(elevation_deg)
        pose = f.camera2world
        eye = pose.position.copy()
        eye[0] = 1.0 - eye[0]  # mirrored to the +x side, looking at (0.5, 0, 0)
        f.camera2world = look_at_camera2world(eye, np.array([0.5, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
        return f

    box = dict(centre=np.array([0.5, 0.0]), yaw=0.0, extents=np.array([0.1, 0.06]), z_lo=0.0, z_hi=0.06)
    pts = np.array([[0.43, 0.0, 0.035], [0.43, 0.2, 0.035]])
    low, high = low_camera(30.0), low_camera(89.0)
    assert FreeSpace([low], [0.0]).hidden_behind(pts, **box).tolist() == [True, False]
    assert FreeSpace([high], [0.0]).hidden_behind(pts, **box).tolist() == [False, False]
    assert FreeSpace([low, high], [0.0, 0.0]).hidden_behind(pts, **box).tolist() == [False, False]
    # the same box turned by 90 deg about its centre no longer reaches the line of sight
    turned = dict(box, yaw=np.pi / 2, extents=np.array([0.1, 0.02]))
    assert FreeSpace([low], [0.0]).hidden_behind(pts[:1], **turned).tolist() == [False]
    # a point no camera has in its image is not called hidden
    assert FreeSpace([low], [0.0]).hidden_behind(np.array([[5.0, 5.0, 0.0]]), **box).tolist() == [False]
    free, seen = FreeSpace([high], [0.0])(np.array([[0.5, 0.0, 0.05]]))
    assert free.tolist() == [True] and seen.tolist() == [True]  # the callable is the free-space test
