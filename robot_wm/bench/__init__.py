"""Benchmarks behind ``robot-wm bench AREA``. Area ``x-y`` lives in ``robot_wm/bench/x_y.py`` and exposes

    run(scenes: list[pathlib.Path] | None, seed: int, quick: bool) -> dict[str, Any]

returning a flat dict of the fields its issue names (numbers, bools or strings). Baselines are measured
in the same call so ratios hold on a noisy machine.
"""

AREAS = ("sim", "perception", "grasping", "model", "planning", "pick-place", "mpc", "generalization", "control",
         "calibration")
