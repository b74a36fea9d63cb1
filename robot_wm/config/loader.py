"""Load YAML files into validated models; every failure becomes a one-line :class:`ConfigError`."""

from __future__ import annotations

import functools
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
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


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (plain PyYAML keeps the last one
    silently, so a typo'd override would win unnoticed). Merge keys (``<<: *base``) may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: SafeLoader's own error follows
                if first is not key_node.start_mark:
                    raise DuplicateKeyError(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping names one key twice."""

    def __init__(self, key: Any, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key, self.first, self.again = key, first, again


MAX_YAML_BYTES = 16 * 1024 * 1024  # a config file larger than this is not a config file


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file safely (no Python objects; duplicate keys refused); a missing or unparsable file
    raises :class:`ConfigError`."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), "", "is a folder, expected a YAML file")
    if not path.is_file():
        raise ConfigError(str(path), "", "file not found")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise ConfigError(str(path), "", f"file is larger than {MAX_YAML_BYTES // 2**20} MiB (not a config file)")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not a text (YAML) file") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read the file ({exc.strerror or type(exc).__name__})") from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as exc:
        raise ConfigError(str(path), str(exc.key), f"duplicate key at line {exc.again.line + 1}, column "
                          f"{exc.again.column + 1} (first at line {exc.first.line + 1}, column {exc.first.column + 1}); "
                          "each key may appear once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "could not parse"
        raise ConfigError(str(path), "", f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(str(path), "", "not valid YAML: nested too deeply") from None


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
    """Load and validate ``calibration/*.yaml``; raises :class:`ConfigError` on any problem."""
    return load_yaml_model(path, CalibrationConfig)


# ---------------------------------------------------------------------------------------------- URDFs
MAX_URDF_BYTES = 8 * 1024 * 1024
_URDF_NUMBER_ATTRS = {"origin": ("xyz", "rpy"), "mass": ("value",), "box": ("size",), "cylinder": ("radius", "length"),
                      "sphere": ("radius",), "mesh": ("scale",), "inertia": ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}


def _mesh_path(filename: str, urdf_dir: Path) -> Path | None:
    """The file a URDF's ``<mesh filename=...>`` names: relative to the URDF's folder; ``package://P/rest``
    (and ``file://``) also tried against the folder and its ancestors, with and without the package name."""
    name = filename
    rels = [name]
    if name.startswith("file://"):
        rels = [name[len("file://"):]]
    elif name.startswith("package://"):
        rest = name[len("package://"):]
        rels = [rest, rest.split("/", 1)[1] if "/" in rest else rest]
    for rel in rels:
        if Path(rel).is_absolute():
            if Path(rel).is_file():
                return Path(rel)
            continue
        for base in (urdf_dir, *list(urdf_dir.parents)[:3]):
            if (base / rel).is_file():
                return base / rel
    return None


def _obj_problem(path: Path) -> str | None:
    """Why a Wavefront .obj mesh cannot be used (no vertices, a non-finite vertex), or None."""
    try:
        count = 0
        with open(path, "rb") as f:
            for raw in f:
                if raw.startswith(b"v "):
                    parts = raw.split()[1:4]
                    values = [float(v) for v in parts]
                    if len(values) != 3 or not all(math.isfinite(v) for v in values):
                        return f"vertex {count + 1} is not 3 finite numbers ({raw.decode(errors='replace').strip()})"
                    count += 1
    except ValueError:
        return "a vertex line does not hold numbers (not a Wavefront .obj mesh)"
    except OSError as exc:
        return f"cannot read the mesh ({exc.strerror or type(exc).__name__})"
    return None if count >= 4 else f"mesh has {count} vertices (a solid needs at least 4)"


@functools.lru_cache(maxsize=1024)
def _urdf_problem(path: str, stamp: tuple[int, int]) -> tuple[str, str] | None:
    """(key path, what is wrong) of a URDF file, or None; cached per file version (`stamp`: mtime, size)."""
    if stamp[1] > MAX_URDF_BYTES:
        return "", f"file is larger than {MAX_URDF_BYTES // 2**20} MiB (not a URDF)"
    if stamp[1] == 0:
        return "", "empty file (not a URDF)"
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return "", f"not valid XML ({exc})"
    except (OSError, ValueError) as exc:
        return "", f"cannot read the file ({exc})"
    if root.tag != "robot":
        return "", f"top-level element is <{root.tag}>, expected <robot> (not a URDF)"
    links = root.findall("link")
    if not links:
        return "link", "URDF has no <link>"
    for li, link in enumerate(links):
        for elem in link.iter():
            for attr in _URDF_NUMBER_ATTRS.get(elem.tag, ()):
                text = elem.get(attr)
                if text is None:
                    continue
                try:
                    values = [float(v) for v in text.split()]
                except ValueError:
                    return f"link[{li}].{elem.tag}.{attr}", f"expected numbers (got {text!r})"
                if not values or not all(math.isfinite(v) for v in values):
                    return f"link[{li}].{elem.tag}.{attr}", f"must be finite numbers (got {text!r})"
                if elem.tag in ("mass", "box", "cylinder", "sphere") and any(v < 0 for v in values):
                    return f"link[{li}].{elem.tag}.{attr}", f"must be >= 0 (got {text!r})"
        for kind in ("visual", "collision"):
            for gi, geom in enumerate(link.findall(f"{kind}/geometry")):
                for mesh in geom.findall("mesh"):
                    where = f"link[{li}].{kind}[{gi}].geometry.mesh"
                    filename = mesh.get("filename")
                    if not filename:
                        return where, "has no filename"
                    found = _mesh_path(filename, Path(path).parent)
                    if found is None:
                        return where, f"mesh file not found: {filename}"
                    if found.stat().st_size == 0:
                        return where, f"mesh file is empty: {filename}"
                    if found.suffix.lower() == ".obj":
                        problem = _obj_problem(found)
                        if problem is not None:
                            return where, f"{filename}: {problem}"
    return None


def check_urdf(path: str | Path) -> None:
    """Check a URDF before the simulator loads it: XML with a ``<robot>`` root and links, finite numbers in
    origins / masses / primitive sizes, every mesh file present and non-empty (Wavefront .obj meshes: finite
    vertices). Raises :class:`ConfigError` naming the URDF and the element."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        raise ConfigError(str(path), "", "URDF file not found") from None
    problem = _urdf_problem(str(path), (st.st_mtime_ns, st.st_size))
    if problem is not None:
        raise ConfigError(str(path), *problem)


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

    @property
    def mounts(self) -> list[str]:
        """Each camera's mount (``world`` or ``hand``), in the order of :attr:`calibrations`."""
        return [c.mount for c in self.config.cameras]

    def mount_of(self, camera: str) -> str:
        """The mount of the camera named `camera` (its calibration's name); KeyError if there is none."""
        for cal, mount in zip(self.calibrations, self.mounts, strict=True):
            if cal.name == camera:
                return mount
        raise KeyError(camera)

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


MAX_HAND_CAMERA_OFFSET = 0.3  # m: a wrist camera further than this from the flange is a world pose given by mistake


def hand_camera_problem(cal: CalibrationConfig) -> tuple[str, str] | None:
    """(field, message) when a hand-mounted camera's calibration cannot be a flange-to-camera pose (its optical
    centre more than :data:`MAX_HAND_CAMERA_OFFSET` m from the flange: a world pose written by mistake), else
    None. Where it looks depends on the arm, so the table-view check of fixed cameras does not apply."""
    field_name = "camera2world.position" if cal.camera2world is not None else "look_at.eye"
    eye = np.asarray(cal.camera2world.position if cal.camera2world is not None else cal.look_at.eye, float)
    if np.linalg.norm(eye) > MAX_HAND_CAMERA_OFFSET:
        return field_name, (f"camera {cal.name!r} is mounted on the hand (mount: hand), so its pose is relative to "
                            f"the flange; it must lie within {MAX_HAND_CAMERA_OFFSET:g} m of the flange (got "
                            f"{[round(float(v), 4) for v in eye]}, {np.linalg.norm(eye):.3g} m away)")
    return None


def scene_from_dict(data: Any, source: str = "<scene>", scene_dir: Path | None = None,
                    require_objects: bool = False, check_placement: bool = False) -> Scene:
    """Validate a scene mapping and resolve its calibration and URDF references (every URDF checked with
    :func:`check_urdf`). `check_placement`: also refuse objects outside the workspace, under the table or
    interpenetrating (``SceneConfig.placement_problem``), as for scene files; off for scenes recorded mid-task."""
    cfg = load_yaml_model(source, SceneConfig, data=data)
    if require_objects and not cfg.objects:
        raise ConfigError(source, "objects", "at least one object is required for this command")
    if check_placement:
        problem = cfg.placement_problem()
        if problem is not None:
            raise ConfigError(source, *problem)
    calibrations = []
    for i, cam in enumerate(cfg.cameras):
        cal_path = _resolve_calibration(cam.calibration, scene_dir)
        if cal_path is None:
            raise ConfigError(source, f"cameras[{i}].calibration", f"calibration file not found: {cam.calibration}")
        cal = load_calibration(cal_path)
        if cam.mount == "hand":
            problem = hand_camera_problem(cal)
        else:
            problem = view_problem(cal, cfg.objects)  # a camera that cannot see the table: one line, not a crash
        if problem is not None:
            raise ConfigError(str(cal_path), problem[0], f"{problem[1]} (scene {source}, cameras[{i}])")
        calibrations.append(cal)
    names = [c.name for c in calibrations]
    if len(set(names)) != len(names):
        raise ConfigError(source, "cameras", f"two cameras share a calibration name ({names})")
    robot_urdf = _checked_urdf(cfg.robot.urdf, scene_dir, source, "robot.urdf")
    urdf_paths = {}
    for i, obj in enumerate(cfg.objects):
        if obj.urdf is not None:
            urdf_paths[obj.name] = _checked_urdf(obj.urdf, scene_dir, source, f"objects[{i}].urdf")
    return Scene(cfg, source, calibrations, robot_urdf, urdf_paths)


def _checked_urdf(name: str, scene_dir: Path | None, source: str, key: str) -> Path:
    """The resolved path of a URDF a scene names, checked with :func:`check_urdf`; ConfigError otherwise."""
    path = resolve_asset(name, scene_dir)
    if path is None:
        raise ConfigError(source, key, f"URDF not found: {name}")
    try:
        check_urdf(path)
    except ConfigError as exc:
        raise ConfigError(exc.source, exc.path, f"{exc.message} (scene {source}, {key})") from None
    return path


def load_scene(path: str | Path, require_objects: bool = False) -> Scene:
    """Load and validate ``sim_scenes/*.yaml`` (including where its objects are: ``check_placement``);
    raises :class:`ConfigError` on any problem."""
    path = Path(path)
    data = read_yaml(path)
    return scene_from_dict(data, str(path), path.parent, require_objects, check_placement=True)


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
