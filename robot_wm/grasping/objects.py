"""Objects for grasp evaluation: SPEC strings, URDF collision geometry, and surface point clouds.

SPEC (the ``--objects`` argument of ``robot-wm grasp-eval``):

* a URDF path or glob, resolved against the current folder, then pybullet_data
  (``random_urdfs/7[0-9][0-9]/*.urdf``);
* a primitive: ``box:LxWxH``, ``cylinder:RxH``, ``sphere:R`` (m);
* either may end with ``,key=value`` options: ``scale`` (URDF only), ``mass`` (kg), ``friction``
  (e.g. ``box:0.05x0.05x0.05,mass=2,friction=0.1`` or ``random_urdfs/700/700.urdf,scale=0.6``).

PyBullet collides a dynamic body's mesh as the convex hull of its vertices, so :func:`surface_points`
samples that hull: the grasps a planner proposes are then judged on the geometry the physics uses.
"""

from __future__ import annotations

import glob
import logging
import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import numpy as np
import pybullet_data  # data files only
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.transform import Rotation

from robot_wm.config import ConfigError
from robot_wm.geometry.polytope import primitive_polytope
from robot_wm.sim.hand import ObjectModel

log = logging.getLogger(__name__)

_NUM = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_PRIM = {"box": 3, "cylinder": 2, "sphere": 1}


