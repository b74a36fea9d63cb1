"""``robot-wm scene ...``: generate and check scene files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
import yaml

from robot_wm.cli.common import check_out_file, seed_option
from robot_wm.config import load_scene, scene_from_dict
from robot_wm.config.random_camera import DEPTH_NOISES, N_CAMERAS, random_calibrations, write_calibrations
from robot_wm.config.random_scene import push_to_goal_scene, random_scene, singulate_scene

TASKS = ("pick_place", "push_to_goal", "singulate")
CAMERA_CHOICES = ("default", "random", *(str(n) for n in range(N_CAMERAS[0], N_CAMERAS[1] + 1)))


def register(app: typer.Typer) -> None:
    scene_app = typer.Typer(help="Generate and validate scene files.", no_args_is_help=True)
    app.add_typer(scene_app, name="scene")

    @scene_app.command("random")
    def random_cmd(
        seed: int = seed_option(0),
        objects: int = typer.Option(4, "--objects", min=1, max=12, help="Number of objects."),
        out: Path = typer.Option(..., "--out", help="Scene file to write (YAML)."),
        heldout: bool = typer.Option(False, "--heldout", help="Draw random_urdfs 700-999 (evaluation set) instead."),
        task: str = typer.Option("pick_place", "--task", help="pick_place (--objects random objects), "
                                 "push_to_goal (one object to push to a goal pose, 0-2 distractors) or singulate "
                                 "(flush blocks and a block against a wall, to pick)."),
        cameras: str = typer.Option("default", "--cameras", help="default (calibration/front.yaml and side.yaml), "
                                    "random (1-3 cameras drawn around the workspace from --seed) or 1, 2, 3 "
                                    "(that many drawn); drawn calibrations are written next to --out as "
                                    "OUTSTEM_randomI.yaml."),
        depth_noise: str = typer.Option(None, "--depth-noise", help="Depth noise of the drawn cameras: "
                                        f"{' | '.join(DEPTH_NOISES)} (default: drawn per scene)."),
    ) -> None:
        """Write a contract-valid scene drawn from the training object set (or the held-out set)."""
        from robot_wm.cli.main import BadInput

        if task not in TASKS:
            raise BadInput(f"scene random: --task must be one of {', '.join(TASKS)} (got {task!r})")
        if cameras not in CAMERA_CHOICES:
            raise BadInput(f"scene random: --cameras must be one of {', '.join(CAMERA_CHOICES)} (got {cameras!r})")
        if depth_noise is not None and depth_noise not in DEPTH_NOISES:
            raise BadInput(f"scene random: --depth-noise must be one of {', '.join(DEPTH_NOISES)} "
                           f"(got {depth_noise!r})")
        if depth_noise is not None and cameras == "default":
            raise BadInput("scene random: --depth-noise needs drawn cameras (--cameras random or 1-3); "
                           "the default cameras keep their calibration files")
        check_out_file("scene random", out)
        if task == "push_to_goal":
            data = push_to_goal_scene(seed, heldout=heldout)
        elif task == "singulate":
            data = singulate_scene(seed, heldout=heldout)
        else:
            data = random_scene(seed, objects, heldout=heldout)
        drawn = []
        if cameras != "default":
            drawn = random_calibrations(seed, None if cameras == "random" else int(cameras), depth_noise)
            data["cameras"] = [{"calibration": f"{out.stem}_{c['name']}.yaml"} for c in drawn]
        with tempfile.TemporaryDirectory(prefix="robot_wm_scene_") as tmp:  # validate before writing
            write_calibrations(drawn, tmp, out.stem)
            scene_from_dict(data, str(out), Path(tmp) if drawn else out.parent.resolve(), check_placement=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        written = write_calibrations(drawn, out.parent, out.stem)
        out.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
        cams = (f"; {len(drawn)} drawn camera(s), depth noise {drawn[0]['depth_noise']}: {', '.join(written)}"
                if drawn else "")
        typer.echo(f"wrote {out} ({task}, {len(data['objects'])} objects, seed {seed}{cams})", err=True)

    @scene_app.command("check")
    def check_cmd(files: list[Path] = typer.Argument(..., help="Scene files.")) -> None:
        """Validate scene files before anything runs: keys and values, calibrations, every URDF (XML, finite
        numbers) and mesh (present, finite vertices), objects inside the workspace, above the table and not
        overlapping. Prints one line per file, exits 2 on the first bad one."""
        for f in files:
            sc = load_scene(f)
            typer.echo(f"{f}: ok ({len(sc.config.objects)} objects, {len(sc.calibrations)} cameras)")
