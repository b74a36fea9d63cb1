"""Capturing calibration views in simulation. A fixed camera (eye-to-hand): the gripper holds a ChArUco board
(:class:`robot_wm.sim.board.TexturedBoard`) and the arm visits diverse, reachable poses that show the board to
the camera face-on enough. A hand-mounted camera (eye-in-hand): the board lies face up on a free spot of the table
and the arm moves the camera over it, looking at it from diverse, reachable directions. Each view is rendered, its
corners detected, and the robot pose (TCP, or flange for a hand camera) taken from the measured joints
(optionally with encoder noise; optionally with image noise on the render before detection).

Pose planning aims with the camera's nominal pose (its current calibration file: the user's rough guess); a pose
counts only when the board is actually detected in the render, so a rough guess is enough.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config import CalibrationConfig, Scene
from robot_wm.geometry import Intrinsics, Pose, panda
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
    calibrate_camera,
    calibrate_intrinsics,
)
from robot_wm.perception.calibration_design import (
    PARAMS,
    ViewDesign,
    interest_weights,
    prior_sigma,
    view_information,
)
from robot_wm.sim import Arm, Camera, World
from robot_wm.sim.board import TexturedBoard

log = logging.getLogger(__name__)

# where board centres are drawn: on the ray through a random pixel of the camera, DISTANCE m away, above the table
# and within the arm's reach (from the shoulder, SHOULDER_HEIGHT m above the robot's base)
MIN_BOARD_Z = 0.12  # m
SHOULDER_HEIGHT, REACH = 0.333, 0.8  # m
MAX_TILT_DEG = 40.0  # board normal vs the direction to the camera
MAX_ROLL_DEG = 90.0  # board rotation about its normal
DISTANCE = (0.3, 1.6)  # m, camera to board centre
MARGIN_PX = 8.0
MIN_SEPARATION_DEG = 8.0  # between accepted board orientations
MIN_CORNER_FRACTION = 0.6  # of the board's corners detected for a view to count
MAX_POSES = 200
POOL_PER_VIEW = 8  # candidate poses planned per view wanted; the design captures the most informative
# eye-in-hand: where the board may lie (its centre, world xy m) and from where the wrist camera looks at it
BOARD_REGION_X, BOARD_REGION_Y = (0.4, 0.6), (-0.25, 0.25)
BOARD_PREFERRED_XY = np.array([0.5, 0.0])
BOARD_CLEARANCE = 0.02  # m between the board's footprint and any object's
HAND_DISTANCE = (0.2, 0.45)  # m, wrist camera to the board centre
HAND_MAX_TILT_DEG = 50.0  # the optical axis vs the board normal
# the aim point (where the optical axis meets the table) is drawn around the board centre within this fraction of
# the image's half-height footprint at the drawn distance: the board lands anywhere in the image, not only mid-frame
HAND_AIM_SPREAD = 1.0
HAND_MIN_CAMERA_Z = 0.12  # m above the table


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


def _board_centre(rng: np.random.Generator, cam_pose: Pose, k: Intrinsics, shoulder: np.ndarray
                  ) -> np.ndarray | None:
    """A board centre (3,) world m on the ray through a uniformly drawn pixel (MARGIN_PX from the edges) at a
    uniformly drawn DISTANCE, or None when it is below MIN_BOARD_Z or beyond REACH of `shoulder` (3,): boards
    spread over the whole image and over depth, whatever the camera's placement."""
    u = rng.uniform(MARGIN_PX, k.width - 1 - MARGIN_PX)
    v = rng.uniform(MARGIN_PX, k.height - 1 - MARGIN_PX)
    ray = cam_pose.rotation.apply([(u - k.cx) / k.fx, (v - k.cy) / k.fy, 1.0])
    c = cam_pose.position + rng.uniform(*DISTANCE) * ray / np.linalg.norm(ray)
    if c[2] < MIN_BOARD_Z or np.linalg.norm(c - shoulder) > REACH:
        return None
    return c


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


def _noisy(rgb: np.ndarray, image_noise: float, rng: np.random.Generator) -> np.ndarray:
    """`rgb` (H, W, 3) uint8 with Gaussian sensor noise of `image_noise` grey levels (1 sigma) per channel."""
    if image_noise <= 0:
        return rgb
    return np.clip(rgb + rng.normal(0.0, image_noise, rgb.shape), 0, 255).round().astype(np.uint8)


