"""Rigid poses. Quaternions are xyzw (PyBullet, ROS and SciPy order)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.spatial.transform import Rotation


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (xyzw) with a non-negative w, so equal rotations compare equal."""
    q = np.asarray(q, dtype=float)
    q = q / np.linalg.norm(q)
    return -q if q[3] < 0 else q


def yaw_of(quaternion: np.ndarray) -> float:
    """Rotation about world z (rad) of an xyzw quaternion, in (-pi, pi]."""
    return float(Rotation.from_quat(quaternion).as_euler("xyz")[2])


def yaw_quaternion(yaw: float) -> np.ndarray:
    """Quaternion (4,) xyzw of a rotation by `yaw` rad about world z."""
    return np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])


def top_down_quaternion(yaw: float) -> np.ndarray:
    """Quaternion (4,) xyzw of a gripper TCP pointing straight down (z = world -z), turned by `yaw` rad
    about world z: ``Rz(yaw) @ Rx(pi)``; the fingers then close along (sin yaw, -cos yaw, 0)."""
    return (Rotation.from_euler("z", yaw) * Rotation.from_euler("x", np.pi)).as_quat()


def pusher_heading(yaw: float) -> float:
    """Hand heading (rad, |.| <= pi/2) for a push along `yaw`: the closed pads are the same pusher turned
    by a half turn, so the hand keeps the heading nearer its home heading (0) and the wrist never needs
    more than a quarter turn. (Over 51 pushes the outcome moved less than a 0.5 mm start jitter moves it:
    p90 1.1 vs 3.0 mm; fewer starts are unreachable and the IK needs fewer restarts.)"""
    h = float(np.arctan2(np.sin(yaw), np.cos(yaw)))
    return h - np.pi * np.sign(h) if abs(h) > np.pi / 2 else h


@dataclass(frozen=True)
class Pose:
    """A rigid transform: position (3,) in metres and quaternion (4,) xyzw.

    ``a2b @ p`` maps coordinates in frame a to frame b; ``a2b @ b2c`` is not the order:
    compose as ``b2c @ a2b`` to get ``a2c`` (matrix convention).
    """

    position: np.ndarray
    quaternion: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", np.asarray(self.position, dtype=float).reshape(3))
        q = quat_normalize(np.asarray(self.quaternion, dtype=float).reshape(4))
        q.flags.writeable = False  # `rotation` is computed once from it
        object.__setattr__(self, "quaternion", q)

    @staticmethod
    def identity() -> Pose:
        return Pose(np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]))

    @staticmethod
    def from_matrix(matrix: np.ndarray) -> Pose:
        """From a 4x4 homogeneous transform."""
        m = np.asarray(matrix, dtype=float)
        return Pose(m[:3, 3], Rotation.from_matrix(m[:3, :3]).as_quat())

    @cached_property
    def rotation(self) -> Rotation:
        """The orientation as a SciPy rotation (built once per pose: poses are immutable)."""
        return Rotation.from_quat(self.quaternion)

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform."""
        m = np.eye(4)
        m[:3, :3] = self.rotation.as_matrix()
        m[:3, 3] = self.position
        return m

    def inverse(self) -> Pose:
        inv = self.rotation.inv()
        return Pose(-inv.apply(self.position), inv.as_quat())

    def __matmul__(self, other: Pose) -> Pose:
        """Composition: ``(b2c @ a2b) = a2c``."""
        return Pose(self.position + self.rotation.apply(other.position), (self.rotation * other.rotation).as_quat())

    def transform_points(self, points: np.ndarray) -> np.ndarray:
        """Apply to points (..., 3); returns the same shape."""
        pts = np.asarray(points, dtype=float)
        flat = pts.reshape(-1, 3)
        out = flat @ self.rotation.as_matrix().T + self.position
        return out.reshape(pts.shape)

    def distance(self, other: Pose) -> tuple[float, float]:
        """(translation error in m, rotation error in rad) between two poses."""
        dp = float(np.linalg.norm(self.position - other.position))
        dr = float((self.rotation.inv() * other.rotation).magnitude())
        return dp, dr

    def as_list(self) -> list[list[float]]:
        return [self.position.tolist(), self.quaternion.tolist()]
