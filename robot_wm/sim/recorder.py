"""Records a run as an animated GIF (or MP4) from one of the world's calibrated cameras."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from robot_wm.config import CalibrationConfig
from robot_wm.sim.camera import Camera
from robot_wm.sim.world import World

# A wide three-quarter view of the workspace, place region included (for videos only).
OVERVIEW = CalibrationConfig(
    name="overview", width=480, height=360, fx=330.0, fy=330.0, cx=239.5, cy=179.5, near=0.05, far=4.0,
    look_at={"eye": [1.25, -0.75, 0.85], "target": [0.42, -0.08, 0.08], "up": [0, 0, 1]},
)


class VideoRecorder:
    """A step hook rendering `camera` (a calibrated camera's name; default: a wide overview of the
    workspace) at `scale` every `every_s` simulated seconds.

    Frames are kept in memory (uint8 H x W x 3); at most `max_frames` are written, evenly subsampled.
    """

    def __init__(self, world: World, camera: str | None = None, scale: float = 1.0, every_s: float = 0.2,
                 max_frames: int = 250) -> None:
        cams = {c.name: c for c in world.cameras}
        self.camera = cams[camera] if camera else Camera(OVERVIEW)
        self.scale, self.every_s, self.max_frames = scale, every_s, max_frames
        self.frames: list[np.ndarray] = []
        self._next = 0.0
        self.world = world
        world.add_step_hook(self)

    def __call__(self, world: World) -> None:
        t = world.step_count * (1.0 / 240.0)
        if t + 1e-9 >= self._next:
            self._next = t + self.every_s
            self.frames.append(world.render(self.camera, self.scale, segmentation=False, noise=False).rgb)

    def detach(self) -> None:
        self.world.remove_step_hook(self)

    def save(self, path: Path) -> Path:
        """Write the frames (GIF at 1/every_s fps, or MP4 if `path` ends in .mp4); returns the path."""
        frames = self.frames
        if len(frames) > self.max_frames:
            idx = np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int)
            frames = [frames[i] for i in idx]
        if not frames:
            raise RuntimeError("no frames recorded")
        path.parent.mkdir(parents=True, exist_ok=True)
        stack = np.stack(frames)
        if path.suffix == ".mp4":
            iio.imwrite(path, stack, fps=round(1 / self.every_s))
        else:
            iio.imwrite(path, stack, duration=int(1000 * self.every_s), loop=0)
        return path
