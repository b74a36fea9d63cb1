"""Running a controller against a robot at a fixed rate, with a deadline watchdog.

    driver = SimPandaDriver(world, arm)                  # or a real robot's driver (RobotDriver)
    runner = FixedRateRunner(driver, controller, rate_hz=250, max_consecutive_misses=5)
    result = runner.run(max_s=120)                       # RunResult: ticks, misses, latencies, reason

A :class:`RobotDriver` is what the loop needs from a robot: ``read()`` the latest :class:`Observation`
(joint positions, gripper width, time and, when asked, calibrated camera frames) and ``send()`` a
:class:`Command`. The simulated Panda is one (:class:`SimPandaDriver`: ``send`` applies the command to the
arm's motors and advances the simulation one tick, as ``control.demo.run_controller`` does).

Each cycle — read, ``controller.step``, send — must finish within `deadline_s` (default: the period). A
missed deadline is logged and counted; `max_consecutive_misses` in a row stop the robot safely: the runner
sends a hold of the last command sent (zero velocity, gripper unchanged) with ``done``, tells the controller
to stop (``controller.stop(reason)`` when it has one), and returns with the reason. An exception from the
driver or the controller, or Ctrl-C, stops it the same way (Ctrl-C is re-raised after the hold is sent).
A command flagged ``guard:no_safe_pose`` (no valid joint reading yet) is never sent, nor is the controller's
final command (``done``: the robot keeps holding the last target it was sent, as ``run_controller`` does).

While it runs, the runner lowers Python's GIL switch interval to `switch_interval_s` (default
SWITCH_INTERVAL_S = 0.5 ms, restored afterwards): a controller planning in a background thread holds the GIL
for up to the interval (5 ms by default) whenever the control thread wants it, longer than a 250 Hz tick.
With `rt_priority` the loop runs under SCHED_FIFO while it runs (a real robot's loop; the planner thread of a
background-planning controller then sits just below it, see ``executor.lower_thread_priority``), so other
processes on a busy machine cannot delay a tick.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robot_wm.control.guard import NO_SAFE_POSE
from robot_wm.geometry import panda
from robot_wm.interface import Command, Observation

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005  # s: the GIL switch interval while a runner runs (Python's default: 5 ms)


@runtime_checkable
class RobotDriver(Protocol):
    """A robot as the control loop sees it."""

    def read(self, images: bool = True) -> Observation:
        """The latest sensor snapshot; `images`: whether camera frames are needed this tick (a driver may
        always include its latest frames)."""
        ...

    def send(self, command: Command) -> None:
        """Apply `command` (joint targets rad, feed-forward velocities rad/s, gripper width m and force N)."""
        ...


class StepController(Protocol):
    """What the runner needs from a controller (``SegmentController`` and its subclasses)."""

    wants_images: bool

    def step(self, obs: Observation) -> Command: ...


class SimPandaDriver:
    """The simulated Panda (a ``robot_wm.sim`` World and Arm) as a :class:`RobotDriver`: ``read`` observes
    the world (rendering the cameras only when asked), ``send`` sets the arm's motor targets (the gripper's
    only when they change: PyBullet's motor targets persist) and advances the simulation by one physics step
    (``sim.TIME_STEP``). `segmentation`: include the ground-truth segmentation images (benchmarks)."""

    def __init__(self, world: Any, arm: Any, segmentation: bool = True) -> None:
        self.world, self.arm, self.segmentation = world, arm, segmentation
        self._gripper: tuple[float, float] | None = None

    def read(self, images: bool = True) -> Observation:
        return self.world.observe(render=images, segmentation=self.segmentation)

    def send(self, command: Command) -> None:
        self.arm.command(np.asarray(command.joint_positions, float), np.asarray(command.joint_velocities, float))
        gripper = (command.gripper_width, command.gripper_force)
        if gripper != self._gripper:
            self._gripper = gripper
            self.arm.set_gripper(*gripper)
        self.world.step()


@dataclass
class RunResult:
    """How a run went. tick_ms_*: the controller's ``step()`` latency (ms); cycle_ms_max: the longest
    read + step + send (ms); deadline_misses: cycles over the deadline; reason: why it ended; step_ms: every
    tick's ``step()`` latency (ms), in order; step_cpu_ms: the CPU time the calling thread spent in each
    ``step()`` (ms; a tick whose wall time is far above it waited: for the interpreter lock, or for the CPU)."""

    ticks: int = 0
    done: bool = False
    stopped: bool = False
    reason: str = ""
    deadline_misses: int = 0
    max_consecutive_misses: int = 0
    realtime_priority: bool | None = None
    tick_ms_p50: float = 0.0
    tick_ms_p999: float = 0.0
    tick_ms_max: float = 0.0
    cycle_ms_max: float = 0.0
    last_command: Command | None = field(default=None, repr=False)
    step_ms: list[float] = field(default_factory=list, repr=False)
    step_cpu_ms: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("last_command", "step_ms", "step_cpu_ms")}


class FixedRateRunner:
    """Runs `controller` on `driver` at `rate_hz` (see the module docstring).

    deadline_s: most time one cycle may take (default 1 / rate_hz); max_consecutive_misses: misses in a row
    that stop the robot. realtime: sleep until each period's start (False: run as fast as possible, e.g. a
    simulated robot, except while the controller is ``thinking`` in the background, when each tick takes a
    period: otherwise the simulation would run far ahead of the planner, which a real robot cannot do;
    deadlines are checked either way). clock / sleep: injectable for tests. on_command: called
    with each command sent (logging, evaluation). switch_interval_s: Python's GIL switch interval while
    running (None: left as it is). rt_priority: run the calling thread under the real-time policy
    SCHED_FIFO at this priority (1-99) while running, as libfranka's loops do, and restore its policy after;
    it needs the privilege (root, CAP_SYS_NICE or an rtprio limit): where refused, the run goes on at normal
    priority with a warning, and ``RunResult.realtime_priority`` says which it was (None: not asked).
    """

    def __init__(self, driver: RobotDriver, controller: StepController, rate_hz: float = 250.0,
                 deadline_s: float | None = None, max_consecutive_misses: int = 5, realtime: bool = True,
                 clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
                 on_command: Callable[[Command], None] | None = None,
                 switch_interval_s: float | None = SWITCH_INTERVAL_S, rt_priority: int | None = None) -> None:
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be > 0 (got {rate_hz})")
        if max_consecutive_misses < 1:
            raise ValueError(f"max_consecutive_misses must be >= 1 (got {max_consecutive_misses})")
        self.driver, self.controller = driver, controller
        self.period = 1.0 / rate_hz
        self.deadline_s = self.period if deadline_s is None else float(deadline_s)
        self.max_consecutive_misses = max_consecutive_misses
        self.realtime, self.clock, self.sleep = realtime, clock, sleep
        self.on_command = on_command
        if switch_interval_s is not None and not (math.isfinite(switch_interval_s) and switch_interval_s > 0):
            raise ValueError(f"switch_interval_s must be > 0 (got {switch_interval_s})")
        self.switch_interval_s = switch_interval_s
        if rt_priority is not None and not 1 <= rt_priority <= 99:
            raise ValueError(f"rt_priority must be 1-99 (got {rt_priority})")
        self.rt_priority = rt_priority

    def run(self, max_ticks: int | None = None, max_s: float | None = None) -> RunResult:
        """Tick until the controller says done, the watchdog stops it, `max_ticks` cycles or `max_s` seconds
        of wall time pass (both None: until done)."""
        res = RunResult()
        step_s: list[float] = []
        cpu_s: list[float] = []
        consecutive = 0
        last_sent: Command | None = None
        last_obs: Observation | None = None
        old_switch = sys.getswitchinterval()
        if self.switch_interval_s is not None:
            sys.setswitchinterval(self.switch_interval_s)
        old_policy = self._enter_realtime(res)
        start = next_t = self.clock()
        try:
            while True:
                if max_ticks is not None and res.ticks >= max_ticks:
                    self._stop(res, last_sent, last_obs, f"tick limit ({max_ticks}) reached")
                    break
                if max_s is not None and self.clock() - start >= max_s:
                    self._stop(res, last_sent, last_obs, f"time limit ({max_s:g} s) reached")
                    break
                t0 = self.clock()
                last_obs = self.driver.read(images=bool(getattr(self.controller, "wants_images", True)))
                c1, t1 = time.thread_time(), self.clock()
                cmd = self.controller.step(last_obs)
                t2 = self.clock()
                cpu_s.append(time.thread_time() - c1)
                step_s.append(t2 - t1)
                if NO_SAFE_POSE not in cmd.events and not cmd.done:
                    self.driver.send(cmd)
                    last_sent = cmd
                    if self.on_command is not None:
                        self.on_command(cmd)
                res.ticks += 1
                cycle = self.clock() - t0
                res.cycle_ms_max = max(res.cycle_ms_max, 1e3 * cycle)
                if cycle > self.deadline_s:
                    res.deadline_misses += 1
                    consecutive += 1
                    res.max_consecutive_misses = max(res.max_consecutive_misses, consecutive)
                    log.warning("deadline missed: tick %d took %.2f ms (deadline %.2f ms, %d in a row)", res.ticks,
                                1e3 * cycle, 1e3 * self.deadline_s, consecutive)
                else:
                    consecutive = 0
                if cmd.done:
                    res.done = True
                    res.reason = getattr(self.controller, "finish_reason", "") or "controller done"
                    res.last_command = last_sent
                    break
                if consecutive >= self.max_consecutive_misses:
                    self._stop(res, last_sent, last_obs, f"watchdog: {consecutive} deadlines missed in a row "
                                                         f"(deadline {1e3 * self.deadline_s:.2f} ms)")
                    break
                if not self.realtime and getattr(self.controller, "thinking", False):
                    self.sleep(self.period)  # let the background planner run, at the pace a real robot would
                elif self.realtime:
                    next_t += self.period
                    wait = next_t - self.clock()
                    if wait > 0:
                        self.sleep(wait)
                    elif -wait > self.period:  # far behind: restart the schedule instead of bursting
                        next_t = self.clock()
        except KeyboardInterrupt:
            self._stop(res, last_sent, last_obs, "interrupted")
            raise
        except Exception as exc:  # noqa: BLE001 — the robot must be stopped whatever failed
            log.exception("control loop failed")
            self._stop(res, last_sent, last_obs, f"error: {type(exc).__name__}: {exc}")
        finally:
            sys.setswitchinterval(old_switch)
            if old_policy is not None:
                os.sched_setscheduler(0, *old_policy)
            self._latencies(res, step_s)
            res.step_cpu_ms = (1e3 * np.asarray(cpu_s)).tolist()
        return res

    def _enter_realtime(self, res: RunResult) -> tuple[int, Any] | None:
        """Switch the calling thread to SCHED_FIFO at `rt_priority` (see the class docstring); the policy to
        restore afterwards, or None when nothing was changed."""
        if self.rt_priority is None:
            return None
        try:
            old = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.rt_priority))
        except (AttributeError, OSError) as exc:  # not Linux, or no privilege
            log.warning("control loop runs at normal priority: SCHED_FIFO %d refused (%s); grant it with root, "
                        "CAP_SYS_NICE or an rtprio limit (ulimit -r)", self.rt_priority, exc)
            res.realtime_priority = False
            return None
        res.realtime_priority = True
        return old

    def _stop(self, res: RunResult, last_sent: Command | None, last_obs: Observation | None, reason: str) -> None:
        """Stop safely: the controller is told, the robot holds the last command sent (or the last valid
        joint reading when nothing was sent yet) with zero velocity and the gripper unchanged."""
        log.warning("stopping the robot: %s", reason)
        res.stopped, res.reason = True, reason
        stop = getattr(self.controller, "stop", None)
        if callable(stop):
            try:
                stop(reason)
            except Exception:  # noqa: BLE001
                log.exception("controller.stop failed")
        hold = _hold_command(last_sent, last_obs, reason)
        if hold is None:
            log.error("no safe pose known: nothing sent")
            return
        try:
            self.driver.send(hold)
            res.last_command = hold
        except Exception:  # noqa: BLE001
            log.exception("sending the stop command failed")

    @staticmethod
    def _latencies(res: RunResult, step_s: list[float]) -> None:
        if step_s:
            ms = 1e3 * np.asarray(step_s)
            res.step_ms = ms.tolist()
            res.tick_ms_p50 = float(np.percentile(ms, 50))
            res.tick_ms_p999 = float(np.percentile(ms, 99.9))
            res.tick_ms_max = float(ms.max())


def _hold_command(last_sent: Command | None, last_obs: Observation | None, reason: str) -> Command | None:
    """A hold with done: the last command's joint targets and gripper, zero velocity; without one, the last
    joint reading if it is valid (the gripper at its measured width); None when neither exists."""
    events = [f"stop:{reason}"]
    if last_sent is not None:
        return Command(np.asarray(last_sent.joint_positions, float).copy(), np.zeros(7), last_sent.gripper_width,
                       last_sent.gripper_force, True, "stopped", events)
    if last_obs is None:
        return None
    try:
        q = np.asarray(last_obs.joint_positions, float)
        width = float(last_obs.gripper_width)
    except (TypeError, ValueError, AttributeError):
        return None
    if q.shape != (7,) or not np.isfinite(q).all() or not math.isfinite(width):
        return None
    return Command(np.clip(q, panda.LOWER, panda.UPPER), np.zeros(7), float(np.clip(width, 0.0, panda.MAX_OPENING)), panda.FINGER_FORCE, True,
                   "stopped", events)