def _options(spec: str, text: str, allowed: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in [p for p in text.split(",") if p]:
        key, sep, val = part.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise ConfigError(spec, "", f"unknown option {part!r} (allowed: {', '.join(sorted(allowed))})")
        try:
            v = float(val)
        except ValueError:
            raise ConfigError(spec, key, f"must be a number (got {val!r})") from None
        if not np.isfinite(v) or v <= 0:
            raise ConfigError(spec, key, f"must be > 0 (got {val})")
        out[key] = v
    return out


def parse_object_spec(spec: str, cwd: Path | None = None) -> list[ObjectModel]:
    """Objects named by one SPEC (a glob may name several, sorted by path). Raises ConfigError."""
    spec = spec.strip()
    kind = spec.split(":", 1)[0]
    if kind in _PRIM:
        body, _, opts = spec.partition(",")
        dims_text = body.split(":", 1)[1] if ":" in body else ""
        dims = dims_text.split("x")
        if len(dims) != _PRIM[kind] or not all(re.fullmatch(_NUM, d) for d in dims):
            form = {"box": "box:LxWxH", "cylinder": "cylinder:RxH", "sphere": "sphere:R"}[kind]
            raise ConfigError(spec, "", f"expected {form} with sizes in metres (got {dims_text!r})")
        size = tuple(float(d) for d in dims)
        if min(size) <= 0:
            raise ConfigError(spec, "", "sizes must be > 0")
        o = _options(spec, opts, {"mass", "friction"})
        name = f"{kind}_{dims_text}" + "".join(f"_{k}{v:g}" for k, v in sorted(o.items()))
        return [ObjectModel(name, kind, size, mass=o.get("mass", 0.1), friction=o.get("friction", 0.8))]
    path_text, _, opts = spec.partition(",")
    o = _options(spec, opts, {"mass", "friction", "scale"})
    base = cwd or Path.cwd()
    paths: list[Path] = []
    for root in (base, Path(pybullet_data.getDataPath())):
        pattern = path_text if Path(path_text).is_absolute() else str(root / path_text)
        paths = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        if paths:
            break
    if not paths:
        raise ConfigError(spec, "", "no such URDF file or primitive (box:LxWxH, cylinder:RxH, sphere:R), "
                                    "looked in the current folder and pybullet_data")
    out = []
    for p in paths:
        if p.suffix.lower() != ".urdf":
            raise ConfigError(str(p), "", "not a .urdf file")
        urdf_collision(str(p.resolve()))  # validate now: a broken URDF is bad input
        out.append(ObjectModel(p.stem, urdf=str(p.resolve()), scale=o.get("scale", 1.0), mass=o.get("mass"),
                               friction=o.get("friction")))
    return out


def parse_object_specs(specs: list[str], cwd: Path | None = None) -> list[ObjectModel]:
    """All objects named by the SPECs, with unique names (later duplicates get a numeric suffix)."""
    out: list[ObjectModel] = []
    seen: dict[str, int] = {}
    for spec in specs:
        for obj in parse_object_spec(spec, cwd):
            n = seen.get(obj.name, 0)
            seen[obj.name] = n + 1
            if n:
                obj = ObjectModel(f"{obj.name}_{n}", obj.shape, obj.size, obj.urdf, obj.scale, obj.mass, obj.friction)
            out.append(obj)
    return out


def _floats(text: str | None, n: int, default: float = 0.0) -> np.ndarray:
    if text is None:
        return np.full(n, default)
    vals = [float(v) for v in text.split()]
    if len(vals) != n:
        raise ValueError(f"expected {n} numbers, got {text!r}")
    return np.asarray(vals)


@lru_cache(maxsize=256)
def urdf_collision(urdf: str) -> tuple[tuple[str, tuple[float, ...], tuple[float, ...], str | None], ...]:
    """Collision geometries of a URDF's first link: (kind, params, origin xyz+rpy, mesh path)."""
    try:
        root = ET.parse(urdf).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(urdf, "", f"not a readable URDF ({exc})") from None
    link = root.find("link")
    if link is None:
        raise ConfigError(urdf, "link", "URDF has no link")
    if len(root.findall("link")) > 1:
        log.warning("%s: only the first link's collision geometry is used for surface sampling", urdf)
    out = []
    for i, col in enumerate(link.findall("collision")):
        where = f"link.collision[{i}]"
        try:
            org = col.find("origin")
            origin = tuple(np.concatenate([_floats(org.get("xyz") if org is not None else None, 3),
                                           _floats(org.get("rpy") if org is not None else None, 3)]))
            geom = col.find("geometry")
            g = list(geom)[0] if geom is not None and len(geom) else None
            if g is None:
                raise ValueError("no geometry")
            if g.tag == "mesh":
                mesh = (Path(urdf).parent / g.get("filename", "").replace("package://", "")).resolve()
                if not mesh.is_file():
                    raise ConfigError(urdf, f"{where}.geometry.mesh", f"mesh file not found: {mesh}")
                out.append(("mesh", tuple(_floats(g.get("scale"), 3, 1.0)), origin, str(mesh)))
            elif g.tag == "box":
                out.append(("box", tuple(_floats(g.get("size"), 3)), origin, None))
            elif g.tag == "cylinder":
                out.append(("cylinder", (float(g.get("radius")), float(g.get("length"))), origin, None))
            elif g.tag == "sphere":
                out.append(("sphere", (float(g.get("radius")),), origin, None))
            else:
                raise ValueError(f"unsupported geometry {g.tag!r}")
        except ConfigError:  # already names the file and the element
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(urdf, where, str(exc)) from None
    if not out:
        raise ConfigError(urdf, "link.collision", "first link has no collision geometry")
    return tuple(out)


def _read_obj_vertices(path: str) -> np.ndarray:
    verts = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(v) for v in line.split()[1:4]])
    if not verts:
        raise ConfigError(path, "", "mesh has no vertices (only Wavefront .obj meshes are supported)")
    return np.asarray(verts)


def _read_obj_parts(path: str) -> list[np.ndarray]:
    """Vertices of each object (``o``/``g`` group) of a Wavefront file, one array (V_i, 3) each. PyBullet makes
    one convex hull per such shape of a dynamic body's mesh, so these are its convex collision parts."""
    verts: list[list[float]] = []
    parts: list[set[int]] = []
    current: set[int] | None = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("v "):
                verts.append([float(v) for v in line.split()[1:4]])
            elif line.startswith(("o ", "g ")):
                current = set()
                parts.append(current)
            elif line.startswith("f "):
                if current is None:
                    current = set()
                    parts.append(current)
                for token in line.split()[1:]:
                    i = int(token.split("/")[0])
                    current.add(i - 1 if i > 0 else len(verts) + i)
    if not verts:
        raise ConfigError(path, "", "mesh has no vertices (only Wavefront .obj meshes are supported)")
    v = np.asarray(verts)
    out = [v[sorted(p)] for p in parts if len(p) >= 4]
    return out or [v]


