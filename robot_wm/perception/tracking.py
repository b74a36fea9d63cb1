"""Tracking across frames: stable ids and object permanence.

Each new graph's objects are matched to the tracks (Hungarian on centre distance, extents and colour,
gated). A track that finds no match is kept with ``visible: False`` while the cameras cannot see where it
was (occluded: something nearer covers it; or out of view). It is dropped only on evidence that it is gone:
a camera sees the table (or whatever is behind) *through* the place where it was, for `forget_after`
consecutive updates.

Objects do not appear out of one another: a new detection stacked on (or under) a detection that continues a
track, of the same colour, where that track was one object spanning both of their heights in the last update,
(by chromaticity: the lower piece is shaded darker) is a piece of it — a part of an irregular object that this view splits off as a stacked object (a T-shaped
mesh turned by a push: its lying bar and its upright head) — and is merged back into it (:meth:`Tracker._rejoin`).
A real stack the cameras saw as one object keeps being one; one the cameras saw as two stays two.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from robot_wm.geometry import Pose, min_area_rectangle, project_points, yaw_quaternion
from robot_wm.perception.graph import PerceivedObject, SceneGraph
from robot_wm.perception.relations import RelationConfig, compute_relations

log = logging.getLogger(__name__)


REJOIN_HEIGHT = 0.8  # a tracked object at least this x as tall as two stacked new pieces was one object
# L1 distance of chromaticities (r, g, b) / (r + g + b) under which two pieces have one colour: shading (a face
# turned from the light, the shadow of a part above) darkens a piece without changing its chromaticity
REJOIN_CHROMA = 0.08


def chromaticity(color: np.ndarray) -> np.ndarray:
    """RGB (3,) in [0, 1] -> (r, g, b) / (r + g + b): the colour without its brightness."""
    c = np.asarray(color, float)
    return c / max(float(c.sum()), 1e-6)


def merge_pieces(a: PerceivedObject, b: PerceivedObject) -> PerceivedObject:
    """One upright object from two pieces of it (`a` keeps its id and support unless `b` lies under it):
    footprint the min-area rectangle of both clouds' x-y, from the lower bottom to the higher top; colour
    the point-weighted mean; masks united per camera."""
    pts = np.concatenate([a.points, b.points]).astype(np.float32)
    centre, yaw, ext = min_area_rectangle(pts[:, :2].astype(float), "search")
    bottom, top = min(a.bottom_z, b.bottom_z), max(a.top_z, b.top_z)
    n_a, n_b = max(a.point_count, 1), max(b.point_count, 1)
    masks = dict(a.masks)
    for cam, m in b.masks.items():
        masks[cam] = np.union1d(masks[cam], m) if cam in masks else m
    lower = a if a.bottom_z <= b.bottom_z else b
    out = replace(a, pose=Pose([centre[0], centre[1], (top + bottom) / 2], yaw_quaternion(yaw)),
                  extents=np.array([ext[0], ext[1], top - bottom]), points=pts,
                  color=(a.color * n_a + b.color * n_b) / (n_a + n_b), support=lower.support,
                  confidence=max(a.confidence, b.confidence))
    out.masks = masks
    return out


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
        dets = self._rejoin(dets, mapping)
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

    def _rejoin(self, dets: list[PerceivedObject], mapping: dict[str, str]) -> list[PerceivedObject]:
        """`dets` with each new detection (not in `mapping`) that is a piece split off a tracked object merged
        back into the piece that continues the track (see the module docstring): the two rest one on the other
        (support), their chromaticities are within REJOIN_CHROMA (one colour, shaded differently), and the track's last box (a visible object) spans
        at least REJOIN_HEIGHT x the height of the two together."""
        cur = {d.id: d for d in dets}  # id -> the detection now (merged ones replaced), insertion order kept
        for d in dets:
            if d.id in mapping or d.kind != "object" or d.id not in cur:
                continue
            new = cur[d.id]
            for other_id in (new.support, *(o.id for o in cur.values() if o.support == new.id)):
                old = cur.get(other_id) if other_id else None
                if old is None or old.id not in mapping or old.kind != "object":
                    continue
                track = self.tracks[mapping[old.id]].obj
                if not track.visible or float(np.abs(chromaticity(new.color) - chromaticity(old.color)).sum()) > REJOIN_CHROMA:
                    continue
                height = max(new.top_z, old.top_z) - min(new.bottom_z, old.bottom_z)
                if track.top_z - track.bottom_z < REJOIN_HEIGHT * height:
                    continue
                log.debug("track %s: rejoined a piece split off it (%d points)", mapping[old.id], new.point_count)
                cur[old.id] = merge_pieces(old, new)
                del cur[new.id]
                for o in cur.values():
                    if o.support == new.id:
                        o.support = old.id
                break
        return list(cur.values())

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
