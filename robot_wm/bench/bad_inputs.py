"""A corpus of malformed inputs to every file-reading command of ``robot-wm``, generated into a folder.

Each :class:`Case` writes its files into a fresh folder and returns the command line; running it must end
with exit status 2 and exactly one line on stderr, ``error: ...``, holding every string of ``expect``
(``{d}`` stands for the case's folder) and no traceback (:func:`check_case`). ``tests/cli/test_bad_inputs.py``
runs them all, and so does ``robot-wm bench control`` (``bad_inputs_tried`` / ``bad_inputs_clean``); the
corpus lives in the package for the bench's sake. It reads the repository's ``planners/`` and model files
(a source checkout).

Kinds covered: scene files (``scene check``, ``demo --scene``, ``perceive --scene``, ``bench --scenes``),
calibration files, the planner YAMLs of ``planners/``, launch files (``demo --launch``), URDFs and meshes,
grasp files (``grasp-eval --grasps``), model files (world model, grasp quality), collected data folders
(``train --data``), grasp-quality labels (``grasp-quality train --data``), resume files of ``collect`` and
``grasp-eval``, and command-line options.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robot_wm.config import REPO_ROOT

Build = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Case:
    """One malformed input: `build(folder)` writes its files and returns the argv; `expect`: substrings of
    the one error line ({d}: the folder)."""

    id: str
    build: Build
    expect: tuple[str, ...]


CASES: list[Case] = []


def case(id: str, *expect: str) -> Callable[[Build], Build]:  # noqa: A002
    def register(build: Build) -> Build:
        CASES.append(Case(id, build, expect))
        return build
    return register


def add(id: str, build: Build, *expect: str) -> None:  # noqa: A002
    CASES.append(Case(id, build, expect))


def write(path: Path, data: Any) -> Path:
    """Write `data` (text, bytes, or a mapping/list dumped as YAML) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data)
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


DELETE = object()


def edited(base: dict, edits: dict[str, Any]) -> dict:
    """Deep copy of `base` with dotted key paths set (digits index lists; DELETE removes the key)."""
    data = copy.deepcopy(base)
    for dotted, value in edits.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        key = int(last) if last.isdigit() else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return data


# ---------------------------------------------------------------------------------------------- scenes
GOOD_SCENE = {
    "name": "corpus",
    "cameras": [{"calibration": "front.yaml"}],
    "objects": [
        {"name": "a", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1, "position": [0.5, 0.0, 0.025]},
        {"name": "b", "shape": "cylinder", "size": [0.02, 0.05], "mass": 0.1, "position": [0.5, 0.12, 0.025]},
        {"name": "c", "urdf": "random_urdfs/001/001.urdf", "scale": 0.5, "position": [0.62, -0.1, 0.05]},
    ],
}


def scene_check(data: Any, name: str = "scene.yaml", via: str = "check") -> Build:
    """A scene file with `data`, run by ``scene check`` (or demo / perceive / bench)."""
    def build(d: Path) -> list[str]:
        p = write(d / name, data)
        if via == "demo":
            return ["demo", "--scene", str(p), "--out", str(d / "out"), "--perception", "oracle", "--no-video"]
        if via == "perceive":
            return ["perceive", "--scene", str(p), "--out", str(d / "out")]
        if via == "bench":
            return ["bench", "sim", "--scenes", str(p), "--json", "--quick"]
        return ["scene", "check", str(p)]
    return build


def scene_case(id: str, edits: dict[str, Any], *expect: str, via: str = "check") -> None:  # noqa: A002
    add(f"scene-{id}", scene_check(edited(GOOD_SCENE, edits), via=via), "scene.yaml", *expect)


def obj(**fields: Any) -> dict:
    """A box object 5 cm on a side at (0.5, -0.15), resting on the table, with `fields` replaced."""
    return {"name": "x", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1, "position": [0.5, -0.15, 0.025],
            **fields}


def with_objects(*extra: dict) -> dict[str, Any]:
    return {"objects": [*GOOD_SCENE["objects"], *extra]}


scene_case("unknown-key", {"objects.0.colour": [1, 0, 0, 1]}, "objects[0].colour", "unknown key")
scene_case("missing-position", {"objects.0.position": DELETE}, "objects[0].position", "required key is missing")
scene_case("missing-name", {"name": DELETE}, ": name: required key is missing")
scene_case("empty-name", {"name": ""}, ": name:")
scene_case("missing-cameras", {"cameras": DELETE}, "cameras: required key is missing")
scene_case("no-cameras", {"cameras": []}, "cameras: wrong length")
scene_case("camera-ref-unknown-key", {"cameras.0": {"calib": "front.yaml"}}, "cameras[0]")
scene_case("calibration-not-found", {"cameras.0.calibration": "nope.yaml"}, "cameras[0].calibration", "not found")
scene_case("camera-mount-unknown", {"cameras.0.mount": "wrist"}, "cameras[0].mount", "world")
scene_case("mass-string", {"objects.0.mass": "heavy"}, "objects[0].mass", "number")
scene_case("mass-negative", {"objects.0.mass": -1}, "objects[0].mass", "must be > 0 (got -1)")
scene_case("mass-zero", {"objects.0.mass": 0}, "objects[0].mass", "must be > 0")
scene_case("mass-absurd", {"objects.0.mass": 1e6}, "objects[0].mass", "must be <= 100")
scene_case("mass-nan", {"objects.0.mass": math.nan}, "objects[0].mass", "finite")
scene_case("friction-negative", {"objects.0.friction": -0.5}, "objects[0].friction", "must be >= 0")
scene_case("position-nan", {"objects.0.position": [0.5, math.nan, 0.03]}, "objects[0].position[1]", "finite")
scene_case("position-inf", {"objects.0.position": [math.inf, 0.0, 0.03]}, "objects[0].position[0]", "finite")
scene_case("position-short", {"objects.0.position": [0.5, 0.0]}, "objects[0].position", "wrong length")
scene_case("position-1e9", {"objects.0.position": [1e9, 0.0, 0.03]}, "objects[0].position", "outside the workspace")
scene_case("position-off-table", {"objects.0.position": [1.5, 0.0, 0.03]}, "objects[0].position",
           "outside the workspace")
scene_case("position-too-high", {"objects.0.position": [0.5, 0.0, 5.0]}, "objects[0].position",
           "outside the workspace")
scene_case("under-table", {"objects.0.position": [0.5, 0.0, -0.1]}, "objects[0].position", "under the table")
scene_case("half-in-table", {"objects.0.position": [0.5, 0.0, 0.01]}, "objects[0].position", "under the table")
scene_case("tilted-into-table", {"objects.0.orientation": [0.3826834, 0, 0, 0.9238795]}, "objects[0].position",
           "under the table")
scene_case("urdf-under-table", {"objects.2.position": [0.62, -0.1, -0.2]}, "objects[2].position", "under the table")
scene_case("overlap-boxes", with_objects(obj(position=[0.52, 0.0, 0.025])), "objects[3].position",
           "overlaps 'a'")
scene_case("overlap-same-place", with_objects(obj(position=[0.5, 0.12, 0.025])), "objects[3].position",
           "overlaps 'b'")
scene_case("overlap-sphere-in-box", with_objects(obj(shape="sphere", size=[0.02], position=[0.5, 0.0, 0.04])),
           "objects[3].position", "overlaps 'a'")
scene_case("overlap-rotated", with_objects(obj(size=[0.12, 0.02, 0.05], position=[0.5, 0.06, 0.025],
                                               orientation=[0, 0, 0.3826834, 0.9238795])),
           "objects[3].position", "overlaps")
scene_case("overlap-stack-sunk", with_objects(obj(position=[0.5, 0.0, 0.06])), "objects[3].position",
           "overlaps 'a'")
scene_case("size-zero", {"objects.0.size": [0.05, 0.0, 0.05]}, "objects[0].size", "must be > 0")
scene_case("size-negative", {"objects.1.size": [-0.02, 0.05]}, "objects[1].size", "must be > 0")
scene_case("size-huge", {"objects.0.size": [5.0, 0.05, 0.05]}, "objects[0].size", "extents must lie in")
scene_case("size-1e9", {"objects.0.size": [1e9, 1e9, 1e9]}, "objects[0].size", "extents must lie in")
scene_case("size-tiny", {"objects.0.size": [1e-5, 0.05, 0.05]}, "objects[0].size", "extents must lie in")
scene_case("size-wrong-length", {"objects.0.size": [0.05, 0.05]}, "objects[0].size", "box takes 3")
scene_case("sphere-two-sizes", {"objects.0": obj(shape="sphere", size=[0.02, 0.02], position=[0.5, 0.0, 0.02])},
           "objects[0].size", "sphere takes 1")