def _hull_samples(vertices: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    try:
        hull = ConvexHull(vertices)
    except QhullError:
        raise ValueError("degenerate mesh") from None
    tri = vertices[hull.simplices]  # (F, 3, 3)
    normals = hull.equations[:, :3]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    idx = rng.choice(len(tri), n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    pts = (1 - s)[:, None] * tri[idx, 0] + (s * (1 - r2))[:, None] * tri[idx, 1] + (s * r2)[:, None] * tri[idx, 2]
    return pts, normals[idx]


def _primitive_samples(shape: str, size: tuple[float, ...], n: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if shape == "box":
        h = np.asarray(size) / 2
        areas = np.array([h[1] * h[2], h[0] * h[2], h[0] * h[1]] * 2)
        face = rng.choice(6, n, p=areas / areas.sum())
        axis, sign = face % 3, np.where(face < 3, 1.0, -1.0)
        pts = rng.uniform(-1, 1, (n, 3)) * h
        pts[np.arange(n), axis] = sign * h[axis]
        nrm = np.zeros((n, 3))
        nrm[np.arange(n), axis] = sign
        return pts, nrm
    if shape == "sphere":
        v = rng.normal(size=(n, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v * size[0], v
    r, hgt = size
    side, cap = 2 * np.pi * r * hgt, np.pi * r * r
    kind = rng.choice(3, n, p=np.array([side, cap, cap]) / (side + 2 * cap))
    th = rng.uniform(0, 2 * np.pi, n)
    rad = np.where(kind == 0, r, r * np.sqrt(rng.random(n)))
    z = np.where(kind == 0, rng.uniform(-hgt / 2, hgt / 2, n), np.where(kind == 1, hgt / 2, -hgt / 2))
    pts = np.stack([rad * np.cos(th), rad * np.sin(th), z], 1)
    nrm = np.where((kind == 0)[:, None], np.stack([np.cos(th), np.sin(th), np.zeros(n)], 1),
                   np.stack([np.zeros(n), np.zeros(n), np.where(kind == 1, 1.0, -1.0)], 1))
    return pts, nrm


def surface_points(obj: ObjectModel, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` points (n, 3) and outward unit normals (n, 3) on the object's collision surface, in the object
    frame (primitive centre / URDF base link frame), area-uniform."""
    if obj.shape is not None:
        return _primitive_samples(obj.shape, obj.size, n, rng)
    parts = []
    for kind, params, origin, mesh in urdf_collision(str(obj.urdf)):
        if kind == "mesh":
            verts = _read_obj_vertices(mesh) * np.asarray(params)
            try:
                pts, nrm = _hull_samples(verts, n, rng)
            except ValueError:
                raise ConfigError(mesh, "", "mesh is degenerate (no 3-D convex hull)") from None
        else:
            pts, nrm = _primitive_samples(kind, params, n, rng)
        rot = Rotation.from_euler("xyz", origin[3:])
        parts.append((rot.apply(pts) + origin[:3], rot.apply(nrm)))
    pts = np.concatenate([p for p, _ in parts]) * obj.scale
    nrm = np.concatenate([q for _, q in parts])
    if len(parts) > 1:
        keep = rng.choice(len(pts), n, replace=False)
        pts, nrm = pts[keep], nrm[keep]
    return pts, nrm


def collision_parts(obj: ObjectModel) -> list[np.ndarray]:
    """The object's collision geometry as PyBullet collides a dynamic body: a list of convex parts, each
    given by body-frame points (V_i, 3) (m, scaled) whose convex hull it is — one per shape of each mesh
    (Wavefront ``o``/``g`` groups: pybullet_data's random_urdfs have 5-100), one per primitive (as
    :func:`primitive_polytope`). The union of the parts is the solid; its overall convex hull fills the
    concavities between them."""
    if obj.shape == "hull":
        return [np.asarray(obj.size, float).reshape(-1, 3)]
    if obj.shape is not None:
        return [primitive_polytope(obj.shape, obj.size)]
    parts = []
    for kind, params, origin, mesh in urdf_collision(str(obj.urdf)):
        pieces = [p * np.asarray(params) for p in _read_obj_parts(mesh)] if kind == "mesh" else \
            [primitive_polytope(kind, params)]
        rot = Rotation.from_euler("xyz", origin[3:])
        parts.extend((rot.apply(p) + origin[:3]) * obj.scale for p in pieces)
    return parts

