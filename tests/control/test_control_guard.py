"""The tick's safety filters: the command guard, the observation validator, and the controller that never
raises and never sends a NaN or out-of-limit command whatever it is given."""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from robot_wm.config import load_scene
from robot_wm.control.controller import ScriptedController
from robot_wm.control.executor import (
    MAX_THINK_FAILURES,
    Segment,
    SegmentController,
    limit_ratios,
    min_jerk_duration,
)
from robot_wm.control.faults import LOOK
from robot_wm.control.guard import NO_SAFE_POSE, CommandGuard, ObservationValidator, is_safe
from robot_wm.control.rgbd_estimator import RgbdEstimator
from robot_wm.geometry import Intrinsics, Pose, panda
from robot_wm.interface import CameraFrame, Command, Observation
from robot_wm.sim import KinematicModel, World

DT = 1 / 240


def cmd(q, dq=None, width=panda.MAX_OPENING, force=panda.FINGER_FORCE) -> Command:
    return Command(np.asarray(q, float), np.zeros(7) if dq is None else np.asarray(dq, float), width, force)


def frame(name="cam", h=4, w=6, depth=1.0) -> CameraFrame:
    return CameraFrame(name, np.zeros((h, w, 3), np.uint8), np.full((h, w), depth, np.float32),
                       Intrinsics(w, h, 5.0, 5.0, (w - 1) / 2, (h - 1) / 2), Pose.identity())


@pytest.fixture(scope="module")
def kin():
    k = KinematicModel()
    yield k
    k.close()


@pytest.fixture
def guard():
    g = CommandGuard(DT)
    g.reset(panda.HOME, (panda.MAX_OPENING, panda.FINGER_FORCE))
    return g


# ---------------------------------------------------------------------- CommandGuard
@pytest.mark.parametrize("bad, cause", [
    (cmd(np.r_[panda.HOME[:3], np.nan, panda.HOME[4:]]), "non_finite"),
    (cmd(panda.HOME, np.r_[np.inf, np.zeros(6)]), "non_finite"),
    (cmd(panda.HOME, width=math.nan), "non_finite"),
    (cmd(panda.HOME, force=math.inf), "non_finite"),
    (cmd(np.r_[panda.HOME, 0.0]), "shape"),
    (cmd(panda.HOME + np.r_[0.02, np.zeros(6)]), "step"),  # more than 2.175 rad/s x 1/240 s in one tick
    (cmd(panda.HOME, np.r_[3.0, np.zeros(6)]), "velocity"),
    (cmd(panda.HOME, width=0.1), "gripper_width"),
    (cmd(panda.HOME, width=-0.01), "gripper_width"),
    (cmd(panda.HOME, force=-1.0), "gripper_force"),
    (cmd(panda.HOME, force=500.0), "gripper_force"),
])
def test_guard_turns_a_bad_command_into_a_safe_hold_naming_the_cause(guard, bad, cause):
    moved = panda.HOME + np.r_[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e-4]  # a good command first: the last safe one
    first, c0 = guard.filter(cmd(moved, width=0.05))
    assert c0 == "" and first.joint_positions is not None
    out, c = guard.filter(bad)
    assert c == cause and f"guard:{cause}" in out.events
    np.testing.assert_array_equal(out.joint_positions, moved)  # the last safe pose ...
    np.testing.assert_array_equal(out.joint_velocities, np.zeros(7))  # ... at rest ...
    assert (out.gripper_width, out.gripper_force) == (0.05, panda.FINGER_FORCE)  # ... gripper unchanged
    assert is_safe(out, moved, DT)
    assert guard.stats.held == 1 and guard.stats.causes[cause] == 1