scene_case("size-missing", {"objects.0.size": DELETE}, "objects[0].size", "required")
scene_case("size-with-urdf", {"objects.2.size": [0.1, 0.1, 0.1]}, "objects[2].size", "only for primitive")
scene_case("shape-unknown", {"objects.0.shape": "cone"}, "objects[0].shape", "must be one of")
scene_case("shape-and-urdf", {"objects.0.urdf": "cube.urdf"}, "objects[0]", "exactly one of shape and urdf")
scene_case("neither-shape-nor-urdf", {"objects.0.shape": DELETE, "objects.0.size": DELETE}, "objects[0]",
           "exactly one of shape and urdf")
scene_case("urdf-not-found", {"objects.2.urdf": "nowhere/none.urdf"}, "objects[2].urdf", "URDF not found")
scene_case("urdf-mesh-nan-vertices", {"objects.2.urdf": "random_urdfs/168/168.urdf"}, "168.urdf",
           "168.obj: vertex 1 is not 3 finite numbers", "objects[2].urdf")
scene_case("scale-zero", {"objects.2.scale": 0}, "objects[2].scale", "must be > 0")
scene_case("scale-huge", {"objects.2.scale": 1000}, "objects[2].scale", "must be <= 10")
scene_case("quaternion-not-unit", {"objects.0.orientation": [0, 0, 0, 2.0]}, "objects[0].orientation", "unit length")
scene_case("quaternion-zero", {"objects.0.orientation": [0, 0, 0, 0]}, "objects[0].orientation", "unit length")
scene_case("quaternion-short", {"objects.0.orientation": [0, 0, 1]}, "objects[0].orientation", "wrong length")
scene_case("color-out-of-range", {"objects.0.color": [1.2, 0, 0, 1]}, "objects[0].color", "[0, 1]")
scene_case("duplicate-object-names", {"objects.1.name": "a"}, "objects[1].name", "duplicate object name")
scene_case("seed-negative", {"seed": -1}, ": seed: must be >= 0 (got -1)")
scene_case("seed-huge", {"seed": 2**70}, ": seed: must be <=")
scene_case("seed-string", {"seed": "zero"}, ": seed:", "integer")
scene_case("seed-float", {"seed": 1.5}, ": seed:", "integer")
scene_case("objects-not-list", {"objects": "a, b"}, "objects:", "list")
scene_case("object-is-list", {"objects.0": [1, 2, 3]}, "objects[0]")
scene_case("task-kind-unknown", {"task": {"kind": "juggle"}}, "task.kind", "must be one of")
scene_case("task-object-unknown", {"task": {"objects": ["zz"]}}, "task.objects", "unknown object 'zz'")
scene_case("push-without-goals", {"task": {"kind": "push_to_goal"}}, "task.goals", "at least one goal")
scene_case("goal-off-table", {"task": {"goals": [{"object": "a", "position": [1.5, 0.0]}]}}, "task.goals[0].position",
           "on the table")
scene_case("goal-out-of-reach", {"task": {"goals": [{"object": "a", "position": [0.1, 0.0]}]}},
           "task.goals[0].position", "reach")
scene_case("place-region-negative", {"task": {"place_region": {"center": [0.45, -0.35, 0], "size": [-0.2, 0.2]}}},
           "task.place_region.size", "must be > 0")
scene_case("place-region-off-table", {"task": {"place_region": {"center": [5.0, 0.0, 0], "size": [0.2, 0.2]}}},
           "task.place_region.center", "outside the workspace")
scene_case("robot-base-far", {"robot": {"base_position": [100.0, 0.0, 0.0]}}, "robot.base_position",
           "within 1 m")
scene_case("robot-urdf-missing", {"robot": {"urdf": "nope/robot.urdf"}}, "robot.urdf", "URDF not found")
scene_case("via-demo-negative-mass", {"objects.0.mass": -2}, "objects[0].mass", "must be > 0", via="demo")
scene_case("via-demo-overlap", with_objects(obj(position=[0.51, 0.0, 0.025])), "overlaps 'a'", via="demo")
scene_case("via-demo-under-table", {"objects.1.position": [0.5, 0.12, -0.5]}, "under the table", via="demo")
scene_case("via-perceive-nan", {"objects.0.position": [0.5, 0.0, math.nan]}, "objects[0].position[2]", "finite",
           via="perceive")
scene_case("via-perceive-off-table", {"objects.0.position": [0.5, 3.0, 0.03]}, "outside the workspace",
           via="perceive")
scene_case("via-bench-unknown-key", {"foo": 1}, ": foo: unknown key", via="bench")
scene_case("via-bench-overlap", with_objects(obj(position=[0.5, 0.01, 0.025])), "overlaps 'a'", via="bench")

add("scene-not-yaml", scene_check("name: [unclosed\n  objects: {"), "scene.yaml", "not valid YAML at line")
add("scene-binary", scene_check(b"\xff\xfe\x00\x81binary"), "scene.yaml", "not a text (YAML) file")
add("scene-a-list", scene_check("- just\n- a list\n"), "scene.yaml", "expected a mapping")
add("scene-empty-file", scene_check(""), "scene.yaml", "expected a mapping", "NoneType")
add("scene-a-number", scene_check("42\n"), "scene.yaml", "expected a mapping")
add("scene-duplicate-top-key", scene_check(yaml.safe_dump(GOOD_SCENE, sort_keys=False) + "name: again\n"),
    "scene.yaml: name: duplicate key at line")
add("scene-duplicate-object-key", scene_check(
    "name: dup\ncameras: [{calibration: front.yaml}]\nobjects:\n"
    "  - {name: a, shape: box, size: [0.05, 0.05, 0.05], mass: 0.1, mass: 5.0, position: [0.5, 0, 0.025]}\n"),
    "scene.yaml: mass: duplicate key at line 4")
add("scene-python-tag", scene_check("name: !!python/object/apply:os.system ['true']\ncameras: []\n"),
    "scene.yaml", "not valid YAML")
add("scene-nested-deep", scene_check("name: " + "[" * 20000 + "]" * 20000 + "\n"), "scene.yaml", "not valid YAML")


@case("scene-is-a-folder", "is a folder")
def _scene_folder(d: Path) -> list[str]:
    (d / "scene.yaml").mkdir()
    return ["scene", "check", str(d / "scene.yaml")]


@case("scene-missing-file", "missing.yaml: file not found")
def _scene_missing(d: Path) -> list[str]:
    return ["scene", "check", str(d / "missing.yaml")]


@case("scene-second-file-bad", "bad.yaml", "objects[0].mass")
def _scene_second(d: Path) -> list[str]:
    good = write(d / "good.yaml", GOOD_SCENE)
    bad = write(d / "bad.yaml", edited(GOOD_SCENE, {"objects.0.mass": -1}))
    return ["scene", "check", str(good), str(bad)]


# ---------------------------------------------------------------------------------------------- URDFs
MESH_OBJ = "v 0 0 0\nv 0.05 0 0\nv 0 0.05 0\nv 0 0 0.05\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"


def urdf_text(mesh: str = "m.obj", mass: str = "0.1", xyz: str = "0 0 0") -> str:
    return (f'<?xml version="1.0"?>\n<robot name="o"><link name="base"><inertial><origin xyz="{xyz}"/>'
            f'<mass value="{mass}"/><inertia ixx="1e-4" ixy="0" ixz="0" iyy="1e-4" iyz="0" izz="1e-4"/></inertial>'
            f'<visual><geometry><mesh filename="{mesh}"/></geometry></visual>'
            f'<collision><geometry><mesh filename="{mesh}"/></geometry></collision></link></robot>\n')


def urdf_scene_case(id: str, urdf: str | bytes, *expect: str, mesh: str | None = MESH_OBJ,  # noqa: A002
                    via: str = "check") -> None:
    """A scene whose object `c` is a URDF in the scene's folder with content `urdf` (mesh m.obj: `mesh`)."""
    def build(d: Path) -> list[str]:
        write(d / "obj.urdf", urdf)
        if mesh is not None:
            write(d / "m.obj", mesh)
        return scene_check(edited(GOOD_SCENE, {"objects.2.urdf": "obj.urdf"}), via=via)(d)
    add(f"urdf-{id}", build, "obj.urdf", *expect)


