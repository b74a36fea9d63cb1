"""``robot-wm bench calibration``: fixed-camera (eye-to-hand) calibration in simulation against the truth, and
the in-loop check of a bumped camera (:class:`robot_wm.control.faults.CalibrationMonitor`).

Calibration: every camera of the scene(s) (default ``sim_scenes/two_blocks.yaml``: front and side) is
calibrated with `POSES` views of the held ChArUco board under corner noise (`CORNER_NOISE_PX`, on top of the
detector's own error on the renders) and joint-encoder noise (`JOINT_NOISE_RAD`). Errors are against the
scene's calibration files (the simulator's truth), averaged over the cameras; every OpenCV hand-eye method under
``methods`` ({camera: {method: [trans_mm, rot_deg]}}), the joint refinement as ``handeye_*_fixed``.

Bump check: the monitor is given the *estimated* calibration; the camera is rendered from its true pose
(undisturbed runs, false alarms) or from a pose bumped by 1 cm (half the runs) or 1 deg (the other half) in a
random direction, at random arm configurations around HOME. ``bump_*`` with the monitor's default limits
(15 mm, 1 deg: made for a few-cm move), ``bump_*_tight`` with TIGHT limits on the same looks.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.config import REPO_SCENES_DEFAULT, load_scene
from robot_wm.config.loader import CALIBRATION_DIR
from robot_wm.control.faults import CalibrationMonitor
from robot_wm.geometry import Intrinsics, Pose, panda
from robot_wm.interface import Observation
from robot_wm.perception.calibration import load_board, pose_error
from robot_wm.perception.calibration_capture import calibrate
from robot_wm.sim import Camera, World

POSES = 15
CORNER_NOISE_PX = 0.1  # 1 sigma, px
JOINT_NOISE_RAD = 5e-5  # 1 sigma, rad (about 10 encoder counts of a 17-bit encoder)
BUMP_M, BUMP_DEG = 0.01, 1.0
ARM_SPREAD_RAD = 0.3  # random arm configurations: HOME + N(0, this), clipped to the limits
TIGHT = {"tol_m": 0.005, "tilt_deg": 0.5}  # a second, tighter monitor on the same looks (the default: 15 mm, 1 deg)


def _bump_runs(scene, camera: str, est_pose: Pose, est_k: Intrinsics, runs: int, rng: np.random.Generator
               ) -> tuple[float, float, float, float]:
    """(detection rate over `runs` bumped looks, false-alarm rate over `runs` undisturbed looks) of the default
    monitor, then of the TIGHT one."""
    base = np.asarray(scene.config.robot.base_position, float)
    monitor, tight = CalibrationMonitor(base_position=base), CalibrationMonitor(base_position=base, **TIGHT)
    hits = alarms = hits_t = alarms_t = 0
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
                flagged, flagged_t = bool(monitor.disagreement(obs)), bool(tight.disagreement(obs))
                hits, hits_t = hits + (flagged and bumped), hits_t + (flagged_t and bumped)
                alarms, alarms_t = alarms + (flagged and not bumped), alarms_t + (flagged_t and not bumped)
    finally:
        monitor.close()
        tight.close()
    return hits / runs, alarms / runs, hits_t / runs, alarms_t / runs


def run(scenes: list[Path] | None, seed: int, quick: bool) -> dict[str, Any]:
    board = load_board(CALIBRATION_DIR / "targets" / "charuco_board.yaml")
    poses = 6 if quick else POSES
    bump_runs = 10 if quick else 100
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    methods: dict[str, dict[str, list[float]]] = {}
    for path in scenes or [REPO_SCENES_DEFAULT]:
        scene = load_scene(path).with_seed(seed)
        cals = scene.calibrations[:1] if quick else scene.calibrations
        for cal in cals:
            t0 = time.perf_counter()
            done = calibrate(scene, cal.name, board, "hand-eye", poses, seed=int(rng.integers(2**31)),
                             corner_noise_px=CORNER_NOISE_PX, joint_noise_rad=JOINT_NOISE_RAD)
            wall = time.perf_counter() - t0
            res = done.result
            true_pose = Camera(cal).camera2world.matrix()  # the truth, from camera2world or look_at
            dt, dr = pose_error(res.camera2world, true_pose)
            per = {m: list(pose_error(d["camera2world"], true_pose)) for m, d in res.methods.items()}
            key = f"{scene.name}/{cal.name}"
            methods[key] = per
            est_k = Intrinsics(cal.width, cal.height, res.fx, res.fy, res.cx, res.cy)
            det, fa, det_t, fa_t = _bump_runs(scene, cal.name, res.camera2world_pose(), est_k, bump_runs, rng)
            rows.append({"reprojection_px_rms": res.reprojection_px_rms,
                         "focal_err_pct": 100 * max(abs(res.fx / cal.fx - 1), abs(res.fy / cal.fy - 1)),
                         "handeye_trans_mm_fixed": dt, "handeye_rot_deg_fixed": dr,
                         "best_opencv_trans_mm_fixed": min(v[0] for v in per.values()),
                         "best_opencv_rot_deg_fixed": min(v[1] for v in per.values()),
                         "sigma_trans_mm": res.sigma["camera_trans_mm"], "sigma_rot_deg": res.sigma["camera_rot_deg"],
                         "bump_detection_rate": det, "bump_false_alarm_rate": fa,
                         "bump_detection_rate_tight": det_t, "bump_false_alarm_rate_tight": fa_t, "calibrate_wall_s": wall,
                         "views": res.views})
    out: dict[str, Any] = {f: float(np.mean([r[f] for r in rows])) for f in rows[0] if f != "views"}
    out.update(poses=poses, cameras=len(rows), views_min=int(min(r["views"] for r in rows)),
               corner_noise_px=CORNER_NOISE_PX, joint_noise_rad=JOINT_NOISE_RAD, bump_runs=bump_runs,
               handeye_trans_mm_fixed_max=float(max(r["handeye_trans_mm_fixed"] for r in rows)),
               handeye_rot_deg_fixed_max=float(max(r["handeye_rot_deg_fixed"] for r in rows)),
               joint_at_least_as_good=bool(all(r["handeye_trans_mm_fixed"] <= r["best_opencv_trans_mm_fixed"]
                                               for r in rows)),
               methods=methods)
    return out
