"""A surface cut in two by an object in front of it (robot_wm.perception.occlusion)."""

import numpy as np

from robot_wm.geometry import project_points
from robot_wm.perception.occlusion import joined_across_occluder, pixel_labels, unseen_gap
from tests.perception.test_perception_free_space import table_frame


def _scene():
    """A camera 1 m over the table looking down; two patches of table (labels 1 and 2) either side of a
    strip of pixels that something 0.3 m from the camera (label 5) covers."""
    frame = table_frame()
    a = np.array([[0.45 + dx, dy, 0.0] for dx in np.linspace(0, 0.02, 5) for dy in np.linspace(-0.02, 0.02, 5)])
    b = a + [0.08, 0.0, 0.0]
    strip = np.array([[x, y, 0.0] for x in np.linspace(0.473, 0.527, 55) for y in np.linspace(-0.03, 0.03, 31)])
    cols, rows = np.floor(project_points(frame.camera2world.inverse().transform_points(strip), frame.intrinsics)).astype(int).T
    labels = np.zeros(frame.depth.shape, np.int64)
    frame.depth[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 0.3
    labels[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = 5
    for pts, v in ((a, 1), (b, 2)):
        c, r = np.floor(project_points(frame.camera2world.inverse().transform_points(pts), frame.intrinsics)).astype(int).T
        labels[r, c] = np.where(labels[r, c] == 5, 5, v)  # the strip in front keeps its pixels
    return frame, labels, a, b


def test_pixel_labels_say_what_hides_a_point_and_which_surface_holds_it():
    frame, labels, a, _ = _scene()
    lab, behind, pixel = pixel_labels(frame, labels, np.array([[0.5, 0.0, 0.0], a[0], [0.5, 0.0, 0.9], [3.0, 0.0, 0.0]]))
    assert lab.tolist()[:3] == [5, 1, -1] and behind.tolist()[:2] == [True, False]
    assert pixel[3] == -1  # outside the image


def test_two_patches_whose_gap_lies_behind_an_object_of_another_colour_are_joined():
    frame, labels, a, b = _scene()
    def other_colour(v):
        return False
    def same_colour(v):
        return True
    def free(q):
        return np.ones(len(q), bool), np.ones(len(q), bool)
    assert joined_across_occluder(a, b, (1, 2), frame, labels, other_colour, None, 0.008)
    assert not joined_across_occluder(a, b, (1, 2), frame, labels, same_colour, None, 0.008)  # an object of theirs
    assert not joined_across_occluder(a, b, (1, 2), frame, labels, other_colour, free, 0.008)  # another camera saw through
    assert not joined_across_occluder(a, b, (1, 2), frame, labels, other_colour, None, 0.07)  # closer than the gap asked


def test_a_gap_no_camera_saw():
    a = np.zeros((4, 3))
    b = a + [0.04, 0.0, 0.0]
    assert unseen_gap(a, b, lambda q: (np.zeros(len(q), bool), np.zeros(len(q), bool)))
    assert not unseen_gap(a, b, lambda q: (np.zeros(len(q), bool), np.ones(len(q), bool)))