def test_guard_position_limits_hold_far_clamp_rounding(kin):
    q = panda.UPPER.copy()
    q[3] = panda.UPPER[3] - 1e-5
    g = CommandGuard(DT)
    g.reset(q)
    out, cause = g.filter(cmd(q + np.r_[0, 0, 0, 5e-4, 0, 0, 0]))  # 0.5 mrad past joint 4's limit: rounding
    assert cause == "" and out.joint_positions[3] == panda.UPPER[3] and "guard_clamped:position" in out.events
    g.reset(q)
    out, cause = g.filter(cmd(q + np.r_[0, 0, 0, 0.006, 0, 0, 0]))  # 6 mrad past it
    assert cause == "position_limit"
    np.testing.assert_array_equal(out.joint_positions, np.clip(q, panda.LOWER, panda.UPPER))


def test_guard_passes_a_smooth_motion_untouched_and_rate_limits_small_overshoots(guard):
    q0 = panda.HOME.copy()
    s = np.linspace(0, 1, 200)[1:]
    setpoints = q0 + np.outer(10 * s**3 - 15 * s**4 + 6 * s**5, np.r_[0.5, 0.3, 0, 0, 0, 0, 0])
    for q in setpoints:
        c = cmd(q)
        out, cause = guard.filter(c)
        assert cause == "" and out is c  # the very same command: nothing changed
    assert guard.stats.clamped == 0 and guard.stats.held == 0
    # from rest, a step asking 1.3 x joint 2's acceleration limit: rate-limited to the limit, not held
    g = CommandGuard(DT)
    g.reset(q0)
    want = q0 + np.r_[0, 1.3 * panda.ACCELERATION_LIMIT[1] * DT**2, 0, 0, 0, 0, 0]
    out, cause = g.filter(cmd(want))
    assert cause == "" and "guard_clamped:acceleration" in out.events
    acc = (out.joint_positions - q0) / DT**2
    assert np.all(np.abs(acc) <= panda.ACCELERATION_LIMIT * (1 + 1e-9))
    assert 0 < out.joint_positions[1] - q0[1] < want[1] - q0[1]
    # ten times the limit (still within the step limit): a discontinuity, held
    g.reset(q0)
    out, cause = g.filter(cmd(q0 + np.r_[0, 10 * panda.ACCELERATION_LIMIT[1] * DT**2, 0, 0, 0, 0, 0]))
    assert cause in ("acceleration", "jerk") and out.events[-1] == f"guard:{cause}"
    np.testing.assert_array_equal(out.joint_positions, q0)


def test_executor_motions_are_timed_within_the_acceleration_and_jerk_limits():
    q0 = panda.HOME.copy()
    q1 = q0 + np.r_[0.0, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0]  # short: at 60 % of the speed limit it is 5x too fast
    from robot_wm.sim.trajectory import timed_path

    fast = timed_path(np.stack([q0, q1]), 1.875 * 0.05 / (0.6 * panda.VELOCITY_LIMIT[1]), DT)
    assert limit_ratios(q0, fast, DT)[1] > 2.0
    ok = timed_path(np.stack([q0, q1]), min_jerk_duration(q0, q1), DT)
    assert max(limit_ratios(q0, ok, DT)) <= 1.0


