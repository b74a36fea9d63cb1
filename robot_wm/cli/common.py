"""Helpers shared by subcommands: seed option, scene loading, JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robot_wm.config import REPO_SCENES_DEFAULT, Scene, load_scene
from robot_wm.config.jsonable import to_jsonable

SEED_HELP = "Seed for every random draw (overrides the scene's seed)."


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
    if out.exists() and not out.is_dir():
        raise BadInput(f"{command}: --out {out} exists and is not a folder")
