"""The hard pick-and-place suite of ``robot-wm bench pick-place`` (issue 13, "Pick-place, hard suite").

:func:`hard_scene` draws one contract scene mapping (validate with ``config.scene_from_dict``) from a seed:
3-5 movable objects, every one a held-out object — random_urdfs 700-999 at scale 0.5-1.0, primitives with
a size outside the world model's training ranges (``model.collect``: boxes 3-8 cm a side, cylinders of
radius 1.5-4 cm and height 3-10 cm) — with mass log-uniform in 0.05-0.5 kg and friction uniform in
0.3-1.0, arranged in the hard situations of :data:`HARD_KINDS`:

* ``flush_group`` — 2-3 boxes or cylinders side by side, 1 mm apart (flush to a camera), of one colour
  (and then sometimes one size) half the time;
* ``wall`` — an object 1 mm from a fixed wall (a ``fixed: true`` box 2 cm thick, 20-30 cm long);
* ``tray`` — an object on the floor of a fixed tray (pybullet_data ``tray/traybox.urdf`` at scale
  0.5-0.6), 1 mm from the foot of one of its sloped rims;
* ``wide`` — a box wider than the gripper opens one way (8.5-12 cm) and 4-6 cm the other;
* ``tilted`` — a cylinder lying on its side, or a thin slab (1.2-2 cm) tilted 20-35 deg leaning on a
  taller box (both labelled ``tilted``);
* ``mesh_full_scale`` — a random_urdfs mesh at its natural size (scale 1.0).

Every movable object is placeable: the narrowest side of its footprint is at most
:data:`MAX_NARROW_SIDE` (a Panda opens 8 cm). Objects of different kinds stand :data:`CLUSTER_GAP` apart;
everything is on the table, movable footprints inside the arm's reach and inside both default cameras'
images (``front.yaml``, ``side.yaml``; a wall or the tray rim an object stands against is never on the
camera side of it for both cameras, so it can hide it from one of them at most), no two objects overlap at spawn (:func:`spawn_conflicts`). The task: pick every movable
object into :data:`PLACE_REGION`.

A scene's kind per object is in its name (``flush_group_0``, ``wall_1``, ...; fixtures are ``fixture_*``):
:func:`object_kind`. All positions are world frame (m), orientations xyzw quaternions.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from robot_wm.config import REPO_ROOT, load_calibration
from robot_wm.config.loader import resolve_asset
from robot_wm.config.object_sets import BROKEN_URDF_IDS, HELDOUT_URDF_IDS, random_urdf_path
from robot_wm.config.random_scene import random_color, scene_mapping
from robot_wm.config.workspace import in_reach, on_table
from robot_wm.geometry.polytope import PRIMITIVE_SEGMENTS, primitive_polytope
from robot_wm.grasping.objects import collision_parts, urdf_collision
from robot_wm.sim.camera import Camera
from robot_wm.sim.hand import ObjectModel
from robot_wm.sim.recorder import project_world

HARD_KINDS = ("flush_group", "wall", "tray", "wide", "tilted", "mesh_full_scale")
EDGE_KINDS = ("wall", "tray")  # at most one of these per scene (each needs a large fixture)
CAMERAS = ("front.yaml", "side.yaml")
PLACE_REGION = {"center": [0.44, -0.37, 0.0], "size": [0.28, 0.24]}  # larger than random_scene's: big objects
MOVABLE_X, MOVABLE_Y = (0.36, 0.70), (-0.20, 0.30)  # m, box holding every movable footprint
MAX_CENTRE_RADIUS = 0.72  # m from the base: a movable object's centre (its footprint: in_reach)
FIXTURE_MIN_X, FIXTURE_MIN_Y = 0.30, -0.22  # m: fixtures stay clear of the robot base and the place region
ANCHOR_X, ANCHOR_Y = (0.34, 0.78), (-0.22, 0.36)  # m, where a group's local origin is drawn
MASS = (0.05, 0.5)  # kg, log-uniform
FRICTION = (0.3, 1.0)  # uniform
MESH_SCALE = (0.5, 1.0)
MAX_NARROW_SIDE = 0.07  # m: narrowest footprint side of a movable object
TOUCH_GAP = 0.001  # m between flush-touching objects (and an object and its wall / tray rim) at spawn
CLUSTER_GAP = 0.045  # m between objects of different groups (a finger's room)
SPAWN_CLEARANCE = 0.001  # m between an object's lowest point and its support at spawn
IMAGE_MARGIN_PX = 8.0
TRAY_URDF = "tray/traybox.urdf"
TRAY_SCALE = (0.5, 0.6)
WALL_COLOR = [0.55, 0.55, 0.6, 1.0]
CIRCUMSCRIBE = 1.0 / math.cos(math.pi / PRIMITIVE_SEGMENTS)  # polygon of a circle that contains the circle


# ---------------------------------------------------------------------------------------------- geometry
@cache
def _urdf_hull(urdf: str) -> np.ndarray:
    """Body-frame vertices (V, 3) at scale 1 of the convex hull of a URDF's collision geometry (m)."""
    path = resolve_asset(urdf, None)
    if path is None:
        raise FileNotFoundError(urdf)
    pts = np.concatenate(collision_parts(ObjectModel(urdf, urdf=str(path))))
    return pts[ConvexHull(pts).vertices]


