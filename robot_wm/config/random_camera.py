"""Random RGB-D cameras around the workspace, and the view checks every calibration must pass.

:func:`random_calibrations` draws 1-3 calibration mappings (the format of ``calibration/front.yaml``) from a
seed: a look-at point uniform on the table in the view region (where the scene generators put objects),
azimuth uniform in [-180, 180) deg, elevation 25-85 deg above the table, distance 0.6-1.5 m from the look-at
point, fx = fy uniform in 450-750 px, the principal point up to 20 px from the image centre (640x480), near
and far clip 0.05 / 3.0 m as the shipped calibrations, and one depth-noise model per scene drawn from
``none | nguyen2012 | nguyen2012_dropout``. A draw is kept only when

* it **sees the view region**: the region's corners at the table top and at :data:`VIEW_HEIGHT` above it
  (the tallest objects) all project in front of the camera and at least :data:`VIEW_MARGIN_PX` inside the
  image (the region is convex, so then all of it is in the image); and
* the **robot does not block it**: the camera and its sight lines to a 5x5 grid on the view region stay
  out of :data:`ROBOT_ENVELOPE`, capsules around the Panda's base column (radius 0.25 m) and around the
  links of its home posture (radius 0.12 m: link radius <= 0.08 m plus 4 cm), where the arm waits while the
  cameras look. Viewpoints behind the robot that look through the base or the arm are rejected this way.

Every draw comes from ``numpy.random.default_rng([seed, CAMERA_STREAM])``: same seed, same cameras, and
a scene generator's own draws from `seed` are untouched.

:func:`view_problem` is the loader's check of a user's calibration: a camera below the table top, inside a
primitive object, or seeing less than :data:`MIN_TABLE_VIEW_FRACTION` of its image as table top is
reported as one line (naming the field) rather than rendering a frame perception cannot use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import yaml

from robot_wm.config.models import CalibrationConfig, ObjectConfig
from robot_wm.config.random_scene import WORKSPACE_X, WORKSPACE_Y
from robot_wm.config.workspace import TABLE_CENTER_XY, TABLE_SIZE
from robot_wm.geometry import Intrinsics, Pose, look_at_camera2world, project_points

CAMERA_STREAM = 14  # second entry of the seed sequence: camera draws never reuse a scene generator's stream
ELEVATION_DEG = (25.0, 85.0)  # above the table plane, seen from the look-at point
DISTANCE_M = (0.6, 1.5)  # from the look-at point
FOCAL_PX = (450.0, 750.0)  # fx = fy
PRINCIPAL_OFFSET_PX = 20.0  # largest distance of (cx, cy) from the image centre
IMAGE_SIZE = (640, 480)
NEAR, FAR = 0.05, 3.0  # m, as calibration/front.yaml and side.yaml
N_CAMERAS = (1, 3)
DEPTH_NOISES: tuple[str, ...] = get_args(CalibrationConfig.model_fields["depth_noise"].annotation)

# The view region: where the scene generators drop objects (random_scene.WORKSPACE_X/Y), on the table top.
VIEW_REGION_X, VIEW_REGION_Y = WORKSPACE_X, WORKSPACE_Y
VIEW_HEIGHT = 0.08  # m above the table that must stay in view too (object tops)
VIEW_MARGIN_PX = 8.0
SIGHT_GRID = 5  # sight lines to a SIGHT_GRID x SIGHT_GRID grid on the view region are checked for the robot
SIGHT_SAMPLES = 64  # points per sight line

# The Panda at HOME (geometry.panda.HOME), base at the origin: link-frame origins from forward kinematics of
# franka_panda/panda.urdf (links 0, 1, 2, 3, 4, 6, 8 and the TCP; tests/config/test_config_random_camera.py
# recomputes them with the simulator). Capsules (start (3,), end (3,), radius) in m.
_HOME_CHAIN = np.array([[0.0, 0.0, 0.333], [-0.178, 0.0, 0.594], [-0.110, 0.0, 0.640], [0.282, 0.0, 0.633],
                        [0.370, 0.0, 0.633], [0.370, 0.0, 0.526], [0.370, 0.0, 0.421]])
BASE_COLUMN_RADIUS = 0.25
LINK_RADIUS = 0.12
ROBOT_ENVELOPE: tuple[tuple[np.ndarray, np.ndarray, float], ...] = (
    (np.zeros(3), _HOME_CHAIN[0], BASE_COLUMN_RADIUS),
    *((_HOME_CHAIN[i], _HOME_CHAIN[i + 1], LINK_RADIUS) for i in range(len(_HOME_CHAIN) - 1)),
)

MIN_TABLE_VIEW_FRACTION = 0.02  # of the image; perception fits the table plane to >= 50 of every 64th pixel
_ROUND_POS, _ROUND_QUAT, _ROUND_PX = 4, 6, 2


def calibration_pose(cal: CalibrationConfig) -> Pose:
    """`camera2world` (optical frame: x right, y down, z forward) of a calibration, from either pose form."""
    if cal.camera2world is not None:
        return Pose(cal.camera2world.position, cal.camera2world.orientation)
    la = cal.look_at
    return look_at_camera2world(la.eye, la.target, la.up)


def calibration_intrinsics(cal: CalibrationConfig) -> Intrinsics:
    return Intrinsics(cal.width, cal.height, cal.fx, cal.fy, cal.cx, cal.cy)


def project_world(cal: CalibrationConfig, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) m -> (pixels (N, 2) as (u, v), optical-frame depth z (N,) m)."""
    cam = calibration_pose(cal).inverse().transform_points(np.asarray(points, float).reshape(-1, 3))
    z = cam[:, 2]
    uv = project_points(np.where(z[:, None] > 1e-9, cam, np.nan), calibration_intrinsics(cal))
    return uv, z


