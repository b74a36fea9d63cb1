"""Spatial relations between perceived objects, each with a confidence in [0, 1].

- ``on(a, b)``: a rests on b (b: an object, a container or "table"); from the support found when a's box
  was fitted (a's lowest points within a few mm of b's top, footprints overlapping).
- ``supports(b, a)``: the inverse of every ``on``.
- ``inside(a, c)``: a's centre lies over container c's floor and below c's rim (also for a stacked on
  something inside c).
- ``next_to(a, b)``: distinct objects whose clouds come within `next_to_gap` m (3D), neither on the other;
  ``gap`` is that closest distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from robot_wm.perception.graph import Relation, SceneGraph


@dataclass
class RelationConfig:
    next_to_gap: float = 0.05  # m
    max_points: int = 400  # clouds are subsampled to this for distances


def compute_relations(graph: SceneGraph, cfg: RelationConfig | None = None) -> list[Relation]:
    """All relations of a graph's objects (visible and remembered)."""
    cfg = cfg or RelationConfig()
    rels: list[Relation] = []
    by_id = {o.id: o for o in graph.objects}
    for o in graph.objects:
        if o.support is None:
            continue
        sup = by_id.get(o.support)
        top = sup.top_z if sup is not None and sup.kind == "object" else None
        if sup is not None and sup.kind == "container":
            floor = next((s for s in graph.supports if s.owner == sup.id), None)
            top = floor.height if floor is not None else sup.bottom_z
        if top is None:
            top = next((float(s.z_at(o.pose.position[:2])) for s in graph.supports if s.id == "table"), 0.0)
        gap = abs(o.bottom_z - top)
        conf = float(np.clip(1.0 - gap / 0.03, 0.3, 1.0) * (0.6 + 0.4 * o.confidence))
        rels.append(Relation("on", o.id, o.support, conf))
        rels.append(Relation("supports", o.support, o.id, conf))
    # inside: over a container's floor, below its rim
    for c in (o for o in graph.objects if o.kind == "container"):
        floor = next((s for s in graph.supports if s.owner == c.id), None)
        if floor is None:
            continue
        centre = floor.polygon.mean(0)
        e0, e1 = floor.polygon[1] - floor.polygon[0], floor.polygon[2] - floor.polygon[1]
        axes = np.stack([e0 / np.linalg.norm(e0), e1 / np.linalg.norm(e1)])
        half = np.array([np.linalg.norm(e0), np.linalg.norm(e1)]) / 2
        for o in graph.objects:
            if o.kind != "object":
                continue
            loc = axes @ (o.pose.position[:2] - centre)
            margin = np.min(half - np.abs(loc))
            if margin > -0.01 and o.bottom_z > floor.height - 0.015 and o.pose.position[2] < c.top_z:
                conf = float(np.clip(0.5 + margin / 0.04, 0.3, 1.0))
                rels.append(Relation("inside", o.id, c.id, conf))
    # next_to: close clouds, not stacked on each other
    objs = [o for o in graph.objects if o.kind == "object" and len(o.points)]
    stacked = {(r.subject, r.object) for r in rels if r.kind == "on"}
    trees: dict[int, tuple[np.ndarray, cKDTree]] = {}

    def tree(i: int) -> tuple[np.ndarray, cKDTree]:
        if i not in trees:
            p = objs[i].points
            if len(p) > cfg.max_points:
                p = p[:: len(p) // cfg.max_points + 1]
            trees[i] = (p, cKDTree(p))
        return trees[i]
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            a, b = objs[i], objs[j]
            if (a.id, b.id) in stacked or (b.id, a.id) in stacked:
                continue
            ca, cb = a.pose.position[:2], b.pose.position[:2]
            reach = np.linalg.norm(a.extents[:2]) / 2 + np.linalg.norm(b.extents[:2]) / 2 + cfg.next_to_gap
            if np.linalg.norm(ca - cb) > reach:
                continue
            d, _ = tree(j)[1].query(tree(i)[0], k=1)
            gap = float(d.min())
            if gap <= cfg.next_to_gap:
                conf = float(np.clip(1.0 - gap / cfg.next_to_gap, 0.1, 1.0))
                rels.append(Relation("next_to", a.id, b.id, conf, gap))
                rels.append(Relation("next_to", b.id, a.id, conf, gap))
    return rels