urdf_scene_case("not-xml", "this is not xml <robot", "not valid XML")
urdf_scene_case("empty", "", "empty file")
urdf_scene_case("binary", b"\x00\x01\x02garbage\xff", "not valid XML")
urdf_scene_case("not-robot-root", '<?xml version="1.0"?><model name="x"><link name="a"/></model>', "expected <robot>")
urdf_scene_case("no-link", '<?xml version="1.0"?><robot name="x"></robot>', "link: URDF has no <link>")
urdf_scene_case("missing-mesh", urdf_text("nowhere.obj"), "geometry.mesh", "mesh file not found: nowhere.obj")
urdf_scene_case("empty-mesh", urdf_text(), "mesh file is empty", mesh="")
urdf_scene_case("mesh-nan", urdf_text(), "vertex 1 is not 3 finite numbers", mesh="v nan 0 0\nv 1 0 0\nv 0 1 0\n")
urdf_scene_case("mesh-no-vertices", urdf_text(), "mesh has 0 vertices", mesh="# nothing\n")
urdf_scene_case("mesh-text", urdf_text(), "not a Wavefront .obj mesh", mesh="v one two three\n")
urdf_scene_case("mass-nan", urdf_text(mass="nan"), "mass.value", "finite")
urdf_scene_case("mass-negative", urdf_text(mass="-1"), "mass.value", "must be >= 0")
urdf_scene_case("origin-inf", urdf_text(xyz="0 inf 0"), "origin.xyz", "finite")
urdf_scene_case("origin-text", urdf_text(xyz="a b c"), "origin.xyz", "expected numbers")
urdf_scene_case("mesh-no-filename", urdf_text().replace('filename="m.obj"', ""), "has no filename")
urdf_scene_case("via-demo-not-xml", "<robot", "not valid XML", via="demo")
urdf_scene_case("via-demo-missing-mesh", urdf_text("gone.obj"), "mesh file not found", via="demo")


def grasp_eval_objects(*specs: str, files: dict[str, Any] | None = None) -> Build:
    def build(d: Path) -> list[str]:
        for name, content in (files or {}).items():
            write(d / name, content)
        resolved = [s.replace("{d}", str(d)) for s in specs]
        return ["grasp-eval", "--objects", *resolved, "--out", str(d / "run"), "--quiet"]
    return build


add("grasp-eval-urdf-not-xml", grasp_eval_objects("{d}/o.urdf", files={"o.urdf": "nope"}), "o.urdf", "not")
add("grasp-eval-urdf-missing-mesh", grasp_eval_objects("{d}/o.urdf", files={"o.urdf": urdf_text("x.obj")}),
    "o.urdf: link.collision[0].geometry.mesh: mesh file not found")
add("grasp-eval-visual-mesh-missing", grasp_eval_objects("{d}/o.urdf", files={
    "o.urdf": urdf_text().replace('<visual><geometry><mesh filename="m.obj"/>',
                                  '<visual><geometry><mesh filename="gone.obj"/>'), "m.obj": MESH_OBJ}),
    "o.urdf", "visual[0].geometry.mesh", "mesh file not found: gone.obj")
add("grasp-eval-not-urdf", grasp_eval_objects("{d}/o.txt", files={"o.txt": "x"}), "o.txt", "not a .urdf file")
add("grasp-eval-no-such-object", grasp_eval_objects("{d}/none.urdf"), "no such URDF file or primitive")
add("grasp-eval-bad-primitive", grasp_eval_objects("box:0.05x0.05"), "expected box:LxWxH")
add("grasp-eval-primitive-zero", grasp_eval_objects("box:0x0.05x0.05"), "sizes must be > 0")
add("grasp-eval-primitive-huge", grasp_eval_objects("box:1000x0.05x0.05"), "grasp-eval: --objects", "larger than")
add("grasp-eval-bad-option", grasp_eval_objects("box:0.05x0.05x0.05,colour=3"), "unknown option")
add("grasp-eval-mass-negative", grasp_eval_objects("sphere:0.03,mass=-1"), "mass")


# ---------------------------------------------------------------------------------------------- calibrations
GOOD_CAL = {"name": "cam", "width": 640, "height": 480, "fx": 554.26, "fy": 554.26, "cx": 319.5, "cy": 239.5,
            "near": 0.05, "far": 3.0, "camera2world": {"position": [1.2, 0.0, 0.8],
                                                         "orientation": [0.6532815, 0.6532815, -0.2705981, -0.2705981]}}


def cal_case(id: str, edits: dict[str, Any], *expect: str, via: str = "check") -> None:  # noqa: A002
    def build(d: Path) -> list[str]:
        p = write(d / "cam.yaml", edited(GOOD_CAL, edits))
        if via == "scene":
            s = write(d / "scene.yaml", edited(GOOD_SCENE, {"cameras.0.calibration": "cam.yaml"}))
            return ["scene", "check", str(s)]
        return ["check", str(p)]
    add(f"calibration-{id}", build, "cam.yaml", *expect)


cal_case("width-zero", {"width": 0}, "cam.yaml: width: must be > 0")
cal_case("width-negative", {"width": -640}, "width: must be > 0")
cal_case("width-huge", {"width": 100000, "cx": 50000}, "width: must be <= 8192")
cal_case("height-huge", {"height": 100000, "cy": 240}, "height: must be <= 8192")
cal_case("both-huge-via-scene", {"width": 100000, "height": 100000}, "width: must be <= 8192", via="scene")
cal_case("width-float", {"width": 640.5}, "width", "integer")
cal_case("width-string", {"width": "wide"}, "width", "integer")
cal_case("fx-zero", {"fx": 0}, "fx: must be > 0")
cal_case("fx-negative", {"fx": -554.0}, "fx: must be > 0")
cal_case("fx-nan", {"fx": math.nan}, "fx", "finite")
cal_case("fy-inf", {"fy": math.inf}, "fy", "finite")
cal_case("fx-absurd", {"fx": 1e12}, "fx: must be <= 100000")
cal_case("cx-outside", {"cx": 700}, "cx", "inside the image")
cal_case("cy-negative", {"cy": -1}, "cy", "inside the image")
cal_case("near-zero", {"near": 0}, "near: must be > 0")
cal_case("near-above-far", {"near": 5.0}, "far: must be > near")
cal_case("near-equals-far", {"near": 3.0}, "far: must be > near")
cal_case("far-absurd", {"far": 1e9}, "far: must be <= 100")
cal_case("no-pose", {"camera2world": DELETE}, "exactly one of camera2world and look_at")
cal_case("both-poses", {"look_at": {"eye": [1, 0, 1], "target": [0, 0, 0]}}, "exactly one of camera2world and look_at")
cal_case("eye-equals-target", {"camera2world": DELETE, "look_at": {"eye": [1, 0, 1], "target": [1, 0, 1]}},
         "look_at", "eye and target must differ")
cal_case("up-parallel", {"camera2world": DELETE, "look_at": {"eye": [0.5, 0, 1], "target": [0.5, 0, 0],
                                                              "up": [0, 0, 1]}}, "look_at", "parallel")
cal_case("camera-1e9", {"camera2world.position": [1e9, 0, 0.8]}, "camera2world.position", "within 20 m")
cal_case("quaternion-not-unit", {"camera2world.orientation": [0, 0, 0, 3]}, "camera2world.orientation", "unit length")
cal_case("depth-noise-unknown", {"depth_noise": "gauss"}, "depth_noise", "must be one of")
cal_case("unknown-key", {"distortion": [0, 0, 0]}, "distortion: unknown key")
cal_case("name-missing", {"name": DELETE}, "name: required key is missing")
cal_case("cannot-see-table-via-scene", {"camera2world.orientation": [0, 0, 0, 1]}, "cam.yaml", via="scene")
add("calibration-duplicate-key", lambda d: ["check", "--kind", "calibration", str(write(
    d / "cam.yaml", yaml.safe_dump(GOOD_CAL, sort_keys=False) + "fx: 300\n"))], "cam.yaml: fx: duplicate key")
add("calibration-not-mapping", lambda d: ["check", "--kind", "calibration", str(write(d / "cam.yaml", "[1, 2]\n"))],
    "cam.yaml", "expected a mapping")


# ---------------------------------------------------------------------------------------------- planner YAMLs
def planner_case(id: str, name: str, content: Any, *expect: str, kind: str | None = None) -> None:  # noqa: A002
    def build(d: Path) -> list[str]:
        p = write(d / name, content)
        return ["check", *(["--kind", kind] if kind else []), str(p)]
    add(f"planner-{id}", build, name, *expect)


PICK = yaml.safe_load((REPO_ROOT / "planners" / "pick_place.yaml").read_text())
MPC = yaml.safe_load((REPO_ROOT / "planners" / "mpc.yaml").read_text())
GP = yaml.safe_load((REPO_ROOT / "planners" / "grasp_planner.yaml").read_text())
SHAKE = yaml.safe_load((REPO_ROOT / "planners" / "shake_test.yaml").read_text())

planner_case("pick-approach-zero", "pick_place.yaml", {**PICK, "approach": 0}, "approach: must be > 0")
planner_case("pick-lift-huge", "pick_place.yaml", {**PICK, "lift": 3.0}, "lift: must be <= 0.5")
planner_case("pick-unknown-key", "pick_place.yaml", {**PICK, "speed": 1.0}, "speed: unknown key",
             kind="pick-place")
