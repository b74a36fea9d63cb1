"""bench control's pieces, at a tiny size: the independent command audit, the fault draws and the observation
faults (each one something the controller's validator must catch), the bad-input and Gymnasium parts, and the
bench's fields end to end on a few hundred ticks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from robot_wm.bench.control import (
    FAULT_TYPES,
    MAJOR_FAULTS,
    CommandAudit,
    FaultyDriver,
    bad_inputs,
    draw_faults,
    run,
)
from robot_wm.control.guard import ObservationValidator
from robot_wm.geometry import Intrinsics, Pose, panda
from robot_wm.interface import CameraFrame, Command, Observation
from robot_wm.sim import TIME_STEP

Q0 = panda.HOME.copy()


def cmd(q, dq=None, width=0.04, force=panda.FINGER_FORCE) -> Command:
    return Command(np.asarray(q, float), np.zeros(7) if dq is None else np.asarray(dq, float), width, force)


def test_the_audit_flags_each_kind_of_unsafe_command():
    audit = CommandAudit()
    audit.start(Q0)
    small = Q0 + 0.5 * panda.VELOCITY_LIMIT * TIME_STEP
    assert audit.problems(cmd(small)) == []
    assert audit.problems(cmd(small + 2 * panda.VELOCITY_LIMIT * TIME_STEP)) == ["step"]
    assert audit.problems(cmd(np.r_[np.nan, small[1:]])) == ["non_finite"]
    assert "position_limit" in audit.problems(cmd(np.r_[panda.UPPER[0] + 0.01, small[1:]]))
    audit.start(Q0)
    assert audit.problems(cmd(Q0, dq=2 * panda.VELOCITY_LIMIT)) == ["velocity"]
    assert audit.problems(cmd(Q0, width=0.09)) == ["gripper_width"]
    assert audit.problems(cmd(Q0, force=-1.0)) == ["gripper_force"]
    assert audit.problems(Command(np.zeros(6), np.zeros(7), 0.04, 10.0)) == ["shape"]
    audit(cmd(Q0))
    audit(cmd(Q0 + 1.0))
    assert (audit.checked, audit.unsafe) == (2, 1) and audit.causes["step"] == 1


def test_fault_draws_are_seeded_and_cover_every_type():
    def draw(seed, major):
        return draw_faults(np.random.default_rng(seed), major, 3, 2, ["front", "side"])

    assert [dataclasses.astuple(f) for f in draw(1, "slip_drop")] == [dataclasses.astuple(f) for f in draw(1, "slip_drop")]
    assert [f.start for f in draw(1, "slip_drop")] != [f.start for f in draw(2, "slip_drop")]
    kinds = {f.kind for m in MAJOR_FAULTS for f in draw(0, m)}
    assert kinds == set(FAULT_TYPES)
    assert draw(0, None) == []


FRAME = CameraFrame("front", np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), np.float32), Intrinsics(8, 8, 8.0, 8.0, 3.5, 3.5),
                    Pose([1.0, 0.0, 0.8], [0, 0, 0, 1]))
OBS = Observation({"front": FRAME, "side": dataclasses.replace(FRAME, name="side")}, Q0.copy(), 0.05, 1.0)


@pytest.mark.parametrize("how", ["nan", "inf", "limits", "shape"])
def test_injected_joint_faults_are_caught_by_the_validator(how):
    driver = FaultyDriver.__new__(FaultyDriver)
    f = draw_faults(np.random.default_rng(0), "slip_drop", 2, 2, ["front", "side"])[0]
    f.params["how"] = how
    obs, hit = driver._observation_fault(f, OBS)
    assert hit and not ObservationValidator().validate(obs, []).joints_ok


@pytest.mark.parametrize("how", ["depth_nan", "depth_zero", "rgb_shape", "pose_nan"])
def test_injected_camera_faults_drop_that_camera_only(how):
    driver = FaultyDriver.__new__(FaultyDriver)
    f = next(f for f in draw_faults(np.random.default_rng(0), "slip_drop", 2, 2, ["front", "side"])
             if f.kind == "bad_camera")
    f.params.update(how=how, camera="front")
    obs, hit = driver._observation_fault(f, OBS)
    checked = ObservationValidator().validate(obs, [])
    assert hit and checked.dropped == ["front"] and list(checked.obs.frames) == ["side"]


def test_a_moved_camera_and_a_stuck_gripper_pass_the_validator_unnoticed():
    """These are for the controller's own checks: nothing about one reading is wrong."""
    driver = FaultyDriver.__new__(FaultyDriver)
    driver._stuck = None
    faults = draw_faults(np.random.default_rng(3), "camera_extrinsics", 2, 2, ["front", "side"])
    cam = faults[-1]
    cam.params.update(camera="front", turn=False)
    obs, _ = driver._observation_fault(cam, OBS)
    shift = obs.frames["front"].camera2world.position - FRAME.camera2world.position
    assert np.linalg.norm(shift) == pytest.approx(0.03)
    stuck = draw_faults(np.random.default_rng(3), "stuck_gripper", 2, 2, ["front", "side"])[-1]
    stuck.params["at_zero"] = False
    first, _ = driver._observation_fault(stuck, OBS)
    later, _ = driver._observation_fault(stuck, dataclasses.replace(OBS, gripper_width=0.01))
    assert first.gripper_width == later.gripper_width == 0.05
    for o in (obs, later):
        checked = ObservationValidator().validate(o, [])
        assert checked.joints_ok and checked.gripper_ok and not checked.dropped


def test_bad_inputs_part_runs_the_corpus_through_the_cli():
    from robot_wm.cli.main import main

    out = bad_inputs(main, every=90)
    assert out["bad_inputs_tried"] >= 3 and out["bad_inputs_clean"] == out["bad_inputs_tried"], out
    broken = bad_inputs(lambda argv: 0, every=180)
    assert broken["bad_inputs_clean"] == 0 and "exit 0" in broken["bad_inputs_failures"][0]


@pytest.mark.slow  # ~20 s: the bench itself runs these parts at full size
def test_the_bench_fields_on_a_tiny_run():
    from robot_wm.cli.main import main

    out = run(None, 0, True, ticks=300, switch_ticks=0, fault_runs=1, baseline_runs=0, soak_picks=1,
              cli_main=main, bad_input_every=120)
    for key in ("tick_ms_p50", "tick_ms_p999", "tick_ms_max", "deadline_misses", "crashes", "unsafe_commands",
                "tasks_completed_under_faults", "runs_ending_with_reason", "faulted_cycles", "rss_growth_mb",
                "bad_inputs_tried", "bad_inputs_clean", "gym_check_env_ok", "gym_seeds_differ",
                "gym_nan_action_rejected"):
        assert key in out, key
    assert out["ticks"] == 300 and out["crashes"] == 0 and out["unsafe_commands"] == 0
    assert out["gym_check_env_ok"] and out["gym_seeds_differ"] and out["gym_nan_action_rejected"]
    assert math.isfinite(out["rss_growth_mb"])


def test_overlapping_joint_faults_stay_faults_of_the_reading_not_of_the_bench():
    """A wrong-shaped reading overlapped by a NaN on joint 6 (seen in a full run: the bench itself raised)."""
    driver = FaultyDriver.__new__(FaultyDriver)
    shape, nan = draw_faults(np.random.default_rng(0), "slip_drop", 2, 2, ["front", "side"])[:2]
    shape.params["how"] = "shape"
    nan.params.update(how="nan", joint=6)
    obs, _ = driver._observation_fault(shape, OBS)
    obs, hit = driver._observation_fault(nan, obs)
    assert hit and not ObservationValidator().validate(obs, []).joints_ok
