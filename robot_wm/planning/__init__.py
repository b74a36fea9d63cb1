"""Layer 5: planning — verifying grasps in a shadow world rebuilt from perception (and, later, MPC)."""

from robot_wm.planning.shadow import ShadowVerifier, Verdict, shadow_model

__all__ = ["ShadowVerifier", "Verdict", "shadow_model"]
