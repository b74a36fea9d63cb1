"""A calibrated RGB-D camera rendered with PyBullet's CPU renderer.

PyBullet renders with OpenGL conventions and a non-linear depth buffer; both are converted here, once,
to the optical frame (x right, y down, z forward) and metric z-depth.
"""

from __future__ import annotations

import numpy as np

from robot_wm.config import CalibrationConfig
from robot_wm.geometry import (
    Intrinsics,
    Pose,
    depth_buffer_to_metric,
    look_at_camera2world,
    opengl_projection_matrix,
    opengl_view_matrix,
)
from robot_wm.interface import CameraFrame
from robot_wm.sim.client import pybullet
from robot_wm.sim.depth_noise import DEPTH_NOISE_MODELS


class Camera:
    """Intrinsics and `camera2world` from a calibration file; renders frames from a physics client.

    `mount` ``world`` (a fixed camera): the calibration's pose is `camera2world`. ``hand`` (a wrist camera): the
    calibration's pose is `camera2flange`, the optical frame in the arm's flange frame, and `camera2world` is
    where the camera was at its last render: :meth:`robot_wm.sim.World.render` sets it from the arm's flange
    pose before rendering (``flange2world @ camera2flange``).

    Outside ``robot_wm.sim`` render through :meth:`robot_wm.sim.World.render` (no physics client needed).
    """

    def __init__(self, calibration: CalibrationConfig, mount: str = "world") -> None:
        c = calibration
        if mount not in ("world", "hand"):
            raise ValueError(f"mount must be world or hand (got {mount!r})")
        self.name = c.name
        self.mount = mount
        self.intrinsics = Intrinsics(c.width, c.height, c.fx, c.fy, c.cx, c.cy)
        self.near, self.far = c.near, c.far
        if c.camera2world is not None:
            pose = Pose(c.camera2world.position, c.camera2world.orientation)
        else:
            la = c.look_at
            pose = look_at_camera2world(la.eye, la.target, la.up)
        # a hand camera's pose in the flange frame (None for a fixed camera); camera2world until the first render
        self.camera2flange = pose if mount == "hand" else None
        self.camera2world = pose
        self.depth_noise = c.depth_noise

    def _matrices(self, k: Intrinsics) -> tuple[list[float], list[float]]:
        view = opengl_view_matrix(self.camera2world).T.reshape(-1).tolist()  # column-major for OpenGL
        # TinyRenderer samples pixel corners, not centres, and flips rows: its pixel (u, v) sees the ray of
        # OpenCV pixel (u - 0.5, v + 0.5) under a standard projection. Shifting the principal point by half a
        # pixel makes every rendered pixel show the ray through its own centre (tests/sim/test_sim_camera.py).
        k_render = Intrinsics(k.width, k.height, k.fx, k.fy, k.cx - 0.5, k.cy + 0.5)
        proj = opengl_projection_matrix(k_render, self.near, self.far).T.reshape(-1).tolist()
        return view, proj

    def render(self, client, rng: np.random.Generator | None = None, scale: float = 1.0,
               segmentation: bool = True) -> CameraFrame:
        """Render one frame. `scale` < 1 renders a smaller image with matching intrinsics (for previews).

        Depth noise (if calibrated) needs `rng`; without one the frame is noise-free.
        """
        k = self.intrinsics if scale == 1.0 else self.intrinsics.scaled(scale)
        view, proj = self._matrices(k)
        flags = 0 if segmentation else pybullet.ER_NO_SEGMENTATION_MASK
        _, _, rgba, buf, seg = client.getCameraImage(
            k.width, k.height, view, proj, renderer=pybullet.ER_TINY_RENDERER, flags=flags, shadow=0,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(k.height, k.width, 4)[:, :, :3].copy()
        depth = depth_buffer_to_metric(np.asarray(buf, dtype=np.float32).reshape(k.height, k.width), self.near, self.far)
        if self.depth_noise != "none" and rng is not None:
            depth = DEPTH_NOISE_MODELS[self.depth_noise](depth, k, rng)
        seg_img = np.asarray(seg, dtype=np.int32).reshape(k.height, k.width) if segmentation else None
        return CameraFrame(self.name, rgb, depth, k, self.camera2world, seg_img)
