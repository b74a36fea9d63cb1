"""Ticks that never block (background planning), the RobotDriver protocol, the simulated Panda driver and the
fixed-rate runner's deadline watchdog."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from robot_wm.config import PickPlacePlannerConfig, load_scene
from robot_wm.control.demo import run_controller
from robot_wm.control.estimate import OracleEstimator
from robot_wm.control.executor import BackgroundWorker, Segment, SegmentController
from robot_wm.control.guard import NO_SAFE_POSE, is_safe
from robot_wm.control.planned import PlanningController
from robot_wm.control.runner import SWITCH_INTERVAL_S, FixedRateRunner, RobotDriver, SimPandaDriver
from robot_wm.geometry import panda
from robot_wm.interface import Command, Observation
from robot_wm.planning.box_grasps import top_down_grasps
from robot_wm.planning.decision import Decision, PickAction
from robot_wm.sim import Arm, KinematicModel, World

DT = 1 / 240
TARGET = panda.HOME + np.r_[0.15, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1]


@pytest.fixture(scope="module")
def kin():
    k = KinematicModel()
    yield k
    k.close()


class SlowThinker(SegmentController):
    """Takes `think_s` seconds (sleeping) to plan one joint move, then finishes; `fail` raises instead."""

    def __init__(self, kin, think_s=0.3, fail=None, **kw):
        super().__init__(kin, None, DT, False, **kw)
        self.think_s, self.fail, self.thought = think_s, fail, 0
        self._reset_execution()

    def _think(self, obs, events):
        self.thought += 1
        if self.thought > 1:
            self._finish()
            return
        time.sleep(self.think_s)
        if self.fail is not None:
            raise self.fail
        events.append("planned")
        self._queue.append(Segment("joint", TARGET))


def tracked(last: Command | None) -> Observation:
    return Observation({}, panda.HOME.copy() if last is None else last.joint_positions.copy(), 0.08, 0.0)


def test_background_planning_keeps_ticks_short_and_picks_up_the_plan(kin):
    ctrl = SlowThinker(kin, think_s=0.3, background=True)
    last, cmds, lat = None, [], []
    deadline = time.monotonic() + 10
    while not (cmds and cmds[-1].done) and time.monotonic() < deadline:
        t = time.perf_counter()
        c = ctrl.step(tracked(last))
        lat.append(time.perf_counter() - t)
        cmds.append(c)
        last = c
        time.sleep(0.002)
    ctrl.close()
    assert cmds[-1].done and ctrl.thought == 2
    waiting = [i for i, c in enumerate(cmds) if np.array_equal(c.joint_positions, panda.HOME)]
    assert len(waiting) > 20  # ~0.3 s of ticks held while the worker planned
    assert max(lat[: len(waiting)]) < 0.05  # none of them waited for the plan (sync: one tick of 300 ms)
    picked = next(i for i, c in enumerate(cmds) if "planned" in c.events)
    assert picked == len(waiting)  # the plan's events come with its first tick
    assert np.abs(cmds[-1].joint_positions - TARGET).max() < 1e-9  # and the plan was executed
    for a, b in zip(cmds, cmds[1:], strict=False):
        assert is_safe(b, a.joint_positions, DT)


def test_the_synchronous_mode_is_the_default_and_blocks_in_the_tick(kin):
    assert PickPlacePlannerConfig().background_planning is False
    ctrl = SlowThinker(kin, think_s=0.05)
    assert not ctrl.background
    t = time.perf_counter()
    c = ctrl.step(tracked(None))
    assert time.perf_counter() - t >= 0.05 and "planned" in c.events


def test_background_think_exception_is_reported_not_raised(kin):
    ctrl = SlowThinker(kin, think_s=0.0, fail=RuntimeError("boom"), background=True)
    events, last = [], None
    for _ in range(200):
        c = ctrl.step(tracked(last))
        events += c.events
        last = c
        if "think_error:RuntimeError" in events:
            break
        time.sleep(0.002)
    ctrl.close()
    assert "think_error:RuntimeError" in events
    np.testing.assert_array_equal(last.joint_positions, panda.HOME)  # held while it failed


# ---------------------------------------------------------------------- the runner
class FakeDriver:
    def __init__(self, readings=None):
        self.sent: list[Command] = []
        self.readings = list(readings or [])

    def read(self, images: bool = True) -> Observation:
        if self.readings:
            return self.readings.pop(0)
        return tracked(self.sent[-1] if self.sent else None)

    def send(self, command: Command) -> None:
        self.sent.append(command)


class SleepyController:
    """step() sleeps `slow_s` on every tick after `start` (or only on the ticks in `only`); moves joint 1 by a
    small step each tick."""

    wants_images = False

    def __init__(self, slow_s=0.0, start=0, only=None):
        self.slow_s, self.start, self.only, self.ticks, self.stopped = slow_s, start, only, 0, ""

    def step(self, obs):
        self.ticks += 1
        if (self.ticks in self.only) if self.only is not None else self.ticks > self.start:
            time.sleep(self.slow_s)
        q = np.asarray(obs.joint_positions, float) + np.r_[1e-4, np.zeros(6)]
        return Command(q, np.r_[0.024, np.zeros(6)], 0.03, 40.0, phase="move")

    def stop(self, reason):
        self.stopped = reason


def test_watchdog_stops_the_robot_after_n_missed_deadlines_in_a_row():
    driver, ctrl = FakeDriver(), SleepyController(slow_s=0.012, start=3)
    assert isinstance(driver, RobotDriver)
    res = FixedRateRunner(driver, ctrl, rate_hz=250, max_consecutive_misses=4).run(max_ticks=100)
    assert res.stopped and not res.done and "watchdog: 4 deadlines missed in a row" in res.reason
    assert res.ticks == 3 + 4 and res.deadline_misses >= 4 and ctrl.stopped == res.reason
    hold = driver.sent[-1]
    assert hold.done and np.array_equal(hold.joint_velocities, np.zeros(7)) and hold.phase == "stopped"
    np.testing.assert_array_equal(hold.joint_positions, driver.sent[-2].joint_positions)  # stays where it is
    assert hold.gripper_width == 0.03  # gripper unchanged
    # a single slow tick is logged and counted, not fatal
    ctrl2 = SleepyController(slow_s=0.03, only={5, 9})
    res2 = FixedRateRunner(FakeDriver(), ctrl2, rate_hz=250, max_consecutive_misses=2).run(max_ticks=20)
    assert res2.deadline_misses >= 2 and res2.max_consecutive_misses == 1 and res2.reason.startswith("tick limit")
    assert res2.ticks == 20 and res2.tick_ms_max >= 30


def test_runner_lowers_the_gil_switch_interval_while_it_runs_and_restores_it():
    seen: list[float] = []

    class Recorder(SleepyController):
        def step(self, obs):
            seen.append(sys.getswitchinterval())
            return super().step(obs)

    before = sys.getswitchinterval()
    FixedRateRunner(FakeDriver(), Recorder(), realtime=False).run(max_ticks=3)
    assert seen and all(abs(s - SWITCH_INTERVAL_S) < 1e-9 for s in seen) and SWITCH_INTERVAL_S < before
    assert sys.getswitchinterval() == before
    seen.clear()
    FixedRateRunner(FakeDriver(), Recorder(), realtime=False, switch_interval_s=None).run(max_ticks=2)
    assert seen == [before, before]
    with pytest.raises(ValueError, match="switch_interval_s"):
        FixedRateRunner(FakeDriver(), Recorder(), switch_interval_s=0.0)


def _fifo_allowed() -> bool:
    try:
        old = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    os.sched_setscheduler(0, *old)
    return True


@pytest.mark.skipif(not _fifo_allowed(), reason="SCHED_FIFO needs Linux and the privilege")
def test_runner_runs_the_loop_real_time_with_the_planner_below_it_and_restores_the_policy():
    seen: list[tuple[int, int]] = []
    worker = BackgroundWorker(nice=10)
    planner: list[tuple[int, int]] = []

    class Recorder(SleepyController):
        def step(self, obs):
            seen.append((os.sched_getscheduler(0), os.sched_getparam(0).sched_priority))
            if len(seen) == 1:  # a planner thread started from the real-time loop
                job = worker.submit(lambda: planner.append((os.sched_getscheduler(0),
                                                            os.sched_getparam(0).sched_priority)))
                assert job.wait(5)
            return super().step(obs)

    before = os.sched_getscheduler(0)
    res = FixedRateRunner(FakeDriver(), Recorder(), realtime=False, rt_priority=40).run(max_ticks=3)
    worker.close()
    assert res.realtime_priority is True and seen == [(os.SCHED_FIFO, 40)] * 3
    assert planner == [(os.SCHED_FIFO, 1)]  # real-time, but below the loop: never descheduled holding the GIL
    assert os.sched_getscheduler(0) == before
    assert FixedRateRunner(FakeDriver(), Recorder(), realtime=False).run(max_ticks=1).realtime_priority is None


def test_runner_goes_on_at_normal_priority_when_real_time_is_refused(monkeypatch, caplog):
    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    res = FixedRateRunner(FakeDriver(), SleepyController(), realtime=False, rt_priority=40).run(max_ticks=3)
    assert res.realtime_priority is False and res.ticks == 3 and res.reason.startswith("tick limit")
    assert "normal priority" in caplog.text
    for bad in (0, 100):
        with pytest.raises(ValueError, match="rt_priority"):
            FixedRateRunner(FakeDriver(), SleepyController(), rt_priority=bad)


def test_a_planner_thread_under_a_normal_loop_gets_its_nice_value():
    worker = BackgroundWorker(nice=7)
    job = worker.submit(lambda: (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    assert job.wait(5)
    worker.close()
    if sys.platform.startswith("linux"):
        assert job.result == (os.SCHED_OTHER, min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7))


def test_runner_never_sends_a_command_without_a_safe_pose_and_survives_errors(kin):
    nan_obs = Observation({}, np.full(7, np.nan), 0.08, 0.0)
    driver = FakeDriver([nan_obs, nan_obs])
    ctrl = SlowThinker(kin, think_s=0.0)
    res = FixedRateRunner(driver, ctrl, rate_hz=1000, realtime=False, deadline_s=1.0).run(max_ticks=3000)
    assert res.done and res.ticks > 2
    assert len(driver.sent) == res.ticks - 3  # the two ticks without a valid reading (and the final one) sent nothing
    assert all(NO_SAFE_POSE not in c.events and np.isfinite(c.joint_positions).all() for c in driver.sent)

    class Broken(FakeDriver):
        def read(self, images=True):
            if len(self.sent) >= 5:
                raise OSError("link down")
            return super().read(images)

    broken = Broken()
    res = FixedRateRunner(broken, SleepyController(), rate_hz=1000, realtime=False).run(max_ticks=50)
    assert res.stopped and "OSError: link down" in res.reason and broken.sent[-1].done


class BoxPicker:
    """A TaskPlanner double: the highest object outside the place region with its first box grasp."""

    def __init__(self, region):
        self.region = region

    def decide(self, estimates, obs):
        todo = [e for e in estimates if not e.fixed and not self.region.contains(e.pose.position, margin=-0.005)]
        if not todo:
            return Decision("done", reason="every object placed")
        est = max(todo, key=lambda e: e.top_z)
        g = top_down_grasps(est)[0]
        return Decision("pick", pick=PickAction(est.id, g.pose, g.width, g.contact_width))

    def outcome(self, decision, estimates, succeeded):
        return {}


def _planned_run(repo, use_runner: bool) -> tuple[list[Command], dict]:
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as world:
        arm = Arm(world)
        region = world.scene.config.task.place_region
        ctrl = PlanningController(OracleEstimator(world), arm.kin, BoxPicker(region), None, region,
                                  request_images=False, n_slots=2)
        cmds: list[Command] = []
        step = ctrl.step
        ctrl.step = lambda obs: cmds.append(step(obs)) or cmds[-1]
        if use_runner:
            res = FixedRateRunner(SimPandaDriver(world, arm), ctrl, realtime=False, deadline_s=10.0).run(max_ticks=20000)
            assert res.done and res.reason == "every object placed"
        else:
            run_controller(world, arm, ctrl, max_sim_s=20000 * DT)
        poses = {n: p.position.tolist() for n, p in world.object_poses().items()}
        arm.close()
    return cmds, poses


def test_sim_driver_with_the_runner_reproduces_the_demo_loop_bit_for_bit(repo):
    a, poses_a = _planned_run(repo, use_runner=False)
    b, poses_b = _planned_run(repo, use_runner=True)
    assert len(a) == len(b) and a[-1].done
    assert all(np.array_equal(x.joint_positions, y.joint_positions) and x.gripper_width == y.gripper_width
               for x, y in zip(a, b, strict=True))
    assert poses_a == poses_b


@pytest.mark.skipif(sys.platform != "linux", reason="timing")
def test_background_mode_runs_the_demo_with_short_ticks(repo):
    """The planned controller with background planning on a real pick (oracle perception): every pick still
    succeeds and no tick waits for the planner."""
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as world:
        arm = Arm(world)
        region = world.scene.config.task.place_region
        ctrl = PlanningController(OracleEstimator(world), arm.kin, BoxPicker(region),
                                  PickPlacePlannerConfig(background_planning=True), region, request_images=False,
                                  n_slots=2)
        assert ctrl.background
        res = FixedRateRunner(SimPandaDriver(world, arm), ctrl, realtime=False, deadline_s=10.0).run(max_ticks=30000)
        ctrl.close()
        from robot_wm.sim.truth import evaluate_task, task_objects

        placed = evaluate_task(world, task_objects(world))
        arm.close()
    assert res.done and all(placed.values())
    assert res.tick_ms_p50 < 1.0