@dataclass
class _Candidate:
    """A planned view: the board's orientation (for the separation rule) and the joints reaching it (7,) rad."""

    rot: Rotation
    q: np.ndarray


def _designed_views(cands: list[_Candidate], infos: list[np.ndarray], focal_px: float, n_poses: int,
                    shoot: Callable[[_Candidate], tuple[View, np.ndarray] | None]
                    ) -> tuple[list[View], list[np.ndarray], list[np.ndarray]]:
    """Capture up to `n_poses` of the candidates in the order :class:`ViewDesign` chooses them (the most
    informative next, each orientation at least MIN_SEPARATION_DEG from those captured); `shoot` renders and
    measures one (None: the board was not detected, the candidate is dropped). Returns views, true and measured
    joints."""
    design = ViewDesign(np.asarray(infos).reshape(-1, PARAMS, PARAMS), interest_weights(focal_px),
                        prior_sigma(focal_px))
    views: list[View] = []
    q_true: list[np.ndarray] = []
    q_meas: list[np.ndarray] = []
    far = np.ones(len(cands), bool)
    rots = Rotation.concatenate([c.rot for c in cands]) if cands else None
    while len(views) < n_poses:
        i = design.next(far)
        if i is None:
            break
        got = shoot(cands[i])
        if got is None:
            design.drop(i)
            continue
        design.accept(i)
        views.append(got[0])
        q_true.append(cands[i].q)
        q_meas.append(got[1])
        far &= (rots * cands[i].rot.inv()).magnitude() >= math.radians(MIN_SEPARATION_DEG)
        log.info("view %d/%d (candidate %d of %d)", len(views), n_poses, i, len(cands))
    return views, q_true, q_meas


def capture_views(world: World, camera: str, board_cfg: CharucoBoardConfig, n_poses: int,
                  rng: np.random.Generator, corner_noise_px: float = 0.0, joint_noise_rad: float = 0.0,
                  max_tries: int | None = None, supersample: int = 3, image_noise: float = 0.0) -> Capture:
    """Plan and capture up to `n_poses` views of the board held by the gripper, seen by fixed `camera` (a
    camera of `world`, by name). Planning draws reachable, collision-free board poses facing the camera
    (:func:`_board_centre`; tilted up to MAX_TILT_DEG, rolled up to MAX_ROLL_DEG): POOL_PER_VIEW x `n_poses` of
    them, or as many as `max_tries` draws give (default 1000 x n_poses: for a far camera most draws are out of
    reach, and rejecting them is cheap), then
    captures them in the order :class:`robot_wm.perception.calibration_design.ViewDesign` picks from the
    camera's nominal calibration. Random draws (poses, image, corner and encoder noise) come from `rng`. Fewer
    views may come back. `supersample`: see :func:`render_supersampled`; `image_noise`: grey levels, 1 sigma,
    added to the render before detection."""
    cam = next(c for c in world.cameras if c.name == camera)
    k, cam_pose = cam.intrinsics, cam.camera2world
    charuco = Charuco(board_cfg)
    board = TexturedBoard(world, charuco.image(), board_cfg.width, board_cfg.height, board_cfg.thickness)
    b2t = board_cfg.board2tcp()
    outline = np.array([[0, 0, 0], [board_cfg.width, 0, 0], [board_cfg.width, board_cfg.height, 0],
                        [0, board_cfg.height, 0]], float)
    centre_b = np.array([board_cfg.width / 2, board_cfg.height / 2, 0.0])
    kmat = np.array([[k.fx, 0, k.cx], [0, k.fy, k.cy], [0, 0, 1.0]])
    shoulder = np.asarray(world.scene.config.robot.base_position, float) + np.array([0.0, 0.0, SHOULDER_HEIGHT])
    arm = Arm(world)
    cands: list[_Candidate] = []
    infos: list[np.ndarray] = []
    tries, max_tries = 0, max_tries or 1000 * n_poses
    try:
        while len(cands) < POOL_PER_VIEW * n_poses and tries < max_tries:
            tries += 1
            c = _board_centre(rng, cam_pose, k, shoulder)
            if c is None:
                continue
            to_cam = cam_pose.position - c
            dist = float(np.linalg.norm(to_cam))
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
            tcp2world = board2world @ b2t.inverse()
            q = arm.ik(tcp2world, q_seed=None)
            if q is None or arm.check_motion(q[None, :], gripper_width=0.0) is not None:
                continue
            cands.append(_Candidate(rot, q))
            infos.append(view_information(kmat, cam_pose.matrix(), b2t.matrix(), tcp2world.matrix(),
                                          charuco.corners, "world"))

        def shoot(cand: _Candidate) -> tuple[View, np.ndarray] | None:
            world.reset_arm(cand.q, finger_opening=0.0)
            held = arm.tcp_pose() @ b2t
            board.place(held)
            rgb = render_supersampled(world, cam, held.transform_points(outline), supersample)
            return _measure(charuco, rgb, cand.q, rng, image_noise, corner_noise_px, joint_noise_rad,
                            lambda qm: arm.kin.fk(qm).matrix())

        views, q_true, q_meas = _designed_views(cands, infos, k.fx, n_poses, shoot)
    finally:
        board.remove()
        arm.close()
    return Capture(views, np.asarray(q_true).reshape(-1, 7), np.asarray(q_meas).reshape(-1, 7), tries)


