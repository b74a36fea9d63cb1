"""Settings of the grasp planner (``planners/grasp_planner.yaml``, section ``grasp_planner:``), see
:mod:`robot_wm.planning.grasp_planner`.

Units: distances in m, angles in degrees where the key says so (``_deg``). Every key is optional; a bad value gives the project's one-line
:class:`ConfigError` (``planners/grasp_planner.yaml: grasp_planner.verify_top_k: must be >= 1 (got 0)``).
The seed is not a setting: it is passed to the planner (same seed, same plan).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robot_wm.config.loader import REPO_ROOT, load_yaml_model
from robot_wm.geometry import panda

DEFAULT_GRASP_PLANNER_FILE = REPO_ROOT / "planners" / "grasp_planner.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


class GraspPlannerConfig(_Strict):
    """Candidates (antipodal sampler on the perceived points + the estimate's box sides), collision and
    reachability filters, ranking by the world model's P(success), shadow-world verification of the top k."""

    name: str = "grasp_planner"
    sources: list[Literal["sampler", "box"]] = Field(default=["sampler", "box"], min_length=1)
    ranking: Literal["world_model", "quality"] = "world_model"  # quality: the analytic score only (ablation)
    # the antipodal sampler (robot_wm.grasping.candidates.SamplerConfig)
    num_contacts: int = Field(default=96, ge=4, le=2000)  # first contacts sampled on the object's points
    approach_angles: int = Field(default=8, ge=1, le=64)  # approach directions per antipodal pair
    depth_offsets: list[float] = Field(default=[0.0, 0.005], min_length=1, max_length=8)  # m back along -approach
    friction: float = Field(default=0.5, gt=0.0, le=2.0)  # mu of the friction cones (conservative)
    voxel: float = Field(default=0.003, gt=0.0, le=0.02)  # m, downsampling of the object's points
    scene_voxel: float = Field(default=0.005, gt=0.0, le=0.03)  # m, downsampling of the other objects' points
    scene_margin: float = Field(default=0.18, ge=0.0, le=1.0)  # m around the object: scene points kept
    min_width: float = Field(default=0.004, ge=0.0)  # m, narrowest contact width
    max_width: float = Field(default=0.075, gt=0.0, le=panda.MAX_OPENING)  # m, widest (the Panda opens 0.08)
    open_clearance: float = Field(default=0.02, ge=0.0, le=0.04)  # m the fingers open beyond the contact width
    collision_margin: float = Field(default=0.003, ge=0.0, le=0.02)  # m kept between the hand and any point
    hull_margin: float = Field(default=0.0, ge=0.0, le=0.02)  # m kept between the fingers and the target's hull
    table_z: float = 0.0  # m, the table top (world z)
    table_clearance: float = Field(default=0.003, ge=0.0, le=0.05)  # m, lowest gripper point above the table
    max_tilt_deg: float = Field(default=60.0, ge=0.0, le=90.0)  # approach directions from straight down
    snap_tilt_deg: float = Field(default=30.0, ge=0.0, le=90.0)  # candidates within this: snapped to top-down
    tilted_prior: float = Field(default=0.5, ge=0.0, le=1.0)  # P(success) given to tilted candidates
    box_depths: list[float] = Field(default=[0.025, 0.04], min_length=1, max_length=8)  # m below the top
    # m: box grasps also slid along the gripped faces by these (a palm that touches a wall or a neighbour
    # at the centre may clear it off centre); 0 = the centre
    box_slides: list[float] = Field(default=[0.0, 0.008, -0.008, 0.016, -0.016], min_length=1, max_length=16)
    # deg: box grasps also turned about their closing axis by +-these (tilted candidates: tried only when no
    # top-down grasp is chosen; within [snap_tilt_deg, max_tilt_deg]; [] for none)
    box_tilts_deg: list[float] = Field(default=[30.0, 45.0], max_length=8)
    # Escape grasps, tried only when no top-down grasp is chosen (an object flush against a wall, a tray rim or
    # a taller neighbour): the box grasps slid by these (m) along the gripped faces, the pads overhanging a
    # face's end by up to box_max_overhang (m), each also raised until the palm clears what stands beside
    # the object, as long as box_min_grip (m) of the object stays between the pads (0: never raised)
    box_escape_slides: list[float] = Field(default=[0.002, -0.002, 0.004, -0.004, 0.006, -0.006], max_length=16)
    box_max_overhang: float = Field(default=0.006, ge=0.0, le=0.015)
    box_min_grip: float = Field(default=0.008, ge=0.0, le=0.05)
    # ranking
    max_scored: int = Field(default=128, ge=1, le=10_000)  # top-down candidates the world model scores
    tie_weight: float = Field(default=0.02, ge=0.0, le=1.0)  # rank = P(success) + this x analytic quality
    torch_threads: int = Field(default=1, ge=0, le=64)  # threads for the model call (0: leave torch's setting)
    # reachability and verification
    approach: float = Field(default=0.12, gt=0.0, le=0.3)  # m, pre-grasp distance back along TCP z
    max_ik_checks: int = Field(default=12, ge=1, le=1000)  # candidates whose IK is tried, in rank order
    verify_top_k: int = Field(default=4, ge=1, le=100)  # candidates verified in the shadow world, at most
    diversity_m: float = Field(default=0.01, ge=0.0, le=0.1)  # skip verifying a candidate this close (m) ...
    diversity_deg: float = Field(default=20.0, ge=0.0, le=180.0)  # ... and turned less than this from a failed one
    record_top: int = Field(default=8, ge=0, le=1000)  # candidates listed in GraspPlan.record()

    @field_validator("depth_offsets", "box_depths")
    @classmethod
    def _depths(cls, v: list[float]) -> list[float]:
        if any(not (0.0 <= d <= 0.1) for d in v):
            raise ValueError(f"every depth must be in [0, 0.1] m (got {v})")
        return v

    @field_validator("box_slides", "box_escape_slides")
    @classmethod
    def _slides(cls, v: list[float]) -> list[float]:
        if any(abs(d) > 0.05 for d in v):
            raise ValueError(f"every slide must be in [-0.05, 0.05] m (got {v})")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> GraspPlannerConfig:
        if self.min_width >= self.max_width:
            raise ValueError(f"min_width: must be < max_width ({self.max_width:g}) (got {self.min_width:g})")
        if self.snap_tilt_deg > self.max_tilt_deg:
            raise ValueError(f"snap_tilt_deg: must be <= max_tilt_deg ({self.max_tilt_deg:g}) (got {self.snap_tilt_deg:g})")
        if any(not (self.snap_tilt_deg <= t <= self.max_tilt_deg) for t in self.box_tilts_deg):
            raise ValueError(f"box_tilts_deg: every tilt must be in [snap_tilt_deg, max_tilt_deg] = "
                             f"[{self.snap_tilt_deg:g}, {self.max_tilt_deg:g}] (got {self.box_tilts_deg})")
        return self


class GraspPlannerFile(_Strict):
    """``planners/grasp_planner.yaml``: one section, ``grasp_planner:``."""

    grasp_planner: GraspPlannerConfig = GraspPlannerConfig()


def load_grasp_planner_config(path: str | Path | None = None) -> GraspPlannerConfig:
    """The ``grasp_planner:`` section of ``planners/grasp_planner.yaml`` (default) or another file; any
    problem raises a one-line ConfigError naming the file and the key."""
    return load_yaml_model(DEFAULT_GRASP_PLANNER_FILE if path is None else path, GraspPlannerFile).grasp_planner
