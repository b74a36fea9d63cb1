"""``robot-wm check FILE...``: validate any input file before work starts, with the loader the commands use.

Kinds: scene and calibration files, launch files, the planner YAMLs (``planners/pick_place.yaml``,
``mpc.yaml``, ``grasp_planner.yaml``, ``shake_test.yaml``), grasp files (.json / .npz), model files
(world model, grasp quality), collected data folders and URDFs. The kind is told from the file (extension,
a model's header, a YAML file's keys) unless ``--kind`` names it. One line per good file; the first bad one
ends the command with one line on stderr (``error: <file>: <field>: <what>``) and exit status 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

KINDS = ("scene", "calibration", "launch", "pick-place", "mpc", "grasp-planner", "shake-test", "grasps",
         "world-model", "grasp-quality", "dataset", "urdf")


def _yaml_models() -> dict[str, Any]:
    """YAML kind -> its pydantic model (whose keys tell a file's kind)."""
    from robot_wm.config import (
        CalibrationConfig,
        LaunchConfig,
        MPCConfig,
        PickPlacePlannerConfig,
        SceneConfig,
    )
    from robot_wm.grasping.config import ShakeConfig

    return {"scene": SceneConfig, "calibration": CalibrationConfig, "launch": LaunchConfig,
            "pick-place": PickPlacePlannerConfig, "mpc": MPCConfig, "shake-test": ShakeConfig}


def detect_kind(path: Path) -> str:
    """The kind of input file `path` is (one of KINDS); BadInput when it cannot be told."""
    from robot_wm.cli.main import BadInput
    from robot_wm.config import read_yaml

    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "dataset"
        raise BadInput(f"check: {path}: a folder without manifest.json (not a collected data folder)")
    suffix = path.suffix.lower()
    if suffix == ".urdf":
        return "urdf"
    if suffix in (".json", ".npz"):
        return "grasps"
    if suffix == ".safetensors":
        return _model_kind(path)
    if suffix in (".yaml", ".yml"):
        data = read_yaml(path)
        if isinstance(data, dict):
            if "grasp_planner" in data:
                return "grasp-planner"
            scores = {k: len(set(map(str, data)) & set(m.model_fields)) for k, m in _yaml_models().items()}
            best = max(scores.values())
            winners = [k for k, v in scores.items() if v == best]
            if best > 0 and len(winners) == 1:
                return winners[0]
        raise BadInput(f"check: {path}: cannot tell which kind of YAML file this is; give --kind "
                       f"({', '.join(KINDS[:7])})")
    raise BadInput(f"check: {path}: cannot tell the kind from the extension {suffix or '(none)'!r}; give --kind")


def _model_kind(path: Path) -> str:
    """world-model or grasp-quality, from a safetensors file's robot_wm header (world-model when unreadable:
    its loader then names the problem)."""
    from robot_wm.grasping.quality import FORMAT as QUALITY_FORMAT

    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            header = json.loads((f.metadata() or {}).get("robot_wm", "{}"))
    except Exception:  # noqa: BLE001 - any unreadable file: the world-model loader reports it
        return "world-model"
    return "grasp-quality" if isinstance(header, dict) and header.get("format") == QUALITY_FORMAT else "world-model"


def check_file(path: Path, kind: str) -> str:
    """Load `path` as `kind` with the loader the commands use; returns a short summary, raises ConfigError."""
    checks: dict[str, Callable[[Path], str]] = {
        "scene": _scene, "calibration": _calibration, "launch": _launch, "pick-place": _pick_place,
        "mpc": _mpc, "grasp-planner": _grasp_planner, "shake-test": _shake_test, "grasps": _grasps,
        "world-model": _world_model, "grasp-quality": _grasp_quality, "dataset": _dataset, "urdf": _urdf}
    return checks[kind](path)


def _scene(path: Path) -> str:
    from robot_wm.config import load_scene

    sc = load_scene(path)
    return f"{len(sc.config.objects)} objects, {len(sc.calibrations)} cameras"


def _calibration(path: Path) -> str:
    from robot_wm.config import load_calibration

    cal = load_calibration(path)
    return f"{cal.width}x{cal.height}"


def _launch(path: Path) -> str:
    from robot_wm.config import load_launch

    return f"scene {load_launch(path).scene.name}"


def _pick_place(path: Path) -> str:
    from robot_wm.config import load_planner

    return load_planner(path).name


def _mpc(path: Path) -> str:
    from robot_wm.config import load_mpc_config

    return f"{load_mpc_config(path).samples} samples"


def _grasp_planner(path: Path) -> str:
    from robot_wm.config import load_grasp_planner_config

    load_grasp_planner_config(path)
    return "grasp_planner"


def _shake_test(path: Path) -> str:
    from robot_wm.grasping.config import load_shake_config

    return f"protocol {load_shake_config(path).protocol}"


def _grasps(path: Path) -> str:
    from robot_wm.grasping.grasp import load_grasps

    grasps = load_grasps(path)
    return f"{sum(map(len, grasps.values()))} grasps"


def _world_model(path: Path) -> str:
    from robot_wm.model.world_model import WorldModel

    model = WorldModel.load(path)
    return f"{model.k} members" + (", expected-turn readout" if model.turn_readout is not None else "")


def _grasp_quality(path: Path) -> str:
    from robot_wm.grasping.quality import QualityModel

    return f"{QualityModel.load(path).w1.shape[0]} members"


def _dataset(path: Path) -> str:
    from robot_wm.model.collect import scene_descriptors
    from robot_wm.model.dataset import load_dataset

    return f"{len(load_dataset(path, scene_descriptors)['action'])} transitions"


def _urdf(path: Path) -> str:
    from robot_wm.config.loader import check_urdf

    check_urdf(path)
    return "URDF and meshes"


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check(
        files: list[Path] = typer.Argument(..., help="Files (or collected data folders) to validate."),
        kind: str = typer.Option(None, "--kind", help=f"What the files are: {' | '.join(KINDS)} "
                                 "(default: told from each file)."),
    ) -> None:
        """Validate input files (scenes, calibrations, launch and planner YAMLs, grasp files, model files, data
        folders, URDFs) with the loaders the commands use; exits 2 with one line on the first bad one."""
        from robot_wm.cli.main import BadInput

        if kind is not None and kind not in KINDS:
            raise BadInput(f"check: --kind must be one of {', '.join(KINDS)} (got {kind!r})")
        for f in files:
            k = kind or detect_kind(f)
            typer.echo(f"{f}: ok ({k}, {check_file(f, k)})")
