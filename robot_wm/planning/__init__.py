"""Layer 5: planning — what to do next. Sampling MPC (CEM / MPPI) over a batched dynamics model (the learned
world model, no-motion, or PyBullet on the perceived scene), goal costs, and shadow-world grasp verification."""

from robot_wm.planning.costs import GoalCost, PoseGoal
from robot_wm.planning.dynamics import (
    Dynamics,
    NoMotionDynamics,
    PhysicsDynamics,
    Prediction,
    WorldModelDynamics,
    make_dynamics,
)
from robot_wm.planning.grasp_planner import GraspCandidate, GraspPlan, GraspPlanner
from robot_wm.planning.mpc import MPCPlanner, Plan
from robot_wm.planning.shadow import ShadowVerifier, Verdict, shadow_model

__all__ = [
    "Dynamics",
    "GoalCost",
    "GraspCandidate",
    "GraspPlan",
    "GraspPlanner",
    "MPCPlanner",
    "NoMotionDynamics",
    "PhysicsDynamics",
    "Plan",
    "PoseGoal",
    "Prediction",
    "ShadowVerifier",
    "Verdict",
    "WorldModelDynamics",
    "make_dynamics",
    "shadow_model",
]