def body_vertices(obj: dict[str, Any]) -> np.ndarray:
    """Body-frame vertices (V, 3) m of an object mapping's convex hull; circles as circumscribed polygons,
    so footprints and heights contain the solid. A tray's floor and rims are one hull here (its footprint)."""
    if obj.get("shape") is not None:
        v = primitive_polytope(obj["shape"], tuple(obj["size"]))
        if obj["shape"] == "cylinder":
            v[:, :2] *= CIRCUMSCRIBE
        elif obj["shape"] == "sphere":
            v *= CIRCUMSCRIBE
        return v
    return _urdf_hull(obj["urdf"]) * float(obj.get("scale", 1.0))


def world_vertices(obj: dict[str, Any]) -> np.ndarray:
    """World-frame vertices (V, 3) m of the object at its spawn pose."""
    return Rotation.from_quat(obj["orientation"]).apply(body_vertices(obj)) + np.asarray(obj["position"], float)


def footprint(obj: dict[str, Any]) -> np.ndarray:
    """Counter-clockwise convex polygon (K, 2) m of the object's spawn pose seen from above."""
    xy = world_vertices(obj)[:, :2]
    return xy[ConvexHull(xy).vertices]


def narrow_side(polygon: np.ndarray) -> float:
    """Narrowest width (m) of a convex polygon (K, 2): the smallest extent over its edge directions."""
    edges = np.roll(polygon, -1, 0) - polygon
    d = edges / np.linalg.norm(edges, axis=1, keepdims=True)
    normals = np.stack([-d[:, 1], d[:, 0]], 1)
    proj = polygon @ normals.T
    return float((proj.max(0) - proj.min(0)).min())