planner_case("pick-verify-trials-zero", "pick_place.yaml", {**PICK, "verify_trials": 0}, "verify_trials: must be >= 1")
planner_case("pick-attempts-huge", "pick_place.yaml", {**PICK, "max_attempts_per_object": 1000},
             "max_attempts_per_object: must be <= 10")
planner_case("pick-speed-nan", "pick_place.yaml", {**PICK, "linear_speed": math.nan}, "linear_speed", "finite")
planner_case("pick-verify-string", "pick_place.yaml", {**PICK, "verify_grasps": "maybe"}, "verify_grasps")
planner_case("pick-duplicate-key", "pick_place.yaml",
             (REPO_ROOT / "planners" / "pick_place.yaml").read_text() + "lift: 0.3\n", "lift: duplicate key")
planner_case("mpc-elites-above-samples", "mpc.yaml", {**MPC, "elites": MPC["samples"] + 1}, "elites: must be <=")
planner_case("mpc-samples-negative", "mpc.yaml", {**MPC, "samples": -5}, "samples: must be >=")
planner_case("mpc-unknown-key", "mpc.yaml", {**MPC, "horizon_s": 3}, "horizon_s: unknown key", kind="mpc")
planner_case("mpc-cost-unknown", "mpc.yaml", {**MPC, "cost": {"nonsense": 1}}, "cost.nonsense: unknown key")
planner_case("grasp-planner-widths", "grasp_planner.yaml",
             {"grasp_planner": {**GP["grasp_planner"], "min_width": 0.09, "max_width": 0.08}}, "min_width: must be <")
planner_case("grasp-planner-depth", "grasp_planner.yaml",
             {"grasp_planner": {**GP["grasp_planner"], "depth_offsets": [0.5]}}, "depth_offsets", "[0, 0.1]")
planner_case("grasp-planner-unknown-section", "grasp_planner.yaml", {"grasp_planer": {}}, "grasp_planer: unknown key",
             kind="grasp-planner")
planner_case("shake-unknown-key", "shake_test.yaml", {**SHAKE, "gravity": 9.81}, "gravity: unknown key",
             kind="shake-test")
planner_case("shake-time-step", "shake_test.yaml", {**SHAKE, "physics": {**SHAKE.get("physics", {}), "time_step": 1.0}},
             "physics.time_step: must be <= 0.02", kind="shake-test")
planner_case("unknown-yaml-kind", "other.yaml", {"foo": 1, "bar": 2}, "cannot tell which kind of YAML file")


def grasp_eval_config(content: Any) -> Build:
    def build(d: Path) -> list[str]:
        p = write(d / "shake.yaml", content)
        return ["grasp-eval", "--objects", "box:0.05x0.05x0.05", "--config", str(p), "--out", str(d / "run"), "--quiet"]
    return build


add("shake-via-grasp-eval-solver", grasp_eval_config(
    {**SHAKE, "physics": {**SHAKE.get("physics", {}), "solver_iterations": 0}}),
    "shake.yaml: physics.solver_iterations: must be >= 1")
add("shake-via-grasp-eval-not-yaml", grasp_eval_config("physics: [\n"), "shake.yaml", "not valid YAML")
add("shake-via-grasp-eval-missing", lambda d: ["grasp-eval", "--objects", "box:0.05x0.05x0.05", "--config",
                                                str(d / "none.yaml"), "--out", str(d / "run")], "none.yaml: file not found")


# ---------------------------------------------------------------------------------------------- launch files
def launch_case(id: str, launch: Any, *expect: str, scene: Any = None, planner: Any = None) -> None:  # noqa: A002
    def build(d: Path) -> list[str]:
        if scene is not None:
            write(d / "my_scene.yaml", scene)
        if planner is not None:
            write(d / "my_planner.yaml", planner)
        p = write(d / "launch.yaml", launch)
        return ["demo", "--launch", str(p), "--out", str(d / "out"), "--no-video", "--no-compare"]
    add(f"launch-{id}", build, *expect)


LAUNCH = {"name": "corpus", "scene": "sim_scenes/two_blocks.yaml", "perception": "oracle",
          "planner": "planners/pick_place.yaml"}
launch_case("scene-missing-key", {k: v for k, v in LAUNCH.items() if k != "scene"}, "launch.yaml: scene: required")
launch_case("scene-not-found", {**LAUNCH, "scene": "sim_scenes/none.yaml"}, "launch.yaml: scene: scene file not found")
launch_case("planner-not-found", {**LAUNCH, "planner": "planners/none.yaml"}, "launch.yaml: planner: planner file")
launch_case("perception-unknown", {**LAUNCH, "perception": "telepathy"}, "launch.yaml: perception: must be one of")
launch_case("seed-negative", {**LAUNCH, "seed": -3}, "launch.yaml: seed: must be >= 0")
launch_case("unknown-key", {**LAUNCH, "robot": "panda"}, "launch.yaml: robot: unknown key")
launch_case("name-empty", {**LAUNCH, "name": ""}, "launch.yaml: name")
launch_case("bad-scene-inside", {**LAUNCH, "scene": "my_scene.yaml"}, "my_scene.yaml: objects[0].mass",
            scene=edited(GOOD_SCENE, {"objects.0.mass": -1}))
launch_case("overlapping-scene-inside", {**LAUNCH, "scene": "my_scene.yaml"}, "my_scene.yaml", "overlaps",
            scene=edited(GOOD_SCENE, with_objects(obj(position=[0.5, 0.0, 0.025]))))
launch_case("bad-planner-inside", {**LAUNCH, "planner": "my_planner.yaml"}, "my_planner.yaml: approach: must be > 0",
            planner={**PICK, "approach": -1})
launch_case("duplicate-key", yaml.safe_dump(LAUNCH, sort_keys=False) + "perception: rgbd\n",
            "launch.yaml: perception: duplicate key")
launch_case("not-yaml", "name: {\n", "launch.yaml", "not valid YAML")
launch_case("a-list", "- a\n- b\n", "launch.yaml", "expected a mapping")


# ---------------------------------------------------------------------------------------------- grasp files
def grasp_file(name: str, content: Any) -> Build:
    def build(d: Path) -> list[str]:
        p = d / name
        if isinstance(content, dict) and name.endswith(".npz"):
            np.savez(p, **content)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content if isinstance(content, str) else json.dumps(content))
        return ["grasp-eval", "--objects", "box:0.05x0.05x0.05", "--grasps", str(p), "--out", str(d / "run"), "--quiet"]
    return build


def native(**fields: Any) -> dict:
    g = {"position": [0.0, 0.0, 0.0], "quaternion": [0, 0, 0, 1], "width": 0.04, **fields}
    return {"format": "robot_wm.grasps/1", "frame": "object", "grasps": [g]}


EYE = np.eye(4).tolist()


def grasp_case(id: str, content: Any, *expect: str, name: str = "g.json") -> None:  # noqa: A002
    add(f"grasps-{id}", grasp_file(name, content), name, *expect)


grasp_case("width-nan", '{"grasps": [{"position": [0, 0, 0], "quaternion": [0, 0, 0, 1], "width": NaN}]}',
           "grasps[0].width: must be a number >= 0")
grasp_case("width-negative", native(width=-0.01), "grasps[0].width: must be a number >= 0")
grasp_case("width-too-wide", native(width=0.2), "grasps[0].width: must lie in [0, 0.08]")
grasp_case("width-string", native(width="wide"), "grasps[0].width")
grasp_case("width-missing", {"grasps": [{"position": [0, 0, 0], "quaternion": [0, 0, 0, 1]}]},
           "grasps[0].width: required key")
grasp_case("position-nan", '{"grasps": [{"position": [NaN, 0, 0], "quaternion": [0, 0, 0, 1], "width": 0.04}]}',
           "grasps[0].position", "finite")
grasp_case("position-1e9", native(position=[1e9, 0, 0]), "grasps[0].position: must lie within 10 m")
grasp_case("position-short", native(position=[0, 0]), "grasps[0].position")
grasp_case("quaternion-zero", native(quaternion=[0, 0, 0, 0]), "grasps[0].quaternion: must be a non-zero")
grasp_case("quaternion-not-unit", native(quaternion=[0, 0, 0, 3]), "grasps[0].quaternion: must have unit length")
grasp_case("quaternion-short", native(quaternion=[0, 0, 1]), "grasps[0].quaternion")
grasp_case("score-inf", '{"grasps": [{"position": [0, 0, 0], "quaternion": [0, 0, 0, 1], "width": 0.04, '
           '"score": Infinity}]}', "grasps[0].score: must be a finite number")
