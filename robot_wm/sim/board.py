"""A flat calibration target (e.g. a ChArUco board image) in a World: a thin backing box plus a textured quad on
its front face, carried kinematically (no mass, no collision) at a pose the caller sets, e.g. the arm's TCP pose
composed with a fixed board-to-TCP offset (a board held rigidly by the gripper).

Board frame: origin at the image's top-left corner on the front face, x along the image columns, y along the
rows, z into the board, away from a viewer of the printed face (OpenCV's ChArUco object frame, so board corner
coordinates (x, y, 0) from ``cv2.aruco`` are board-frame points; the printed face's normal is -z).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from robot_wm.geometry import Pose
from robot_wm.sim.client import pybullet
from robot_wm.sim.world import World

BACKING_COLOR = (0.15, 0.15, 0.15, 1.0)


class TexturedBoard:
    """A `width` x `height` m picture (`image`: uint8 HxWx3, row 0 at board y = 0) on a board `thickness` m
    thick, in `world`. Call :meth:`place` to put the board frame at a world pose."""

    def __init__(self, world: World, image: np.ndarray, width: float, height: float,
                 thickness: float = 0.004) -> None:
        import imageio.v2 as imageio

        self.world, self.width, self.height, self.thickness = world, float(width), float(height), float(thickness)
        c = world.client
        img = np.asarray(image, np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        fd, path = tempfile.mkstemp(suffix=".png")
        os.close(fd)
        try:
            imageio.imwrite(path, img)
            self.texture = c.loadTexture(path)
        finally:
            os.unlink(path)
        w, h = self.width, self.height
        # the quad lies 0.1 mm in front of the backing so that the depth test never lets the backing win
        verts = [[0.0, 0.0, -1e-4], [w, 0.0, -1e-4], [w, h, -1e-4], [0.0, h, -1e-4]]
        uvs = [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]  # texture v runs bottom-up; image rows top-down
        normals = [[0.0, 0.0, -1.0]] * 4
        quad = c.createVisualShape(pybullet.GEOM_MESH, vertices=verts, indices=[0, 2, 1, 0, 3, 2], uvs=uvs,
                                   normals=normals, rgbaColor=[1, 1, 1, 1])
        self.face = c.createMultiBody(0.0, -1, quad, [0, 0, -5], [0, 0, 0, 1])
        c.changeVisualShape(self.face, -1, textureUniqueId=self.texture, rgbaColor=[1, 1, 1, 1])
        back = c.createVisualShape(pybullet.GEOM_BOX, halfExtents=[w / 2, h / 2, self.thickness / 2],
                                   visualFramePosition=[w / 2, h / 2, self.thickness / 2], rgbaColor=BACKING_COLOR)
        self.backing = c.createMultiBody(0.0, -1, back, [0, 0, -5], [0, 0, 0, 1])

    def place(self, board2world: Pose) -> None:
        """Put the board frame at `board2world` (teleport; the board has no physics)."""
        pos, orn = board2world.position.tolist(), board2world.quaternion.tolist()
        for body in (self.face, self.backing):
            self.world.client.resetBasePositionAndOrientation(body, pos, orn)

    def remove(self) -> None:
        for body in (self.face, self.backing):
            self.world.client.removeBody(body)