def _measure(charuco: Any, rgb: np.ndarray, q: np.ndarray, rng: np.random.Generator, image_noise: float,
             corner_noise_px: float, joint_noise_rad: float, fk: Callable[[np.ndarray], np.ndarray]
             ) -> tuple[View, np.ndarray] | None:
    """One captured view as a calibration sees it: corners detected on the (noised) image (None when too few),
    corner noise px, the joints `q` (7,) rad read with encoder noise, `fk` of that reading (4x4, the link the
    hand-eye problem uses). Returns (the view, the joint reading)."""
    ids, uv = charuco.detect(_noisy(rgb, image_noise, rng))
    if len(ids) < max(MIN_CORNERS, MIN_CORNER_FRACTION * len(charuco.corners)):
        return None
    if corner_noise_px > 0:
        uv = uv + rng.normal(0.0, corner_noise_px, uv.shape)
    qm = q + (rng.normal(0.0, joint_noise_rad, 7) if joint_noise_rad > 0 else 0.0)
    return View(ids, uv, fk(qm)), qm


def board_spot(world: World, board_cfg: CharucoBoardConfig) -> Pose:
    """Where the board lies for an eye-in-hand calibration: face up on the table (board frame: x along world x,
    z down into the table), its centre on a 1 cm grid over BOARD_REGION, the free spot (footprint at least
    BOARD_CLEARANCE from every object's bounding box) nearest BOARD_PREFERRED_XY. CalibrationError if none."""
    half = np.array([board_cfg.width, board_cfg.height]) / 2 + BOARD_CLEARANCE
    boxes = [world.object_aabb(n) for n in world.objects]
    best, best_d = None, math.inf
    for x in np.arange(BOARD_REGION_X[0], BOARD_REGION_X[1] + 1e-9, 0.01):
        for y in np.arange(BOARD_REGION_Y[0], BOARD_REGION_Y[1] + 1e-9, 0.01):
            c = np.array([x, y])
            if any(np.all(c + half > lo[:2]) and np.all(c - half < hi[:2]) for lo, hi in boxes):
                continue
            d = float(np.linalg.norm(c - BOARD_PREFERRED_XY))
            if d < best_d:
                best, best_d = c, d
    if best is None:
        raise CalibrationError(f"no free spot on the table for the {board_cfg.width:.2f} x {board_cfg.height:.2f} m "
                               f"board (x {BOARD_REGION_X}, y {BOARD_REGION_Y} m); clear some objects")
    rot = Rotation.from_euler("x", np.pi)  # board x = world x, board y = -world y, board z = -world z
    centre_b = np.array([board_cfg.width / 2, board_cfg.height / 2, 0.0])
    face = np.array([best[0], best[1], board_cfg.thickness + 1e-4])  # the backing rests on the table top
    return Pose(face - rot.apply(centre_b), rot.as_quat())


