"""Calibrated RGB-D frames -> SceneGraph: per-camera segmentation, fusion across cameras, support surfaces
(table, container floors), containers, objects as gravity-aligned oriented boxes (full 3D boxes for objects
lying tilted), relations."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from robot_wm.geometry import Pose, min_area_rectangle, project_points, to_rectangle_frame, yaw_quaternion
from robot_wm.perception.free_space import FreeSpace
from robot_wm.perception.graph import PerceivedObject, SceneGraph, SupportSurface
from robot_wm.perception.occlusion import MAX_GAP, joined_across_occluder, unseen_gap
from robot_wm.perception.plateaus import FOOTPRINT_TRIM, UP_NORMAL_Z, split_by_plateaus
from robot_wm.perception.relations import RelationConfig, compute_relations
from robot_wm.perception.seams import SeamView, split_by_seams
from robot_wm.perception.segment import FrameSegments, PerceptionConfig, Segment, segment_frame, world_rays
from robot_wm.perception.tilted_box import tilted_box
from robot_wm.perception.union_find import UnionFind

log = logging.getLogger(__name__)

HIDDEN_BASE_SAMPLES = 60  # columns under a group checked for free space ...
HIDDEN_BASE_DZ = 0.005  # m: ... sampled every this much in height ...
HIDDEN_BASE_FREE = 0.2  # ... of which at most this fraction seen free for the base to count as hidden
HIDDEN_BASE_RIM = 0.01  # m: columns this close to the edge of a group's top are left out (depth edges smear
# points past a top's outline, and the space under them is free)
HIDDEN_BASE_TOP_POINTS = 60  # upward-facing points (normal z over UP_NORMAL_Z) a group needs to show a top
SLIVER_THICKNESS = 0.012  # m: a segment at most this thick across its footprint ...
SLIVER_POINT_RATIO = 0.5  # ... with fewer points than this fraction of a same-coloured object it touches
SLIVER_REACH = 0.02  # m: (comes this close to) is a face of that segment's object (:meth:`Perceiver._join_slivers`)
FRAGMENT_POINTS = 120  # a set of at most this many points, of any thickness, ...
FRAGMENT_POINT_RATIO = 0.1  # ... with fewer than this fraction of a same-coloured set it touches is a piece of it


@dataclass
class _Group:
    """Segments (from one or more cameras) that are one physical thing."""

    segments: list[Segment]
    points: np.ndarray
    colors: np.ndarray
    normal_z: np.ndarray
    flush_key: int | None = None  # parts cut from one group by _split_flush share it (side by side)

    @staticmethod
    def of(segs: list[Segment]) -> _Group:
        return _Group(segs, np.concatenate([s.points for s in segs]), np.concatenate([s.colors for s in segs]),
                      np.concatenate([s.normal_z for s in segs]))

    def masks(self) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = {}
        for s in self.segments:
            out.setdefault(s.camera, []).append(s.mask)
        return {k: np.concatenate(v) for k, v in out.items()}


@dataclass(frozen=True)
class _Depth:
    """What the frames of one perceive call say about their depth: `noisy` (any camera's table residual
    above the noise threshold), `cut` (m, the highest foreground height threshold the cameras used) and
    `sigma` (m, the median over cameras of the table plane's robust residual std)."""

    noisy: bool
    cut: float
    sigma: float

    @staticmethod
    def of(frames: list[FrameSegments]) -> _Depth:
        return _Depth(any(f.noisy for f in frames), max(f.min_height for f in frames),
                      float(np.median([f.plane_sigma for f in frames])))


SeenFree = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _free_space_test(frames: list[FrameSegments]) -> SeenFree | None:
    """`points (K, 3) -> (free (K,), seen (K,))` over the input frames (:func:`seen_through`), each camera
    judged against its own measured noise (its table plane's residual std: a camera that sees the table at a
    grazing angle sees every level top as noisily), or None when no frame carries its image."""
    views = [(f.frame, f.plane_sigma) for f in frames if f.frame is not None]
    if not views:
        return None
    return FreeSpace([v[0] for v in views], [v[1] for v in views])


def _seam_views(frames: list[FrameSegments]) -> dict[str, SeamView]:
    """Camera name -> what :mod:`robot_wm.perception.seams` needs of it, for frames carrying a colour image."""
    out = {}
    for f in frames:
        fr = f.frame
        if fr is None or getattr(fr, "rgb", None) is None:
            continue
        k = fr.intrinsics
        rays = world_rays(k, fr.camera2world).reshape(-1, 3)
        rgb = np.asarray(fr.rgb)[..., :3].reshape(-1, 3)
        out[f.camera] = SeamView(rgb, f.shape, rays, np.asarray(f.camera_position, float), float(k.fx))
    return out


class Perceiver:
    """Stateless RGB-D -> SceneGraph: the result depends only on the call's frames and time and on the
    settings given at construction (ids are per call: ``obj_0``...; use a Tracker for stable ids).

    Usage: ``Perceiver().perceive(obs.frames.values(), time=obs.time)``; frames need ``name, rgb, depth,
    intrinsics, camera2world`` (a :class:`~robot_wm.interface.CameraFrame` has them).
    """

    def __init__(self, config: PerceptionConfig | None = None, relations: RelationConfig | None = None,
                 fuse_margin: float = 0.008, fuse_overlap: float = 0.5, min_object_points: int = 40,
                 container_min_size: float = 0.15, support_gap: float = 0.015, max_hidden_base: float = 0.035,
                 max_hidden_reach: float = 0.1) -> None:
        self.config = config or PerceptionConfig()
        self.relation_config = relations or RelationConfig()
        self.fuse_margin, self.fuse_overlap = fuse_margin, fuse_overlap
        self.min_object_points = min_object_points
        self.container_min_size = container_min_size
        self.support_gap = support_gap
        self.max_hidden_base = max_hidden_base
        self.max_hidden_reach = max_hidden_reach  # m: a base hidden below the lowest points, at most

    def perceive(self, frames: Iterable | Mapping, time: float = 0.0) -> SceneGraph:
        """One or more calibrated frames (a dict name -> frame or an iterable) -> SceneGraph (world frame)."""
        frames = list(frames.values()) if isinstance(frames, Mapping) else list(frames)
        if not frames:
            raise ValueError("perceive: no camera frames given")
        return self.from_segments([segment_frame(f, self.config) for f in frames], time)

    # ------------------------------------------------------------------ stages
    def from_segments(self, frames: list[FrameSegments], time: float = 0.0) -> SceneGraph:
        """Fuse per-camera segments into a graph (see :meth:`perceive`)."""
        table = self._table(frames)
        depth = _Depth.of(frames)
        see = _free_space_test(frames)
        groups = self._fuse([s for f in frames for s in f.segments], frames, see)
        ground = np.concatenate([f.table_xyz for f in frames])
        supports = [table]
        objects: list[PerceivedObject] = []
        rest = []
        containers = []
        for g in groups:
            inner = self._container_interior(g, table)
            if inner is None:
                rest.append(g)
            else:
                containers.append((g, inner))
        for g, inner in containers:
            cid = f"container_{len(objects)}"
            centre, yaw, half = inner
            # flat, low groups over the interior are the container's floor (seen apart from the walls)
            floor_parts = [r for r in rest if self._is_floor_part(r, table, centre, yaw, half)]
            if floor_parts:
                rest = [r for r in rest if not any(r is f for f in floor_parts)]
                g = _Group.of(g.segments + [s for f in floor_parts for s in f.segments])
            loc = to_rectangle_frame(ground[:, :2], centre, yaw)
            on_floor = np.all(np.abs(loc) < half - 0.01, axis=1)
            z_floor = float(np.median(ground[on_floor, 2])) if on_floor.sum() > 20 else float(table.z_at(centre))
            supports.append(SupportSurface(f"floor_{len(objects)}", "floor", np.array([0.0, 0.0, z_floor]), z_floor,
                                           _rect_corners(centre, yaw, 2 * half), owner=cid))
            objects.append(self._box_object(cid, g, table, bottom=None, depth=depth, kind="container"))
        views = _seam_views(frames)
        candidates = [part for g in rest if len(g.points) >= self.min_object_points
                      for part in self._split_flush(g, depth.sigma, see, views)]
        n_containers = len(objects)
        objects += self._objects(candidates, table, supports[1:], depth, see)
        for c, floor in zip(objects[:n_containers], supports[1:], strict=True):
            self._add_floor_pixels(c, floor, objects, frames, depth.sigma)
        for o in objects:
            o.last_seen = time
        graph = SceneGraph(objects, supports, [], time, [f.camera for f in frames])
        graph.relations = compute_relations(graph, self.relation_config)
        return graph

    def _split_flush(self, g: _Group, sigma: float, see: SeenFree | None,
                     views: dict[str, SeamView] | None = None) -> list[_Group]:
        """`g` cut into the objects its top plateaus show (:mod:`robot_wm.perception.plateaus`: flush-touching
        boxes of one colour; a level-topped pair only where the cameras saw through beside the narrower one:
        `see`, :func:`_free_space_test`) or, failing that, the seams across its top that the colour images
        show (:mod:`robot_wm.perception.seams`, `views`), each camera's segments cut with it; [g] when it is
        one object. The parts share a ``flush_key`` (they stand side by side on one support)."""
        masks = split_by_plateaus(g.points, g.normal_z, sigma, self.min_object_points, see)
        if len(masks) == 1 and views:
            masks = split_by_seams(g.segments, views, sigma, self.min_object_points)
        if len(masks) == 1:
            return [g]
        bounds = np.cumsum([0] + [len(s.points) for s in g.segments])
        parts = []
        for m in masks:
            segs = [s.part(m[a:b]) for s, a, b in zip(g.segments, bounds[:-1], bounds[1:], strict=True)
                    if m[a:b].any()]
            part = _Group.of(segs)
            part.flush_key = id(g)
            parts.append(part)
        return parts

    @staticmethod
    def _add_floor_pixels(container: PerceivedObject, floor: SupportSurface, objects: list[PerceivedObject],
                          frames: list[FrameSegments], sigma: float) -> None:
        """Add to a container's masks the pixels of its floor that lie under the foreground cut (a floor a few
        mm above the table under noisy depth; `sigma` m the depth noise), except those of other objects."""
        centre, yaw, ext = _rect_of_poly(floor.polygon)
        tol = max(0.004, 3.0 * sigma)
        for f in frames:
            fr = f.frame
            if fr is None:
                continue
            k = fr.intrinsics
            corners = np.column_stack([floor.polygon, np.full(4, floor.height)])
            cam = fr.camera2world.inverse().transform_points(corners)
            if np.any(cam[:, 2] <= 0.05):
                continue
            uv = project_points(cam, k)
            c0, r0 = np.maximum(np.floor(uv.min(0)).astype(int), 0)
            c1, r1 = np.minimum(np.ceil(uv.max(0)).astype(int) + 1, [k.width, k.height])
            if c1 <= c0 or r1 <= r0:
                continue
            d = np.asarray(fr.depth, np.float32)[r0:r1, c0:c1]
            p = d[..., None] * world_rays(k, fr.camera2world)[r0:r1, c0:c1] + f.camera_position.astype(np.float32)
            loc = to_rectangle_frame(p.reshape(-1, 2 + 1)[:, :2], centre, yaw)
            ok = ((d.ravel() > 0) & np.all(np.abs(loc) < ext / 2, axis=1)
                  & (np.abs(p.reshape(-1, 3)[:, 2] - floor.height) < tol))
            rr, cc = np.divmod(np.flatnonzero(ok), c1 - c0)
            px = (rr + r0) * k.width + (cc + c0)
            taken = [o.masks[f.camera] for o in objects if o is not container and f.camera in o.masks]
            if taken:
                px = np.setdiff1d(px, np.concatenate(taken))
            old = container.masks.get(f.camera)
            container.masks[f.camera] = px if old is None else np.union1d(old, px)

    @staticmethod
    def _is_floor_part(g: _Group, table: SupportSurface, centre: np.ndarray, yaw: float, half: np.ndarray) -> bool:
        h = g.points[:, 2] - table.z_at(g.points[:, :2])
        if np.percentile(h, 95) > 0.012:
            return False
        loc = to_rectangle_frame(g.points[:, :2], centre, yaw)
        return bool(np.mean(np.all(np.abs(loc) < half + 0.01, axis=1)) > 0.8)

    def _container_interior(self, g: _Group, table: SupportSurface):
        """(centre, yaw, half extents) of the free interior if the group is a container's walls (with or
        without its floor): a large footprint that its points more than 1.5 cm up leave hollow. None otherwise."""
        if len(g.points) < 300:
            return None
        sub = g.points[:: max(1, len(g.points) // 3000)]
        if np.any(np.ptp(sub[:, :2], axis=0) < self.container_min_size):
            return None
        sub = sub[sub[:, 2] - table.z_at(sub[:, :2]) > 0.015]
        if len(sub) < 100 or np.any(np.ptp(sub[:, :2], axis=0) < self.container_min_size):
            return None
        centre, yaw, ext = min_area_rectangle(sub[:, :2], "search")
        if ext.min() < self.container_min_size:
            return None
        loc = to_rectangle_frame(sub[:, :2], centre, yaw)
        half = ext / 2
        inner_cells = np.unique(_voxel_keys(loc[np.all(np.abs(loc) < half * 0.6, axis=1)], 0.01)).size
        if inner_cells > 0.3 * np.prod(ext * 0.6) / 1e-4:
            return None
        ih = np.empty(2)
        for ax in (0, 1):
            band = np.abs(loc[:, 1 - ax]) < half[1 - ax] * 0.5
            vals = np.abs(loc[band, ax])
            ih[ax] = np.percentile(vals, 2) if len(vals) > 10 else half[ax] * 0.8
        return centre, yaw, ih

    def _table(self, frames: list[FrameSegments]) -> SupportSurface:
        w = np.array([1.0 / max(f.plane_sigma, 1e-4) ** 2 for f in frames])
        plane = np.sum([wi * f.plane for wi, f in zip(w, frames, strict=True)], axis=0) / w.sum()
        xy = np.concatenate([f.table_xyz[:, :2] for f in frames])
        centre, yaw, ext = min_area_rectangle(xy, "search")
        height = float(plane[0] * centre[0] + plane[1] * centre[1] + plane[2])
        return SupportSurface("table", "table", plane, height, _rect_corners(centre, yaw, ext))

    def _fuse(self, segments: list[Segment], frames: list[FrameSegments] | None = None,
              see: SeenFree | None = None) -> list[_Group]:
        """Union segments of different cameras that are one thing: most points of one lie inside the other's
        gravity-aligned box (its min-area footprint and z range, grown by `fuse_margin`); then, with the
        segments' `frames`, segments of one camera that an object in front cuts apart
        (:meth:`_join_occluded`; `see`: the free-space test); then slivers (:meth:`_join_slivers`)."""
        n = len(segments)
        sub = [s.points[:: max(1, len(s.points) // 300)] for s in segments]
        boxes: dict[int, tuple] = {}

        def box(i: int) -> tuple:
            """(footprint rectangle, z low, z high) of segment i, robust to noisy outliers; computed once."""
            if i not in boxes:
                zlo, zhi = np.percentile(sub[i][:, 2], [2, 98])
                boxes[i] = (min_area_rectangle(sub[i][:, :2], "search"), zlo, zhi)
            return boxes[i]

        chroma = [np.median(s.colors / np.maximum(s.colors.sum(1, keepdims=True), 1e-3), axis=0) for s in segments]
        trees: dict[int, cKDTree] = {}

        def tree(i: int) -> cKDTree:
            if i not in trees:
                trees[i] = cKDTree(sub[i])
            return trees[i]

        m = self.fuse_margin
        sets = UnionFind(n)
        for i in range(n):
            for j in range(i + 1, n):
                if segments[i].camera == segments[j].camera or sets.find(i) == sets.find(j):
                    continue
                (ci, yi, ei), zlo_i, zhi_i = box(i)
                (cj, yj, ej), zlo_j, zhi_j = box(j)
                if np.linalg.norm(ci - cj) > (np.linalg.norm(ei) + np.linalg.norm(ej)) / 2 + m:
                    continue
                f_ij = _inside_box(sub[i], cj, yj, ej, zlo_j, zhi_j, m)
                f_ji = _inside_box(sub[j], ci, yi, ei, zlo_i, zhi_i, m)
                same = min(f_ij, f_ji) > self.fuse_overlap
                if not same:
                    # two faces of one object seen by different cameras (e.g. a block's front and side under
                    # a block stacked on it): they meet, share a colour, and span the same heights
                    z_in = min(zhi_i, zhi_j) - max(zlo_i, zlo_j)
                    if (z_in > 0.6 * min(zhi_i - zlo_i, zhi_j - zlo_j)
                            and np.abs(chroma[i] - chroma[j]).sum() < 1.5 * self.config.merge_chroma):
                        same = bool(tree(i).query(sub[j], k=1, distance_upper_bound=m)[0].min() < m)
                if same:
                    sets.union(i, j)
        if frames:
            self._join_occluded(segments, frames, sub, box, chroma, tree, sets, see)
        self._join_slivers(segments, sub, box, chroma, tree, sets, see)
        return [_Group.of([segments[i] for i in members]) for members in sets.groups()]

    def _join_occluded(self, segments: list[Segment], frames: list[FrameSegments], sub: list[np.ndarray],
                       box: Callable[[int], tuple], chroma: list[np.ndarray], tree: Callable[[int], cKDTree],
                       sets: UnionFind, see: SeenFree | None) -> None:
        """Union two segments of one camera and one colour (chromaticity within `merge_chroma`) that an object
        of another colour in front of them cuts apart (:func:`~robot_wm.perception.occlusion.joined_across_occluder`:
        the gap between them lies behind it in this camera's image, and no camera saw through it).
        `sub`, `box`, `chroma`, `tree`: as in :meth:`_join_slivers`."""
        by_camera = {f.camera: f for f in frames if f.frame is not None and f.labels is not None}
        label = {}
        for i, s in enumerate(segments):
            f = by_camera.get(s.camera)
            if f is not None and len(s.pixels):
                label[i] = int(f.labels.ravel()[s.pixels[0]])
        index = {(segments[i].camera, v): i for i, v in label.items()}
        near = 1.5 * self.config.merge_chroma
        for i, j in itertools.combinations(sorted(label), 2):
            si, sj = segments[i], segments[j]
            if (si.camera != sj.camera or sets.find(i) == sets.find(j)
                    or np.abs(chroma[i] - chroma[j]).sum() >= self.config.merge_chroma):
                continue
            (ci, _, ei), (cj, _, ej) = box(i)[0], box(j)[0]
            if np.linalg.norm(ci - cj) > (np.linalg.norm(ei) + np.linalg.norm(ej)) / 2 + MAX_GAP:
                continue

            def same_colour(v: int, i: int = i, cam: str = si.camera) -> bool:
                k = index.get((cam, v))
                return k is not None and bool(np.abs(chroma[k] - chroma[i]).sum() < near)

            f = by_camera[si.camera]
            if joined_across_occluder(sub[i], sub[j], (label[i], label[j]), f.frame, f.labels, same_colour, see,
                                      self.fuse_margin, tree(j), (chroma[i], near)):
                sets.union(i, j)

    def _join_slivers(self, segments: list[Segment], sub: list[np.ndarray], box: Callable[[int], tuple],
                      chroma: list[np.ndarray], tree: Callable[[int], cKDTree], sets: UnionFind,
                      see: SeenFree | None = None) -> None:
        """Union each *sliver* — a segment at most SLIVER_THICKNESS thick across its footprint whose set (it and
        the segments fused with it so far) has fewer points than SLIVER_POINT_RATIO of the set of a segment
        that shares its colour (chromaticity within 1.5 `merge_chroma`) and comes within SLIVER_REACH of it (a
        face seen at a grazing angle has its depth smeared), in the same camera or another — with the largest
        such set: a face of an object seen edge-on, which the image's depth jumps cut off from its other faces,
        not an object of its own. A *fragment* — a set of at most FRAGMENT_POINTS points of any thickness, with
        fewer than FRAGMENT_POINT_RATIO of a same-coloured set's points — joins that set the same way (its
        nearness measured on all the set's points): a piece under an overhang cut off by a depth jump. Failing
        that, a sliver joins, with the free-space test `see`, the largest one within MAX_GAP whose gap to it
        no camera saw (:func:`~robot_wm.perception.occlusion.unseen_gap`: a leaning slab's foot and its top
        edge, each seen by one camera, the face between them by none).
        `sub`: each segment's subsampled points; `box(i)`, `tree(i)`: segment i's footprint box and KD-tree."""
        m = max(self.fuse_margin, SLIVER_REACH)
        size: dict[int, int] = {}  # points of each set fused so far (an object seen by several cameras)
        for j, sj in enumerate(segments):
            size[sets.find(j)] = size.get(sets.find(j), 0) + len(sj.points)
        own = [size[sets.find(i)] for i in range(len(segments))]
        full: dict[int, cKDTree] = {}

        def full_tree(j: int) -> cKDTree:
            if j not in full:
                full[j] = cKDTree(segments[j].points)
            return full[j]

        for i in range(len(segments)):
            partners = [j for j in range(len(segments))
                        if sets.find(j) != sets.find(i) and own[i] < SLIVER_POINT_RATIO * own[j]
                        and np.abs(chroma[i] - chroma[j]).sum() < 1.5 * self.config.merge_chroma]
            if not partners:
                continue  # (before the box: most segments have no partner, and a box costs a rectangle search)
            thin = box(i)[0][2].min() <= SLIVER_THICKNESS
            if not thin:  # a fragment, if anything (FRAGMENT_POINT_RATIO < SLIVER_POINT_RATIO)
                partners = [j for j in partners if own[i] < FRAGMENT_POINT_RATIO * own[j]]
            if not partners or not (thin or own[i] <= FRAGMENT_POINTS):
                continue
            best, unseen = None, None
            for j in partners:
                (ci, _, ei), (cj, _, ej) = box(i)[0], box(j)[0]
                gap = np.linalg.norm(ci - cj) - (np.linalg.norm(ei) + np.linalg.norm(ej)) / 2
                if gap > MAX_GAP:
                    continue
                # (a fragment's few points are measured against all of j's: a subsample can miss where they meet)
                near = (full_tree(j).query(segments[i].points, k=1, distance_upper_bound=m)[0].min() < m
                        if own[i] <= FRAGMENT_POINTS else tree(j).query(sub[i], k=1, distance_upper_bound=m)[0].min() < m)
                if gap <= m and near:
                    if best is None or own[j] > own[best]:
                        best = j
                elif thin and see is not None and best is None and unseen_gap(sub[i], sub[j], see, tree(j)) and (
                        unseen is None or own[j] > own[unseen]):
                    unseen = j
            if best is not None or unseen is not None:
                sets.union(i, best if best is not None else unseen)

    def _objects(self, groups: list[_Group], table: SupportSurface, floors: list[SupportSurface],
                 depth: _Depth, see: SeenFree | None = None) -> list[PerceivedObject]:
        """Boxes for candidate groups, lowest first, each resting on the table, a floor or an object below.
        A group with nothing under it that the cameras did not see through (`see`, :func:`_free_space_test`)
        rests on the table: its base is hidden (a lying cylinder's lower half), it does not float."""
        noisy = depth.noisy
        lows = [_kth(g.points[:, 2] - table.z_at(g.points[:, :2]), 0.02) for g in groups]
        placed: list[tuple[PerceivedObject, _Group]] = []
        for gi in np.argsort(lows, kind="stable"):
            g = groups[gi]
            xy = g.points[:, :2]
            low = _kth(g.points[:, 2], 0.02)
            rect = min_area_rectangle(xy, "search")
            best, best_z = None, None
            tz = float(np.median(table.z_at(xy)))
            top_obs = _kth(g.points[:, 2], 0.98)
            # resting on the table: lowest points near it, or (rounded undersides the cameras cannot see,
            # like a sphere's) a gap small against the visible height and under `max_hidden_base`
            gap_t = low - tz
            if gap_t < self.support_gap + (0.01 if noisy else 0.0) or (
                    gap_t < self.max_hidden_base and gap_t < 0.8 * (top_obs - low)):
                best, best_z = "table", tz
            for f in floors:
                fc, fyaw, fext = _rect_of_poly(f.polygon)
                inside = np.mean(np.all(np.abs(to_rectangle_frame(xy, fc, fyaw)) < fext / 2 + 0.01, axis=1))
                gap_f = low - f.height
                rests = abs(gap_f) < self.support_gap + 0.005 or (
                    0 < gap_f < self.max_hidden_base and gap_f < 0.8 * (top_obs - low))
                if inside > 0.5 and rests and (best_z is None or f.height > best_z):
                    best, best_z = f.owner, f.height
            for o, og in placed:
                if o.kind != "object" or (g.flush_key is not None and og.flush_key == g.flush_key):
                    continue  # parts of one cut group stand side by side, not on each other
                top = o.top_z
                if not (-0.01 - (0.01 if noisy else 0) < low - top < self.support_gap + 0.01):
                    continue
                if _xy_overlap(xy, rect, og.points[:, :2], o) > 0.15 and (best_z is None or top > best_z):
                    best, best_z = o.id, top
            if best is None and see is not None:
                # an object below whose upper part what it carries hides: seen lower than this group's base,
                # the space between not seen free (an overhanging box over a narrower one, seen from above)
                below = [(o, og) for o, og in placed if o.kind == "object" and 0 < low - o.top_z < self.max_hidden_reach
                         and (g.flush_key is None or og.flush_key != g.flush_key)
                         and _xy_overlap(xy, rect, og.points[:, :2], o) > 0.15]
                for o, og in sorted(below, key=lambda p: -p[0].top_z):
                    if self._hidden_top(og, o.top_z, low, see):
                        grow = low - o.top_z
                        p = o.pose.position
                        o.pose = Pose([p[0], p[1], p[2] + grow / 2], o.pose.quaternion)
                        o.extents = o.extents + np.array([0.0, 0.0, grow])
                        best, best_z = o.id, low
                        break
            if best is None and g.flush_key is not None:
                # a flush neighbour seen only above the other (its near face hidden by it) stands where its
                # sibling stands
                sib = next((o for o, og in placed if og.flush_key == g.flush_key), None)
                if sib is not None and sib.support is not None:
                    best, best_z = sib.support, float(sib.pose.position[2] - sib.extents[2] / 2)
            if best is None and see is not None and self._hidden_base(g, low, tz, see):
                best, best_z = "table", tz
            if best is None:
                log.debug("dropping a group of %d points: nothing supports it (low z %.3f)", len(g.points), low)
                continue
            bottom = best_z
            obj = self._box_object(f"obj_{len(placed)}", g, table, bottom=bottom, depth=depth, rect=rect)
            obj.confidence = float(min(1.0, len(g.points) / 300.0))
            obj.support = best
            placed.append((obj, g))
        objs = [o for o, _ in placed]
        self._complete_occluded_supports(objs)
        return objs

    def _hidden_base(self, g: _Group, low: float, table_z: float, see: SeenFree) -> bool:
        """True when the group's lowest points are within `max_hidden_reach` of the table and the space between
        them and the table, under the group's upper half (its bulk: a rounded rim has free space under it), was
        not seen free: at most HIDDEN_BASE_FREE of the samples some camera saw (HIDDEN_BASE_SAMPLES columns,
        every HIDDEN_BASE_DZ m) were seen through. Where the group shows a top (HIDDEN_BASE_TOP_POINTS facing up),
        the columns are those inside it (:func:`_inner`: depth edges smear a top's points outward, over free
        space); a face seen from the side has no such rim, its own columns are the evidence."""
        if low - table_z > self.max_hidden_reach:
            return False
        upper = g.points[:, 2] >= np.median(g.points[:, 2])  # over the bulk, not its rounded rim
        top = upper & np.isfinite(g.normal_z) & (g.normal_z > UP_NORMAL_Z)
        cols = _inner(g.points[top]) if top.sum() >= HIDDEN_BASE_TOP_POINTS else g.points[upper]
        pts = _column_samples(cols, table_z, low)
        if pts is None:
            return True
        free, seen = see(pts)
        return not seen.any() or float(free[seen].mean()) <= HIDDEN_BASE_FREE

    @staticmethod
    def _hidden_top(below: _Group, top: float, low: float, see: SeenFree) -> bool:
        """True when the space over `below`'s seen points (its footprint) from its seen `top` up to `low` (m,
        the lowest points of the group above it) was not seen free: at most HIDDEN_BASE_FREE of the samples
        (HIDDEN_BASE_SAMPLES columns, every HIDDEN_BASE_DZ m) were seen through, unseen ones counting as not
        free — the object below goes on up, hidden by what it carries (an overhanging box over a narrower
        one, seen from above, shows only the lower one's foot; the few samples seen are its edges' pixels)."""
        pts = _column_samples(below.points, top, low)
        if pts is None:
            return True
        free, _ = see(pts)
        return float(free.mean()) <= HIDDEN_BASE_FREE

    @staticmethod
    def _complete_occluded_supports(objs: list[PerceivedObject]) -> None:
        """A block seen only as a thin slab (one face; the rest hidden by what stands on it) cannot be thinner
        than the object it carries: along an axis where it measures under 0.6 x its load's extent, grow its
        footprint (away from the visible face) to cover the load's footprint. Top-down, so stacks propagate."""
        by_id = {o.id: o for o in objs}
        for o in reversed(objs):
            base = by_id.get(o.support) if o.support else None
            if base is None or base.kind != "object":
                continue
            r = base.pose.rotation.as_matrix()
            axes = r[:2, :2].T  # rows: the base's x and y axes in the world xy plane
            c = base.pose.position[:2]
            load = (o.footprint() - c) @ axes.T  # (4, 2) load corners in the base frame
            half = base.extents[:2] / 2
            lo, hi = -half.copy(), half.copy()
            changed = False
            for ax in (0, 1):
                load_ext = load[:, ax].max() - load[:, ax].min()
                if base.extents[ax] < 0.6 * load_ext:
                    lo[ax] = min(lo[ax], load[:, ax].min())
                    hi[ax] = max(hi[ax], load[:, ax].max())
                    changed = True
            if changed:
                mid = (lo + hi) / 2
                new_c = c + mid @ axes
                base.pose = Pose([new_c[0], new_c[1], base.pose.position[2]], base.pose.quaternion)
                base.extents = np.array([hi[0] - lo[0], hi[1] - lo[1], base.extents[2]])

    @staticmethod
    def _box_object(oid: str, g: _Group, table: SupportSurface, bottom: float | None, depth: _Depth,
                    kind: str = "object", rect=None) -> PerceivedObject:
        """Gravity-aligned box: footprint = (trimmed) min-area rectangle of the points' xy, top = high percentile
        of z, bottom = the supporting surface (so partial side views still give the full height); an object lying
        tilted gets the full 3D box of :func:`robot_wm.perception.tilted_box.tilted_box` instead."""
        noisy = depth.noisy
        pts = g.points
        fp = pts
        kept_above = depth.cut  # m over the table: the points under it were never kept
        if noisy and kind == "object":
            # noise lifts table pixels around the base above the foreground cut: footprint from higher points
            h = pts[:, 2] - table.z_at(pts[:, :2])
            high = h > depth.cut + 0.004
            if high.sum() > 0.5 * len(pts):
                fp = pts[high]
                kept_above = depth.cut + 0.004
            rect = min_area_rectangle(fp[:, :2], "search", trim_percent=1.5)
        if rect is None:
            rect = min_area_rectangle(fp[:, :2], "search")
        centre, yaw, _ = rect
        local = to_rectangle_frame(fp[:, :2], centre, yaw)
        q = 1.5 if noisy else 0.0
        if q > 0:
            lo, hi = np.percentile(local, [q, 100 - q], axis=0)
        else:
            lo, hi = local.min(0), local.max(0)
        mid = (lo + hi) / 2
        c, s = np.cos(yaw), np.sin(yaw)
        cxy = centre + np.array([c * mid[0] - s * mid[1], s * mid[0] + c * mid[1]])
        z = pts[:, 2]
        kk = int(0.99 * (len(z) - 1))
        top = float(np.partition(z, kk)[kk])
        if noisy:  # the 99th percentile of a noisy flat top sits ~2.3 sigma above it
            top -= 2.0 * depth.sigma
        if bottom is None:
            bottom = float(np.median(table.z_at(cxy[None])))
        bottom = min(bottom, top - 0.002)
        pose = Pose([cxy[0], cxy[1], (top + bottom) / 2], yaw_quaternion(yaw))
        ext = np.array([hi[0] - lo[0], hi[1] - lo[1], top - bottom])
        if kind == "object" and g.flush_key is None:  # (the parts of a cut group stand upright side by side)
            tilted = tilted_box(fp, bottom, float(np.prod(ext)), depth.sigma, noisy, kept_above)
            if tilted is not None:
                pose, ext = tilted
        color = np.median(g.colors, axis=0) if len(g.colors) else np.full(3, 0.5)
        obj = PerceivedObject(oid, pose, ext, color, pts.astype(np.float32), kind=kind, fixed=kind == "container")
        obj.masks = g.masks()
        return obj


def _inner(points: np.ndarray) -> np.ndarray:
    """The `points` (N, 3) whose xy lie inside their trimmed min-area rectangle (FOOTPRINT_TRIM percent) shrunk
    by HIDDEN_BASE_RIM on each side (at most a quarter of its extent): a top without the pixels that depth
    edges smear past its outline."""
    centre, yaw, ext = min_area_rectangle(points[:, :2], "search", trim_percent=FOOTPRINT_TRIM)
    half = ext / 2 - np.minimum(HIDDEN_BASE_RIM, ext / 4)
    inside = np.all(np.abs(to_rectangle_frame(points[:, :2], centre, yaw)) <= half, axis=1)
    return points[inside] if inside.any() else points


def _column_samples(points: np.ndarray, z_lo: float, z_hi: float) -> np.ndarray | None:
    """World points (K, 3) in the columns over HIDDEN_BASE_SAMPLES of `points`' xy, every HIDDEN_BASE_DZ m
    strictly between `z_lo` and `z_hi` (m) — the space a free-space test looks at — or None when that
    range holds no sample."""
    xy = points[:: max(1, len(points) // HIDDEN_BASE_SAMPLES), :2]
    zs = np.arange(z_lo + HIDDEN_BASE_DZ, z_hi - HIDDEN_BASE_DZ / 2, HIDDEN_BASE_DZ)
    if len(zs) == 0:
        return None
    return np.column_stack([np.repeat(xy, len(zs), axis=0), np.tile(zs, len(xy))])


def _voxel_keys(points: np.ndarray, voxel: float) -> np.ndarray:
    q = np.floor(np.asarray(points) / voxel).astype(np.int64)
    if q.shape[1] == 2:
        return (q[:, 0] + (1 << 20)) * (1 << 21) + (q[:, 1] + (1 << 20))
    return ((q[:, 0] + (1 << 20)) * (1 << 21) + (q[:, 1] + (1 << 20))) * (1 << 21) + (q[:, 2] + (1 << 20))


def _kth(a: np.ndarray, frac: float) -> float:
    """The value at fraction `frac` of the sorted array (a fast percentile without interpolation)."""
    k = int(frac * (len(a) - 1))
    return float(np.partition(a, k)[k])


def _inside_box(p: np.ndarray, centre: np.ndarray, yaw: float, ext: np.ndarray, zlo: float, zhi: float,
                margin: float) -> float:
    """Fraction of points (N, 3) inside an upright box (footprint rect + z range) grown by margin."""
    loc = to_rectangle_frame(p[:, :2], centre, yaw)
    ok = np.all(np.abs(loc) <= ext / 2 + margin, axis=1) & (p[:, 2] >= zlo - margin) & (p[:, 2] <= zhi + margin)
    return float(np.mean(ok)) if len(p) else 0.0


def _rect_corners(centre: np.ndarray, yaw: float, ext: np.ndarray) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    loc = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * np.asarray(ext) / 2
    return np.asarray(centre) + loc @ np.array([[c, s], [-s, c]])


def _rect_of_poly(poly: np.ndarray):
    centre = poly.mean(0)
    e0, e1 = poly[1] - poly[0], poly[2] - poly[1]
    return centre, float(np.arctan2(e0[1], e0[0])), np.array([np.linalg.norm(e0), np.linalg.norm(e1)])


def _xy_overlap(xy: np.ndarray, rect, other_xy: np.ndarray, other: PerceivedObject) -> float:
    """max(fraction of these xy inside the other's footprint, fraction of the other's xy inside this rect)."""
    oc, oyaw, oext = _rect_of_poly(other.footprint())
    a = np.mean(np.all(np.abs(to_rectangle_frame(xy, oc, oyaw)) < oext / 2 + 0.005, axis=1))
    centre, yaw, ext = rect
    b = np.mean(np.all(np.abs(to_rectangle_frame(other_xy, centre, yaw)) < ext / 2 + 0.005, axis=1))
    return float(max(a, b))
