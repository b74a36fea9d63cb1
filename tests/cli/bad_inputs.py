"""The corpus of malformed inputs lives in the package (:mod:`robot_wm.bench.bad_inputs`), where
``robot-wm bench control`` runs it too; re-exported here for the tests."""

from robot_wm.bench.bad_inputs import CASES, Case, check_case

__all__ = ["CASES", "Case", "check_case"]
