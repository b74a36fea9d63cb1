"""Layer 3: the simulated world. The only package that imports ``pybullet``."""

from robot_wm.sim.arm import Arm, MotionResult
from robot_wm.sim.camera import Camera
from robot_wm.sim.kinematics import KinematicModel, Obstacle
from robot_wm.sim.world import ObjectInfo, World

__all__ = [
    "Arm",
    "Camera",
    "KinematicModel",
    "MotionResult",
    "ObjectInfo",
    "Obstacle",
    "World",
]
