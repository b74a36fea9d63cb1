"""Load YAML files into validated models; every failure becomes a one-line :class:`ConfigError`."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pybullet_data  # data files only: this does not import the pybullet engine
import yaml
from pydantic import BaseModel, ValidationError

from robot_wm.config.errors import ConfigError
from robot_wm.config.models import CalibrationConfig, LaunchConfig, PickPlacePlannerConfig, SceneConfig
from robot_wm.config.random_camera import view_problem

M = TypeVar("M", bound=BaseModel)

REPO_ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_DIR = REPO_ROOT / "calibration"


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after[_norm(), list[float]]",) or str(part).startswith(("function-", "literal[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    """(extra key path, message) for one pydantic error, in the project's wording."""
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    got = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    if kind == "missing":
        return "", "required key is missing"
    if kind == "extra_forbidden":
        return "", "unknown key"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        bound = format(bound, "g") if isinstance(bound, int | float) else bound
        return "", f"must be {op} {bound}{got}"
    if kind in ("finite_number",) or (isinstance(value, float) and not math.isfinite(value)):
        return "", f"must be a finite number{got}"
    if kind in ("too_short", "too_long"):
        return "", f"wrong length: {err['msg'].lower()}"
    if kind == "literal_error":
        return "", f"must be one of {ctx.get('expected')}{got}"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        m = re.match(r"^([A-Za-z_][\w\[\].]*): (.*)$", msg)
        if m:
            return m.group(1), m.group(2)
        return "", msg
    return "", f"{err['msg'][0].lower()}{err['msg'][1:]}{got}"


def read_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` of a file; a missing or unparsable file raises :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "", "file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "could not parse"
        raise ConfigError(str(path), "", f"not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not a text (YAML) file") from None


def load_yaml_model(path: str | Path, model: type[M], data: Any = None) -> M:
    """Read `path` with ``yaml.safe_load`` (unless `data` is given) and validate it as `model`."""
    source = str(path)
    if data is None:
        data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(source, "", f"expected a mapping of keys at the top level (got {type(data).__name__})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        extra, msg = _describe(err)
        key = _loc_to_path(tuple(err["loc"]))
        key = f"{key}.{extra}" if key and extra and not extra.startswith(key) else (extra or key)
        raise ConfigError(source, key, msg) from None


def resolve_asset(name: str, scene_dir: Path | None) -> Path | None:
    """A URDF named in a scene: absolute, else relative to the scene folder, else in pybullet_data."""
    candidates = [Path(name)] if Path(name).is_absolute() else []
    if scene_dir is not None:
        candidates.append(scene_dir / name)
    candidates.append(Path(pybullet_data.getDataPath()) / name)
    return next((c.resolve() for c in candidates if c.is_file()), None)


def load_calibration(path: str | Path) -> CalibrationConfig:
    return load_yaml_model(path, CalibrationConfig)


@dataclass
class Scene:
    """A validated scene with everything it names resolved to files.

    `urdf_paths` maps object name -> absolute URDF path (URDF objects only);
    `calibrations` lists the cameras in file order; `robot_urdf` is absolute.
    """

    config: SceneConfig
    source: str
    calibrations: list[CalibrationConfig]
    robot_urdf: Path
    urdf_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    def with_seed(self, seed: int | None) -> Scene:
        if seed is None:
            return self
        cfg = self.config.model_copy(update={"seed": seed})
        return Scene(cfg, self.source, self.calibrations, self.robot_urdf, dict(self.urdf_paths))


def _resolve_calibration(name: str, scene_dir: Path | None) -> Path | None:
    candidates = [Path(name)] if Path(name).is_absolute() else []
    if scene_dir is not None:
        candidates.append(scene_dir / name)
    candidates += [CALIBRATION_DIR / name, Path.cwd() / "calibration" / name]
    return next((c for c in candidates if c.is_file()), None)


def scene_from_dict(data: Any, source: str = "<scene>", scene_dir: Path | None = None,
                    require_objects: bool = False) -> Scene:
    """Validate a scene mapping and resolve its calibration and URDF references."""
    cfg = load_yaml_model(source, SceneConfig, data=data)
    if require_objects and not cfg.objects:
        raise ConfigError(source, "objects", "at least one object is required for this command")
    calibrations = []
    for i, cam in enumerate(cfg.cameras):
        cal_path = _resolve_calibration(cam.calibration, scene_dir)
        if cal_path is None:
            raise ConfigError(source, f"cameras[{i}].calibration", f"calibration file not found: {cam.calibration}")
        cal = load_calibration(cal_path)
        problem = view_problem(cal, cfg.objects)  # a camera that cannot see the table: one line, not a crash
        if problem is not None:
            raise ConfigError(str(cal_path), problem[0], f"{problem[1]} (scene {source}, cameras[{i}])")
        calibrations.append(cal)
    names = [c.name for c in calibrations]
    if len(set(names)) != len(names):
        raise ConfigError(source, "cameras", f"two cameras share a calibration name ({names})")
    robot_urdf = resolve_asset(cfg.robot.urdf, scene_dir)
    if robot_urdf is None:
        raise ConfigError(source, "robot.urdf", f"URDF not found: {cfg.robot.urdf}")
    urdf_paths = {}
    for i, obj in enumerate(cfg.objects):
        if obj.urdf is not None:
            p = resolve_asset(obj.urdf, scene_dir)
            if p is None:
                raise ConfigError(source, f"objects[{i}].urdf", f"URDF not found: {obj.urdf}")
            urdf_paths[obj.name] = p
    return Scene(cfg, source, calibrations, robot_urdf, urdf_paths)


def load_scene(path: str | Path, require_objects: bool = False) -> Scene:
    """Load and validate ``sim_scenes/*.yaml``; raises :class:`ConfigError` on any problem."""
    path = Path(path)
    data = read_yaml(path)
    return scene_from_dict(data, str(path), path.parent, require_objects)


REPO_SCENES_DIR = REPO_ROOT / "sim_scenes"
REPO_SCENES_DEFAULT = REPO_SCENES_DIR / "two_blocks.yaml"


def _resolve_relative(name: str, base: Path) -> Path:
    p = Path(name)
    if p.is_absolute():
        return p
    for c in (base / p, REPO_ROOT / p, Path.cwd() / p):
        if c.exists():
            return c
    return base / p


@dataclass
class Launch:
    """A launch file with its references resolved: the scene (validated) and the planner settings."""

    config: LaunchConfig
    source: str
    scene: Scene
    planner: PickPlacePlannerConfig


def load_planner(path: str | Path) -> PickPlacePlannerConfig:
    return load_yaml_model(path, PickPlacePlannerConfig)


def load_launch(path: str | Path) -> Launch:
    """Load launch/*.yaml and everything it names; any problem raises a one-line :class:`ConfigError`."""
    path = Path(path)
    cfg = load_yaml_model(path, LaunchConfig)
    scene_path = _resolve_relative(cfg.scene, path.parent)
    if not scene_path.is_file():
        raise ConfigError(str(path), "scene", f"scene file not found: {cfg.scene}")
    scene = load_scene(scene_path, require_objects=True).with_seed(cfg.seed)
    planner = PickPlacePlannerConfig()
    if cfg.planner is not None:
        planner_path = _resolve_relative(cfg.planner, path.parent)
        if not planner_path.is_file():
            raise ConfigError(str(path), "planner", f"planner file not found: {cfg.planner}")
        planner = load_planner(planner_path)
    return Launch(cfg, str(path), scene, planner)
