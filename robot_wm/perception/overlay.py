"""Pictures and files people look at: segments, ids and relation edges over the RGB image; PLY clouds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from robot_wm.geometry import project_points
from robot_wm.perception.graph import SceneGraph

_EDGE_COLORS = {"on": (255, 255, 255), "inside": (255, 200, 0), "next_to": (0, 220, 255)}


def _palette(i: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(1000 + i)
    c = rng.integers(60, 256, 3)
    return int(c[0]), int(c[1]), int(c[2])


def draw_overlay(graph: SceneGraph, frame, alpha: float = 0.55) -> np.ndarray:
    """RGB (H, W, 3) uint8: each object's mask in this frame tinted, its box outline projected (dashed grey
    for remembered, invisible objects), its id, and on / inside / next_to edges between object centres."""
    rgb = np.asarray(frame.rgb[..., :3], dtype=np.float32).copy()
    h, w = rgb.shape[:2]
    k = frame.intrinsics
    world2cam = frame.camera2world.inverse()
    colors = {o.id: _palette(i) for i, o in enumerate(graph.objects)}
    flat = rgb.reshape(-1, 3)
    for o in graph.objects:
        m = o.masks.get(frame.name)
        if m is not None and len(m):
            flat[m] = (1 - alpha) * flat[m] + alpha * np.asarray(colors[o.id], np.float32)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    centres: dict[str, tuple[float, float]] = {}
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * 0.5
    edges = [(0, 1), (0, 2), (1, 3), (2, 3), (4, 5), (4, 6), (5, 7), (6, 7), (0, 4), (1, 5), (2, 6), (3, 7)]
    for o in graph.objects:
        pc = world2cam.transform_points(o.pose.transform_points(corners * o.extents))
        if np.any(pc[:, 2] <= 0.05):
            continue
        uv = project_points(pc, k)
        col = colors[o.id] if o.visible else (150, 150, 150)
        for a, b in edges:
            draw.line([tuple(uv[a]), tuple(uv[b])], fill=col, width=1 if o.visible else 1)
        c = project_points(world2cam.transform_points(o.pose.position[None]), k)[0]
        centres[o.id] = (float(c[0]), float(c[1]))
    for r in graph.relations:
        if r.kind not in _EDGE_COLORS or r.subject not in centres or r.object not in centres:
            continue
        if r.kind == "next_to" and r.subject > r.object:
            continue
        draw.line([centres[r.subject], centres[r.object]], fill=_EDGE_COLORS[r.kind], width=2)
    for o in graph.objects:
        if o.id in centres:
            x, y = centres[o.id]
            label = o.id + ("" if o.visible else " (hidden)")
            draw.rectangle([x - 2, y - 12, x + 6 * len(label) + 2, y], fill=(0, 0, 0))
            draw.text((x, y - 12), label, fill=(255, 255, 255))
    legend = [("on", _EDGE_COLORS["on"]), ("inside", _EDGE_COLORS["inside"]), ("next_to", _EDGE_COLORS["next_to"])]
    draw.rectangle([2, 2, 80, 6 + 14 * len(legend)], fill=(0, 0, 0))
    for i, (name, col) in enumerate(legend):
        draw.rectangle([5, 5 + 14 * i, 15, 15 + 14 * i], fill=col)
        draw.text((20, 4 + 14 * i), name, fill=(255, 255, 255))
    return np.asarray(img)


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> None:
    """Binary little-endian PLY of points (N, 3) float (m, world frame) with optional RGB (N, 3) in [0, 1]."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    n = len(pts)
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}",
              "property float x", "property float y", "property float z"]
    if colors is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    if colors is not None:
        dt = np.dtype([("p", "<f4", 3), ("c", "u1", 3)])
        rec = np.empty(n, dt)
        rec["p"] = pts
        rec["c"] = np.clip(np.asarray(colors, float).reshape(-1, 3) * 255 + 0.5, 0, 255).astype(np.uint8)
    else:
        rec = pts.astype("<f4")
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(rec.tobytes())


def graph_cloud(graph: SceneGraph, visible_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All objects' points (N, 3) and each point's object colour (N, 3) in [0, 1]."""
    pts, cols = [], []
    for o in graph.objects:
        if visible_only and not o.visible:
            continue
        pts.append(o.points)
        cols.append(np.broadcast_to(np.clip(o.color, 0, 1), (len(o.points), 3)))
    if not pts:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3))
    return np.concatenate(pts), np.concatenate(cols)