# ---------------------------------------------------------------------- ObservationValidator
def test_validator_drops_bad_cameras_and_flags_bad_proprioception():
    v = ObservationValidator()
    good = frame("good")
    bad_frames = {
        "nan_depth": frame("nan_depth", depth=math.nan),
        "zero_depth": frame("zero_depth", depth=0.0),
        "rgb_shape": CameraFrame("rgb_shape", np.zeros((4, 5, 3), np.uint8), good.depth, good.intrinsics, good.camera2world),
        "rgb_dtype": CameraFrame("rgb_dtype", np.zeros((4, 6, 3), np.float32), good.depth, good.intrinsics,
                                 good.camera2world),
        "pose": CameraFrame("pose", good.rgb, good.depth, good.intrinsics,
                            SimpleNamespace(position=np.array([np.nan, 0, 0]), quaternion=np.array([0, 0, 0, 1.0]))),
        "none": None,
    }
    events: list[str] = []
    res = v.validate(Observation({"good": good, **bad_frames}, panda.HOME, 0.04, 1.0), events)
    assert res.proprio_ok and list(res.obs.frames) == ["good"] and res.obs.frames["good"] is good
    assert sorted(res.dropped) == sorted(bad_frames)
    for name, cause in [("nan_depth", "depth_invalid"), ("zero_depth", "depth_invalid"), ("rgb_shape", "rgb_shape"),
                        ("rgb_dtype", "rgb_dtype"), ("pose", "camera2world"), ("none", "not_a_frame")]:
        assert f"sensor:camera:{name}:{cause}" in events
    # a few NaN pixels are invalid pixels (0), not a bad camera
    partial = frame("p")
    partial.depth[0, :3] = np.nan
    events = []
    res = v.validate(Observation({"p": partial}, panda.HOME, 0.04, 1.0), events)
    assert "p" in res.obs.frames and np.isfinite(res.obs.frames["p"].depth).all()
    assert (res.obs.frames["p"].depth[0, :3] == 0).all() and "sensor:camera:p:depth_non_finite_zeroed" in events
    for q, w, what in [(np.r_[panda.HOME[:6], np.nan], 0.04, "joints:non_finite"), (panda.HOME[:6], 0.04, "joints:shape"),
                       (panda.HOME + np.r_[0, 0, 0, 3.0, 0, 0, 0], 0.04, "joints:out_of_limits"), (panda.HOME, math.nan, "gripper:non_finite"),
                       (panda.HOME, 0.5, "gripper:out_of_range"), ("seven", 0.04, "joints:unreadable")]:
        events = []
        res = v.validate(Observation({}, q, w, 0.0), events)
        assert not res.proprio_ok and f"sensor:{what}" in events
    assert not v.validate(None, []).proprio_ok


# ---------------------------------------------------------------------- the controller's tick
class Scripted(SegmentController):
    """Thinks by popping the next item of `plans`: a list of segments to queue, an exception to raise, or
    "finish"."""

    def __init__(self, kin, plans, request_images=False, **kw):
        super().__init__(kin, None, DT, request_images, **kw)
        self.plans = list(plans)
        self.seen: list[list[str]] = []
        self._reset_execution()

    def _think(self, obs, events):
        self.seen.append(sorted(obs.frames))
        plan = self.plans.pop(0) if self.plans else "finish"
        if isinstance(plan, BaseException):
            raise plan
        if plan == "finish":
            self._finish()
            return
        events.append("planned")
        self._queue.extend(plan)


def drive(ctrl, obs_fn, ticks, pause=0.0):
    """Step `ctrl` for `ticks` ticks on a robot that tracks every command; obs_fn(i, last command) -> obs.
    `pause` s after each tick (a controller planning in the background: lets its worker run)."""
    cmds, last = [], None
    for i in range(ticks):
        c = ctrl.step(obs_fn(i, last))
        cmds.append(c)
        if NO_SAFE_POSE not in c.events:
            last = c
        if c.done:
            break
        if pause:
            time.sleep(pause)
    return cmds


def test_nan_joint_reading_on_the_first_tick_never_gives_a_nan_command(kin):
    target = panda.HOME + np.r_[0.2, 0, 0, 0, 0, 0, 0]
    ctrl = Scripted(kin, [[Segment("joint", target)]])
    nan_q = np.full(7, np.nan)

    def obs(i, last):
        if i < 3 or i in (20, 21):  # NaN at the start, and twice in the middle of the move
            return Observation({}, nan_q, 0.08, i * DT)
        return Observation({}, panda.HOME.copy() if last is None else last.joint_positions.copy(), 0.08, i * DT)

    cmds = drive(ctrl, obs, 2000)
    assert all(np.isfinite(c.joint_positions).all() and np.isfinite(c.joint_velocities).all() for c in cmds)
    assert all(NO_SAFE_POSE in c.events for c in cmds[:3]) and "sensor:joints:non_finite" in cmds[0].events
    # the first valid reading is where the motion starts from (its first setpoint is a tiny step away)
    assert np.abs(cmds[3].joint_positions - panda.HOME).max() < 1e-4
    assert NO_SAFE_POSE not in cmds[3].events
    sent = cmds[3:]
    for a, b in zip(sent, sent[1:], strict=False):
        assert is_safe(b, a.joint_positions, DT)
    assert "sensor:joints:non_finite" in cmds[20].events and cmds[20].phase == "joint"
    assert np.abs(cmds[-1].joint_positions - target).max() < 1e-9 and cmds[-1].done