def _point_segment_distances(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a, b = poly, np.roll(poly, -1, 0)
    ab = b - a
    t = np.clip(((p[:, None, :] - a[None]) * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-18), 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(p[:, None, :] - closest, axis=-1)


def polygon_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Distance (m) between convex polygons a (Ka, 2) and b (Kb, 2); <= 0 when they overlap (then minus
    the smallest penetration along their edge normals)."""
    best = -math.inf
    for poly in (a, b):
        edges = np.roll(poly, -1, 0) - poly
        normals = np.stack([edges[:, 1], -edges[:, 0]], 1) / np.linalg.norm(edges, axis=1, keepdims=True)
        pa, pb = a @ normals.T, b @ normals.T
        best = max(best, float(np.maximum(pb.min(0) - pa.max(0), pa.min(0) - pb.max(0)).max()))
    if best <= 0.0:
        return best
    return float(min(_point_segment_distances(a, b).min(), _point_segment_distances(b, a).min()))


@cache
def _tray_geometry() -> tuple[float, float]:
    """(floor top z, half width of the floor at the foot of the rims) of the tray at scale 1 (m, tray
    frame): from its URDF's collision boxes — the flat floor and the +x rim, a box pitched outwards."""
    path = resolve_asset(TRAY_URDF, None)
    parts = urdf_collision(str(path))
    floor = next(p for p in parts if p[0] == "box" and not any(p[2][3:]))
    floor_top = floor[2][2] + floor[1][2] / 2
    rim = next(p for p in parts if p[0] == "box" and p[2][0] > 0 and p[2][4] != 0)
    (t, _, _), origin = rim[1], np.asarray(rim[2])
    rot = Rotation.from_euler("xyz", origin[3:])
    # the rim's inner face: local x = -t/2; find local z where it meets the floor's top plane
    a, b = rot.apply([-t / 2, 0.0, 0.0]), rot.apply([0.0, 0.0, 1.0])
    zl = (floor_top - origin[2] - a[2]) / b[2]
    inner = origin[0] + a[0] + zl * b[0]
    return float(floor_top), float(inner)


def is_tray(obj: dict[str, Any]) -> bool:
    return obj.get("urdf") == TRAY_URDF


def _in_tray(obj: dict[str, Any], tray: dict[str, Any]) -> bool:
    """True when the object stands on the tray's floor, inside the foot of its rims (spawn pose)."""
    floor_top, inner = (v * float(tray.get("scale", 1.0)) for v in _tray_geometry())
    v = world_vertices(obj)
    inv = Rotation.from_quat(tray["orientation"]).inv()
    local = inv.apply(v - np.asarray(tray["position"], float))
    return bool(np.all(np.abs(local[:, :2]) <= inner) and local[:, 2].min() >= floor_top)


def spawn_conflicts(mapping: dict[str, Any]) -> list[str]:
    """Pairs of objects of a scene mapping that overlap at spawn: footprints closer than 0 (an object on a
    tray's floor inside its rims does not conflict with the tray) or any object below the table top."""
    objs = mapping["objects"]
    out = []
    for o in objs:
        if world_vertices(o)[:, 2].min() < -1e-6:
            out.append(f"{o['name']} below the table")
    polys = [footprint(o) for o in objs]
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            a, b = objs[i], objs[j]
            if is_tray(a) and _in_tray(b, a) or is_tray(b) and _in_tray(a, b):
                continue
            if polygon_gap(polys[i], polys[j]) <= 0.0:
                out.append(f"{a['name']} / {b['name']}")
    return out


@cache
def _cameras() -> tuple[Camera, ...]:
    return tuple(Camera(load_calibration(REPO_ROOT / "calibration" / c)) for c in CAMERAS)


def in_view(obj: dict[str, Any], margin_px: float = IMAGE_MARGIN_PX) -> bool:
    """True when every vertex of the object lies in front of both default cameras, inside their images."""
    v = world_vertices(obj)
    for cam in _cameras():
        uv, front = project_world(v, cam.intrinsics, cam.camera2world)
        k = cam.intrinsics
        if not front.all() or not (np.all(uv >= margin_px) and np.all(uv[:, 0] <= k.width - 1 - margin_px)
                                   and np.all(uv[:, 1] <= k.height - 1 - margin_px)):
            return False
    return True


def movable_ok(obj: dict[str, Any]) -> bool:
    """A movable object's spawn pose is usable: footprint on the table, in reach and inside MOVABLE_X/Y,
    centre within MAX_CENTRE_RADIUS, seen whole by both cameras."""
    poly = footprint(obj)
    x, y = obj["position"][:2]
    return (math.hypot(x, y) <= MAX_CENTRE_RADIUS
            and bool(np.all((poly[:, 0] >= MOVABLE_X[0]) & (poly[:, 0] <= MOVABLE_X[1])
                            & (poly[:, 1] >= MOVABLE_Y[0]) & (poly[:, 1] <= MOVABLE_Y[1])))
            and all(in_reach(px, py) and on_table(px, py) for px, py in poly) and in_view(obj))


def fixture_ok(obj: dict[str, Any]) -> bool:
    """A fixture's footprint lies on the table (2 cm margin), clear of the base and the place region, and
    both cameras see all of it."""
    poly = footprint(obj)
    return bool(all(on_table(px, py, 0.02) for px, py in poly) and poly[:, 0].min() >= FIXTURE_MIN_X
                and poly[:, 1].min() >= FIXTURE_MIN_Y) and in_view(obj)


# ---------------------------------------------------------------------------------------------- objects
def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 4)


def _physics(rng: np.random.Generator, mass: tuple[float, float] = MASS,
             friction: tuple[float, float] = FRICTION) -> dict[str, float]:
    return {"mass": round(float(np.exp(rng.uniform(*np.log(mass)))), 4), "friction": _u(rng, *friction)}


def _hard_box(rng: np.random.Generator) -> list[float]:
    """Box extents outside the training boxes (3-8 cm a side): thin (2-2.9 cm), long (8.2-9.5 cm one way,
    3-6 cm the other) or flat (1.5-2.8 cm high)."""
    kind = int(rng.integers(3))
    if kind == 0:
        return [_u(rng, 0.02, 0.029), _u(rng, 0.04, 0.08), _u(rng, 0.03, 0.07)]
    if kind == 1:
        return [_u(rng, 0.03, 0.06), _u(rng, 0.082, 0.095), _u(rng, 0.025, 0.06)]
    return [_u(rng, 0.04, 0.07), _u(rng, 0.04, 0.07), _u(rng, 0.015, 0.028)]


def _hard_cylinder(rng: np.random.Generator) -> list[float]:
    """[radius, height] outside the training cylinders: thin (radius 1-1.45 cm) or squat (1.5-2.8 cm high)."""
    if rng.random() < 0.5:
        return [_u(rng, 0.01, 0.0145), _u(rng, 0.04, 0.08)]
    return [_u(rng, 0.02, 0.034), _u(rng, 0.015, 0.028)]


def _primitive(rng: np.random.Generator, shape: str, size: list[float], color: list[float] | None = None,
               **phys: Any) -> dict[str, Any]:
    return {"shape": shape, "size": size, **(phys or _physics(rng)), "color": color or random_color(rng)}


def rest_rotation(obj: dict[str, Any]) -> Rotation | None:
    """Rotation that sets a mesh object down on the facet of its convex hull nearest its centre of mass (the
    URDF's inertial origin, the body frame's origin for random_urdfs): the lowest-energy resting pose, so
    it stays put when the scene settles. None when the origin is not at least 5 mm inside the hull."""
    hull = ConvexHull(body_vertices(obj))
    dist = -hull.equations[:, 3]  # origin to each facet plane (m), > 0 inside
    i = int(np.argmin(dist))
    if dist[i] < 0.005:
        return None
    rot, _ = Rotation.align_vectors([[0.0, 0.0, -1.0]], [hull.equations[i, :3]])
    return rot


def _mesh(rng: np.random.Generator, scale: float | None = None) -> tuple[dict[str, Any], Rotation]:
    """A held-out random_urdfs mesh at `scale` (default: drawn in MESH_SCALE) and its resting rotation
    (:func:`rest_rotation`), redrawn until it rests with its footprint's narrowest side at most
    MAX_NARROW_SIDE."""
    for _ in range(1000):
        idx = int(rng.integers(HELDOUT_URDF_IDS.start, HELDOUT_URDF_IDS.stop))
        s = float(scale) if scale is not None else round(float(rng.uniform(*MESH_SCALE)), 3)
        if idx in BROKEN_URDF_IDS:
            continue
        obj = {"urdf": random_urdf_path(idx), "scale": s, **_physics(rng)}
        rest = rest_rotation(obj)
        if rest is None:
            continue
        xy = rest.apply(body_vertices(obj))[:, :2]
        if narrow_side(xy[ConvexHull(xy).vertices]) <= MAX_NARROW_SIDE:
            return obj, rest
    raise ValueError("no held-out mesh fits the gripper")  # pragma: no cover


def _posed(name: str, fields: dict[str, Any], rotation: Rotation, xy: tuple[float, float] = (0.0, 0.0),
           support_z: float = 0.0) -> dict[str, Any]:
    """Object mapping at xy (m) with `rotation`, its lowest point SPAWN_CLEARANCE above `support_z`."""
    obj = {"name": name, **fields, "position": [0.0, 0.0, 0.0], "orientation": rotation.as_quat().tolist()}
    low = world_vertices(obj)[:, 2].min()
    obj["position"] = [float(xy[0]), float(xy[1]), float(support_z + SPAWN_CLEARANCE - low)]
    return obj


def _shift_to(obj: dict[str, Any], max_x: float) -> dict[str, Any]:
    """Move the object along x so that its footprint's largest x is `max_x` (m)."""
    obj["position"][0] += max_x - float(world_vertices(obj)[:, 0].max())
    return obj


def _shift_after(obj: dict[str, Any], min_x: float) -> dict[str, Any]:
    """Move the object along x so that its footprint's smallest x is `min_x` (m)."""
    obj["position"][0] += min_x - float(world_vertices(obj)[:, 0].min())
    return obj


def _yaw(rng: np.random.Generator) -> Rotation:
    return Rotation.from_euler("z", float(rng.uniform(-np.pi, np.pi)))


# ---------------------------------------------------------------------------------------------- groups
# Each builder returns the objects of one group in a local frame (names without indices: "kind" or
# "fixture_kind"); :func:`_place` moves the group rigidly into the scene.
def _flush_group(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """n (2-3) boxes or cylinders in a row along local x, TOUCH_GAP apart, aligned; one colour half the
    time, and then one size half the time."""
    same_color = rng.random() < 0.5
    same_size = same_color and rng.random() < 0.5
    boxes = rng.random() < 0.7
    color = random_color(rng)
    objs: list[dict[str, Any]] = []
    size = _hard_box(rng) if boxes else _hard_cylinder(rng)
    x_next = 0.0
    for _ in range(n):
        if not same_size:
            size = _hard_box(rng) if boxes else _hard_cylinder(rng)
        fields = _primitive(rng, "box" if boxes else "cylinder", list(size), color if same_color else None)
        obj = _posed("flush_group", fields, Rotation.identity(), (0.0, _u(rng, -0.005, 0.005)))
        objs.append(_shift_after(obj, x_next))
        x_next = float(world_vertices(obj)[:, 0].max()) + TOUCH_GAP
    return objs


def _edge_object(rng: np.random.Generator, name: str) -> dict[str, Any]:
    """Fields of the object pressed against a wall or a tray rim: a hard box (a face parallel to the
    edge), an upright hard cylinder or a held-out mesh (random yaw)."""
    r = rng.random()
    if r < 0.4:
        return {"name": name, **_primitive(rng, "box", _hard_box(rng)),
                "_rot": Rotation.from_euler("z", float(rng.choice([0.0, np.pi / 2])))}
    if r < 0.6:
        return {"name": name, **_primitive(rng, "cylinder", _hard_cylinder(rng)), "_rot": Rotation.identity()}
    fields, rest = _mesh(rng)
    return {"name": name, **fields, "_rot": _yaw(rng) * rest}


def _against(rng: np.random.Generator, obj: dict[str, Any], face_x: float, half_length: float,
             support_z: float) -> dict[str, Any]:
    """The object posed on `support_z` with its footprint TOUCH_GAP short of x = `face_x`, somewhere along
    an edge of `half_length` (m, along y) without overhanging its ends."""
    rot = obj.pop("_rot")
    name = obj.pop("name")
    posed = _posed(name, obj, rot, (0.0, 0.0), support_z)
    half_y = float(np.abs(world_vertices(posed)[:, 1]).max())
    room = max(0.0, half_length - half_y - 0.01)
    posed["position"][1] = _u(rng, -room, room)
    return _shift_to(posed, face_x - TOUCH_GAP)


def _wall_group(rng: np.random.Generator) -> list[dict[str, Any]]:
    """A fixed wall 2 cm thick (its face at local x = 0, running along y) and one object against it."""
    length, height = _u(rng, 0.2, 0.3), _u(rng, 0.06, 0.08)
    wall = {"name": "fixture_wall", "shape": "box", "size": [0.02, length, height], "fixed": True,
            "color": WALL_COLOR, "position": [0.01, 0.0, height / 2], "orientation": [0.0, 0.0, 0.0, 1.0]}
    return [wall, _against(rng, _edge_object(rng, "wall"), 0.0, length / 2, 0.0)]


def _tray_group(rng: np.random.Generator) -> list[dict[str, Any]]:
    """The fixed tray (origin at local 0) and one object on its floor at the foot of its +x rim."""
    scale = _u(rng, *TRAY_SCALE)
    floor_top, inner = (v * scale for v in _tray_geometry())
    tray = {"name": "fixture_tray", "urdf": TRAY_URDF, "scale": scale, "fixed": True,
            "position": [0.0, 0.0, 0.0], "orientation": [0.0, 0.0, 0.0, 1.0]}
    lift = math.ceil(-float(world_vertices(tray)[:, 2].min()) * 1e5) / 1e5  # its floor's underside on the table top
    tray["position"][2] = lift
    return [tray, _against(rng, _edge_object(rng, "tray"), inner, inner, lift + floor_top)]


def _wide(rng: np.random.Generator) -> list[dict[str, Any]]:
    """A box 8.5-12 cm long (wider than the gripper opens) and 4-6 cm across."""
    size = [_u(rng, 0.085, 0.12), _u(rng, 0.04, 0.06), _u(rng, 0.03, 0.07)]
    return [_posed("wide", _primitive(rng, "box", size), _yaw(rng))]


def _lying_cylinder(rng: np.random.Generator) -> list[dict[str, Any]]:
    """A cylinder (radius 1.5-3 cm, 9-13 cm long) lying on its side."""
    fields = _primitive(rng, "cylinder", [_u(rng, 0.015, 0.03), _u(rng, 0.09, 0.13)])
    return [_posed("tilted", fields, _yaw(rng) * Rotation.from_euler("x", np.pi / 2))]


def _leaning_slab(rng: np.random.Generator) -> list[dict[str, Any]]:
    """A thin slab (1.2-2 cm thick, 4-7 cm wide, 6-8 cm long) tilted 20-35 deg from upright, its upper
    edge 1 mm from the face of a taller, heavier box (4.5-6.5 cm x 8.5-10 cm, a little taller than the
    slab's upper edge) at local x >= 0; the slab's foot on the table at local x < 0."""
    t, w, length = _u(rng, 0.012, 0.02), _u(rng, 0.04, 0.07), _u(rng, 0.06, 0.08)
    tilt = math.radians(float(rng.uniform(20.0, 35.0)))
    top = length * math.cos(tilt) + t * math.sin(tilt)
    support_size = [_u(rng, 0.045, 0.065), _u(rng, 0.085, 0.10), _u(rng, top + 0.012, top + 0.03)]
    support = _posed("tilted", _primitive(rng, "box", support_size, None,
                                          **_physics(rng, (0.25, 0.5), (0.4, 1.0))), Rotation.identity())
    _shift_after(support, 0.0)
    slab = _posed("tilted", _primitive(rng, "box", [t, w, length], None, **_physics(rng, (0.05, 0.15), (0.5, 1.0))),
                  Rotation.from_euler("y", tilt))
    slab["position"][1] = _u(rng, -(support_size[1] - w) / 2 + 0.005, (support_size[1] - w) / 2 - 0.005)
    return [_shift_to(slab, -TOUCH_GAP), support]


def _mesh_full_scale(rng: np.random.Generator) -> list[dict[str, Any]]:
    fields, rest = _mesh(rng, 1.0)
    return [_posed("mesh_full_scale", fields, _yaw(rng) * rest)]


def _group(rng: np.random.Generator, kind: str, room: int) -> list[dict[str, Any]] | None:
    """The objects of one group of `kind` with at most `room` movable objects (None: it does not fit)."""
    if kind == "flush_group":
        return _flush_group(rng, int(rng.integers(2, min(3, room) + 1))) if room >= 2 else None
    if kind == "tilted":
        if room >= 2 and rng.random() < 0.5:
            return _leaning_slab(rng)
        return _lying_cylinder(rng)
    builders = {"wall": _wall_group, "tray": _tray_group, "wide": _wide, "mesh_full_scale": _mesh_full_scale}
    return builders[kind](rng)


# ---------------------------------------------------------------------------------------------- placing
def _moved(obj: dict[str, Any], xy: np.ndarray, yaw: float) -> dict[str, Any]:
    """A copy of `obj` turned by `yaw` about the local origin's z and moved by `xy` (rounded)."""
    rz = Rotation.from_euler("z", yaw)
    p = rz.apply(np.asarray(obj["position"], float)) + [xy[0], xy[1], 0.0]
    q = (rz * Rotation.from_quat(obj["orientation"])).as_quat()
    q = q if q[3] >= 0 else -q
    return {**obj, "position": [round(float(v), 5) for v in p], "orientation": [round(float(v), 6) for v in q]}


def _edge_yaw(rng: np.random.Generator) -> float:
    """Yaw of a wall / tray group: its local +x (from the object towards its edge) never points between
    +x and +y, so the edge hides the object from at most one of the front (+x) and side (+y) cameras."""
    return float(rng.uniform(np.pi / 2, 2 * np.pi))


def _centre_ok(obj: dict[str, Any], p: tuple[float, float], tol: float = 1e-4) -> bool:
    """Whether an object's origin at p (m) can pass movable_ok / fixture_ok (their footprints hold their
    origins), with `tol` m to spare for the rounding of the moved position."""
    x, y = p
    if obj.get("fixed"):
        return x >= FIXTURE_MIN_X - tol and y >= FIXTURE_MIN_Y - tol and on_table(x, y, 0.02 - tol)
    return (MOVABLE_X[0] - tol <= x <= MOVABLE_X[1] + tol and MOVABLE_Y[0] - tol <= y <= MOVABLE_Y[1] + tol
            and math.hypot(x, y) <= MAX_CENTRE_RADIUS + tol)


def _place(rng: np.random.Generator, kind: str, group: list[dict[str, Any]], placed: list[tuple[int, dict]],
           gid: int, tries: int = 400) -> list[dict[str, Any]] | None:
    """The group moved to a random pose where every object is usable (movable_ok / fixture_ok) and at
    least CLUSTER_GAP from every already `placed` object of another group; None when no try fits."""
    for _ in range(tries):
        xy = rng.uniform([ANCHOR_X[0], ANCHOR_Y[0]], [ANCHOR_X[1], ANCHOR_Y[1]])
        yaw = _edge_yaw(rng) if kind in EDGE_KINDS else float(rng.uniform(-np.pi, np.pi))
        c, s = math.cos(yaw), math.sin(yaw)
        centres = [(c * o["position"][0] - s * o["position"][1] + xy[0], s * o["position"][0] + c * o["position"][1] + xy[1])
                   for o in group]
        if not all(_centre_ok(o, p) for o, p in zip(group, centres, strict=True)):
            continue  # a cheap necessary condition first: an object's origin lies inside its footprint
        moved = [_moved(o, xy, yaw) for o in group]
        if not all(fixture_ok(o) if o.get("fixed") else movable_ok(o) for o in moved):
            continue
        polys = [footprint(o) for o in moved]
        if all(polygon_gap(p, footprint(q)) >= CLUSTER_GAP for p in polys for g, q in placed if g != gid):
            return moved
    return None


def _kinds(rng: np.random.Generator, seed: int, n: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Groups making up n movable objects: HARD_KINDS[seed % 6] first (every kind leads one seed in six),
    then the other kinds in random order while they fit (at most one of EDGE_KINDS)."""
    lead = HARD_KINDS[seed % len(HARD_KINDS)]
    rest = [str(k) for k in rng.permutation([k for k in HARD_KINDS if k != lead])]
    out: list[tuple[str, list[dict[str, Any]]]] = []
    count = 0
    for kind in [lead, *rest]:
        room = n - count
        if room <= 0:
            break
        if kind in EDGE_KINDS and any(k in EDGE_KINDS for k, _ in out):
            continue
        group = _group(rng, kind, room)
        if group is None:
            continue
        out.append((kind, group))
        count += sum(not o.get("fixed") for o in group)
    return out


def object_kind(name: str) -> str | None:
    """The hard kind of a hard-suite object from its name (``wall_1`` -> ``wall``); None for fixtures and
    names of other scenes."""
    return next((k for k in HARD_KINDS if name.startswith(k + "_") and name[len(k) + 1:].isdigit()), None)


def hard_scene(seed: int, name: str | None = None) -> dict[str, Any]:
    """The hard-suite scene of `seed` (module docstring): a contract scene mapping whose every draw comes
    from ``numpy.random.default_rng(seed)``; the scene's own seed is `seed`."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        n = int(rng.integers(3, 6))
        groups = _kinds(rng, seed, n)
        groups.sort(key=lambda g: (not any(o.get("fixed") for o in g[1]), -len(g[1])))  # fixtures first
        placed: list[tuple[int, dict[str, Any]]] = []
        for gid, (kind, group) in enumerate(groups):
            moved = _place(rng, kind, group, placed, gid)
            if moved is None:
                break
            placed.extend((gid, o) for o in moved)
        else:
            break
    else:  # pragma: no cover - the ranges always admit a layout
        raise ValueError(f"hard scene {seed}: no layout found")
    counters: dict[str, int] = {}
    objects = []
    for _, o in placed:
        o = dict(o)
        if not o.get("fixed"):
            k = o["name"]
            o["name"] = f"{k}_{counters.get(k, 0)}"
            counters[k] = counters.get(k, 0) + 1
        objects.append(o)
    return scene_mapping(name or f"hard_s{seed}", objects, cameras=CAMERAS, seed=seed,
                         task={"kind": "pick_place", "place_region": PLACE_REGION})


__all__ = ["CLUSTER_GAP", "HARD_KINDS", "MAX_NARROW_SIDE", "PLACE_REGION", "footprint", "fixture_ok", "hard_scene",
           "in_view", "movable_ok", "narrow_side", "object_kind", "polygon_gap", "spawn_conflicts", "world_vertices"]
