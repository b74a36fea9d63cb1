"""Pinhole camera math in the optical frame (x right, y down, z forward), and the conversions
to and from OpenGL's view/projection conventions that PyBullet's renderer uses.

Pixel convention: OpenCV's. Pixel (u, v) = (column, row) has its centre at integer coordinates,
row 0 at the top of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_wm.geometry.pose import Pose

# Optical frame (x right, y down, z forward) -> OpenGL camera frame (x right, y up, z backward).
_OPTICAL2GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of width x height."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def matrix(self) -> np.ndarray:
        """3x3 K matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, factor: float) -> Intrinsics:
        """Intrinsics of the same camera rendering an image `factor` times the size."""
        w, h = round(self.width * factor), round(self.height * factor)
        sx, sy = w / self.width, h / self.height
        return Intrinsics(w, h, self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5)


def opengl_projection_matrix(k: Intrinsics, near: float, far: float) -> np.ndarray:
    """4x4 OpenGL projection matrix (row-major) equivalent to the pinhole intrinsics."""
    p = np.zeros((4, 4))
    p[0, 0] = 2.0 * k.fx / k.width
    p[0, 2] = 1.0 - (2.0 * k.cx + 1.0) / k.width
    p[1, 1] = 2.0 * k.fy / k.height
    p[1, 2] = (2.0 * k.cy + 1.0) / k.height - 1.0
    p[2, 2] = -(far + near) / (far - near)
    p[2, 3] = -2.0 * far * near / (far - near)
    p[3, 2] = -1.0
    return p


def opengl_view_matrix(camera2world: Pose) -> np.ndarray:
    """4x4 OpenGL view matrix (world -> GL camera, row-major) for an optical-frame pose."""
    gl2world = camera2world.matrix() @ _OPTICAL2GL
    return np.linalg.inv(gl2world)


def depth_buffer_to_metric(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """OpenGL depth buffer values in [0, 1] -> z depth (m) along the optical axis.

    Values at the far plane (>= 1) become 0 (invalid), as the depth convention requires.
    """
    d = np.asarray(buffer, dtype=np.float64)
    z = far * near / (far - (far - near) * d)
    z[d >= 1.0 - 1e-7] = 0.0
    return z.astype(np.float32)


def deproject_depth(depth: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Depth image (H, W) in metres -> points (H, W, 3) in the optical frame. Invalid pixels give z = 0."""
    h, w = depth.shape
    u = np.arange(w, dtype=np.float32)
    v = np.arange(h, dtype=np.float32)
    z = depth.astype(np.float32)
    x = (u[None, :] - k.cx) / k.fx * z
    y = (v[:, None] - k.cy) / k.fy * z
    return np.stack([x, y, z], axis=-1)


def project_points(points_camera: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Points (N, 3) in the optical frame -> pixel coordinates (N, 2) as (u, v)."""
    p = np.asarray(points_camera, dtype=float)
    return np.stack([k.fx * p[:, 0] / p[:, 2] + k.cx, k.fy * p[:, 1] / p[:, 2] + k.cy], axis=1)


def look_at_camera2world(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> Pose:
    """Optical-frame pose of a camera at `eye` looking at `target`, with image-up towards `up`."""
    eye, target, up = (np.asarray(a, dtype=float) for a in (eye, target, up))
    z = target - eye
    norm = np.linalg.norm(z)
    if norm < 1e-9:
        raise ValueError("eye and target coincide")
    z /= norm
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("up is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return Pose.from_matrix(m)
