"""Inputs of ``robot-wm bench grasping``'s rendered top-1 test: a single-object scene seen by a ring of
cameras, and world-frame clouds of the object and of the rest of the scene from its RGB-D frames.

The clouds are depth deprojected with the simulator's ground-truth segmentation (an oracle segmentation,
exact geometry as the cameras see it), so they belong to benchmarks, never to the product path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import yaml

from robot_wm.config import Scene, scene_from_dict
from robot_wm.config.random_scene import object_entry, scene_mapping
from robot_wm.interface import Observation


def object_and_scene_clouds(obs: Observation, body: int, radius: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(object points (N, 3), scene points (M, 3)), world frame, merged over every camera frame.

    Scene points are everything else with valid depth within `radius` m (horizontally) of the object.
    """
    obj, rest = [], []
    for frame in obs.frames.values():
        if frame.segmentation is None:
            raise ValueError(f"camera {frame.name!r} has no segmentation (simulation only)")
        pts = frame.points_world().reshape(-1, 3)
        seg = frame.segmentation.reshape(-1)
        valid = np.all(np.isfinite(pts), axis=1)
        obj.append(pts[valid & (seg == body)])
        rest.append(pts[valid & (seg != body)])
    o = np.concatenate(obj).astype(float)
    r = np.concatenate(rest).astype(float)
    if len(o):
        c = o.mean(0)
        r = r[np.linalg.norm(r[:, :2] - c[:2], axis=1) < radius]
    return o, r


def ring_cameras(target: tuple[float, float, float] = (0.5, 0.0, 0.03), n: int = 4, radius: float = 0.45,
                 height: float = 0.45, width: int = 320, height_px: int = 240) -> list[dict]:
    """Calibration mappings (contract format) for `n` cameras on a ring looking at `target`."""
    f = 554.26 * width / 640
    out = []
    for i in range(n):
        a = 2 * np.pi * (i + 0.5) / n
        eye = [target[0] + radius * np.cos(a), target[1] + radius * np.sin(a), height]
        out.append({"name": f"ring{i}", "width": width, "height": height_px, "fx": f, "fy": f,
                    "cx": (width - 1) / 2, "cy": (height_px - 1) / 2, "near": 0.05, "far": 3.0,
                    "look_at": {"eye": [float(v) for v in eye], "target": list(target), "up": [0, 0, 1]},
                    "depth_noise": "none"})
    return out


def single_object_scene(urdf: str, scale: float, position: tuple[float, float, float], yaw: float,
                        cameras: list[dict], name: str = "target") -> Scene:
    """A validated scene with one URDF object on the table and the given cameras."""
    tmp = Path(tempfile.mkdtemp(prefix="robot_wm_grasp_"))
    for cam in cameras:
        (tmp / f"{cam['name']}.yaml").write_text(yaml.safe_dump(cam))
    data = scene_mapping(f"grasp_{name}", [object_entry(name, list(position), yaw, urdf=urdf, scale=scale)],
                         cameras=tuple(f"{cam['name']}.yaml" for cam in cameras))
    scene = scene_from_dict(data, str(tmp / "scene.yaml"), tmp)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return scene
