"""The scene graph perception produces: support surfaces, objects (oriented boxes in the world frame),
relations with confidences, and its JSON form (schema in docs/perception.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robot_wm.geometry import Pose

SCHEMA_VERSION = 1
RELATION_KINDS = ("on", "inside", "next_to", "supports")


@dataclass
class SupportSurface:
    """A horizontal support: the table or a container floor. Plane z = a x + b y + c (world, m);
    `polygon` (K, 2) is the xy outline (min-area rectangle) where it was seen; `height` is z at its centre."""

    id: str
    kind: str  # "table" | "floor"
    plane: np.ndarray  # (3,) a, b, c
    height: float
    polygon: np.ndarray
    owner: str | None = None  # the container object whose floor this is

    def z_at(self, xy: np.ndarray) -> np.ndarray:
        """Plane height (m) at xy points (..., 2)."""
        xy = np.asarray(xy, dtype=float)
        return self.plane[0] * xy[..., 0] + self.plane[1] * xy[..., 1] + self.plane[2]


@dataclass
class PerceivedObject:
    """An object as perceived. `pose`: oriented-box centre and orientation (world frame, xyzw);
    `extents` (3,) full box sizes (m) along the pose axes; `color` mean RGB in [0, 1];
    `points` (N, 3) world-frame cloud (float32); `masks` camera name -> flat pixel indices (row * W + col)
    in that camera's image where this frame saw it (not serialised); `visible` False while remembered only."""

    id: str
    pose: Pose
    extents: np.ndarray
    color: np.ndarray
    points: np.ndarray
    kind: str = "object"  # "object" | "container"
    fixed: bool = False
    visible: bool = True
    confidence: float = 1.0
    last_seen: float = 0.0  # observation time (s) the object was last visible
    support: str | None = None  # id of what it rests on ("table", an object or a container), None: unknown
    masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def point_count(self) -> int:
        return int(len(self.points))

    def _half_height(self) -> float:
        r = self.pose.rotation.as_matrix()
        return float(0.5 * np.sum(np.abs(r[2, :]) * self.extents))

    @property
    def top_z(self) -> float:
        """Highest z (m) of the box."""
        return float(self.pose.position[2]) + self._half_height()

    @property
    def bottom_z(self) -> float:
        """Lowest z (m) of the box."""
        return float(self.pose.position[2]) - self._half_height()

    def footprint(self) -> np.ndarray:
        """xy corners (4, 2) of the box's footprint (upright boxes)."""
        c = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]]) * self.extents / 2
        return self.pose.transform_points(c)[:, :2]


@dataclass
class Relation:
    """`subject kind object` with a confidence in [0, 1]; `gap` (m) for next_to. The table's id is "table"."""

    kind: str
    subject: str
    object: str
    confidence: float
    gap: float | None = None


@dataclass
class SceneGraph:
    """Perceived scene at `time` (s) from the named cameras."""

    objects: list[PerceivedObject] = field(default_factory=list)
    supports: list[SupportSurface] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    time: float = 0.0
    cameras: list[str] = field(default_factory=list)

    def get(self, object_id: str) -> PerceivedObject | None:
        return next((o for o in self.objects if o.id == object_id), None)

    def relations_of(self, kind: str) -> list[Relation]:
        return [r for r in self.relations if r.kind == kind]

    # ------------------------------------------------------------------ JSON
    def to_dict(self, max_points: int = 2000) -> dict[str, Any]:
        """JSON-ready dict; each object's cloud is subsampled to at most `max_points` (0: omit clouds)."""
        objs = []
        for o in self.objects:
            pts = o.points
            if max_points == 0:
                pts = pts[:0]
            elif len(pts) > max_points:
                pts = pts[np.linspace(0, len(pts) - 1, max_points).astype(int)]
            objs.append({
                "id": o.id, "kind": o.kind, "fixed": o.fixed, "visible": o.visible,
                "confidence": round(float(o.confidence), 4), "last_seen": float(o.last_seen), "support": o.support,
                "pose": {"position": _r(o.pose.position), "orientation": _r(o.pose.quaternion, 6)},
                "extents": _r(o.extents), "color": _r(o.color, 4), "point_count": o.point_count,
                "points": _r(pts),
            })
        sups = [{"id": s.id, "kind": s.kind, "plane": _r(s.plane, 6), "height": round(float(s.height), 5),
                 "polygon": _r(s.polygon), "owner": s.owner} for s in self.supports]
        rels = []
        for r in self.relations:
            d = {"kind": r.kind, "subject": r.subject, "object": r.object, "confidence": round(float(r.confidence), 4)}
            if r.gap is not None:
                d["gap"] = round(float(r.gap), 5)
            rels.append(d)
        return {"schema_version": SCHEMA_VERSION, "time": float(self.time), "cameras": list(self.cameras),
                "supports": sups, "objects": objs, "relations": rels}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> SceneGraph:
        """Inverse of :meth:`to_dict` (clouds come back subsampled; masks are not stored)."""
        objs = []
        for o in data.get("objects", []):
            pts = np.asarray(o.get("points", []), dtype=np.float32).reshape(-1, 3)
            objs.append(PerceivedObject(
                o["id"], Pose(o["pose"]["position"], o["pose"]["orientation"]), np.asarray(o["extents"], float),
                np.asarray(o["color"], float), pts, o.get("kind", "object"), bool(o.get("fixed", False)),
                bool(o.get("visible", True)), float(o.get("confidence", 1.0)), float(o.get("last_seen", 0.0)),
                o.get("support")))
        sups = [SupportSurface(s["id"], s["kind"], np.asarray(s["plane"], float), float(s["height"]),
                               np.asarray(s["polygon"], float).reshape(-1, 2), s.get("owner"))
                for s in data.get("supports", [])]
        rels = [Relation(r["kind"], r["subject"], r["object"], float(r["confidence"]), r.get("gap"))
                for r in data.get("relations", [])]
        return SceneGraph(objs, sups, rels, float(data.get("time", 0.0)), list(data.get("cameras", [])))

    def to_json(self, path: str | Path | None = None, max_points: int = 2000) -> str:
        """Serialise (and write to `path` if given)."""
        text = json.dumps(self.to_dict(max_points), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @staticmethod
    def from_json(text_or_path: str | Path) -> SceneGraph:
        p = Path(text_or_path) if not str(text_or_path).lstrip().startswith("{") else None
        text = p.read_text() if p is not None else str(text_or_path)
        return SceneGraph.from_dict(json.loads(text))


def _r(a: np.ndarray, nd: int = 5) -> list:
    return np.round(np.asarray(a, dtype=float), nd).tolist()
