"""The shake-test protocol configuration (``planners/shake_test.yaml``), validated with pydantic.

``protocol`` picks the judge: ``free_hand`` (default; :func:`robot_wm.grasping.shake.shake_test`, a
free-floating hand and object, nothing else) or ``arm_table`` (the Panda arm on a table,
:func:`robot_wm.grasping.shake.arm_table_trials`, settings in ``arm_table``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robot_wm.config import REPO_ROOT, load_yaml_model
from robot_wm.config.workspace import REACH_MAX, REACH_MIN, in_reach, on_table

if TYPE_CHECKING:
    from robot_wm.sim.arm_grasp_trial import ArmTrialConfig

DEFAULT_SHAKE_CONFIG = REPO_ROOT / "planners" / "shake_test.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PhysicsConfig(_Strict):
    time_step: float = Field(1.0 / 120.0, gt=0, le=0.02)
    solver_iterations: int = Field(20, ge=1, le=500)
    quasi_static_time_step: float | None = Field(None, gt=0, le=0.05)
    hand_max_force: float = Field(500.0, gt=0)
    finger_friction: float = Field(1.0, ge=0)
    rolling_friction: float = Field(1e-4, ge=0)  # object's rolling friction (m); 0 is ~25 % faster, see docs


class ArmConfig(_Strict):
    enabled: bool = False                                 # full Panda arm instead of a free-floating hand
    base_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    object_position: tuple[float, float, float] = (0.5, 0.0, 0.2)  # where grasp-eval puts objects


class CloseConfig(_Strict):
    finger_force: float = Field(40.0, gt=0)
    duration_s: float = Field(0.3, gt=0)
    speed: float = Field(0.1, gt=0)
    opening_clearance: float = Field(0.01, ge=0)
    collision_tolerance: float = Field(0.002, ge=0)


class LiftConfig(_Strict):
    height: float = Field(0.10, ge=0)
    duration_s: float = Field(0.3, gt=0)


class RotShakeConfig(_Strict):
    count: int = Field(3, ge=0)
    amplitude: float = Field(0.0981748, ge=0)
    period_s: float = Field(0.15, gt=0)


class TransShakeConfig(_Strict):
    count: int = Field(3, ge=0)
    amplitude: float = Field(0.01, ge=0)
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    period_s: float = Field(0.15, gt=0)

    @field_validator("axis")
    @classmethod
    def _nonzero(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if sum(x * x for x in v) < 1e-12:
            raise ValueError("must be a non-zero vector")
        return v


class PullConfig(_Strict):
    directions: list[tuple[float, float, float]] = Field(
        default_factory=lambda: [(0, 0, 1), (0, 2, 1), (0, -2, 1), (2, 0, 1), (-2, 0, 1)])
    duration_s: float = Field(0.5, ge=0)
    weight_factor: float = Field(1.0, ge=0)

    @field_validator("directions")
    @classmethod
    def _nonzero(cls, v: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
        for i, d in enumerate(v):
            if sum(x * x for x in d) < 1e-12:
                raise ValueError(f"directions[{i}]: must be a non-zero vector")
        return v


class HoldConfig(_Strict):
    duration_s: float = Field(0.1, ge=0)


class LabelConfig(_Strict):
    slip_threshold: float = Field(0.01, gt=0)


class RobustConfig(_Strict):
    trials: int = Field(10, ge=1)
    position_sigma: float = Field(0.0025, ge=0)
    rotation_sigma: float = Field(0.01, ge=0)
    friction_spread: float = Field(0.2, ge=0, lt=1)
    mass_spread: float = Field(0.2, ge=0, lt=1)


TABLE_MARGIN = 0.1  # m: the object's spawn position lies this far inside the table's edges


class ArmTableConfig(_Strict):
    """The ``arm_table`` protocol (world frame: robot base at the origin, table top z = 0; m, s, N, xyzw).

    The object (grasps in its frame) is spawned at `object_position` (x, y) with `object_orientation`, its
    lowest point `spawn_clearance` above the table; with `settle` it drops and comes to rest first and the
    grasps follow it to its resting pose, else the trial starts at once from the spawn pose. Lift, shakes,
    finger force and slip threshold come from the shake test's sections; the pulls need a free hand, so a
    carry replaces them.
    """

    object_position: tuple[float, float] = (0.5, 0.0)
    object_orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    spawn_clearance: float = Field(0.003, ge=0, le=0.05)
    settle: bool = True
    approach: float = Field(0.12, gt=0, le=0.3)          # pre-grasp distance back along the TCP z axis
    approach_speed: float = Field(0.2, gt=0, le=1.0)
    close_max_s: float = Field(1.0, gt=0, le=5.0)
    carry: float = Field(0.15, ge=0, le=0.3)             # sideways (world -y) after the shakes
    carry_speed: float = Field(0.3, gt=0, le=1.0)
    hold_s: float = Field(0.25, ge=0, le=5.0)
    table_force: float = Field(5.0, gt=0)                # robot-table normal force (N) -> table_collision
    contact_tolerance: float = Field(0.0, ge=-0.01, le=0.02)  # clearance the arm needs at the pre-grasp

    @field_validator("object_position")
    @classmethod
    def _on_table(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not on_table(v[0], v[1], TABLE_MARGIN):
            raise ValueError(f"must lie on the table at least {TABLE_MARGIN} m inside its edges (got {list(v)})")
        if not in_reach(v[0], v[1]):
            raise ValueError(f"out of the arm's reach ({REACH_MIN}-{REACH_MAX} m from the base; got {list(v)})")
        return v

    @field_validator("object_orientation")
    @classmethod
    def _unit(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        norm = math.sqrt(sum(c * c for c in v))
        if abs(norm - 1.0) > 1e-3:
            raise ValueError(f"quaternion (xyzw) must have unit length (got norm {norm:.3g})")
        return tuple(c / norm for c in v)


class ShakeConfig(_Strict):
    """All parameters of the shake-test protocol (SI units)."""

    protocol: Literal["free_hand", "arm_table"] = "free_hand"
    arm_table: ArmTableConfig = ArmTableConfig()
    physics: PhysicsConfig = PhysicsConfig()
    arm: ArmConfig = ArmConfig()
    close: CloseConfig = CloseConfig()
    lift: LiftConfig = LiftConfig()
    rotational_shakes: RotShakeConfig = RotShakeConfig()
    translational_shakes: TransShakeConfig = TransShakeConfig()
    pulls: PullConfig = PullConfig()
    hold: HoldConfig = HoldConfig()
    labels: LabelConfig = LabelConfig()
    robust: RobustConfig = RobustConfig()

    @model_validator(mode="after")
    def _one_arm(self) -> ShakeConfig:
        if self.protocol == "arm_table" and self.arm.enabled:
            raise ValueError("arm.enabled: the arm_table protocol brings its own arm; set it to false")
        return self

    def arm_trial_config(self) -> ArmTrialConfig:
        """The ``arm_table`` protocol's trial settings: `arm_table` plus the lift, shakes, finger force and
        slip threshold of this shake test."""
        from robot_wm.sim.arm_grasp_trial import ArmTrialConfig

        a, rs, ts = self.arm_table, self.rotational_shakes, self.translational_shakes
        return ArmTrialConfig(approach=a.approach, approach_speed=a.approach_speed,
                              finger_force=self.close.finger_force, close_max_s=a.close_max_s, lift=self.lift.height,
                              rot_amplitude=rs.amplitude, rot_period_s=rs.period_s, rot_count=rs.count,
                              trans_amplitude=ts.amplitude, trans_period_s=ts.period_s, trans_count=ts.count,
                              shake_axis=ts.axis, carry=a.carry, carry_speed=a.carry_speed, hold_s=a.hold_s,
                              slip_threshold=self.labels.slip_threshold, table_force=a.table_force,
                              contact_tolerance=a.contact_tolerance)

    def simulated_seconds(self) -> float:
        """Simulated duration of one trial (s)."""
        return (self.close.duration_s + self.lift.duration_s
                + self.rotational_shakes.count * self.rotational_shakes.period_s
                + self.translational_shakes.count * self.translational_shakes.period_s
                + len(self.pulls.directions) * self.pulls.duration_s + self.hold.duration_s)


def load_shake_config(path: str | Path | None = None) -> ShakeConfig:
    """Load and validate a shake-test YAML (default ``planners/shake_test.yaml``); errors are
    :class:`~robot_wm.config.ConfigError` naming file and key."""
    return load_yaml_model(DEFAULT_SHAKE_CONFIG if path is None else path, ShakeConfig)
