"""``robot-wm calibrate intrinsics|hand-eye``: calibrate a camera of a scene in simulation with a ChArUco board —
held by the gripper for a fixed camera (eye-to-hand), lying on the table for a hand-mounted one (``mount: hand``,
eye-in-hand; the file then holds camera2flange); writes a calibration file (the contract of
``calibration/*.yaml``) and, next to it, ``OUT.json`` with the residuals, 1-sigma uncertainties and every OpenCV
method's estimate."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from robot_wm.cli.common import check_out_file, load_scene_arg, seed_option, write_json

METHOD_CHOICES = ("tsai", "park", "horaud", "andreff", "daniilidis", "shah", "li", "all")


def _run(kind: str, scene: Path | None, camera: str, poses: int, method: str, seed: int | None, out: Path,
         board: Path | None, corner_noise_px: float, joint_noise_rad: float, json_out: bool) -> None:
    from robot_wm.cli.main import BadInput
    from robot_wm.config import load_calibration
    from robot_wm.config.loader import CALIBRATION_DIR
    from robot_wm.perception.calibration import (
        HANDEYE_METHODS,
        ROBOT_WORLD_METHODS,
        CalibrationError,
        load_board,
    )
    from robot_wm.perception.calibration_capture import calibrate

    command = f"calibrate {kind}"
    if method not in METHOD_CHOICES:
        raise BadInput(f"{command}: --method must be one of {' | '.join(METHOD_CHOICES)} (got {method!r})")
    if corner_noise_px < 0 or joint_noise_rad < 0:
        raise BadInput(f"{command}: --corner-noise-px and --joint-noise-rad must be >= 0")
    check_out_file(command, out)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise BadInput(f"{command}: --out {out}: a calibration file must end in .yaml")
    board_cfg = load_board(board or CALIBRATION_DIR / "targets" / "charuco_board.yaml")
    sc = load_scene_arg(scene, seed)
    methods = HANDEYE_METHODS + ROBOT_WORLD_METHODS if method == "all" else (method,)
    try:
        done = calibrate(sc, camera, board_cfg, kind, poses, methods, sc.config.seed, corner_noise_px,
                         joint_noise_rad)
    except CalibrationError as exc:
        raise BadInput(f"{command}: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# {camera}: calibrated by `robot-wm calibrate {kind}` from {done.report['views']} views of "
              f"{board_cfg.name}; residuals and uncertainties in {out.with_suffix('.json').name}\n")
    out.write_text(header + yaml.safe_dump(done.calibration, sort_keys=False, default_flow_style=None))
    load_calibration(out)  # what was written loads with the project's loader
    write_json(out.with_suffix(".json"), done.report)
    if json_out:
        print(json.dumps({k: done.report[k] for k in ("views", "reprojection_px_rms", "sigma", "calibrate_wall_s")}))
        return
    sigma = done.report["sigma"]
    line = (f"{camera}: {done.report['views']} views, reprojection {done.report['reprojection_px_rms']:.3f} px RMS, "
            f"fx {done.calibration['fx']:.2f} +- {sigma['fx_px']:.2f} px")
    if kind == "hand-eye":
        frame = "on the flange" if done.report["mount"] == "hand" else "in the world"
        line += (f", camera pose {frame} +- {sigma['camera_trans_mm']:.2f} mm / {sigma['camera_rot_deg']:.3f} deg; "
                 "best "
                 f"OpenCV method "
                 f"{min(done.report['methods'], key=lambda m: done.report['methods'][m]['reprojection_px_rms'])}")
    typer.echo(f"{line}; wrote {out} and {out.with_suffix('.json')} ({done.report['calibrate_wall_s']:.1f} s)")


def register(app: typer.Typer) -> None:
    cal_app = typer.Typer(help="Calibrate a camera with a ChArUco board: held by the gripper for a fixed camera, "
                          "lying on the table for a hand-mounted (wrist) camera.",
                          no_args_is_help=True)
    app.add_typer(cal_app, name="calibrate")

    def options(kind: str):
        def cmd(
            scene: Path = typer.Option(None, "--scene", help="Scene file (default: the default scene)."),
            camera: str = typer.Option(..., "--camera", help="Name of the camera to calibrate (fixed or mount: hand)."),
            poses: int = typer.Option(15, "--poses", help="Arm poses to capture (>= 4)."),
            method: str = typer.Option("all", "--method", help="Hand-eye start: "
                                       f"{' | '.join(METHOD_CHOICES)} (all: every OpenCV method, the best "
                                       "by reprojection error starts the joint refinement)."),
            seed: int = seed_option(None),
            out: Path = typer.Option(..., "--out", help="Calibration file to write (.yaml); OUT.json beside it."),
            board: Path = typer.Option(None, "--board", help="Board layout (default "
                                       "calibration/targets/charuco_board.yaml)."),
            corner_noise_px: float = typer.Option(0.0, "--corner-noise-px", help="Simulated corner noise (px, 1 sigma)."),
            joint_noise_rad: float = typer.Option(0.0, "--joint-noise-rad", help="Simulated joint-encoder noise "
                                                  "(rad, 1 sigma)."),
            json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
        ) -> None:
            _run(kind, scene, camera, poses, method, seed, out, board, corner_noise_px, joint_noise_rad, json_out)

        return cmd

    intr = options("intrinsics")
    intr.__doc__ = ("Intrinsics (fx, fy, cx, cy; pinhole) from ChArUco views, solved jointly with the arm's kinematics; the "
                    "camera pose in the file is kept.")
    cal_app.command("intrinsics")(intr)
    he = options("hand-eye")
    he.__doc__ = ("Intrinsics and the camera's pose: in the world for a fixed camera (eye-to-hand), on the flange for a "
                  "hand-mounted one (eye-in-hand); every OpenCV method, then a joint least-squares refinement on "
                  "reprojection error.")
    cal_app.command("hand-eye")(he)
