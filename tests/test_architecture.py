"""The layer table of docs/ARCHITECTURE.md as a check: imports point one way, PyBullet stays in ``sim``.

Every ``import`` in the package — module top or inside a function — is read from the source (AST), so a
lazy import cannot slip past. The runtime checks import a module in a fresh interpreter and look at what
it pulled in, which also catches an edge through a third module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robot_wm"

# Layer of each top-level part of the package (docs/ARCHITECTURE.md, "Layers").
LAYERS = {
    "geometry": 1,
    "config": 2, "interface": 2,
    "sim": 3,
    "perception": 4, "grasping": 4, "model": 4,
    "planning": 5,
    "control": 6, "envs": 6, "cli": 6, "bench": 6,
}
# Imports between parts of the same layer that the design allows (importer -> imported).
SIDEWAYS = {
    ("model", "grasping"),  # data generation (not the model core) labels grasps with the shake test
    ("envs", "control"),
    ("bench", "control"), ("bench", "envs"),
    ("cli", "control"), ("cli", "bench"), ("cli", "envs"),
}
# The learned model itself: usable without the simulator or the grasping module.
MODEL_CORE = ("state", "network", "grasp_head", "shape", "world_model")
PHYSICS = ("pybullet", "pybullet_utils")  # pybullet_data (data files only) may be read anywhere
CLIENT_CALLS = {"getContactPoints", "stepSimulation", "getBasePositionAndOrientation", "resetBasePositionAndOrientation",
                "getCameraImage", "loadURDF", "createMultiBody", "getNumBodies", "changeDynamics"}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from robot_wm.x import y` may import the submodule robot_wm.x.y
            out.extend((node.lineno, f"{name}.{a.name}") for a in node.names if name.startswith("robot_wm"))
    return out


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "robot_wm" else None


MODULES = _modules()


def test_every_part_has_a_layer():
    parts = {_part(m) for m, _ in MODULES} - {None}
    assert parts <= set(LAYERS), f"parts without a layer in this test and ARCHITECTURE.md: {parts - set(LAYERS)}"


def test_imports_point_one_way():
    bad = []
    for module, path in MODULES:
        src = _part(module)
        if src is None:
            continue
        for line, name in _imports(path, module):
            dst = _part(name)
            if dst is None or dst == src or dst not in LAYERS:
                continue
            if LAYERS[dst] < LAYERS[src] or (src, dst) in SIDEWAYS:
                continue
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {src} (layer {LAYERS[src]}) imports {name} "
                       f"(layer {LAYERS[dst]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_pybullet_only_in_sim():
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}"
           for module, path in MODULES if _part(module) != "sim"
           for line, name in _imports(path, module) if name.split(".")[0] in PHYSICS]
    assert not bad, "\n".join(bad)


def test_no_physics_client_outside_sim():
    """No code outside ``sim`` reaches into a World's client or calls PyBullet's API by name."""
    bad = []
    for module, path in MODULES:
        if _part(module) == "sim":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (node.attr == "client" or node.attr in CLIENT_CALLS):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: .{node.attr}")
    assert not bad, "\n".join(bad)


def test_model_core_needs_neither_grasping_nor_sim():
    bad = []
    for module, path in MODULES:
        if not module.startswith("robot_wm.model.") or module.rsplit(".", 1)[1] not in MODEL_CORE:
            continue
        bad += [f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}"
                for line, name in _imports(path, module) if _part(name) in ("grasping", "sim")]
    assert not bad, "\n".join(bad)


def _loaded_by(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module, forbidden", [
    ("robot_wm.interface", ("pybullet", "robot_wm.sim", "torch")),
    ("robot_wm.geometry", ("pybullet", "robot_wm.sim", "robot_wm.config")),
    ("robot_wm.model.world_model", ("pybullet", "robot_wm.sim", "robot_wm.grasping")),
    ("robot_wm.model.train", ("pybullet", "robot_wm.sim", "robot_wm.grasping")),
    ("robot_wm.model.dataset", ("pybullet", "robot_wm.sim", "robot_wm.grasping")),
    ("robot_wm.control.pick_place", ("pybullet", "robot_wm.sim")),
    ("robot_wm.perception", ("pybullet", "robot_wm.sim")),
])
def test_runtime_imports_stay_light(module, forbidden):
    """Importing these (directly or through anything they import) never loads the listed packages."""
    loaded = _loaded_by(module)
    leaked = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not leaked, f"import {module} loads {leaked}"


def test_checker_catches_a_violation(tmp_path):
    """The AST reader sees lazy and relative imports (so the checks above can fail)."""
    f = tmp_path / "mod.py"
    f.write_text("def g():\n    from ..sim import world\n    import pybullet\n")
    names = [n for _, n in _imports(f, "robot_wm.perception.mod")]
    assert "robot_wm.sim" in names and "pybullet" in names
