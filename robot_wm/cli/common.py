"""Helpers shared by subcommands: seed option, scene loading, JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from robot_wm.config import REPO_SCENES_DEFAULT, Scene, load_scene
from robot_wm.config.jsonable import to_jsonable
from robot_wm.config.models import MAX_SEED

SEED_HELP = "Seed for every random draw (overrides the scene's seed)."


def seed_option(default: int | None = 0, help: str = SEED_HELP) -> Any:  # noqa: A002 (typer's name)
    """The ``--seed`` option every command takes: an integer in [0, 2^32 - 1] (a negative or larger seed is a
    usage error, exit status 2, one line)."""
    return typer.Option(default, "--seed", min=0, max=MAX_SEED, help=help)


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing ancestor of `path` (or `path` itself) that is a file, not a folder."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def check_out_dir(command: str, out: Path, option: str = "--out") -> None:
    """Refuse an output folder that is a file, or lies under a file, before any work starts (BadInput)."""
    from robot_wm.cli.main import BadInput

    blocker = _file_in_the_way(out)
    if blocker is not None:
        what = "exists and is not a folder" if blocker == out else f"lies under {blocker}, a file"
        raise BadInput(f"{command}: {option} {out}: {what}")


def check_out_file(command: str, out: Path, option: str = "--out") -> None:
    """Refuse an output file that is a folder or lies under a file, before any work starts (BadInput)."""
    from robot_wm.cli.main import BadInput

    if out.is_dir():
        raise BadInput(f"{command}: {option} {out}: is a folder, expected a file name")
    blocker = _file_in_the_way(out.parent)
    if blocker is not None:
        raise BadInput(f"{command}: {option} {out}: lies under {blocker}, a file")


def load_scene_arg(path: Path | None, seed: int | None, require_objects: bool = False) -> Scene:
    """Load --scene (default: the default scene) and apply --seed."""
    return load_scene(path or REPO_SCENES_DEFAULT, require_objects=require_objects).with_seed(seed)


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write (temp file + rename), so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(data), indent=2) + "\n")
    tmp.replace(path)


def check_backend_and_out(command: str, backend: str, out: Path) -> None:
    """Validate the --backend (local | ray, Ray importable) and --out (a folder or new) options of the
    commands that fan work out to workers; raises BadInput with a one-line message."""
    from robot_wm.cli.main import BadInput

    if backend not in ("local", "ray"):
        raise BadInput(f"{command}: --backend must be local or ray (got {backend!r})")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BadInput(f"{command}: --backend ray needs Ray: pip install 'robot-wm[ray]'") from None
    check_out_dir(command, out)