def test_one_bad_camera_of_two_is_dropped_and_perception_uses_the_other(repo):
    """A real scene: the side camera's depth is all NaN; the controller plans from the front camera alone."""
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as world:
        kin = KinematicModel()
        try:
            ctrl = ScriptedController(RgbdEstimator(), kin, world.scene.config.task.place_region)
            obs = world.observe()
            assert sorted(obs.frames) == ["front", "side"]
            side = obs.frames["side"]
            obs.frames["side"] = CameraFrame("side", side.rgb, np.full_like(side.depth, np.nan), side.intrinsics,
                                             side.camera2world)
            c = ctrl.step(obs)
            assert "sensor:camera:side:depth_invalid" in c.events
            assert any(e.startswith("pick:") for e in c.events)  # it decided, on the front camera
            assert not any(e.startswith(("think_error", "error:")) for e in c.events)
            # a wrong-shaped RGB image is dropped the same way
            ctrl.reset()
            obs = world.observe()
            obs.frames["front"] = CameraFrame("front", obs.frames["front"].rgb[:, :-1], obs.frames["front"].depth,
                                              obs.frames["front"].intrinsics, obs.frames["front"].camera2world)
            c = ctrl.step(obs)
            assert "sensor:camera:front:rgb_shape" in c.events and any(e.startswith("pick:") for e in c.events)
        finally:
            kin.close()


def test_all_cameras_bad_holds_instead_of_planning_blind_then_stops(kin):
    ctrl = Scripted(kin, [], request_images=True)
    bad = {"a": frame("a", depth=0.0), "b": None}
    cmds = drive(ctrl, lambda i, last: Observation(dict(bad), panda.HOME.copy(), 0.08, i * DT), 2000)
    assert ctrl.seen == []  # never thought without an image
    assert cmds[-1].done and "no usable camera" in ctrl.finish_reason
    assert all(np.array_equal(c.joint_positions, panda.HOME) for c in cmds)


def test_an_exception_while_thinking_is_retried_then_stops_with_a_reason(kin):
    ctrl = Scripted(kin, [RuntimeError("perception crashed"), [Segment("settle", 3)], KeyError("x"),
                          ValueError("a"), ValueError("b")])
    cmds = drive(ctrl, lambda i, last: Observation({}, panda.HOME.copy(), 0.08, i * DT), 500)
    events = [e for c in cmds for e in c.events]
    assert events.count("think_error:RuntimeError") == 1 and "planned" in events  # retried, then it planned
    assert events.count("think_error:ValueError") == 2 and cmds[-1].done
    assert f"planning failed {MAX_THINK_FAILURES} times in a row" in ctrl.finish_reason
    assert all(np.array_equal(c.joint_positions, panda.HOME) for c in cmds)


def test_a_nan_motion_target_is_held_retried_then_aborted_never_sent(kin):
    bad = panda.HOME.copy()
    bad[2] = np.nan
    ctrl = Scripted(kin, [[Segment("grip", 0.02), Segment("joint", bad), Segment("settle", 5)]])
    cmds = drive(ctrl, lambda i, last: Observation(
        {}, panda.HOME.copy() if last is None else last.joint_positions.copy(), 0.05, i * DT), 3000)
    events = [e for c in cmds for e in c.events]
    assert events.count("guard:non_finite") == 2  # tried, re-planned once from the hold, then aborted
    assert cmds[-1].done
    for a, b in zip(cmds, cmds[1:], strict=False):
        assert is_safe(b, a.joint_positions, DT)
    assert any(c.gripper_width == panda.MAX_OPENING for c in cmds[-50:])  # the abort opened the gripper