def view_region_points(height: float = VIEW_HEIGHT, grid: int = 2) -> np.ndarray:
    """Points (2 * grid^2, 3) m of the view region: a grid x grid grid (corners for 2) at z = 0 and z = height."""
    xs, ys = np.linspace(*VIEW_REGION_X, grid), np.linspace(*VIEW_REGION_Y, grid)
    xy = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    return np.concatenate([np.column_stack([xy, np.full(len(xy), z)]) for z in (0.0, height)])


def in_image(cal: CalibrationConfig, points: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
    """(N,) bool: world points (N, 3) in front of the camera (beyond near, before far) and at least
    `margin_px` inside the image."""
    uv, z = project_world(cal, points)
    with np.errstate(invalid="ignore"):
        return ((z > cal.near) & (z < cal.far) & (uv[:, 0] >= margin_px - 0.5) & (uv[:, 1] >= margin_px - 0.5)
                & (uv[:, 0] <= cal.width - 0.5 - margin_px) & (uv[:, 1] <= cal.height - 0.5 - margin_px))


def camera_sees_workspace(cal: CalibrationConfig, margin_px: float = VIEW_MARGIN_PX) -> bool:
    """True when the whole view region, from the table top to :data:`VIEW_HEIGHT`, is in the image."""
    return bool(in_image(cal, view_region_points(), margin_px).all())


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (...,) m of points p (..., 3) to the segment a-b."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def robot_clearance(eye: np.ndarray, targets: np.ndarray, base_position: np.ndarray | None = None) -> float:
    """Smallest distance (m) of the segments eye -> targets (N, 3) to the surface of :data:`ROBOT_ENVELOPE`
    (robot base at `base_position`, default the origin); < 0 means a sight line or the camera is inside."""
    base = np.zeros(3) if base_position is None else np.asarray(base_position, float)
    eye = np.asarray(eye, float)
    t = np.linspace(0.0, 1.0, SIGHT_SAMPLES)[None, :, None]
    pts = eye + t * (np.asarray(targets, float).reshape(-1, 1, 3) - eye)  # (N, S, 3)
    return float(min((_point_segment_distance(pts, a + base, b + base) - r).min() for a, b, r in ROBOT_ENVELOPE))


def camera_blocked_by_robot(cal: CalibrationConfig, base_position: np.ndarray | None = None) -> bool:
    """True when the camera sits in, or looks at the view region through, the robot's home-posture envelope."""
    targets = view_region_points(0.0, SIGHT_GRID)[: SIGHT_GRID**2]
    return robot_clearance(calibration_pose(cal).position, targets, base_position) < 0.0


def table_view_fraction(cal: CalibrationConfig, stride: int = 16) -> float:
    """Fraction of the image (every `stride`-th pixel) whose ray meets the table top (z = 0, inside the
    table's footprint) from above, between the near and far clip."""
    pose = calibration_pose(cal)
    eye = pose.position
    if eye[2] <= 0.0:
        return 0.0
    u = np.arange(stride / 2, cal.width, stride)
    v = np.arange(stride / 2, cal.height, stride)
    uu, vv = np.meshgrid(u, v)
    rays_cam = np.stack([(uu - cal.cx) / cal.fx, (vv - cal.cy) / cal.fy, np.ones_like(uu)], -1).reshape(-1, 3)
    rays = rays_cam @ pose.rotation.as_matrix().T  # world direction per unit optical depth
    down = rays[:, 2] < -1e-9
    z_opt = np.where(down, -eye[2] / np.where(down, rays[:, 2], -1.0), np.inf)  # optical depth at z = 0
    hit = eye[:2] + z_opt[:, None] * rays[:, :2]
    half = np.array(TABLE_SIZE[:2]) / 2
    on = down & (z_opt > cal.near) & (z_opt < cal.far) & np.all(np.abs(hit - TABLE_CENTER_XY) <= half, axis=1)
    return float(on.mean())


def _inside_primitive(p: np.ndarray, obj: ObjectConfig) -> bool:
    local = Pose(obj.position, obj.orientation).inverse().transform_points(p[None])[0]
    if obj.shape == "box":
        return bool(np.all(np.abs(local) <= np.asarray(obj.size) / 2))
    if obj.shape == "cylinder":
        return bool(math.hypot(local[0], local[1]) <= obj.size[0] and abs(local[2]) <= obj.size[1] / 2)
    return bool(np.linalg.norm(local) <= obj.size[0])


def view_problem(cal: CalibrationConfig, objects: Sequence[ObjectConfig] = ()) -> tuple[str, str] | None:
    """(field, message) when a calibration cannot give perception a usable view of the table, else None:
    the camera below the table top, inside a primitive object of `objects` (URDF objects are not checked),
    or with less than :data:`MIN_TABLE_VIEW_FRACTION` of its image on the table top."""
    field = "camera2world.position" if cal.camera2world is not None else "look_at.eye"
    eye = calibration_pose(cal).position
    where = f"({eye[0]:.3g}, {eye[1]:.3g}, {eye[2]:.3g})"
    if eye[2] <= 0.0:
        return field, f"camera {cal.name!r} at {where} is below the table top (z = 0); it cannot see the table"
    for obj in objects:
        if obj.shape is not None and _inside_primitive(eye, obj):
            return field, f"camera {cal.name!r} at {where} is inside object {obj.name!r}"
    frac = table_view_fraction(cal)
    if frac < MIN_TABLE_VIEW_FRACTION:
        pose_field = "camera2world" if cal.camera2world is not None else "look_at"
        return pose_field, (f"camera {cal.name!r} does not see the table: {100 * frac:.1f} % of its image is "
                            f"table top (at least {100 * MIN_TABLE_VIEW_FRACTION:.0f} % needed)")
    return None


def _draw_one(rng: np.random.Generator, name: str, depth_noise: str) -> dict[str, Any]:
    target = np.array([rng.uniform(*VIEW_REGION_X), rng.uniform(*VIEW_REGION_Y), 0.0])
    azimuth = rng.uniform(-np.pi, np.pi)
    elevation = np.deg2rad(rng.uniform(*ELEVATION_DEG))
    distance = rng.uniform(*DISTANCE_M)
    fx = round(float(rng.uniform(*FOCAL_PX)), _ROUND_PX)
    r, a = PRINCIPAL_OFFSET_PX * math.sqrt(rng.random()), rng.uniform(-np.pi, np.pi)  # uniform in the disc
    w, h = IMAGE_SIZE
    offset = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                       math.sin(elevation)])
    eye = target + distance * offset
    pose = look_at_camera2world(eye, target, np.array([0.0, 0.0, 1.0]))
    return {"name": name, "width": w, "height": h, "fx": fx, "fy": fx,
            "cx": round((w - 1) / 2 + r * math.cos(a), _ROUND_PX), "cy": round((h - 1) / 2 + r * math.sin(a), _ROUND_PX),
            "near": NEAR, "far": FAR,
            "camera2world": {"position": [round(float(v), _ROUND_POS) for v in pose.position],
                             "orientation": [round(float(v), _ROUND_QUAT) for v in pose.quaternion]},
            "depth_noise": depth_noise}


