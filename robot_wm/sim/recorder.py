"""Records a run as an animated GIF (or MP4) from one of the world's calibrated cameras, optionally with
annotations drawn into each frame: world-frame outlines (a place region, goals) and an inset (top right,
a third of the size) showing what a planner imagined over the same view.

Annotations are drawn with PIL after rendering (the renderer is headless: no debug lines), projected with
the recording camera's own intrinsics, so they line up with what was rendered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from robot_wm.config import CalibrationConfig
from robot_wm.geometry import Intrinsics, Pose, project_points
from robot_wm.sim.camera import Camera
from robot_wm.sim.world import World

# A wide three-quarter view of the workspace, place region included (for videos only).
OVERVIEW = CalibrationConfig(
    name="overview", width=480, height=360, fx=330.0, fy=330.0, cx=239.5, cy=179.5, near=0.05, far=4.0,
    look_at={"eye": [1.25, -0.75, 0.85], "target": [0.42, -0.08, 0.08], "up": [0, 0, 1]},
)
INSET_SCALE = 1 / 3
Color = tuple[int, int, int]


@dataclass
class Polyline:
    """A line through world points (N, 3) m, drawn `width` px wide; `closed` joins the last to the first."""

    points: np.ndarray
    color: Color = (255, 255, 0)
    closed: bool = False
    width: int = 2


@dataclass
class Annotation:
    """What to draw on one frame: `shapes` over the frame itself; when `inset` is not None, an inset of the
    same view (top right, a third of the frame's size, zoomed in on the `inset` shapes) with those shapes
    drawn over it and `inset_title` and the `inset_text` lines on a strip below it."""

    shapes: list[Polyline] = field(default_factory=list)
    inset: list[Polyline] | None = None
    inset_text: list[str] = field(default_factory=list)
    inset_title: str = "imagined"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def project_world(points: np.ndarray, k: Intrinsics, camera2world: Pose) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> pixels (N, 2) as (u, v) and a mask (N,) of those in front of the camera."""
    cam = camera2world.inverse().transform_points(np.asarray(points, float).reshape(-1, 3))
    front = cam[:, 2] > 1e-3
    uv = np.full((len(cam), 2), np.nan)
    if front.any():
        uv[front] = project_points(cam[front], k)
    return uv, front


def draw_polylines(image: Image.Image, shapes: list[Polyline], k: Intrinsics, camera2world: Pose) -> None:
    """Draw the world-frame polylines into `image` (PIL, in place); segments behind the camera are skipped."""
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        uv, front = project_world(shape.points, k, camera2world)
        n = len(uv)
        pairs = [(i, i + 1) for i in range(n - 1)] + ([(n - 1, 0)] if shape.closed and n > 2 else [])
        for i, j in pairs:
            if front[i] and front[j]:
                draw.line([tuple(uv[i]), tuple(uv[j])], fill=shape.color, width=shape.width)


def _text_panel(lines: list[str], width: int, size: int) -> Image.Image:
    """White text lines on a black strip `width` px wide."""
    font = _font(size)
    line_h = size + 4
    panel = Image.new("RGB", (width, line_h * len(lines) + 4), (0, 0, 0))
    draw = ImageDraw.Draw(panel)
    for i, line in enumerate(lines):
        draw.text((4, 2 + i * line_h), line, fill=(255, 255, 255), font=font)
    return panel


def zoom_window(shapes: list[Polyline], k: Intrinsics, camera2world: Pose, min_fraction: float = 0.25,
                pad: float = 1.8) -> tuple[float, float, float, float]:
    """Crop window (x0, y0, width, height) px of a frame, with the frame's aspect ratio, around the
    projections of `shapes` (`pad` x their extent, at least `min_fraction` of the frame, inside it);
    the whole frame when nothing projects in front of the camera."""
    uv = [project_world(sh.points, k, camera2world) for sh in shapes]
    pts = np.concatenate([u[f] for u, f in uv]) if uv else np.zeros((0, 2))
    if len(pts) == 0:
        return 0.0, 0.0, float(k.width), float(k.height)
    lo, hi = pts.min(0), pts.max(0)
    aspect = k.width / k.height
    w = min(max((hi[0] - lo[0]) * pad, (hi[1] - lo[1]) * pad * aspect, min_fraction * k.width), k.width)
    h = w / aspect
    cx, cy = (lo + hi) / 2
    x0 = float(np.clip(cx - w / 2, 0, k.width - w))
    y0 = float(np.clip(cy - h / 2, 0, k.height - h))
    return x0, y0, float(w), float(h)


def annotate_frame(rgb: np.ndarray, k: Intrinsics, camera2world: Pose, annotation: Annotation) -> np.ndarray:
    """A copy of `rgb` (H, W, 3) uint8, rendered with intrinsics `k` from `camera2world`, with the
    annotation drawn in (see :class:`Annotation`). The inset zooms in on its shapes (see zoom_window) and
    carries its text on a strip below the picture."""
    frame = Image.fromarray(np.ascontiguousarray(rgb))
    raw = frame.copy()
    draw_polylines(frame, annotation.shapes, k, camera2world)
    if annotation.inset is not None:
        w, h = round(k.width * INSET_SCALE), round(k.height * INSET_SCALE)
        x0, y0, cw, ch = zoom_window(annotation.inset, k, camera2world)
        inset = raw.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        s = w / cw  # pixel centres: u' = (u - x0 + 0.5) s - 0.5
        ki = Intrinsics(w, h, k.fx * s, k.fy * s, (k.cx - x0 + 0.5) * s - 0.5, (k.cy - y0 + 0.5) * s - 0.5)
        draw_polylines(inset, annotation.inset, ki, camera2world)
        panel = Image.new("RGB", (w, h), (0, 0, 0))
        panel.paste(inset, (0, 0))
        text = _text_panel([annotation.inset_title, *annotation.inset_text], w, max(10, h // 11))
        full = Image.new("RGB", (w, h + text.height), (0, 0, 0))
        full.paste(panel, (0, 0))
        full.paste(text, (0, h))
        ImageDraw.Draw(full).rectangle((0, 0, w - 1, full.height - 1), outline=(255, 255, 255), width=2)
        frame.paste(full, (k.width - w - 4, 4))
    return np.asarray(frame)


class VideoRecorder:
    """A step hook rendering `camera` (a calibrated camera's name; default: a wide overview of the
    workspace) at `scale` every `every_s` simulated seconds.

    `annotate`, when given, is called for every recorded frame and its :class:`Annotation` drawn in.
    Frames are kept in memory (uint8 H x W x 3); at most `max_frames` are written, evenly subsampled.
    """

    def __init__(self, world: World, camera: str | None = None, scale: float = 1.0, every_s: float = 0.2,
                 max_frames: int = 250, annotate: Callable[[], Annotation] | None = None) -> None:
        cams = {c.name: c for c in world.cameras}
        self.camera = cams[camera] if camera else Camera(OVERVIEW)
        self.scale, self.every_s, self.max_frames = scale, every_s, max_frames
        self.annotate = annotate
        self.frames: list[np.ndarray] = []
        self._next = 0.0
        self.world = world
        world.add_step_hook(self)

    def __call__(self, world: World) -> None:
        t = world.step_count * (1.0 / 240.0)
        if t + 1e-9 >= self._next:
            self._next = t + self.every_s
            frame = world.render(self.camera, self.scale, segmentation=False, noise=False)
            rgb = frame.rgb
            if self.annotate is not None:
                rgb = annotate_frame(rgb, frame.intrinsics, frame.camera2world, self.annotate())
            self.frames.append(rgb)

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