grasp_case("unknown-key", native(approach=[0, 0, 1]), "grasps[0].approach: unknown key")
grasp_case("empty-list", {"grasps": []}, "grasps: no grasps")
grasp_case("frame-unknown", {**native(), "frame": "camera"}, "frame: must be 'object' or 'world'")
grasp_case("top-unknown-key", {"grasp": []}, "grasp: unknown key")
grasp_case("not-json", "{not json", "not valid JSON")
grasp_case("binary", b"\x89PNG\r\n\x1a\n\x00\x00", "not valid JSON")
grasp_case("a-number", "3", "grasps: expected a list of grasps")
grasp_case("objects-empty", {"objects": {}}, "objects: expected a non-empty mapping")
grasp_case("transforms-scaled", {"transforms": [[[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]],
                                 "widths": [0.04]}, "transforms[0]", "not a rigid transform")
grasp_case("transforms-shear", {"transforms": [[[1, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]],
                                "widths": [0.04]}, "transforms[0]", "not a proper rotation")
grasp_case("transforms-reflection", {"transforms": [[[-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]],
                                     "widths": [0.04]}, "transforms[0]", "not a proper rotation")
grasp_case("transforms-last-row", {"transforms": [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]],
                                   "widths": [0.04]}, "transforms[0]", "last row must be [0, 0, 0, 1]")
grasp_case("transforms-3x4", {"transforms": [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]], "widths": [0.04]},
           "transforms[0]", "4x4")
grasp_case("transforms-width-mismatch", {"transforms": [EYE, EYE], "widths": [0.04]}, "widths", "expected a list of 2")
grasp_case("transforms-width-wide", {"transforms": [EYE], "widths": [0.5]}, "widths[0]: must lie in [0, 0.08]")
grasp_case("transforms-width-nan", '{"transforms": [' + json.dumps(EYE) + '], "widths": [NaN]}',
           "widths[0]: must be a number >= 0")
grasp_case("transforms-empty", {"transforms": [], "widths": []}, "transforms: no grasps")
grasp_case("tcp-offset-nan", '{"transforms": [' + json.dumps(EYE) + '], "widths": [0.04], "tcp_offset": NaN}',
           "tcp_offset: must be a finite number")
grasp_case("tcp-offset-huge", {"transforms": [EYE], "widths": [0.04], "tcp_offset": 50.0}, "tcp_offset",
           "within +-0.5 m")
grasp_case("npz-width-nan", {"transforms": np.eye(4)[None], "widths": np.array([np.nan])}, "widths[0]",
           name="g.npz")
grasp_case("npz-width-negative", {"transforms": np.eye(4)[None], "widths": np.array([-0.02])},
           "widths[0]: must lie in [0, 0.08]", name="g.npz")
grasp_case("npz-width-too-wide", {"transforms": np.eye(4)[None], "widths": np.array([0.3])},
           "widths[0]: must lie in", name="g.npz")
grasp_case("npz-missing-widths", {"transforms": np.eye(4)[None]}, "widths: array is missing", name="g.npz")
grasp_case("npz-non-rigid", {"transforms": (np.eye(4) * 1.5)[None], "widths": np.array([0.04])}, "transforms[0]",
           name="g.npz")
grasp_case("npz-wrong-shape", {"transforms": np.eye(3)[None], "widths": np.array([0.04])}, "transforms",
           "(N, 4, 4)", name="g.npz")
grasp_case("npz-tcp-offset-array", {"transforms": np.eye(4)[None], "widths": np.array([0.04]),
                                    "tcp_offset": np.zeros(3)}, "tcp_offset: must be one number", name="g.npz")
grasp_case("npz-scores-mismatch", {"transforms": np.eye(4)[None], "widths": np.array([0.04]),
                                   "scores": np.zeros(3)}, "scores", name="g.npz")
grasp_case("npz-object-array", {"transforms": np.array([None, 1], dtype=object), "widths": np.array([0.04])},
           "not a readable .npz grasp file", name="g.npz")
grasp_case("npz-text", "just text", "not a readable .npz grasp file", name="g.npz")


@case("grasps-npz-truncated", "g.npz", "not a readable .npz grasp file")
def _npz_truncated(d: Path) -> list[str]:
    np.savez(d / "full.npz", transforms=np.repeat(np.eye(4)[None], 50, 0), widths=np.full(50, 0.04))
    (d / "g.npz").write_bytes((d / "full.npz").read_bytes()[:300])
    return ["grasp-eval", "--objects", "box:0.05x0.05x0.05", "--grasps", str(d / "g.npz"), "--out", str(d / "run")]


@case("grasps-missing-file", "none.json: file not found")
def _grasps_missing(d: Path) -> list[str]:
    return ["grasp-eval", "--objects", "box:0.05x0.05x0.05", "--grasps", str(d / "none.json"), "--out", str(d / "run")]


# ---------------------------------------------------------------------------------------------- model files
def _small_world_model(path: Path) -> None:
    import torch

    from robot_wm.model.network import EnsembleInteractionNet
    from robot_wm.model.world_model import WorldModel

    torch.manual_seed(0)
    WorldModel(EnsembleInteractionNet(k=2, hidden=8, edge=4, head=4)).save(path)


def _rewrite_model(src: Path, dst: Path, header: Callable[[dict], Any] | None = None,
                   tensors: Callable[[dict], None] | None = None, framework: str = "pt") -> None:
    """Copy a safetensors model file, editing its header (JSON) and tensors."""
    from safetensors import safe_open

    with safe_open(str(src), framework=framework) as f:
        meta = dict(f.metadata())
        ts = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    h = json.loads(meta["robot_wm"])
    if header is not None:
        h = header(h) or h
    if tensors is not None:
        tensors(ts)
    if framework == "pt":
        from safetensors.torch import save_file
    else:
        from safetensors.numpy import save_file
    save_file(ts, str(dst), metadata={"robot_wm": h if isinstance(h, str) else json.dumps(h)})


def world_model_case(id: str, *expect: str, header: Callable | None = None,  # noqa: A002
                     tensors: Callable | None = None, raw: Callable[[Path, Path], None] | None = None) -> None:
    def build(d: Path) -> list[str]:
        good, bad = d / "good.safetensors", d / "model.safetensors"
        _small_world_model(good)
        if raw is not None:
            raw(good, bad)
        else:
            _rewrite_model(good, bad, header, tensors)
        return ["check", "--kind", "world-model", str(bad)]
    add(f"world-model-{id}", build, "model.safetensors", *expect)


def _set(**kv: Any) -> Callable[[dict], None]:
    return lambda h: h.update(kv)


def _drop(key: str) -> Callable[[dict], None]:
    return lambda h: h.pop(key) and None


def _fill(name: str, value: float) -> Callable[[dict], None]:
    def edit(ts: dict) -> None:
        ts[name] = ts[name].clone()
        ts[name].view(-1)[0] = value
    return edit


world_model_case("header-list", "robot_wm: header is a JSON list", header=lambda h: [h])
world_model_case("header-string", "robot_wm: header is a JSON str", header=lambda h: json.dumps("model"))
world_model_case("header-not-json", "corrupt robot_wm header", header=lambda h: "{not json")
world_model_case("header-missing-k", "k: header k must be an integer", header=_drop("k"))
world_model_case("k-zero", "k: header k must be an integer in [1, 64]", header=_set(k=0))
world_model_case("k-absurd", "k: header k must be an integer in [1, 64]", header=_set(k=10**9))
world_model_case("hidden-string", "hidden: header hidden must be an integer", header=_set(hidden="8"))
world_model_case("temperature-zero", "temperature: must be a finite number > 0", header=_set(temperature=0))
world_model_case("temperature-negative", "temperature: must be a finite number > 0", header=_set(temperature=-1.0))
world_model_case("temperature-nan", "temperature: must be a finite number > 0", header=_set(temperature=math.nan))
world_model_case("temperature-string", "temperature: must be a finite number > 0", header=_set(temperature="hot"))
world_model_case("version-wrong", "version: model version 99", header=_set(version=99))
world_model_case("format-wrong", "format: header format is 'other'", header=_set(format="other"))
world_model_case("state-dim-wrong", "state_dim: header state_dim = 14", header=_set(state_dim=14))
world_model_case("train-list", "train: must be a mapping", header=_set(train=[1, 2]))
world_model_case("hidden-mismatch", "tensors do not match the header", header=_set(hidden=16))
world_model_case("weight-nan", "net.", "holds NaN", tensors=lambda ts: _fill(next(k for k in ts if k.startswith(
    "net.")), math.nan)(ts))
world_model_case("weight-inf", "grasp.", "holds NaN", tensors=lambda ts: _fill(next(k for k in ts if k.startswith(
    "grasp.")), math.inf)(ts))
world_model_case("norm-nan", "norm.feat_mean: tensor holds NaN", tensors=_fill("norm.feat_mean", math.nan))
world_model_case("norm-std-zero", "norm.feat_std: must be > 0", tensors=_fill("norm.feat_std", 0.0))
world_model_case("tensor-missing", "tensors do not match the header", tensors=lambda ts: ts.pop("norm.out_scale"))
world_model_case("no-header", "no robot_wm header", raw=lambda good, bad: __import__(
    "safetensors.torch", fromlist=["save_file"]).save_file({"w": __import__("torch").zeros(2)}, str(bad)))
world_model_case("junk", "not a readable safetensors file",
                 raw=lambda good, bad: bad.write_bytes(b"\x00\x01garbage" * 10))
world_model_case("truncated", "not a readable safetensors file",
                 raw=lambda good, bad: bad.write_bytes(good.read_bytes()[:-200]))
world_model_case("empty", "not a readable safetensors file", raw=lambda good, bad: bad.write_bytes(b""))
world_model_case("pickle", "not a readable safetensors file",
                 raw=lambda good, bad: __import__("torch").save({"a": __import__("torch").zeros(2)}, bad))


@case("world-model-missing", "none.safetensors", "model file not found")
def _wm_missing(d: Path) -> list[str]:
    return ["check", "--kind", "world-model", str(d / "none.safetensors")]


QUALITY = REPO_ROOT / "robot_wm" / "assets" / "grasp_quality.safetensors"


def quality_case(id: str, *expect: str, header: Callable | None = None, tensors: Callable | None = None,  # noqa: A002
                 raw: bytes | None = None, via: str = "check") -> None:
    def build(d: Path) -> list[str]:
        bad = d / "quality.safetensors"
        if raw is not None:
            bad.write_bytes(raw)
        else:
            _rewrite_model(QUALITY, bad, header, tensors, framework="np")
        if via == "guide":
            return ["grasp-quality", "train", "--objects", "0", "--data", str(d / "x_data.npz"), "--guide", str(bad),
                    "--out", str(d / "q.safetensors")]
        return ["check", "--kind", "grasp-quality", str(bad)]
    add(f"grasp-quality-{id}", build, "quality.safetensors", *expect)


def _np_fill(name: str, value: float) -> Callable[[dict], None]:
    def edit(ts: dict) -> None:
        ts[name] = ts[name].copy()
        ts[name].reshape(-1)[0] = value
    return edit


quality_case("header-list", "robot_wm: header is a JSON list", header=lambda h: [h])
quality_case("platt-nan", "platt_a: missing or not a finite number", header=_set(platt_a=math.nan))
quality_case("platt-missing", "platt_b: missing or not a finite number", header=_drop("platt_b"))
quality_case("features-differ", "features: differ", header=_set(features=["a", "b"]))
quality_case("weight-nan", "w1: tensor holds NaN", tensors=_np_fill("w1", math.nan))
quality_case("std-zero", "std: must be > 0", tensors=_np_fill("std", 0.0))
quality_case("tensor-missing", "b3: tensor missing", tensors=lambda ts: ts.pop("b3"))
quality_case("junk", "not a readable safetensors file", raw=b"junk" * 20)
quality_case("guide-header-list", "robot_wm: header is a JSON list", header=lambda h: [h], via="guide")
quality_case("guide-nan", "w2: tensor holds NaN", tensors=_np_fill("w2", math.inf), via="guide")


# ---------------------------------------------------------------------------------------------- data sets
def _episode(e: int) -> tuple[dict[str, np.ndarray], dict]:
    from robot_wm.model.dataset import Transition, pack_episode
    from robot_wm.model.shape import box_descriptor
    from robot_wm.model.state import object_state, push_action

    states = np.stack([object_state([0.5, 0.1 * i, 0.02], [0, 0, 0, 1], [0.04] * 3, "box") for i in range(2)])
    after = states.copy()
    after[0, 0] += 0.03
    rows = [Transition(states, after, push_action(0.45, 0.0, 0.02, 0.0, 0.05), 0, 0, touched={0})]
    arrays = pack_episode(e, rows, np.full(2, 0.1, np.float32), np.full(2, 0.5, np.float32),
                          [box_descriptor(s[7:10]) for s in states])
    return arrays, {"name": "s", "objects": [{"name": "o0"}, {"name": "o1"}]}


def data_folder(d: Path, shard_edit: Callable[[dict], None] | None = None,
                manifest_edit: Callable[[dict], Any] | None = None) -> Path:
    """A collected folder of one shard (one episode, one push), its arrays and manifest edited."""
    from robot_wm.model.dataset import pack_shard, shard_path, write_manifest, write_shard

    out = d / "data"
    out.mkdir(parents=True, exist_ok=True)
    arrays = pack_shard([_episode(0)], 0)
    if shard_edit is not None:
        shard_edit(arrays)
    write_shard(out, 0, arrays)
    manifest = {"config": {}, "episodes": 1, "shards": {"0": {"file": shard_path(out, 0).name, "episodes": 1,
                                                                 "transitions": len(arrays["action"])}}}
    if manifest_edit is not None:
        manifest = manifest_edit(manifest) or manifest
    write_manifest(out, manifest)
    return out


def data_case(id: str, *expect: str, shard: Callable | None = None, manifest: Callable | None = None,  # noqa: A002
              after: Callable[[Path], None] | None = None) -> None:
    def build(d: Path) -> list[str]:
        out = data_folder(d, shard, manifest)
        if after is not None:
            after(out)
        return ["train", "--data", str(out), "--out", str(d / "m.safetensors"), "--epochs", "1"]
    add(f"dataset-{id}", build, *expect)


def _arr(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict], None]:
    return lambda a: a.__setitem__(key, fn(a[key]))