def random_calibration(rng: np.random.Generator, name: str, depth_noise: str = "none",
                       max_tries: int = 10000) -> dict[str, Any]:
    """One calibration mapping (``calibration/*.yaml`` format, camera2world form) drawn from `rng` by
    rejection: it sees the view region and the robot does not block it (see the module docstring)."""
    if depth_noise not in DEPTH_NOISES:
        raise ValueError(f"depth_noise must be one of {', '.join(DEPTH_NOISES)} (got {depth_noise!r})")
    for _ in range(max_tries):
        data = _draw_one(rng, name, depth_noise)
        cal = CalibrationConfig.model_validate(data)
        if camera_sees_workspace(cal) and not camera_blocked_by_robot(cal):
            return data
    raise ValueError(f"no camera seeing the workspace found in {max_tries} draws")  # pragma: no cover


def random_calibrations(seed: int, n_cameras: int | None = None, depth_noise: str | None = None,
                        prefix: str = "random") -> list[dict[str, Any]]:
    """Calibration mappings of `n_cameras` cameras (default: 1-3, drawn) named ``{prefix}{i}``, all with
    `depth_noise` (default: one of :data:`DEPTH_NOISES`, drawn once per scene). Same seed, same cameras."""
    if n_cameras is not None and not N_CAMERAS[0] <= n_cameras <= N_CAMERAS[1]:
        raise ValueError(f"n_cameras must be in {N_CAMERAS[0]}-{N_CAMERAS[1]} (got {n_cameras})")
    if depth_noise is not None and depth_noise not in DEPTH_NOISES:
        raise ValueError(f"depth_noise must be one of {', '.join(DEPTH_NOISES)} (got {depth_noise!r})")
    rng = np.random.default_rng([seed, CAMERA_STREAM])
    n = int(rng.integers(N_CAMERAS[0], N_CAMERAS[1] + 1)) if n_cameras is None else n_cameras
    noise = str(rng.choice(DEPTH_NOISES)) if depth_noise is None else depth_noise
    return [random_calibration(rng, f"{prefix}{i}", noise) for i in range(n)]


def write_calibrations(calibrations: list[dict[str, Any]], folder: str | Path, stem: str) -> list[str]:
    """Write each mapping to ``folder/{stem}_{name}.yaml``; returns those file names (relative to `folder`,
    as a scene in `folder` names them under ``cameras[i].calibration``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for cal in calibrations:
        fname = f"{stem}_{cal['name']}.yaml"
        (folder / fname).write_text(f"# drawn by robot_wm.config.random_camera ({cal['name']})\n"
                                    + yaml.safe_dump(cal, sort_keys=False, default_flow_style=None))
        names.append(fname)
    return names