def test_an_exception_in_a_check_aborts_the_action_instead_of_raising(kin):
    def broken(obs, events):
        raise ZeroDivisionError("bad check")

    ctrl = Scripted(kin, [[Segment("check", broken), Segment("settle", 5)]])
    cmds = drive(ctrl, lambda i, last: Observation(
        {}, panda.HOME.copy() if last is None else last.joint_positions.copy(), 0.08, i * DT), 3000)
    events = [e for c in cmds for e in c.events]
    assert "error:ZeroDivisionError" in events and cmds[-1].done
    assert all(np.isfinite(c.joint_positions).all() for c in cmds)


# ---------------------------------------------------------------------- background mode: pixels off the control thread
def test_the_pixel_check_done_later_drops_the_same_frames_with_the_same_events():
    partial = frame("partial")
    partial.depth[1, :2] = np.nan
    frames = {"good": frame("good"), "nan": frame("nan", depth=math.nan), "zero": frame("zero", depth=0.0),
              "partial": partial, "rgb_shape": CameraFrame("rgb_shape", np.zeros((4, 5, 3), np.uint8),
                                                           frame().depth, frame().intrinsics, Pose.identity())}
    obs = Observation(frames, panda.HOME, 0.04, 1.0)
    now: list[str] = []
    full = ObservationValidator().validate(obs, now)
    later: list[str] = []
    light = ObservationValidator().validate(obs, later, pixels=False)
    assert sorted(light.obs.frames) == ["good", "nan", "partial", "zero"]  # only the structure was checked
    clean = ObservationValidator().check_pixels(light.obs, later)
    assert sorted(clean.frames) == sorted(full.obs.frames) == ["good", "partial"]
    assert sorted(later) == sorted(now)
    np.testing.assert_array_equal(clean.frames["partial"].depth, full.obs.frames["partial"].depth)
    assert ObservationValidator().check_pixels(Observation({"good": frames["good"]}, panda.HOME, 0.04, 1.0), []
                                               ).frames["good"] is frames["good"]


def drive_background(ctrl, obs_fn, ticks):
    """`drive` for a controller planning in the background (a short pause per tick), then its worker closed."""
    cmds = drive(ctrl, obs_fn, ticks, pause=0.0005)
    ctrl.close()
    return cmds


def test_background_mode_checks_pixels_in_the_worker_and_drops_a_bad_camera(kin):
    looked: list[tuple[list[str], bool]] = []

    def look(obs, events):
        if not obs.frames:
            return LOOK
        looked.append((sorted(obs.frames), threading.current_thread() is threading.main_thread()))
        return ""

    ctrl = Scripted(kin, [[Segment("check", look), Segment("settle", 3)]], request_images=True, background=True)
    frames = {"a": frame("a"), "b": frame("b", depth=math.nan)}
    cmds = drive_background(ctrl, lambda i, last: Observation(
        dict(frames) if ctrl.wants_images else {}, panda.HOME.copy(), 0.08, i * DT), 3000)
    events = [e for c in cmds for e in c.events]
    assert ctrl.seen and all(s == ["a"] for s in ctrl.seen)  # every think saw the good camera only
    assert looked == [(["a"], False)]  # the look ran once, in the worker, on the good camera
    assert "sensor:camera:b:depth_invalid" in events and cmds[-1].done
    assert all(np.array_equal(c.joint_positions, panda.HOME) for c in cmds)


def test_background_mode_with_every_camera_bad_never_plans_and_stops(kin):
    ctrl = Scripted(kin, [], request_images=True, background=True)
    bad = {"a": frame("a", depth=0.0), "b": frame("b", depth=math.nan)}
    cmds = drive_background(ctrl, lambda i, last: Observation(dict(bad), panda.HOME.copy(), 0.08, i * DT), 5000)
    assert ctrl.seen == []  # never thought without an image
    assert cmds[-1].done and "every camera frame was invalid" in ctrl.finish_reason
    assert all(np.array_equal(c.joint_positions, panda.HOME) for c in cmds)
