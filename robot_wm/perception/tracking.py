"""Tracking across frames: stable ids and object permanence.

Each new graph's objects are matched to the tracks (Hungarian on centre distance, extents and colour,
gated). A track that finds no match is kept with ``visible: False`` while the cameras cannot see where it
was (occluded: something nearer covers it; or out of view). It is dropped only on evidence that it is gone:
a camera sees the table (or whatever is behind) *through* the place where it was, for `forget_after`
consecutive updates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from robot_wm.geometry import project_points
from robot_wm.perception.graph import PerceivedObject, SceneGraph
from robot_wm.perception.relations import RelationConfig, compute_relations

log = logging.getLogger(__name__)


@dataclass
class _Track:
    obj: PerceivedObject
    misses: int = 0


class Tracker:
    """Keeps ids stable across :meth:`update` calls. Ids look like ``obj_3`` / ``container_0``."""

    def __init__(self, gate: float = 0.05, color_gate: float = 0.35, forget_after: int = 1,
                 occlusion_margin: float = 0.01, relations: RelationConfig | None = None) -> None:
        self.gate, self.color_gate = gate, color_gate
        self.forget_after, self.occlusion_margin = forget_after, occlusion_margin
        self.relation_config = relations or RelationConfig()
        self.tracks: dict[str, _Track] = {}
        self._next = {"object": 0, "container": 0}
        self._expected: dict[str, np.ndarray] = {}

    def reset(self) -> None:
        self.tracks.clear()
        self._next = {"object": 0, "container": 0}
        self._expected = {}

    def expect(self, positions: Mapping[str, Iterable[float]]) -> None:
        """Where tracks are expected at the next :meth:`update` (track id -> world x, y in m), e.g. where a
        commanded push was predicted to leave them: that update matches each of them within the gate of its
        old place *or* of the expected one (a push moves an object further than the gate). One update only;
        unknown ids are ignored."""
        self._expected = {tid: np.asarray(list(p), float)[:2] for tid, p in positions.items() if tid in self.tracks}

    def _new_id(self, kind: str) -> str:
        n = self._next.get(kind, 0)
        self._next[kind] = n + 1
        return f"{'container' if kind == 'container' else 'obj'}_{n}"

    def update(self, graph: SceneGraph, frames: Iterable | Mapping | None = None) -> SceneGraph:
        """Give the new graph's objects their track ids and add remembered (invisible) ones.

        `frames` (the frames the graph came from) let the tracker tell occlusion from disappearance;
        without them unmatched tracks are kept until `forget_after` updates pass.
        """
        frames = list(frames.values()) if isinstance(frames, Mapping) else list(frames or [])
        dets = graph.objects
        ids = list(self.tracks)
        expected, self._expected = self._expected, {}
        mapping: dict[str, str] = {}
        matched_tracks: set[str] = set()
        if dets and ids:
            cost = np.full((len(dets), len(ids)), 1e6)
            for i, d in enumerate(dets):
                for j, tid in enumerate(ids):
                    t = self.tracks[tid].obj
                    if t.kind != d.kind:
                        continue
                    dist = float(np.linalg.norm(d.pose.position - t.pose.position))
                    if tid in expected:
                        moved = np.r_[expected[tid], t.pose.position[2]]
                        dist = min(dist, float(np.linalg.norm(d.pose.position - moved)))
                    col = float(np.abs(d.color - t.color).sum())
                    gate = self.gate * (3.0 if d.kind == "container" else 1.0)
                    if dist > gate or col > self.color_gate:
                        continue
                    cost[i, j] = dist / gate + 0.5 * col + float(np.abs(np.sort(d.extents) - np.sort(t.extents)).sum())
            rows, cols = linear_sum_assignment(cost)
            for i, j in zip(rows, cols, strict=True):
                if cost[i, j] < 1e5:
                    mapping[dets[i].id] = ids[j]
                    matched_tracks.add(ids[j])
        out: list[PerceivedObject] = []
        for d in dets:
            tid = mapping.get(d.id) or self._new_id(d.kind)
            mapping[d.id] = tid
        for d in dets:
            new = replace(d, id=mapping[d.id], support=mapping.get(d.support, d.support), visible=True)
            new.masks = d.masks
            self.tracks[new.id] = _Track(new, 0)
            out.append(new)
        for tid in ids:
            if tid in matched_tracks:
                continue
            tr = self.tracks[tid]
            gone = self._seen_gone(tr.obj, frames) if frames else False
            tr.misses = tr.misses + 1 if (gone or not frames) else tr.misses
            if tr.misses >= self.forget_after and (gone or not frames):
                log.debug("track %s dropped: its place is seen empty", tid)
                del self.tracks[tid]
                continue
            tr.obj = replace(tr.obj, visible=False, masks={})
            out.append(tr.obj)
        alive = {o.id for o in out}
        for o in out:
            if o.support not in alive and o.support is not None and o.support != "table" and not o.support.startswith("container"):
                o.support = "table"
        result = SceneGraph(out, graph.supports, [], graph.time, graph.cameras)
        result.relations = compute_relations(result, self.relation_config)
        return result

    def _seen_gone(self, obj: PerceivedObject, frames: list) -> bool:
        """True when some camera sees beyond the object's remembered surface where it should be in view
        (its place is empty); occluded or out-of-view places give no evidence."""
        pts = obj.points
        if len(pts) == 0:
            pts = obj.pose.position[None]
        pts = pts[:: max(1, len(pts) // 200)]
        for f in frames:
            k = f.intrinsics
            cam = f.camera2world.inverse().transform_points(pts)
            front = cam[:, 2] > 0.05
            if front.sum() < 5:
                continue
            uv = np.rint(project_points(cam[front], k)).astype(int)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < k.width) & (uv[:, 1] >= 0) & (uv[:, 1] < k.height)
            if inside.mean() < 0.5:
                continue
            z_exp = cam[front][inside, 2]
            z_obs = np.asarray(f.depth, dtype=np.float32)[uv[inside, 1], uv[inside, 0]]
            valid = np.isfinite(z_obs) & (z_obs > 0)
            if valid.sum() < 5:
                continue
            beyond = np.mean(z_obs[valid] > z_exp[valid] + self.occlusion_margin)
            if beyond > 0.6:
                return True
        return False
