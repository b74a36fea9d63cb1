"""The world of an arm grasp trial: one object on the table in front of the Panda, and repeated
:func:`~robot_wm.sim.arm_grasp_trial.arm_grasp_trial` runs on it, each from a freshly reset world.

Shared by the offline evaluation's ``arm_table`` protocol (``robot-wm grasp-eval``) and the hard suite of
``robot-wm bench grasping``. World frame: z up, robot base at the origin, table top at z = 0 (m, xyzw).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from robot_wm.config import Scene, scene_from_dict
from robot_wm.config.random_scene import scene_mapping
from robot_wm.geometry import Pose
from robot_wm.sim.arm import Arm
from robot_wm.sim.arm_grasp_trial import ArmTrialConfig, ArmTrialResult, arm_grasp_trial
from robot_wm.sim.hand import ObjectModel
from robot_wm.sim.kinematics import KinematicModel
from robot_wm.sim.world import World

TARGET = "target"  # the object's name in the trial world


def single_object_scene(entry: Mapping[str, Any], name: str, seed: int = 0,
                        cameras: Sequence[str | Mapping[str, Any]] = ("front.yaml",)) -> Scene:
    """A validated scene named `name`: the table, the Panda at the origin and one object, `entry` (a
    scene-contract object mapping: name, shape/size or urdf/scale, mass, friction, position (3,) m,
    orientation (4,) xyzw). `cameras`: calibration file names (looked up in ``calibration/``) or
    calibration mappings (contract format with a ``name``; written to a temporary folder while the scene
    is validated). Raises :class:`~robot_wm.config.ConfigError` on a bad entry."""
    with tempfile.TemporaryDirectory(prefix="robot_wm_arm_trial_") as tmp:
        names = []
        for cam in cameras:
            if isinstance(cam, str):
                names.append(cam)
            else:
                (Path(tmp) / f"{cam['name']}.yaml").write_text(yaml.safe_dump(dict(cam)))
                names.append(f"{cam['name']}.yaml")
        data = scene_mapping(name, [dict(entry)], cameras=tuple(names), seed=seed)
        return scene_from_dict(data, name, Path(tmp))


def object_entry(obj: ObjectModel, pose: Pose, name: str = TARGET) -> dict[str, Any]:
    """The scene-contract mapping of `obj` (primitive or URDF; not a perceived ``hull``) spawned at `pose`
    (world). Mass and friction stay the URDF's where `obj` leaves them None."""
    if obj.shape == "hull":
        raise ValueError(f"{obj.name}: a perceived hull cannot be put in a scene")
    entry: dict[str, Any] = {"name": name}
    if obj.shape is not None:
        entry.update(shape=obj.shape, size=[float(s) for s in obj.size],
                     mass=0.1 if obj.mass is None else float(obj.mass))
    else:
        entry.update(urdf=str(obj.urdf), scale=float(obj.scale))
        if obj.mass is not None:
            entry["mass"] = float(obj.mass)
    if obj.friction is not None:
        entry["friction"] = float(obj.friction)
    entry.update(position=[float(v) for v in pose.position], orientation=[float(v) for v in pose.quaternion])
    return entry


_KIN: dict[tuple[str, tuple[float, ...]], KinematicModel] = {}


def shared_kinematics(scene: Scene) -> KinematicModel:
    """One kinematic model per process and robot (URDF, base position): IK only, no per-trial state (its
    answers depend on the target and seed alone), so sharing it keeps trials independent."""
    key = (str(scene.robot_urdf), tuple(float(v) for v in scene.config.robot.base_position))
    if key not in _KIN:
        _KIN[key] = KinematicModel(key[0], list(key[1]))
    return _KIN[key]


class ArmTrialWorld:
    """A :class:`World` of `scene` and its Panda for repeated arm grasp trials on object `name`.

    Built once (objects settle when `settle`); :meth:`trial` resets the world before every trial but the
    first, so each trial starts from the same state bit for bit (a given sequence of trials gives the same
    labels in any process). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, scene: Scene, seed: int | None = None, name: str = TARGET, settle: bool = True,
                 kin: KinematicModel | None = None) -> None:
        self.name = name
        self.settle = settle
        self.world = World(scene, seed=seed)
        if not settle:
            self.world.reset(seed, settle=False)
        self._seed = seed
        self.arm = Arm(self.world, kin=kin or shared_kinematics(scene))
        self.start_pose = self.world.object_pose(name)  # the object's pose at the start of every trial
        self._dirty = False

    def trial(self, tcp_pose: Pose, opening: float, config: ArmTrialConfig | None = None) -> ArmTrialResult:
        """One :func:`arm_grasp_trial` of the TCP pose (world) with the fingers open to `opening` (m)."""
        if self._dirty:
            self.world.reset(self._seed, settle=self.settle)
        self._dirty = True
        return arm_grasp_trial(self.world, self.arm, self.name, tcp_pose, opening, config)

    def close(self) -> None:
        self.arm.close()
        self.world.close()

    def __enter__(self) -> ArmTrialWorld:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["TARGET", "ArmTrialWorld", "object_entry", "shared_kinematics", "single_object_scene"]