def capture_hand_views(world: World, camera: str, board_cfg: CharucoBoardConfig, n_poses: int,
                       rng: np.random.Generator, corner_noise_px: float = 0.0, joint_noise_rad: float = 0.0,
                       max_tries: int | None = None, supersample: int = 3, image_noise: float = 0.0) -> Capture:
    """Plan and capture up to `n_poses` views of the board lying on the table (:func:`board_spot`) seen by
    hand-mounted `camera` (a camera of `world`, by name), the arm moving it over the board: from HAND_DISTANCE m
    of an aim point around the board centre (HAND_AIM_SPREAD: the board anywhere in the image), the optical axis
    within HAND_MAX_TILT_DEG of the board normal, rolled at random about it. Planning draws
    reachable, collision-free camera poses (POOL_PER_VIEW x `n_poses`, or as many as `max_tries` draws give;
    default 200 x n_poses) from the camera's nominal camera2flange (its current calibration), then captures them
    in the order :class:`robot_wm.perception.calibration_design.ViewDesign` picks; the render uses the arm's
    actual pose. Views carry the flange pose from the measured joints. Random draws come from `rng`."""
    cam = next(c for c in world.cameras if c.name == camera)
    if cam.mount != "hand":
        raise CalibrationError(f"camera {camera!r} is not mounted on the hand (mount: {cam.mount})")
    k, cam2flange = cam.intrinsics, cam.camera2flange
    charuco = Charuco(board_cfg)
    board = TexturedBoard(world, charuco.image(), board_cfg.width, board_cfg.height, board_cfg.thickness)
    board2world = board_spot(world, board_cfg)
    board.place(board2world)
    outline = board2world.transform_points(np.array(
        [[0, 0, 0], [board_cfg.width, 0, 0], [board_cfg.width, board_cfg.height, 0], [0, board_cfg.height, 0]], float))
    centre = board2world.transform_points(np.array([[board_cfg.width / 2, board_cfg.height / 2, 0.0]]))[0]
    kmat = np.array([[k.fx, 0, k.cx], [0, k.fy, k.cy], [0, 0, 1.0]])
    arm = Arm(world)
    tcp2flange = arm.kin.fk(panda.HOME, panda.FLANGE_LINK).inverse() @ arm.kin.fk(panda.HOME)
    flange2camera = cam2flange.inverse()
    cands: list[_Candidate] = []
    infos: list[np.ndarray] = []
    tries, max_tries = 0, max_tries or 200 * n_poses
    try:
        while len(cands) < POOL_PER_VIEW * n_poses and tries < max_tries:
            tries += 1
            dist = rng.uniform(*HAND_DISTANCE)
            spread = HAND_AIM_SPREAD * dist * min(k.width, k.height) / (2 * max(k.fx, k.fy))
            aim = centre + np.r_[rng.uniform(-spread, spread, 2), 0.0]
            # the direction from the aim point to the camera: up, tilted about a random horizontal axis
            axis = np.r_[rng.normal(size=2), 0.0]
            axis /= np.linalg.norm(axis)
            tilt = math.radians(HAND_MAX_TILT_DEG) * math.sqrt(rng.uniform())
            up = Rotation.from_rotvec(axis * tilt).apply([0.0, 0.0, 1.0])
            pos = aim + dist * up
            if pos[2] < HAND_MIN_CAMERA_Z:
                continue
            z = -up  # optical axis towards the aim point
            # roll reference: image down (optical y) away from the robot base, then rolled about z
            y_ref = np.r_[aim[:2], 0.0] - z * float(np.dot(z, np.r_[aim[:2], 0.0]))
            y_ref /= np.linalg.norm(y_ref)
            rot = Rotation.from_rotvec(z * math.radians(rng.uniform(-MAX_ROLL_DEG, MAX_ROLL_DEG))) * \
                Rotation.from_matrix(np.column_stack([np.cross(y_ref, z), y_ref, z]))
            camera2world = Pose(pos, rot.as_quat())
            if not _in_view(camera2world, k, outline, MARGIN_PX):
                continue
            flange2world = camera2world @ flange2camera
            q = arm.ik(flange2world @ tcp2flange, q_seed=None)
            if q is None or arm.check_motion(q[None, :], gripper_width=panda.MAX_OPENING) is not None:
                continue
            cands.append(_Candidate(rot, q))
            infos.append(view_information(kmat, cam2flange.matrix(), board2world.matrix(), flange2world.matrix(),
                                          charuco.corners, "hand"))

        def shoot(cand: _Candidate) -> tuple[View, np.ndarray] | None:
            world.reset_arm(cand.q)
            rgb = render_supersampled(world, cam, outline, supersample)
            if not _in_view(world.camera_pose(cam), k, outline, 0.0):  # the true pose (actual camera2flange)
                return None
            return _measure(charuco, rgb, cand.q, rng, image_noise, corner_noise_px, joint_noise_rad,
                            lambda qm: arm.kin.fk(qm, panda.FLANGE_LINK).matrix())

        views, q_true, q_meas = _designed_views(cands, infos, k.fx, n_poses, shoot)
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
              corner_noise_px: float = 0.0, joint_noise_rad: float = 0.0, supersample: int = 3,
              image_noise: float = 0.0) -> Calibrated:
    """Calibrate camera `camera` of `scene` in simulation: capture `n_poses` views — of the board held by the
    gripper for a fixed camera (:func:`capture_views`), of the board lying on the table for a hand-mounted one
    (:func:`capture_hand_views`) — solve intrinsics and the camera's pose jointly (:func:`calibrate_camera`) and
    write, for `kind` ``intrinsics``, fx, fy, cx, cy (the pose kept from the camera's current calibration) or
    for ``hand-eye`` the intrinsics and the pose: camera2world of a fixed camera, camera2flange (in the file's
    ``camera2world`` field, as the scene contract has it for ``mount: hand``) of a hand-mounted one.
    Raises :class:`CalibrationError` (one line) on bad captures. `seed` drives every random draw."""
    if kind not in ("intrinsics", "hand-eye"):
        raise ValueError(f"kind must be intrinsics or hand-eye (got {kind!r})")
    cal = next((c for c in scene.calibrations if c.name == camera), None)
    if cal is None:
        raise CalibrationError(f"no camera named {camera!r} (scene has {', '.join(c.name for c in scene.calibrations)})")
    if not MIN_VIEWS <= n_poses <= MAX_POSES:
        raise CalibrationError(f"--poses must be >= {MIN_VIEWS} and <= {MAX_POSES} (got {n_poses})")
    mount = scene.mount_of(camera)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    capture = capture_hand_views if mount == "hand" else capture_views
    with World(scene, seed=seed) as world:
        cap = capture(world, camera, board_cfg, n_poses, rng, corner_noise_px, joint_noise_rad,
                      supersample=supersample, image_noise=image_noise)
    if len(cap.views) < MIN_VIEWS:
        where = "is the workspace in view?" if mount == "world" else "can the arm show the camera the table?"
        raise CalibrationError(f"camera {camera!r}: the board was found in only {len(cap.views)} of {cap.tried} "
                               f"candidate poses (need >= {MIN_VIEWS}); {where}")
    charuco = Charuco(board_cfg)
    size = (cal.width, cal.height)
    out = cal.model_dump(exclude_none=True)
    report: dict[str, Any] = {"camera": camera, "kind": kind, "mount": mount, "board": board_cfg.name,
                              "views": len(cap.views), "candidate_poses": cap.tried, "seed": seed,
                              "corner_noise_px": corner_noise_px, "joint_noise_rad": joint_noise_rad,
                              "image_noise": image_noise}
    # both kinds solve jointly through the arm's kinematics: with the board poses tied to the measured joints the
    # focal length is observable from far fewer views than with free board poses (cv2.calibrateCamera, reported
    # as `free_pose_intrinsics`: on 6-15 views of a 15 x 21 cm board it is off by 0.5-2 %)
    result = calibrate_camera(cap.views, charuco, size, methods, mount)
    k = np.array([[result.fx, 0, result.cx], [0, result.fy, result.cy], [0, 0, 1.0]])
    k_free, _, rms_free, sd_free = calibrate_intrinsics(cap.views, charuco, size)
    report.update(reprojection_px_rms=result.reprojection_px_rms, corners=result.corners, sigma=result.sigma,
                  free_pose_intrinsics={"fx": k_free[0, 0], "fy": k_free[1, 1], "cx": k_free[0, 2], "cy": k_free[1, 2],
                                        "reprojection_px_rms": rms_free, "sigma_px": sd_free.tolist()},
                  methods={m: {"camera2world": _pose_dict(d["camera2world"]),
                               "reprojection_px_rms": d["reprojection_px_rms"]} for m, d in result.methods.items()})
    report["target2world" if mount == "hand" else "target2tcp"] = _pose_dict(result.target2tcp)
    if kind == "hand-eye":
        out.pop("look_at", None)
        out["camera2world"] = _pose_dict(result.camera2world)
    out.update(fx=round(float(k[0, 0]), 4), fy=round(float(k[1, 1]), 4), cx=round(float(k[0, 2]), 4),
               cy=round(float(k[1, 2]), 4))
    CalibrationConfig.model_validate(out)  # the contract holds before anything is written
    report["calibrate_wall_s"] = time.perf_counter() - t0
    return Calibrated(out, report, result, cap)
