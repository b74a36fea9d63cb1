"""IK gives up on stalled starts without changing any answer."""

import numpy as np
import pytest

from robot_wm.geometry import panda
from robot_wm.sim import kinematics
from robot_wm.sim.kinematics import KinematicModel
from robot_wm.sim.push import top_down


@pytest.fixture(scope="module")
def kin():
    k = KinematicModel()
    yield k
    k.close()


def _count_solver_calls(kin, monkeypatch) -> list[int]:
    calls = [0]
    solve = kin._client.calculateInverseKinematics

    def counting(*args, **kwargs):
        calls[0] += 1
        return solve(*args, **kwargs)

    monkeypatch.setattr(kin._client, "calculateInverseKinematics", counting, raising=False)
    return calls


def test_unreachable_target_abandons_stalled_starts(kin, monkeypatch):
    calls = _count_solver_calls(kin, monkeypatch)
    assert kin.ik(top_down(np.array([0.95, -0.5, 0.02]), 0.3), panda.HOME) is None
    starts = 1 + 12  # the seed (HOME, not tried twice) and 12 random restarts
    assert calls[0] <= starts * (kinematics.STALL_ROUNDS + 3) < starts * 20


def test_stall_check_changes_no_answer(kin, monkeypatch):
    rng = np.random.default_rng(5)
    targets = [top_down(np.array([rng.uniform(0.25, 0.85), rng.uniform(-0.6, 0.6), rng.uniform(0.012, 0.06)]),
                        rng.uniform(-np.pi / 2, np.pi / 2)) for _ in range(40)]
    fast = [kin.ik(t, panda.HOME) for t in targets]
    monkeypatch.setattr(kinematics, "STALL_ROUNDS", 10**6)  # never give up early: the reference answers
    slow = [kin.ik(t, panda.HOME) for t in targets]
    assert 5 <= sum(q is None for q in fast) <= 35  # both reachable and unreachable targets were asked
    for a, b in zip(fast, slow, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b)
