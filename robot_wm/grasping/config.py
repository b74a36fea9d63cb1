"""The shake-test protocol configuration (``planners/shake_test.yaml``), validated with pydantic."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from robot_wm.config import REPO_ROOT, load_yaml_model

DEFAULT_SHAKE_CONFIG = REPO_ROOT / "planners" / "shake_test.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class ShakeConfig(_Strict):
    """All parameters of the shake-test protocol (SI units)."""

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
