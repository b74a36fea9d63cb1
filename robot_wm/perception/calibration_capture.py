"""Capturing calibration views of a fixed camera in simulation: the gripper holds a ChArUco board
(:class:`robot_wm.sim.board.TexturedBoard`) and the arm visits diverse, reachable poses that show the board to
the camera face-on enough; each view is rendered, its corners detected, and the TCP pose taken from the
measured joints (optionally with encoder noise).

Pose planning aims at the camera's nominal pose (its current calibration file: the user's rough guess); a pose
counts only when the board is actually detected in the render, so a rough guess is enough.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config import CalibrationConfig, Scene
from robot_wm.geometry import Intrinsics, Pose
from robot_wm.perception.calibration import (
    HANDEYE_METHODS,
    MIN_CORNERS,
    MIN_VIEWS,
    ROBOT_WORLD_METHODS,
    CalibrationError,
    CalibrationResult,
    Charuco,
    CharucoBoardConfig,
    View,
    calibrate_fixed_camera,
    calibrate_intrinsics,
)
from robot_wm.sim import Arm, Camera, World
from robot_wm.sim.board import TexturedBoard

log = logging.getLogger(__name__)

# where board centres are drawn (world frame, m): over the table, in front of the robot
CENTRE_LOW = np.array([0.35, -0.3, 0.18])
CENTRE_HIGH = np.array([0.7, 0.3, 0.55])
MAX_TILT_DEG = 40.0  # board normal vs the direction to the camera
MAX_ROLL_DEG = 90.0  # board rotation about its normal
DISTANCE = (0.35, 0.95)  # m, camera to board centre
MARGIN_PX = 8.0
MIN_SEPARATION_DEG = 8.0  # between accepted board orientations
MIN_CORNER_FRACTION = 0.6  # of the board's corners detected for a view to count
MAX_POSES = 200


@dataclass
class Capture:
    """The views and what produced them: true and measured joints (N, 7) rad (truth for benchmarks only)."""

    views: list[View]
    q_true: np.ndarray
    q_measured: np.ndarray
    tried: int


def _in_view(cam2world: Pose, k, pts: np.ndarray, margin: float) -> bool:
    p = cam2world.inverse().transform_points(pts)
    if np.any(p[:, 2] < 0.05):
        return False
    u = k.fx * p[:, 0] / p[:, 2] + k.cx
    v = k.fy * p[:, 1] / p[:, 2] + k.cy
    return bool(np.all((u > margin) & (u < k.width - 1 - margin) & (v > margin) & (v < k.height - 1 - margin)))


def _project_px(cam2world: Pose, k, pts: np.ndarray) -> np.ndarray:
    p = cam2world.inverse().transform_points(pts)
    return np.column_stack([k.fx * p[:, 0] / p[:, 2] + k.cx, k.fy * p[:, 1] / p[:, 2] + k.cy])


def render_supersampled(world: World, camera: Camera, roi_points: np.ndarray, factor: int) -> np.ndarray:
    """RGB (H, W, 3) uint8 of `camera` in which the pixels around `roi_points` (world, (N, 3) m) integrate light
    over their area like a real sensor: that region is rendered `factor` x finer and area-averaged.
    PyBullet's TinyRenderer samples one ray per pixel, which snaps sharp edges (board corners) to the pixel
    grid by up to 0.5 px; `factor` 3 brings that below ~0.2 px. The rest of the frame is rendered plainly."""
    import cv2

    rgb = world.render(camera, noise=False, segmentation=False).rgb
    if factor <= 1:
        return rgb
    k = camera.intrinsics
    uv = _project_px(camera.camera2world, k, roi_points)
    x0, y0 = (max(0, int(math.floor(v)) - 4) for v in uv.min(axis=0))
    x1, y1 = min(k.width, int(math.ceil(uv[:, 0].max())) + 5), min(k.height, int(math.ceil(uv[:, 1].max())) + 5)
    if x1 <= x0 or y1 <= y0:
        return rgb
    w, h = x1 - x0, y1 - y0
    fine_cam = copy.copy(camera)  # the same camera, cropped to the region and `factor` x finer
    fine_cam.intrinsics = Intrinsics(w * factor, h * factor, k.fx * factor, k.fy * factor,
                                     (k.cx - x0 + 0.5) * factor - 0.5, (k.cy - y0 + 0.5) * factor - 0.5)
    fine = world.render(fine_cam, noise=False, segmentation=False).rgb
    rgb[y0:y1, x0:x1] = cv2.resize(fine, (w, h), interpolation=cv2.INTER_AREA)
    return rgb


def capture_views(world: World, camera: str, board_cfg: CharucoBoardConfig, n_poses: int,
                  rng: np.random.Generator, corner_noise_px: float = 0.0, joint_noise_rad: float = 0.0,
                  max_tries: int | None = None, supersample: int = 3) -> Capture:
    """Plan and capture up to `n_poses` views of the board held by the gripper, seen by fixed `camera` (a
    camera of `world`, by name). Random draws (poses, corner and encoder noise) come from `rng`. Stops after
    `max_tries` candidate poses (default 40 x n_poses); fewer views may come back. `supersample`: see
    :func:`render_supersampled`."""
    cam = next(c for c in world.cameras if c.name == camera)
    k, cam_pose = cam.intrinsics, cam.camera2world
    charuco = Charuco(board_cfg)
    board = TexturedBoard(world, charuco.image(), board_cfg.width, board_cfg.height, board_cfg.thickness)
    b2t = board_cfg.board2tcp()
    outline = np.array([[0, 0, 0], [board_cfg.width, 0, 0], [board_cfg.width, board_cfg.height, 0],
                        [0, board_cfg.height, 0]], float)
    centre_b = np.array([board_cfg.width / 2, board_cfg.height / 2, 0.0])
    arm = Arm(world)
    views: list[View] = []
    q_true, q_meas, accepted_rot = [], [], []
    tries, max_tries = 0, max_tries or 40 * n_poses
    try:
        while len(views) < n_poses and tries < max_tries:
            tries += 1
            c = rng.uniform(CENTRE_LOW, CENTRE_HIGH)
            to_cam = cam_pose.position - c
            dist = float(np.linalg.norm(to_cam))
            if not DISTANCE[0] <= dist <= DISTANCE[1]:
                continue
            # board z (into the board) points away from the camera, tilted and rolled at random
            z0 = -to_cam / dist
            axis = np.cross(z0, rng.normal(size=3))
            axis /= np.linalg.norm(axis)
            tilt = math.radians(MAX_TILT_DEG) * math.sqrt(rng.uniform())
            z = Rotation.from_rotvec(axis * tilt).apply(z0)
            # roll reference: board y (rows) pointing down in the world, then rolled about z
            y_ref = np.array([0.0, 0.0, -1.0]) - z * (-z[2])
            y_ref /= np.linalg.norm(y_ref)
            x_ref = np.cross(y_ref, z)
            rot = Rotation.from_rotvec(z * math.radians(rng.uniform(-MAX_ROLL_DEG, MAX_ROLL_DEG))) * \
                Rotation.from_matrix(np.column_stack([x_ref, y_ref, z]))
            board2world = Pose(c - rot.apply(centre_b), rot.as_quat())
            if not _in_view(cam_pose, k, board2world.transform_points(outline), MARGIN_PX):
                continue
            if any((rot * r.inv()).magnitude() < math.radians(MIN_SEPARATION_DEG) for r in accepted_rot):
                continue
            tcp2world = board2world @ b2t.inverse()
            q = arm.ik(tcp2world, q_seed=None)
            if q is None or arm.check_motion(q[None, :], gripper_width=0.0) is not None:
                continue
            world.reset_arm(q, finger_opening=0.0)
            held = arm.tcp_pose() @ b2t
            board.place(held)
            ids, uv = charuco.detect(render_supersampled(world, cam, held.transform_points(outline), supersample))
            if len(ids) < max(MIN_CORNERS, MIN_CORNER_FRACTION * len(charuco.corners)):
                continue
            if corner_noise_px > 0:
                uv = uv + rng.normal(0.0, corner_noise_px, uv.shape)
            qm = q + (rng.normal(0.0, joint_noise_rad, 7) if joint_noise_rad > 0 else 0.0)
            views.append(View(ids, uv, arm.kin.fk(qm).matrix()))
            q_true.append(q)
            q_meas.append(qm)
            accepted_rot.append(rot)
            log.info("view %d/%d after %d candidate poses", len(views), n_poses, tries)
    finally:
        board.remove()
        arm.close()
    return Capture(views, np.asarray(q_true).reshape(-1, 7), np.asarray(q_meas).reshape(-1, 7), tries)


@dataclass
class Calibrated:
    """What :func:`calibrate` produced: `calibration` (a mapping in the calibration-file contract, validated),
    `report` (residuals, uncertainties, per-method results; JSON-ready), the solver's `result` (hand-eye only)
    and the `capture`."""

    calibration: dict[str, Any]
    report: dict[str, Any]
    result: CalibrationResult | None
    capture: Capture


def _pose_dict(m: np.ndarray) -> dict[str, list[float]]:
    p = Pose.from_matrix(m)
    return {"position": [round(float(v), 6) for v in p.position],
            "orientation": [round(float(v), 8) for v in p.quaternion]}


def calibrate(scene: Scene, camera: str, board_cfg: CharucoBoardConfig, kind: str = "hand-eye", n_poses: int = 15,
              methods: tuple[str, ...] = HANDEYE_METHODS + ROBOT_WORLD_METHODS, seed: int = 0,
              corner_noise_px: float = 0.0, joint_noise_rad: float = 0.0, supersample: int = 3) -> Calibrated:
    """Calibrate fixed camera `camera` of `scene` in simulation: capture `n_poses` views of the held board
    (:func:`capture_views`), solve intrinsics and camera2world jointly (:func:`calibrate_fixed_camera`) and
    write, for `kind` ``intrinsics``, fx, fy, cx, cy (the pose kept from the camera's current calibration) or
    for ``hand-eye`` the intrinsics and camera2world.
    Raises :class:`CalibrationError` (one line) on bad captures. `seed` drives every random draw."""
    if kind not in ("intrinsics", "hand-eye"):
        raise ValueError(f"kind must be intrinsics or hand-eye (got {kind!r})")
    cal = next((c for c in scene.calibrations if c.name == camera), None)
    if cal is None:
        raise CalibrationError(f"no camera named {camera!r} (scene has {', '.join(c.name for c in scene.calibrations)})")
    if not MIN_VIEWS <= n_poses <= MAX_POSES:
        raise CalibrationError(f"--poses must be >= {MIN_VIEWS} and <= {MAX_POSES} (got {n_poses})")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with World(scene, seed=seed) as world:
        cap = capture_views(world, camera, board_cfg, n_poses, rng, corner_noise_px, joint_noise_rad,
                            supersample=supersample)
    if len(cap.views) < MIN_VIEWS:
        raise CalibrationError(f"camera {camera!r}: the board was found in only {len(cap.views)} of {cap.tried} "
                               f"candidate poses (need >= {MIN_VIEWS}); is the workspace in view?")
    charuco = Charuco(board_cfg)
    size = (cal.width, cal.height)
    out = cal.model_dump(exclude_none=True)
    report: dict[str, Any] = {"camera": camera, "kind": kind, "board": board_cfg.name, "views": len(cap.views),
                              "candidate_poses": cap.tried, "seed": seed, "corner_noise_px": corner_noise_px,
                              "joint_noise_rad": joint_noise_rad}
    # both kinds solve jointly through the arm's kinematics: with the board poses tied to the measured joints the
    # focal length is observable from far fewer views than with free board poses (cv2.calibrateCamera, reported
    # as `free_pose_intrinsics`: on 6-15 views of a 15 x 21 cm board it is off by 0.5-2 %)
    result = calibrate_fixed_camera(cap.views, charuco, size, methods)
    k = np.array([[result.fx, 0, result.cx], [0, result.fy, result.cy], [0, 0, 1.0]])
    k_free, _, rms_free, sd_free = calibrate_intrinsics(cap.views, charuco, size)
    report.update(reprojection_px_rms=result.reprojection_px_rms, corners=result.corners, sigma=result.sigma,
                  target2tcp=_pose_dict(result.target2tcp),
                  free_pose_intrinsics={"fx": k_free[0, 0], "fy": k_free[1, 1], "cx": k_free[0, 2], "cy": k_free[1, 2],
                                        "reprojection_px_rms": rms_free, "sigma_px": sd_free.tolist()},
                  methods={m: {"camera2world": _pose_dict(d["camera2world"]),
                               "reprojection_px_rms": d["reprojection_px_rms"]} for m, d in result.methods.items()})
    if kind == "hand-eye":
        out.pop("look_at", None)
        out["camera2world"] = _pose_dict(result.camera2world)
    out.update(fx=round(float(k[0, 0]), 4), fy=round(float(k[1, 1]), 4), cx=round(float(k[0, 2]), 4),
               cy=round(float(k[1, 2]), 4))
    CalibrationConfig.model_validate(out)  # the contract holds before anything is written
    report["calibrate_wall_s"] = time.perf_counter() - t0
    return Calibrated(out, report, result, cap)
