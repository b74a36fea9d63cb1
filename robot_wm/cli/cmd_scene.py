"""``robot-wm scene ...``: generate and check scene files."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from robot_wm.cli.common import SEED_HELP
from robot_wm.config import load_scene, scene_from_dict
from robot_wm.config.random_scene import push_to_goal_scene, random_scene, singulate_scene

TASKS = ("pick_place", "push_to_goal", "singulate")


def register(app: typer.Typer) -> None:
    scene_app = typer.Typer(help="Generate and validate scene files.", no_args_is_help=True)
    app.add_typer(scene_app, name="scene")

    @scene_app.command("random")
    def random_cmd(
        seed: int = typer.Option(0, "--seed", help=SEED_HELP),
        objects: int = typer.Option(4, "--objects", min=1, max=12, help="Number of objects."),
        out: Path = typer.Option(..., "--out", help="Scene file to write (YAML)."),
        heldout: bool = typer.Option(False, "--heldout", help="Draw random_urdfs 700-999 (evaluation set) instead."),
        task: str = typer.Option("pick_place", "--task", help="pick_place (--objects random objects), "
                                 "push_to_goal (one object to push to a goal pose, 0-2 distractors) or singulate "
                                 "(flush blocks and a block against a wall, to pick)."),
    ) -> None:
        """Write a contract-valid scene drawn from the training object set (or the held-out set)."""
        from robot_wm.cli.main import BadInput

        if task not in TASKS:
            raise BadInput(f"scene random: --task must be one of {', '.join(TASKS)} (got {task!r})")
        if task == "push_to_goal":
            data = push_to_goal_scene(seed, heldout=heldout)
        elif task == "singulate":
            data = singulate_scene(seed, heldout=heldout)
        else:
            data = random_scene(seed, objects, heldout=heldout)
        scene_from_dict(data, str(out), out.parent.resolve())  # validate before writing
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
        typer.echo(f"wrote {out} ({task}, {len(data['objects'])} objects, seed {seed})", err=True)

    @scene_app.command("check")
    def check_cmd(files: list[Path] = typer.Argument(..., help="Scene files.")) -> None:
        """Validate scene files; prints one line per file, exits 2 on the first bad one."""
        for f in files:
            sc = load_scene(f)
            typer.echo(f"{f}: ok ({len(sc.config.objects)} objects, {len(sc.calibrations)} cameras)")
