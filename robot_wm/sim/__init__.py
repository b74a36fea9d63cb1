"""Layer 3: the simulated world. The only package that imports ``pybullet``."""

from robot_wm.sim.arm import Arm, MotionResult
from robot_wm.sim.camera import Camera
from robot_wm.sim.client import TIME_STEP, gui_available, quiet_stdio
from robot_wm.sim.kinematics import KinematicModel, Obstacle
from robot_wm.sim.world import Contact, ObjectInfo, World

__all__ = [
    "Arm",
    "Camera",
    "Contact",
    "KinematicModel",
    "MotionResult",
    "ObjectInfo",
    "Obstacle",
    "TIME_STEP",
    "World",
    "gui_available",
    "quiet_stdio",
]