def _nan_at(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.reshape(-1)[0] = np.nan
    return a


data_case("empty-shard", "shard_00000.npz", "empty shard",
          shard=lambda a: a.update({k: v[:0] for k, v in a.items() if k in (
              "before", "after", "mask", "action", "target", "touched", "grasp_ok", "grasp_class", "grasp_mode",
              "mass", "friction", "episode", "step")}))
data_case("before-wrong-shape", "shard_00000.npz: before: expected shape", shard=_arr("before", lambda v: v[:, :, :10]))
data_case("mask-wrong-shape", "shard_00000.npz: mask: expected shape", shard=_arr("mask", lambda v: v[:, :3]))
data_case("action-wrong-width", "shard_00000.npz: action: expected shape", shard=_arr("action", lambda v: v[:, :3]))
data_case("before-nan", "shard_00000.npz: before: holds NaN", shard=_arr("before", _nan_at))
data_case("action-inf", "shard_00000.npz: action: holds NaN", shard=_arr("action", lambda v: np.full_like(v, np.inf)))
data_case("target-out-of-range", "shard_00000.npz: target: object slots", shard=_arr("target", lambda v: v + 40))
data_case("target-float", "shard_00000.npz: target: expected integers", shard=_arr("target", lambda v: v + 0.5))
data_case("missing-array", "shard_00000.npz: before: array is missing", shard=lambda a: a.pop("before"))
data_case("episode-unknown", "shard_00000.npz: episode:", shard=_arr("episode", lambda v: v + 7))
data_case("no-episodes", "shard_00000.npz: scene_episode", shard=lambda a: a.update(
    scene_episode=a["scene_episode"][:0], scenes=a["scenes"][:0], ep_shape_box=a["ep_shape_box"][:0],
    ep_shape_occ=a["ep_shape_occ"][:0], ep_shape_parts=a["ep_shape_parts"][:0]))
data_case("shape-box-wrong", "shard_00000.npz: ep_shape_box: expected shape",
          shard=_arr("ep_shape_box", lambda v: v[..., :4]))
data_case("truncated-shard", "shard_00000.npz", "unreadable shard",
          after=lambda out: (out / "shard_00000.npz").write_bytes((out / "shard_00000.npz").read_bytes()[:200]))
data_case("shard-text", "shard_00000.npz", "unreadable shard",
          after=lambda out: (out / "shard_00000.npz").write_text("not an archive"))
data_case("shard-single-array", "shard_00000.npz", "not an .npz",
          after=lambda out: np.save(open(out / "shard_00000.npz", "wb"), np.zeros(3)))
data_case("shard-missing", "shard_00000.npz: shard listed in manifest.json is missing",
          after=lambda out: (out / "shard_00000.npz").unlink())
data_case("manifest-not-json", "manifest.json", "invalid JSON",
          after=lambda out: (out / "manifest.json").write_text("{oops"))
data_case("manifest-list", "manifest.json", "expected a JSON object (got list)",
          after=lambda out: (out / "manifest.json").write_text("[1, 2]"))
data_case("manifest-no-shards", "manifest.json: shards: missing", manifest=_drop("shards"))
data_case("manifest-no-config", "manifest.json: config: missing", manifest=_drop("config"))
data_case("manifest-episodes-negative", "manifest.json: episodes: must be an integer >= 0", manifest=_set(episodes=-1))
data_case("manifest-file-escapes", "manifest.json: shards.0.file: must be a file name inside the folder",
          manifest=lambda m: m["shards"]["0"].update(file="../../etc/passwd"))
data_case("manifest-shard-key", "manifest.json: shards.zero: shard keys must be shard numbers",
          manifest=lambda m: m.update(shards={"zero": m["shards"]["0"]}))
data_case("manifest-shard-episodes-zero", "manifest.json: shards.0.episodes: must be an integer >= 1",
          manifest=lambda m: m["shards"]["0"].update(episodes=0))
data_case("manifest-transitions-string", "manifest.json: shards.0.transitions",
          manifest=lambda m: m["shards"]["0"].update(transitions="many"))
data_case("no-shards-yet", "no shards collected yet", manifest=lambda m: m.update(shards={}))


@case("dataset-no-manifest", "no manifest.json")
def _data_no_manifest(d: Path) -> list[str]:
    (d / "data").mkdir()
    return ["train", "--data", str(d / "data"), "--out", str(d / "m.safetensors")]


@case("dataset-a-file", "train: --data", "is not a folder")
def _data_file(d: Path) -> list[str]:
    write(d / "data", "x")
    return ["train", "--data", str(d / "data"), "--out", str(d / "m.safetensors")]


def labels_case(id: str, arrays: dict[str, np.ndarray] | None, *expect: str, raw: bytes | None = None) -> None:  # noqa: A002
    def build(d: Path) -> list[str]:
        p = d / "x_data.npz"
        if raw is not None:
            p.write_bytes(raw)
        else:
            np.savez(p, **arrays)
        return ["grasp-quality", "train", "--objects", "0", "--data", str(p), "--out", str(d / "q.safetensors")]
    add(f"labels-{id}", build, "x_data.npz", *expect)


def _labels(n: int = 30, **edits: np.ndarray) -> dict[str, np.ndarray]:
    from robot_wm.grasping.quality import FEATURES

    rng = np.random.default_rng(0)
    out = {"features": rng.normal(size=(n, len(FEATURES))), "success": rng.integers(0, 2, n),
           "label": np.array(["stable"] * n), "object": np.arange(n) % 5, "sampled": np.ones(n, bool)}
    out.update(edits)
    return {k: v for k, v in out.items() if not (isinstance(v, str) and v == "drop")}


labels_case("features-nan", _labels(features=np.full((30, 1), np.nan)), "features: expected shape")
labels_case("features-has-nan", {**_labels(), "features": _nan_at(_labels()["features"])}, "features: holds NaN")
labels_case("success-not-binary", _labels(success=np.full(30, 3)), "success: labels must be 0 or 1")
labels_case("object-length", _labels(object=np.arange(5)), "object: expected shape (30,)")
labels_case("missing-success", {k: v for k, v in _labels().items() if k != "success"}, "success: array is missing")
labels_case("empty", _labels(n=0), "features: expected shape")
labels_case("truncated", None, "not a readable .npz labels file", raw=b"PK\x03\x04" + b"\x00" * 40)
labels_case("text", None, "not a readable .npz labels file", raw=b"features,success\n1,0\n")


# ---------------------------------------------------------------------------------------------- resume files
def _collect_manifest() -> dict:
    from robot_wm.model.collect import CollectConfig

    return {"config": asdict(CollectConfig(seed=0)), "episodes": 1,
            "shards": {"0": {"file": "shard_00000.npz", "episodes": 1, "transitions": 1}}}


def collect_case(id: str, *expect: str, manifest: Any = None, shard: bytes | Callable[[dict], None] | None = None  # noqa: A002
                 ) -> None:
    def build(d: Path) -> list[str]:
        out = d / "run"
        out.mkdir()
        m = _collect_manifest() if manifest is None else manifest
        (out / "manifest.json").write_text(m if isinstance(m, str) else json.dumps(m))
        if isinstance(shard, bytes):
            (out / "shard_00000.npz").write_bytes(shard)
        elif shard is not None:
            from robot_wm.model.dataset import pack_shard, write_shard

            arrays = pack_shard([_episode(0)], 0)
            shard(arrays)
            write_shard(out, 0, arrays)
        return ["collect", "--episodes", "1", "--out", str(out)]
    add(f"collect-resume-{id}", build, *expect)


collect_case("manifest-not-json", "run/manifest.json", "invalid JSON", manifest="{half")
collect_case("manifest-list", "run/manifest.json", "expected a JSON object", manifest="[]")
collect_case("manifest-no-config", "run/manifest.json: config: missing", manifest={"episodes": 1, "shards": {}})
collect_case("manifest-shards-list", "run/manifest.json: shards: missing or not a mapping",
             manifest={"config": {}, "episodes": 1, "shards": []})
collect_case("shard-truncated", "shard_00000.npz", "unreadable shard", "delete it", shard=b"PK\x03\x04trunc")
collect_case("shard-empty-file", "shard_00000.npz", "unreadable shard", shard=b"")
collect_case("shard-other-episodes", "shard_00000.npz: scene_episode: holds episodes [5]",
             shard=lambda a: a.update(scene_episode=a["scene_episode"] + 5, episode=a["episode"] + 5))
collect_case("shard-empty-arrays", "shard_00000.npz", "empty shard", shard=lambda a: a.update(
    {k: v[:0] for k, v in a.items() if k in ("before", "after", "mask", "action", "target", "touched", "grasp_ok",
                                            "grasp_class", "grasp_mode", "mass", "friction", "episode", "step")}))

GE_SPEC = "box:0.05x0.05x0.05"


def _grasp_eval_fingerprint() -> tuple[dict, str]:
    from robot_wm.grasping.config import load_shake_config
    from robot_wm.grasping.evaluate import Unit, _fingerprint
    from robot_wm.grasping.objects import parse_object_specs

    unit = Unit(0, parse_object_specs([GE_SPEC])[0], 20, None)
    return _fingerprint([unit], 0, load_shake_config()), unit.shard


def _ge_row(i: int, **kw: Any) -> str:
    row = {"object": "box_0.05x0.05x0.05", "grasp": i, "width": 0.04, "score": 0.1, "label": "stable", "slip": 0.0,
           "max_slip": 0.0, "closed_width": 0.04, "position": [0, 0, 0], "quaternion": [0, 0, 0, 1], **kw}
    return json.dumps(row)


def grasp_eval_resume_case(id: str, *expect: str, run_json: Any = None,  # noqa: A002
                           shard: str | bytes | None = None) -> None:  # noqa: A002
    def build(d: Path) -> list[str]:
        out = d / "run"
        (out / "shards").mkdir(parents=True)
        fp, name = _grasp_eval_fingerprint()
        rj = fp if run_json is None else run_json
        (out / "run.json").write_text(rj if isinstance(rj, str) else json.dumps(rj))
        if isinstance(shard, bytes):
            (out / "shards" / name).write_bytes(shard)
        elif shard is not None:
            (out / "shards" / name).write_text(shard)
        return ["grasp-eval", "--objects", GE_SPEC, "--out", str(out), "--quiet"]
    add(f"grasp-eval-resume-{id}", build, *expect)


grasp_eval_resume_case("run-json-not-json", "run.json", "corrupt resume file, not valid JSON", run_json="{trunc")
grasp_eval_resume_case("run-json-list", "run.json", "corrupt resume file", run_json="[1]")
grasp_eval_resume_case("run-json-missing-keys", "run.json", "corrupt resume file", run_json={"seed": 0})
grasp_eval_resume_case("run-json-other-run", "holds a run made with different arguments",
                       run_json={"seed": 5, "objects": [], "units_sha256": "x", "config": {}})
grasp_eval_resume_case("shard-not-json", ".jsonl: line 1: corrupt resume shard, not valid JSON", shard="{oops\n")
grasp_eval_resume_case("shard-row-list", ".jsonl: line 1: corrupt resume shard", shard="[1, 2]\n")
grasp_eval_resume_case("shard-missing-field", ".jsonl: line 2: corrupt resume shard",
                       shard=_ge_row(0) + "\n" + json.dumps({"object": "box_0.05x0.05x0.05", "grasp": 1}) + "\n")
grasp_eval_resume_case("shard-other-object", ".jsonl: line 1", "expected 'box_0.05x0.05x0.05' grasp 0",
                       shard=_ge_row(0, object="sphere") + "\n")
grasp_eval_resume_case("shard-grasp-order", ".jsonl: line 1", "grasp 0", shard=_ge_row(3) + "\n")
grasp_eval_resume_case("shard-too-many-rows", ".jsonl", "resume shard has 21 rows",
                       shard="".join(_ge_row(i) + "\n" for i in range(21)))
grasp_eval_resume_case("shard-binary", ".jsonl", "corrupt resume shard", shard=b"\xff\xfe\x00binary")


# ---------------------------------------------------------------------------------------------- CLI options
def argv(*args: str) -> Build:
    return lambda d: [a.replace("{d}", str(d)) for a in args]


def with_file(name: str, content: str, *args: str) -> Build:
    def build(d: Path) -> list[str]:
        write(d / name, content)
        return argv(*args)(d)
    return build


add("cli-seed-negative", argv("scene", "random", "--seed", "-1", "--out", "{d}/s.yaml"), "scene random",
    "--seed", "greater than or equal to 0")
add("cli-seed-huge", argv("scene", "random", "--seed", str(2**40), "--out", "{d}/s.yaml"), "--seed",
    "less than or equal to")
add("cli-seed-text", argv("demo", "--seed", "abc", "--out", "{d}/o"), "demo", "--seed", "valid integer")
add("cli-demo-seed-negative", argv("demo", "--seed", "-7", "--out", "{d}/o"), "demo", "--seed")
add("cli-collect-seed-negative", argv("collect", "--episodes", "1", "--seed", "-1", "--out", "{d}/c"), "collect",
    "--seed")
add("cli-grasp-eval-seed-negative", argv("grasp-eval", "--objects", GE_SPEC, "--seed", "-2", "--out", "{d}/g"),
    "grasp-eval", "--seed")
add("cli-train-seed-negative", argv("train", "--data", "{d}", "--out", "{d}/m.safetensors", "--seed", "-1"), "train",
    "--seed")
add("cli-bench-seed-negative", argv("bench", "sim", "--seed", "-1"), "bench", "--seed")
add("cli-demo-out-is-file", with_file("o", "x", "demo", "--out", "{d}/o", "--perception", "oracle"),
    "demo: --out {d}/o: exists and is not a folder")
add("cli-demo-out-under-file", with_file("o", "x", "demo", "--out", "{d}/o/sub", "--perception", "oracle"),
    "demo: --out {d}/o/sub: lies under {d}/o, a file")
add("cli-perceive-out-is-file", with_file("o", "x", "perceive", "--out", "{d}/o"), "perceive: --out", "not a folder")
add("cli-scene-random-out-is-dir", argv("scene", "random", "--out", "{d}"), "scene random: --out", "is a folder")
add("cli-scene-random-out-under-file", with_file("f", "x", "scene", "random", "--out", "{d}/f/s.yaml"),
    "scene random: --out", "lies under")
add("cli-train-out-is-dir", lambda d: (d / "m.safetensors").mkdir() or ["train", "--data", str(d), "--out",
                                                                      str(d / "m.safetensors")],
    "train: --out", "is a folder")
add("cli-train-out-suffix", argv("train", "--data", "{d}", "--out", "{d}/m.pt"), "train: --out must end in")
add("cli-collect-out-is-file", with_file("c", "x", "collect", "--episodes", "1", "--out", "{d}/c"), "collect: --out",
    "not a folder")
add("cli-grasp-eval-out-is-file", with_file("g", "x", "grasp-eval", "--objects", GE_SPEC, "--out", "{d}/g"),
    "grasp-eval: --out", "not a folder")
add("cli-grasp-quality-out-is-dir", lambda d: (d / "q.safetensors").mkdir() or [
    "grasp-quality", "train", "--objects", "0", "--data", str(d / "x.npz"), "--out", str(d / "q.safetensors")],
    "grasp-quality train: --out", "is a folder")
add("cli-collect-episodes-zero", argv("collect", "--episodes", "0", "--out", "{d}/c"), "--episodes must be >= 1")
add("cli-collect-workers-zero", argv("collect", "--episodes", "1", "--workers", "0", "--out", "{d}/c"),
    "--workers must be >= 1")
add("cli-collect-backend", argv("collect", "--episodes", "1", "--backend", "mpi", "--out", "{d}/c"),
    "--backend must be local or ray")
add("cli-collect-objects", argv("collect", "--episodes", "1", "--objects", "all", "--out", "{d}/c"),
    "--objects must be train or test")
add("cli-grasp-eval-workers", argv("grasp-eval", "--objects", GE_SPEC, "--workers", "0", "--out", "{d}/g"),
    "--workers must be >= 1")
add("cli-grasp-eval-both", argv("grasp-eval", "--objects", GE_SPEC, "--grasps", "{d}/g.json", "--grasps-per-object",
                                "3", "--out", "{d}/g"), "either --grasps-per-object or --grasps")
add("cli-train-epochs", argv("train", "--data", "{d}", "--out", "{d}/m.safetensors", "--epochs", "0"),
    "--epochs, --patience")
add("cli-train-val-split", argv("train", "--data", "{d}", "--out", "{d}/m.safetensors", "--val-split", "random"),
    "--val-split must be")
add("cli-bench-area", argv("bench", "nonsense"), "bench: AREA must be one of")
add("cli-bench-missing-scene", argv("bench", "sim", "--scenes", "{d}/none.yaml"), "none.yaml: file not found")
add("cli-demo-perception", argv("demo", "--perception", "telepathy", "--out", "{d}/o"), "--perception: must be one of")
add("cli-demo-controller", argv("demo", "--controller", "magic", "--out", "{d}/o"), "--controller: must be one of")
add("cli-demo-missing-scene", argv("demo", "--scene", "{d}/none.yaml", "--out", "{d}/o"), "none.yaml: file not found")
add("cli-demo-missing-launch", argv("demo", "--launch", "{d}/none.yaml", "--out", "{d}/o"), "none.yaml: file not found")
add("cli-unknown-option", argv("demo", "--bogus"), "demo:", "No such option")
add("cli-unknown-command", argv("fly"), "No such command")
add("cli-missing-option", argv("grasp-eval"), "grasp-eval:", "Missing option")
add("cli-scene-random-objects", argv("scene", "random", "--objects", "13", "--out", "{d}/s.yaml"), "--objects")
add("cli-scene-random-task", argv("scene", "random", "--task", "juggle", "--out", "{d}/s.yaml"), "--task must be one of")
add("cli-scene-random-cameras", argv("scene", "random", "--cameras", "9", "--out", "{d}/s.yaml"), "--cameras must be")
add("cli-perceive-camera", argv("perceive", "--camera", "nope", "--out", "{d}/o"), "--camera: no camera named 'nope'")
add("cli-check-kind", argv("check", "--kind", "banana", "{d}/x.yaml"), "check: --kind must be one of")
add("cli-check-folder", argv("check", "{d}"), "not a collected data folder")
add("cli-check-extension", with_file("x.bin", "x", "check", "{d}/x.bin"), "cannot tell the kind from the extension")
add("cli-grasp-quality-kind", argv("grasp-quality", "train", "--kind", "lying", "--out", "{d}/q.safetensors"),
    "--kind lying is not one of")
add("cli-grasp-quality-data-missing", argv("grasp-quality", "train", "--objects", "0", "--data", "{d}/none.npz",
                                           "--out", "{d}/q.safetensors"), "none.npz", "not found")
add("cli-grasp-quality-guide-missing", argv("grasp-quality", "train", "--objects", "0", "--data", "{d}/x.npz",
                                            "--guide", "{d}/none.safetensors", "--out", "{d}/q.safetensors"),
    "none.safetensors", "not found")


@case("grasps-npz-single-array", "g.npz", "a single array, not an .npz archive")
def _npz_single(d: Path) -> list[str]:
    with open(d / "g.npz", "wb") as f:
        np.save(f, np.eye(4)[None])
    return ["grasp-eval", "--objects", GE_SPEC, "--grasps", str(d / "g.npz"), "--out", str(d / "run")]


@case("labels-single-array", "x_data.npz", "a single array, not an .npz archive")
def _labels_single(d: Path) -> list[str]:
    with open(d / "x_data.npz", "wb") as f:
        np.save(f, np.zeros((3, 3)))
    return ["grasp-quality", "train", "--objects", "0", "--data", str(d / "x_data.npz"), "--out",
            str(d / "q.safetensors")]


def check_case(case: Case, folder: Path, main: Callable[[list[str]], int]) -> str:
    """Run `case` in `folder` (created; its parent is the working directory meanwhile) through `main` (the
    CLI's entry point, ``robot_wm.cli.main.main``: the bench layer does not import the CLI, which hands itself
    in); "" when it ended as the contract says (exit 2, one ``error:`` line on stderr with every expected
    fragment, no traceback), else what went wrong."""
    import contextlib
    import io
    import os

    folder.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    err, out = io.StringIO(), io.StringIO()
    try:
        os.chdir(folder.parent)
        argv = case.build(folder)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    except BaseException as exc:  # noqa: BLE001 — anything escaping main is a failure of the contract
        return f"raised {type(exc).__name__}: {exc}"
    finally:
        os.chdir(cwd)
    text = err.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    if code != 2:
        return f"exit {code}: {text[-300:]}"
    if "Traceback" in text:
        return "traceback on stderr"
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return f"{len(lines)} lines on stderr: {text[-300:]}"
    missing = [f for f in case.expect if f.replace("{d}", str(folder)) not in lines[0]]
    return f"{missing} not in {lines[0]!r}" if missing else ""
