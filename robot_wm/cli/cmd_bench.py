"""``robot-wm bench AREA``: speed and accuracy benchmarks, as a table or one JSON object."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from robot_wm.bench import AREAS
from robot_wm.cli.common import seed_option
from robot_wm.config import load_scene
from robot_wm.config.jsonable import to_jsonable


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
    def bench(
        ctx: typer.Context,
        area: str = typer.Argument(..., help=f"One of: {', '.join(AREAS)}."),
        scenes: list[Path] = typer.Option(None, "--scenes", help="Contract scene files to run on instead of the "
                                                                 "defaults: --scenes A.yaml B.yaml ..."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
        seed: int = seed_option(0),
        quick: bool = typer.Option(False, "--quick", help="Fewer repetitions (smoke test, not for reporting)."),
    ) -> None:
        """Measure an area of the stack against its targets and baselines."""
        from robot_wm.cli.main import BadInput

        if ctx.args:  # `--scenes A B C`: click takes A for the option and leaves B C as extra arguments
            if not scenes:
                raise BadInput(f"bench: unexpected arguments {' '.join(ctx.args)}")
            scenes = [*scenes, *map(Path, ctx.args)]
        if area not in AREAS:
            raise BadInput(f"bench: AREA must be one of {', '.join(AREAS)} (got {area!r})")
        for path in scenes or []:
            load_scene(path)  # every scene file checked (one line, exit 2) before any work starts
        module_name = f"robot_wm.bench.{area.replace('-', '_')}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise BadInput(f"bench: area {area!r} has no benchmark yet") from None
        extra = {}
        if "cli_main" in inspect.signature(module.run).parameters:  # benches of the CLI itself get its entry point
            from robot_wm.cli.main import main as cli_main

            extra["cli_main"] = cli_main
        result = to_jsonable(module.run(list(scenes) if scenes else None, seed, quick, **extra))
        if json_out:
            print(json.dumps(result))
            return
        table = Table(title=f"robot-wm bench {area}")
        table.add_column("field")
        table.add_column("value", justify="right")
        for key, value in result.items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        Console().print(table)
