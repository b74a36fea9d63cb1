"""``robot-wm bench calibration``: camera calibration in simulation against the truth — fixed cameras
(eye-to-hand) and wrist cameras (eye-in-hand) — and the in-loop check of a bumped fixed camera
(:class:`robot_wm.control.faults.CalibrationMonitor`).

Calibration: every camera of the scene(s) (default ``sim_scenes/two_blocks.yaml``: front and side, and the wrist
camera of ``sim_scenes/wrist_camera.yaml``; a calibration shared by two scenes is calibrated once) with `POSES`
views of the ChArUco board under image noise (`IMAGE_NOISE`, on the render before detection), corner noise
(`CORNER_NOISE_PX`, on top of the detector's own error) and joint-encoder noise (`JOINT_NOISE_RAD`). Errors are
against the scene's calibration files (the simulator's truth: camera2world of a fixed camera, camera2flange of a
hand-mounted one), averaged over the cameras of each mount; every OpenCV hand-eye method under ``methods``
({scene/camera: {method: [trans_mm, rot_deg]}}), the joint refinement as ``handeye_*_fixed`` and
``handeye_*_wrist``. ``reprojection_px_rms``, ``focal_err_pct`` and ``calibrate_wall_s`` are of the fixed cameras
(``*_wrist``: of the wrist cameras). Unseen cameras: ``*_random`` (mean; ``*_random_max``: the worst) over
`RANDOM_CAMERAS` fixed cameras drawn by :mod:`robot_wm.config.random_camera` (any azimuth not blocked by the
robot, elevation 25-85 deg, 0.6-1.5 m from the workspace, fx 450-750 px, principal point up to 20 px off
centre), each calibrated alone in the default scene from its file (the truth) — views are planned from the
nominal calibration, as a user's rough guess.

Bump check (fixed cameras): the monitor is given the *estimated* calibration; the camera is rendered from its true pose
(undisturbed runs, false alarms) or from a pose bumped by 1 cm (half the runs) or 1 deg (the other half) in a
random direction, at random arm configurations around HOME. ``bump_*`` with the monitor's defaults (the 6-DoF
pose fit of the camera's depth to the table and robot, 4 mm / 0.5 deg, and the table / robot-offset checks,
15 mm / 1 deg), ``bump_*_table_robot`` with the table / robot-offset checks alone (the monitor before the pose
fit: made for a few-cm move) on the same looks.

Pick success: `PICK_RUNS` pick-place episodes (rgbd perception, planned controller) on the first scene, each seed
run twice: perceiving through the estimated calibrations of its fixed cameras (the frames rendered from the truth,
labelled with the estimates) and through the true ones: ``pick_success_estimated`` vs ``pick_success_true``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config import REPO_SCENES_DEFAULT, load_scene, read_yaml, scene_from_dict
from robot_wm.config.loader import CALIBRATION_DIR, REPO_SCENES_DIR
from robot_wm.config.random_camera import random_calibrations, write_calibrations
from robot_wm.control.faults import CalibrationMonitor
from robot_wm.geometry import Intrinsics, Pose, panda
from robot_wm.interface import Observation
from robot_wm.perception.calibration import load_board, pose_error
from robot_wm.perception.calibration_capture import calibrate
from robot_wm.sim import Camera, World

POSES = 15
CORNER_NOISE_PX = 0.1  # 1 sigma, px
JOINT_NOISE_RAD = 5e-5  # 1 sigma, rad (about 10 encoder counts of a 17-bit encoder)
IMAGE_NOISE = 2.0  # 1 sigma, grey levels, per pixel and channel of the render, before corner detection
BUMP_M, BUMP_DEG = 0.01, 1.0
ARM_SPREAD_RAD = 0.3  # random arm configurations: HOME + N(0, this), clipped to the limits
# the fixed cameras of the default scene (front, side) and the wrist camera of wrist_camera.yaml (its front camera
# is the same calibration as two_blocks' and is not calibrated twice)
DEFAULT_SCENES = [REPO_SCENES_DEFAULT, REPO_SCENES_DIR / "wrist_camera.yaml"]
BASELINE = {"shift_m": None, "turn_deg": None}  # the monitor without its pose fit, on the same looks


def _bump_runs(scene, camera: str, est_pose: Pose, est_k: Intrinsics, runs: int, rng: np.random.Generator
               ) -> tuple[float, float, float, float]:
    """(detection rate over `runs` bumped looks, false-alarm rate over `runs` undisturbed looks) of the default
    monitor, then of the BASELINE one (no pose fit)."""
    base = np.asarray(scene.config.robot.base_position, float)
    monitor, baseline = CalibrationMonitor(base_position=base), CalibrationMonitor(base_position=base, **BASELINE)
    hits = alarms = hits_b = alarms_b = 0
    try:
        with World(scene, seed=int(rng.integers(2**31))) as world:
            cam = next(c for c in world.cameras if c.name == camera)
            for i in range(2 * runs):
                q = np.clip(panda.HOME + rng.normal(0.0, ARM_SPREAD_RAD, 7), panda.LOWER, panda.UPPER)
                world.reset_arm(q)
                bumped = i % 2 == 1
                seen = copy.copy(cam)
                if bumped:
                    axis = rng.normal(size=3)
                    axis /= np.linalg.norm(axis)
                    if (i // 2) % 2 == 0:
                        seen.camera2world = Pose(cam.camera2world.position + BUMP_M * axis, cam.camera2world.quaternion)
                    else:
                        rot = Rotation.from_rotvec(axis * math.radians(BUMP_DEG)) * cam.camera2world.rotation
                        seen.camera2world = Pose(cam.camera2world.position, rot.as_quat())
                frame = world.render(seen, segmentation=False)
                frame = dataclasses.replace(frame, camera2world=est_pose, intrinsics=est_k)
                obs = Observation({camera: frame}, world.joint_positions(), world.gripper_width(), world.time)
                flagged, flagged_b = bool(monitor.disagreement(obs)), bool(baseline.disagreement(obs))
                hits, hits_b = hits + (flagged and bumped), hits_b + (flagged_b and bumped)
                alarms, alarms_b = alarms + (flagged and not bumped), alarms_b + (flagged_b and not bumped)
    finally:
        monitor.close()
        baseline.close()
    return hits / runs, alarms / runs, hits_b / runs, alarms_b / runs


PICK_RUNS = 3  # pick-place episodes with the estimated and with the true fixed-camera calibrations (same seeds)


class _BelievedWorld(World):
    """A World whose observations carry `estimates` ({camera name: (camera2world Pose, Intrinsics)}) instead of
    the true poses and intrinsics the frames were rendered with: the controller perceives through the estimated
    calibration. Bench only (the truth stays in the renderer)."""

    estimates: dict[str, tuple[Pose, Intrinsics]] = {}

    def observe(self, render: bool = True, segmentation: bool = True) -> Observation:
        obs = super().observe(render, segmentation)
        for name, frame in list(obs.frames.items()):
            if name in self.estimates:
                pose, k = self.estimates[name]
                obs.frames[name] = dataclasses.replace(frame, camera2world=pose, intrinsics=k)
        return obs


def _pick_success(scene, estimates: dict[str, tuple[Pose, Intrinsics]], seeds: list[int]) -> tuple[float, float]:
    """(mean success rate with the estimated calibrations, with the true ones) of pick-place episodes
    (``control.demo.run_demo``, rgbd perception, planned controller) on `scene` at each of `seeds`."""
    import robot_wm.control.demo as demo

    rates: dict[bool, list[float]] = {True: [], False: []}
    original = demo.World
    try:
        for s in seeds:
            for use_estimate in (True, False):
                _BelievedWorld.estimates = estimates if use_estimate else {}
                demo.World = _BelievedWorld
                rates[use_estimate].append(float(demo.run_demo(scene.with_seed(s))["success_rate"]))
    finally:
        demo.World = original
        _BelievedWorld.estimates = {}
    return float(np.mean(rates[True])), float(np.mean(rates[False]))


def _as_good(row: dict[str, Any]) -> bool:
    """The joint refinement is at least as good as the best OpenCV method on translation AND on rotation (each
    against the best method for it) for one camera."""
    return (row["handeye_trans_mm"] <= row["best_opencv_trans_mm"]
            and row["handeye_rot_deg"] <= row["best_opencv_rot_deg"])


def _calibration_row(scene, cal, board, poses: int, seed: int) -> tuple[dict[str, Any], Any]:
    """Calibrate camera `cal` of `scene` (hand-eye, `poses` views, the bench's imperfections) and compare with
    the truth: (a row of errors, the solver's result). The row's ``methods``: {method: [trans_mm, rot_deg]}."""
    t0 = time.perf_counter()
    done = calibrate(scene, cal.name, board, "hand-eye", poses, seed=seed, corner_noise_px=CORNER_NOISE_PX,
                     joint_noise_rad=JOINT_NOISE_RAD, image_noise=IMAGE_NOISE)
    wall = time.perf_counter() - t0
    res = done.result
    # the truth, from camera2world or look_at: camera2world of a fixed camera, camera2flange of a hand one
    true_pose = Camera(cal).camera2world.matrix()
    dt, dr = pose_error(res.camera2world, true_pose)
    per = {m: list(pose_error(d["camera2world"], true_pose)) for m, d in res.methods.items()}
    return {"reprojection_px_rms": res.reprojection_px_rms,
            "focal_err_pct": 100 * max(abs(res.fx / cal.fx - 1), abs(res.fy / cal.fy - 1)),
            "handeye_trans_mm": dt, "handeye_rot_deg": dr,
            "best_opencv_trans_mm": min(v[0] for v in per.values()),
            "best_opencv_rot_deg": min(v[1] for v in per.values()),
            "sigma_trans_mm": res.sigma["camera_trans_mm"], "sigma_rot_deg": res.sigma["camera_rot_deg"],
            "calibrate_wall_s": wall, "views": res.views, "methods": per}, res


RANDOM_CAMERAS = 8  # fixed cameras drawn by robot_wm.config.random_camera, calibrated in the default scene
RANDOM_CAMERA_STREAM = 21  # seed-sequence entry of their draws (the other draws are untouched)


def _random_camera_rows(seed: int, n: int, board, poses: int) -> list[dict[str, Any]]:
    """Rows of :func:`_calibration_row` for `n` cameras drawn by ``random_calibrations`` (any azimuth,
    elevation 25-85 deg, 0.6-1.5 m, fx 450-750 px, principal point up to 20 px off), each alone in the default
    scene, from ``default_rng([seed, RANDOM_CAMERA_STREAM])``."""
    rng = np.random.default_rng([seed, RANDOM_CAMERA_STREAM])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            draw = int(rng.integers(2**31))
            names = write_calibrations(random_calibrations(draw, 1, "none"), tmp, f"c{i}")
            data = read_yaml(REPO_SCENES_DEFAULT) | {"name": f"random_camera_{i}",
                                                     "cameras": [{"calibration": names[0]}]}
            scene = scene_from_dict(data, data["name"], Path(tmp)).with_seed(draw)
            row, _ = _calibration_row(scene, scene.calibrations[0], board, poses, int(rng.integers(2**31)))
            rows.append(row)
    return rows


def run(scenes: list[Path] | None, seed: int, quick: bool) -> dict[str, Any]:
    board = load_board(CALIBRATION_DIR / "targets" / "charuco_board.yaml")
    poses = 6 if quick else POSES
    bump_runs = 10 if quick else 100
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    wrist_rows: list[dict[str, Any]] = []
    methods: dict[str, dict[str, list[float]]] = {}
    pick_scene, pick_estimates = None, {}  # the first scene's fixed cameras, for the pick-place comparison
    done_cams: set[tuple[str, str]] = set()  # (mount, calibration): a camera shared by scenes is calibrated once
    for path in scenes or DEFAULT_SCENES:
        scene = load_scene(path).with_seed(seed)
        cams = [(c, m) for c, m in zip(scene.calibrations, scene.mounts, strict=True)
                if (m, c.model_dump_json()) not in done_cams]
        for cal, mount in cams[:1] if quick else cams:
            done_cams.add((mount, cal.model_dump_json()))
            row, res = _calibration_row(scene, cal, board, poses, int(rng.integers(2**31)))
            methods[f"{scene.name}/{cal.name}"] = row.pop("methods")
            if mount == "hand":  # the bump check is of fixed cameras (a wrist camera moves by design)
                wrist_rows.append(row)
                continue
            est_k = Intrinsics(cal.width, cal.height, res.fx, res.fy, res.cx, res.cy)
            if pick_scene is None or pick_scene.name == scene.name:
                pick_scene = scene
                pick_estimates[cal.name] = (res.camera2world_pose(), est_k)
            det, fa, det_b, fa_b = _bump_runs(scene, cal.name, res.camera2world_pose(), est_k, bump_runs, rng)
            rows.append(row | {"bump_detection_rate": det, "bump_false_alarm_rate": fa,
                               "bump_detection_rate_table_robot": det_b, "bump_false_alarm_rate_table_robot": fa_b})
    if not rows:
        raise ValueError("bench calibration: no fixed camera in the scenes")
    fixed_name = {"handeye_trans_mm": "handeye_trans_mm_fixed", "handeye_rot_deg": "handeye_rot_deg_fixed",
                  "best_opencv_trans_mm": "best_opencv_trans_mm_fixed", "best_opencv_rot_deg": "best_opencv_rot_deg_fixed"}
    out: dict[str, Any] = {fixed_name.get(f, f): float(np.mean([r[f] for r in rows])) for f in rows[0] if f != "views"}
    out.update(poses=poses, cameras=len(rows), views_min=int(min(r["views"] for r in rows)),
               corner_noise_px=CORNER_NOISE_PX, joint_noise_rad=JOINT_NOISE_RAD, image_noise=IMAGE_NOISE,
               bump_runs=bump_runs,
               handeye_trans_mm_fixed_max=float(max(r["handeye_trans_mm"] for r in rows)),
               handeye_rot_deg_fixed_max=float(max(r["handeye_rot_deg"] for r in rows)),
               joint_at_least_as_good=bool(all(_as_good(r) for r in rows)))
    if wrist_rows:
        for f in ("handeye_trans_mm", "handeye_rot_deg", "best_opencv_trans_mm", "best_opencv_rot_deg",
                  "reprojection_px_rms", "focal_err_pct", "sigma_trans_mm", "sigma_rot_deg", "calibrate_wall_s"):
            out[f"{f}_wrist"] = float(np.mean([r[f] for r in wrist_rows]))
        out.update(cameras_wrist=len(wrist_rows), views_min_wrist=int(min(r["views"] for r in wrist_rows)),
                   joint_at_least_as_good_wrist=bool(all(_as_good(r) for r in wrist_rows)))
    drawn = _random_camera_rows(seed, 1 if quick else RANDOM_CAMERAS, board, poses)
    for f in ("handeye_trans_mm", "handeye_rot_deg", "best_opencv_trans_mm", "best_opencv_rot_deg",
              "reprojection_px_rms", "focal_err_pct", "calibrate_wall_s"):
        out[f"{f}_random"] = float(np.mean([r[f] for r in drawn]))
    for i, r in enumerate(drawn):
        methods[f"random_camera_{i}"] = r.pop("methods")
    out.update(cameras_random=len(drawn),
               handeye_trans_mm_random_max=float(max(r["handeye_trans_mm"] for r in drawn)),
               handeye_rot_deg_random_max=float(max(r["handeye_rot_deg"] for r in drawn)),
               joint_at_least_as_good_random=bool(all(_as_good(r) for r in drawn)))
    pick_seeds = [int(v) for v in rng.integers(2**31, size=1 if quick else PICK_RUNS)]
    t0 = time.perf_counter()
    est, true = _pick_success(pick_scene, pick_estimates, pick_seeds)
    out.update(pick_success_estimated=est, pick_success_true=true, pick_runs=len(pick_seeds),
               pick_scene=pick_scene.name, pick_wall_s=time.perf_counter() - t0)
    out["methods"] = methods
    return out
