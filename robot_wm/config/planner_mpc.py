"""Settings of the sampling model-predictive controller (``planners/mpc.yaml``), see
:mod:`robot_wm.planning.mpc`.

Units: distances in m, angles in rad, costs in metre-equivalents (a cost of 0.01 is worth 1 cm of goal
position error). Every key is optional; a bad value gives the project's one-line :class:`ConfigError`
(``planners/mpc.yaml: cost.kappa: must be >= 0 (got -1)``). The seed is not a setting: it is passed to
the planner (same seed, same plan).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robot_wm.config.loader import REPO_ROOT, load_yaml_model

DEFAULT_MPC_FILE = REPO_ROOT / "planners" / "mpc.yaml"

Range = Annotated[list[float], Field(min_length=2, max_length=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


class PushSamplingConfig(_Strict):
    """How a push is parameterised relative to its object (kept inside the world model's training
    distribution, robot_wm.model.collect.sample_push): the pad starts ``gap`` m short of the object's
    footprint along the push heading, at ``lateral`` x its half-width to the side, and travels ``gap +
    depth`` m; the pad face turned by a ``tilt`` of at most ``tilt_max`` rad starts up to ``tilt_gap`` m
    further back (in full from a tilt of 0.15 rad, the least the collector draws)."""

    gap: float = Field(default=0.01, ge=0.0, le=0.03)  # m, free travel before contact (training: 0.005-0.03)
    depth: Range = [0.02, 0.12]  # m, travel after contact (training: 0.02-0.15)
    lateral_max: float = Field(default=0.8, ge=0.0, le=1.0)  # |lateral offset| / half-width (training: 0.8)
    tilt_max: float = Field(default=0.6, ge=0.0, le=0.6)  # rad, |pad face tilt| (training: 0 or 0.15-0.6)
    tilt_gap: float = Field(default=0.01, ge=0.0, le=0.02)  # m added to the gap of a tilted face (training: 0.01)

    @field_validator("depth")
    @classmethod
    def _depth(cls, v: list[float]) -> list[float]:
        lo, hi = v
        if not (0.0 < lo < hi <= 0.2):
            raise ValueError(f"need 0 < min < max <= 0.2 m (got {v})")
        return v


class CostConfig(_Strict):
    """Weights of :class:`robot_wm.planning.costs.GoalCost` (metre-equivalents)."""

    position_weight: float = Field(default=1.0, ge=0.0)  # per m of goal position error (x-y)
    yaw_weight: float = Field(default=0.1, ge=0.0)  # per rad of goal yaw error (only goals with a yaw)
    stage_weight: float = Field(default=0.1, ge=0.0)  # goal cost after each step, x this, added to the final one
    push_cost: float = Field(default=0.003, ge=0.0)  # per push
    disturb_weight: float = Field(default=0.1, ge=0.0)  # per m that an object without a goal is moved
    workspace_x: Range = [0.2, 0.8]  # m, world x range objects must stay in
    workspace_y: Range = [-0.45, 0.45]  # m, world y range
    outside_penalty: float = Field(default=0.5, ge=0.0)  # per object outside the workspace at the end ...
    outside_slope: float = Field(default=10.0, ge=0.0)  # ... plus this per m outside
    failure_cost: float = Field(default=1.0, ge=0.0)  # x (1 - P(every action succeeds))
    kappa: float = Field(default=0.5, ge=0.0)  # x member disagreement (summed over steps and objects)
    blocked_cost: float = Field(default=1.0, ge=0.0)  # per push whose start is inside another object
    pad_clearance: float = Field(default=0.012, ge=0.0, le=0.05)  # m the pads need around their start

    @field_validator("workspace_x", "workspace_y")
    @classmethod
    def _ordered(cls, v: list[float]) -> list[float]:
        if not v[0] < v[1]:
            raise ValueError(f"need min < max (got {v})")
        return v


class MPCConfig(_Strict):
    """The sampling MPC (CEM or MPPI) over batched dynamics. See :mod:`robot_wm.planning.mpc`."""

    name: str = "mpc"
    method: Literal["cem", "mppi"] = "cem"
    dynamics: Literal["world_model", "no_motion", "physics"] = "world_model"
    model: str | None = None  # world-model file (default: the shipped robot_wm/assets/world_model.safetensors)
    uncertainty: Literal["epistemic", "total"] = "epistemic"  # what the disagreement term measures
    turn: Literal["mode", "expected"] = "expected"  # a push's yaw change: its mean (model readout) or its mode
    samples: int = Field(default=1000, ge=2, le=100_000)  # action sequences per iteration
    horizon: int = Field(default=10, ge=1, le=50)  # steps (pushes or no-ops) per sequence
    iterations: int = Field(default=1, ge=1, le=100)  # sample-evaluate-refit rounds per plan() call
    elites: int = Field(default=30, ge=1)  # CEM: best sequences the distribution is refitted to
    temperature: float = Field(default=0.01, gt=0.0)  # MPPI: lambda, in cost units (m-equivalents)
    smoothing: float = Field(default=0.1, ge=0.0, lt=1.0)  # weight of the old distribution in a refit
    heading_std: float = Field(default=0.5, gt=0.0, le=math.pi)  # rad, initial sampling std of the heading
    lateral_std: float = Field(default=0.3, gt=0.0, le=2.0)  # initial std of the lateral offset (fraction)
    depth_std: float = Field(default=0.02, gt=0.0, le=0.2)  # m, initial std of the push depth
    tilt_std: float = Field(default=0.3, gt=0.0, le=1.0)  # rad, initial std of the pad face's tilt
    mppi_noise_scale: float = Field(default=0.5, gt=0.0, le=1.0)  # MPPI: fixed sampling std, x the initial std
    min_std_scale: float = Field(default=0.05, gt=0.0, le=1.0)  # CEM: std floor, x the initial std
    noop_prob: float = Field(default=0.3, ge=0.0, lt=1.0)  # initial P(a step does nothing)
    other_object_weight: float = Field(default=0.3, ge=0.0, le=10.0)  # prior weight of objects without a goal
    min_prob: float = Field(default=0.01, ge=0.0, lt=0.5)  # floor of each category's probability (real ones)
    max_pushes: int = Field(default=10, ge=1, le=100)  # pushes per sequence beyond this become no-ops
    warm_start: bool = True  # start from the previous plan's distribution, shifted by one step
    warm_std_scale: float = Field(default=0.5, gt=0.0, le=1.0)  # CEM warm start: std floor, x the initial std
    warm_prior_mix: float = Field(default=0.2, ge=0.0, le=1.0)  # warm start: weight of the prior in the choices
    push: PushSamplingConfig = PushSamplingConfig()
    cost: CostConfig = CostConfig()

    @model_validator(mode="after")
    def _elites(self) -> MPCConfig:
        if self.elites > self.samples:
            raise ValueError(f"elites: must be <= samples ({self.samples}) (got {self.elites})")
        return self


def load_mpc_config(path: str | Path | None = None) -> MPCConfig:
    """Load ``planners/mpc.yaml`` (default) or another file; any problem raises a one-line ConfigError."""
    return load_yaml_model(DEFAULT_MPC_FILE if path is None else path, MPCConfig)
