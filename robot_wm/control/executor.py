"""Executing motions one control tick at a time: the segment queue both controllers share.

A controller fills a queue of :class:`Segment` s — joint moves, IK pose moves, straight TCP lines, gripper
moves, settles and checks — and :class:`SegmentController` plays them as per-tick joint setpoints through
``step(obs) -> Command``. When the queue runs dry it asks the subclass what to do next (``_think``), which
queues more segments or finishes. A failed segment (target unreachable, no straight-line path, a check
that fails) aborts: the queue is dropped, the gripper opens and the TCP backs off upwards.

Every tick is guarded (:mod:`robot_wm.control.guard`): the observation is validated first (a bad camera is
dropped for the tick, a bad joint or gripper reading is not acted on: a trajectory under way keeps playing its
planned setpoints, anything else holds; the hold pose is only ever a valid reading or a command that passed
the guard), and every command passes the :class:`~robot_wm.control.guard.CommandGuard` (a violation becomes a
safe hold, the motion is then re-planned from the hold, and aborted after a retry). Nothing raises out of
``step()``: an exception while thinking is logged, reported as an event (``think_error:<type>``) and retried
after a pause, up to MAX_THINK_FAILURES in a row before the run stops with a reason (``finish_reason``); one
while executing aborts the action (MAX_TICK_ERRORS per decision).

A check may need to look: it answers ``LOOK`` (:mod:`robot_wm.control.faults`) and the segment holds, asking
for camera frames (``wants_images``), until it is called again with them. Gripper moves wait for the width to
settle and then ask whether the readings could be true (:func:`grip_problem`: a commanded move the reading did
not follow, an opening that reads short); one that could not marks the width sensor untrusted for the rest of
the run (``gripper_trusted``, event ``fault:gripper_sensor:<why>``): gripper moves are then given
GRIPPER_BLIND_S instead of being watched, and a subclass's held checks ask the cameras.

Two modes. Synchronous (default; ``settings.background_planning`` false): ``_think`` and the IK of pose and
line segments run inside ``step()`` — the simulated demo and the benchmarks stay bit-for-bit repeatable.
Background: they run in a worker thread; ``step()`` returns at once, holding the arm (only ever at rest,
between segments) until the plan is ready, and picks it up on the first tick after. The control thread then
never touches pixels: the tick validates a frame's structure only, and whatever uses the images — a think, or
a check that looks (a held check after the lift, the look above the target) — runs in the worker, which first
checks the depth pixels (:meth:`~robot_wm.control.guard.ObservationValidator.check_pixels`: the same frames
dropped, the same events). Python's GIL still serialises the two threads: a tick can wait for the worker's
current C call (a PyBullet call, a NumPy kernel) and for the interpreter's switch interval
(``sys.getswitchinterval()``, 5 ms by default; :class:`~robot_wm.control.runner.FixedRateRunner` lowers it
while it runs).

Poses are TCP poses in the world frame (m, xyzw quaternions); joint values in rad.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_wm.config import PickPlacePlannerConfig
from robot_wm.control.faults import LOOK
from robot_wm.control.guard import NO_SAFE_POSE, CheckedObservation, CommandGuard, ObservationValidator
from robot_wm.geometry import Pose, panda
from robot_wm.interface import Command, Observation
from robot_wm.sim import KinematicModel
from robot_wm.sim.trajectory import TrajectoryPlanner, timed_path

log = logging.getLogger(__name__)

MIN_HELD_WIDTH = 0.004  # m: fingers closed further than this hold nothing
ARRIVE_TOL = 1e-3  # rad: joint error at which a motion counts as arrived
ARRIVE_TIMEOUT_S = 0.5
GRIPPER_TIMEOUT_S = 1.0
GRIPPER_BLIND_S = 1.0  # s a gripper move is given when the width sensor is not trusted (no settling to wait for)
GRIP_MIN_MOVE = 0.01  # m: a gripper move commanded this far from the reading should change the reading ...
BACK_OFF = "back off"  # the label of an aborted action's move up (a failure there sends the arm home)
GRIP_STILL = 5e-4  # m: ... by more than this (else the sensor is stuck: real fingers closing on a tight object still move)
GRIP_OPEN_SHORT = 0.02  # m: an opening that reads this much short of its target is implausible (nothing stops it)
LOOK_TIMEOUT_S = 1.0  # s a check waits for camera frames before it answers without them
MAX_THINK_FAILURES = 3  # exceptions while thinking, in a row, before the run stops
THINK_RETRY_S = 0.1  # s held after a failed think before looking again
MAX_TICK_ERRORS = 3  # exceptions while executing, per decision, before the run stops
MAX_SEGMENT_RETRIES = 1  # re-plans of a motion segment whose command the guard refused, before the action aborts
MAX_GUARD_HOLDS = 10  # guard holds per decision before the run stops
BAD_SENSOR_S = 1.0  # s of invalid joint / gripper readings in a row before the run stops
BLIND_S = 2.0  # s of wanting images without a usable camera frame before the run stops
THINK_TIMEOUT_S = 120.0  # background mode: s a plan may take before the run stops
PREPARED_KINDS = ("pose", "line")  # segments whose setpoints need IK (the worker's job in background mode)
BLIND = "blind"  # a background think's answer when every camera frame it was given failed the pixel check
LIMIT_MARGIN = 0.9  # motions are timed to use at most this fraction of the acceleration and jerk limits
RETIME_TRIES = 6

def limit_ratios(q0: np.ndarray, setpoints: np.ndarray, dt: float) -> tuple[float, float, float]:
    """Peak |velocity|, |acceleration| and |jerk| of playing `setpoints` (T, 7) rad one per `dt` s from rest
    at q0 (7,) to rest at the last, as fractions of the Panda's limits (finite differences, as the robot
    computes them)."""
    p = np.vstack([q0, q0, setpoints, setpoints[-1:], setpoints[-1:]])
    v = np.diff(p, axis=0) / dt
    a = np.diff(v, axis=0) / dt
    j = np.diff(a, axis=0) / dt
    return (float(np.max(np.abs(v) / panda.VELOCITY_LIMIT)), float(np.max(np.abs(a) / panda.ACCELERATION_LIMIT)),
            float(np.max(np.abs(j) / panda.JERK_LIMIT)))


def grip_problem(target: float, widths: list[float]) -> str:
    """Why the width readings `widths` (m, one per tick since a gripper move to `target` m began) cannot be
    true, or "": a move commanded at least GRIP_MIN_MOVE away from the first reading that changed it by less
    than GRIP_STILL (a stuck sensor), or an opening that ended GRIP_OPEN_SHORT short of its target (nothing
    stops fingers that open)."""
    w0, w1 = float(widths[0]), float(widths[-1])
    target = min(float(target), panda.MAX_OPENING)
    if abs(target - w0) >= GRIP_MIN_MOVE and abs(w1 - w0) < GRIP_STILL:
        return f"width read {w0:.3f} m before and {w1:.3f} m after a move to {target:.3f} m"
    if target - w0 >= GRIP_MIN_MOVE and w1 < target - GRIP_OPEN_SHORT:
        return f"width read {w1:.3f} m after opening to {target:.3f} m"
    return ""


def min_jerk_duration(q0: np.ndarray, q1: np.ndarray) -> float:
    """Shortest duration (s) of a minimum-jerk joint move q0 -> q1 (7,) rad whose peak acceleration
    (5.77 D / T^2) and jerk (60 D / T^3) stay within LIMIT_MARGIN of the Panda's limits."""
    d = np.abs(np.asarray(q1, float) - np.asarray(q0, float))
    t_acc = np.sqrt(5.7735 * d / (LIMIT_MARGIN * panda.ACCELERATION_LIMIT))
    t_jerk = np.cbrt(60.0 * d / (LIMIT_MARGIN * panda.JERK_LIMIT))
    return float(max(t_acc.max(), t_jerk.max()))


# A check segment's target: called with the observation and the tick's event list; returns "" when all
# is well, else the reason to abort — or robot_wm.control.faults.LOOK when it needs camera frames: the
# segment then holds and asks for images (``wants_images``) and is called again with them (after
# LOOK_TIMEOUT_S without any usable frame, with an observation that has none: LOOK then means no objection).
Check = Callable[[Observation, list[str]], str]


@dataclass
class Segment:
    """One piece of motion.

    kind: ``joint`` (target q (7,) rad, speed = fraction of the joint velocity limits), ``pose`` (target TCP
    Pose reached by IK and a joint move), ``line`` (straight TCP line to a Pose at `speed` m/s peak),
    ``grip`` (gripper opening target m under `force` N per finger; waits until the fingers stop),
    ``settle`` (hold still for `target` ticks) or ``check`` (target: a :data:`Check`).
    label: the phase reported while it runs (default: the kind).
    """

    kind: str
    target: Any = None
    speed: float | None = None
    force: float = panda.FINGER_FORCE
    label: str = ""


def home_segment() -> Segment:
    """A joint move to the Panda's home configuration (needs no IK), reported as phase "home"."""
    return Segment("joint", panda.HOME.copy(), label="home")


def lower_thread_priority(nice: int) -> bool:
    """Put the calling (planner) thread below the control thread. A thread started by a real-time control
    thread (SCHED_FIFO, see ``FixedRateRunner(rt_priority=...)``) inherits its policy; it stays real-time
    but at the lowest priority (1): the loop preempts it whenever it wakes, yet ordinary processes never
    deschedule it while it holds the interpreter lock (GIL) the loop needs — at normal priority that
    inversion made 4-6 ms ticks on a busy 2-core machine. Otherwise its nice value becomes `nice` (Linux:
    per thread; lowering a priority needs no privilege). False where the OS has no such thing or refuses
    (logged at debug level; the thread runs on as it is)."""
    try:
        if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        elif nice > 0:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError) as exc:  # not Linux / no per-thread priority: nothing to do
        log.debug("cannot lower the planner thread's priority: %s", exc)
        return False
    return True


class Job:
    """One call run by a :class:`BackgroundWorker`: ``done()`` without blocking; then ``result`` or ``error``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self._done = threading.Event()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class BackgroundWorker:
    """A daemon thread running submitted calls one after another (it never blocks interpreter exit).

    Its priority is below the control thread's (:func:`lower_thread_priority`): under a real-time loop the
    lowest real-time priority, otherwise nice value `nice` (a positive value makes the scheduler give a core
    to the control thread first whenever both are runnable: on a busy machine the plan waits, not the tick).
    """

    def __init__(self, name: str = "robot_wm-planner", nice: int = 0) -> None:
        self.name = name
        self.nice = nice
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[[], Any]) -> Job:
        """Queue `fn` (returns at once)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        job = Job(fn)
        self._jobs.put(job)
        return job

    def _run(self) -> None:
        lower_thread_priority(self.nice)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job.started = time.monotonic()
            try:
                job.result = job.fn()
            except BaseException as exc:  # noqa: BLE001 — handed to the control thread, never lost
                job.error = exc
            finally:
                job._done.set()

    def close(self) -> None:
        """Let the thread end after its current job."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None


class SegmentController:
    """Base of the controllers: the tick loop over a segment queue (see the module docstring).

    Subclasses implement ``_think(obs, events)`` (queue segments for the next action, or call
    ``_finish``) and may override ``_on_abort(reason)``. `request_images`: ask the runner for camera
    frames (``wants_images``) before each ``_think``; dt: control tick (s). `background`: plan in a worker
    thread (default: ``settings.background_planning``); may also be set before the first step. ``guard`` and
    ``validator`` are the tick's safety filters; after a run ``finish_reason`` says why it ended when the
    controller stopped itself.
    """

    def __init__(self, kin: KinematicModel, settings: PickPlacePlannerConfig | None, dt: float,
                 request_images: bool, background: bool | None = None) -> None:
        self.kin = kin
        self.settings = settings or PickPlacePlannerConfig()
        self.dt = dt
        self.request_images = request_images
        self.motion = TrajectoryPlanner(kin, self.settings.joint_speed, dt)
        self.background = self.settings.background_planning if background is None else background
        self.guard = CommandGuard(dt)
        self.validator = ObservationValidator()
        self._worker: BackgroundWorker | None = None
        self._job: Job | None = None

    def _reset_execution(self) -> None:
        job = getattr(self, "_job", None)
        if job is not None and not job.wait(THINK_TIMEOUT_S):  # the worker must not write into the new run
            log.warning("reset while a background plan is still running; its result is dropped")
        self._job: Job | None = None
        self._job_kind = ""  # "think", "prepare" or "check"
        self._job_events: list[str] = []
        self._think_failures = 0
        self._think_wait = 0
        self._tick_errors = 0
        self._guard_holds = 0
        self._segment_retries = 0
        self._retry_segment: Segment | None = None
        self._bad_sensor_ticks = 0
        self._blind_ticks = 0
        self.finish_reason = ""
        self.guard.clear()
        self._queue: deque[Segment] = deque()
        self._setpoints: np.ndarray | None = None
        self._index = 0
        self._wait = 0
        self._segment: Segment | None = None
        self._hold: np.ndarray | None = None
        self._gripper = (panda.MAX_OPENING, panda.FINGER_FORCE)
        self._widths: list[float] = []
        self._finished = False
        self._looking = False  # a check segment is waiting for camera frames
        self.gripper_trusted = True  # False once the width sensor has read implausibly (the rest of the run)
        self.phase = "observe"

    @property
    def wants_images(self) -> bool:
        """True when the next step will decide (and estimate objects) and so needs camera frames."""
        if self._looking:
            return self.request_images and not self._finished and self._job is None
        return (self.request_images and self._segment is None and not self._queue and not self._finished
                and self._job is None and self._think_wait == 0)

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def ready(self) -> bool:
        """True once a valid joint reading gave the controller a pose it can hold."""
        return self._hold is not None

    @property
    def thinking(self) -> bool:
        """True while a background plan (or a segment's IK) is being computed."""
        return self._job is not None

    def stop(self, reason: str) -> None:
        """End the run now (e.g. a runner's watchdog): the next commands hold, with ``done``."""
        self._stop(reason, [])

    def close(self) -> None:
        """Stop the background worker (after its current job)."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    # ------------------------------------------------------------------ the tick
    def step(self, obs: Observation) -> Command:
        """Advance by one tick given the latest observation; returns the command to apply now, which has
        passed the guard. Never raises; never returns a non-finite command."""
        events: list[str] = []
        try:
            q, dq = self._tick(obs, events)
        except Exception as exc:  # noqa: BLE001 — a tick must answer; the cause goes to the log and events
            q, dq = self._tick_failed(exc, events)
        if q is None or self._hold is None:  # no valid reading yet: nothing is known to be safe to hold
            events.append(NO_SAFE_POSE)
            return Command(panda.HOME.copy(), np.zeros(7), self._gripper[0], self._gripper[1], self._finished,
                           "wait_sensors", events)
        cmd = self._command(q, dq, events)
        try:
            safe, cause = self.guard.filter(cmd)
        except Exception as exc:  # noqa: BLE001 — the guard itself failed: hold what last passed it
            log.exception("command guard failed")
            events.append(f"error:{type(exc).__name__}")
            held = self.guard.safe_q if self.guard.ready else self._hold
            safe, cause = Command(held, np.zeros(7), *self.guard.safe_gripper, self._finished, self.phase,
                                  events), "guard_error"
        if cause:
            self._guard_held(cause, safe.events)
        return safe

    def _tick(self, obs: Observation, events: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        checked = self.validator.validate(obs, events, pixels=not self.background)
        if not checked.proprio_ok:
            return self._bad_reading(events)
        self._bad_sensor_ticks = 0
        obs = checked.obs
        if self._hold is None:
            self._hold = np.asarray(obs.joint_positions, float).copy()
            self.guard.reset(self._hold, (obs.gripper_width, panda.FINGER_FORCE))
        if self._job is not None:
            if not self._job.done():
                if time.monotonic() - self._job.started > THINK_TIMEOUT_S:
                    self._job = None
                    self._stop(f"planning took longer than {THINK_TIMEOUT_S:g} s", events)
                return self._hold, np.zeros(7)
            q, dq = self._collect_job(events)
            if q is not None:
                return q, dq
        self._count_blind(obs, checked, events)
        for _ in range(8):  # segments that finish instantly (checks, planning) do not cost a tick
            if self._segment is None and not self._start_next(obs, events):
                break
            if self._job is not None:  # background: hold until the worker is done
                break
            q, dq = self._advance(obs, events)
            if q is not None:
                return q, dq
        return self._hold, np.zeros(7)

    def _bad_reading(self, events: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """A tick whose joint or gripper reading cannot be trusted: a trajectory under way keeps playing its
        planned setpoints (they do not depend on the reading), anything else holds; nothing is decided."""
        self._bad_sensor_ticks += 1
        if self._bad_sensor_ticks * self.dt > BAD_SENSOR_S and not self._finished:
            self._stop(f"joint or gripper readings invalid for {BAD_SENSOR_S:g} s", events)
        if self._hold is None:
            return None, None
        if (not self._finished and self._job is None and self._segment is not None and self._setpoints is not None
                and self._index < len(self._setpoints)):
            return self._play()
        return self._hold, np.zeros(7)

    def _count_blind(self, obs: Observation, checked: CheckedObservation, events: list[str]) -> None:
        """Stop when images are wanted and no usable camera frame has come for BLIND_S. (In background mode
        frames that arrive are only known usable once the worker has checked their pixels: a think that found
        none adds its time here, one that found some resets the count — see :meth:`_collect_job`.)"""
        if not self.wants_images or obs.frames:
            if not (self.background and obs.frames):
                self._blind_ticks = 0
            return
        self._add_blind(1, "every camera frame was invalid" if checked.received else "no camera frames came",
                        events)

    def _add_blind(self, ticks: int, what: str, events: list[str]) -> None:
        self._blind_ticks += ticks
        if self._blind_ticks * self.dt > BLIND_S:
            self._stop(f"no usable camera image for {BLIND_S:g} s ({what})", events)

    def _stop(self, reason: str, events: list[str]) -> None:
        """End the run: hold (gripper unchanged) with ``done`` and `reason` as ``finish_reason``."""
        if self._finished:
            return
        log.warning("stopping: %s", reason)
        self.finish_reason = reason
        events.append(f"stop:{reason}")
        self._queue.clear()
        self._segment, self._setpoints = None, None
        self._finish()

    def _tick_failed(self, exc: Exception, events: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """An exception while executing: abort the action (back off and look again); stop after
        MAX_TICK_ERRORS since the last decision."""
        self._tick_errors += 1
        log.error("control tick failed (%d since the last decision): %r", self._tick_errors, exc, exc_info=exc)
        events.append(f"error:{type(exc).__name__}")
        self._segment, self._setpoints = None, None
        if self._hold is None:
            return None, None
        if self._job is not None:  # the worker owns the kinematics now: just hold
            return self._hold, np.zeros(7)
        if self._tick_errors >= MAX_TICK_ERRORS:
            self._stop(f"control errors ({self._tick_errors}), last: {type(exc).__name__}: {exc}", events)
        else:
            try:
                self._abort(f"error: {type(exc).__name__}: {exc}")
            except Exception as exc2:  # noqa: BLE001
                log.error("abort failed: %r", exc2)
                self._stop(f"control error and the abort failed: {type(exc2).__name__}: {exc2}", events)
        return self._hold, np.zeros(7)

    def _guard_held(self, cause: str, events: list[str]) -> None:
        """The guard replaced the command by a hold: continue from the pose it holds; re-plan a motion once
        from there, else abort the action; stop after MAX_GUARD_HOLDS since the last decision."""
        self._hold = self.guard.safe_q
        self._gripper = self.guard.safe_gripper
        self._guard_holds += 1
        if self._finished:
            return
        if self._guard_holds > MAX_GUARD_HOLDS:
            self._stop(f"unsafe commands ({self._guard_holds} guard holds), last: {cause}", events)
            return
        seg = self._segment
        if seg is None or self._job is not None:
            return
        self._segment, self._setpoints = None, None
        if seg.kind in ("joint", *PREPARED_KINDS) and not (seg is self._retry_segment
                                                          and self._segment_retries >= MAX_SEGMENT_RETRIES):
            self._segment_retries = self._segment_retries + 1 if seg is self._retry_segment else 1
            self._retry_segment = seg
            self._queue.appendleft(seg)  # planned again from the held pose, from rest
            return
        try:
            self._abort(f"guard:{cause}")
        except Exception as exc:  # noqa: BLE001
            self._stop(f"guard:{cause}, and the abort failed: {type(exc).__name__}: {exc}", events)

    # ------------------------------------------------------------------ thinking
    def _think_now(self, obs: Observation, events: list[str]) -> None:
        """Run ``_think`` here (synchronous mode), catching what it raises."""
        try:
            self._think(obs, events)
        except Exception as exc:  # noqa: BLE001
            self._think_failed(exc, events)
            return
        self._think_succeeded()

    def _think_succeeded(self) -> None:
        self._think_failures = self._tick_errors = self._guard_holds = 0

    def _think_failed(self, exc: BaseException, events: list[str]) -> None:
        """Log, report, drop any half-made plan, retry after THINK_RETRY_S; stop after MAX_THINK_FAILURES."""
        self._think_failures += 1
        log.error("planning failed (%d in a row): %r", self._think_failures, exc, exc_info=exc)
        events.append(f"think_error:{type(exc).__name__}")
        self._queue.clear()
        if self._think_failures >= MAX_THINK_FAILURES:
            self._stop(f"planning failed {self._think_failures} times in a row, last: {type(exc).__name__}: {exc}",
                       events)
        else:
            self._think_wait = max(1, math.ceil(THINK_RETRY_S / self.dt))

    def _submit(self, kind: str, fn: Callable[[], Any], events: list[str] | None = None) -> None:
        if self._worker is None:
            self._worker = BackgroundWorker(nice=self.settings.planner_nice)
        self._job_kind = kind
        self._job_events = events if events is not None else []
        self._job = self._worker.submit(fn)

    def _think_in_worker(self, obs: Observation, events: list[str]) -> str:
        """A background think: the pixel check of the frames first (BLIND when every one fails it), then
        ``_think``; "" when it ran."""
        if obs.frames:
            obs = self.validator.check_pixels(obs, events)
            if not obs.frames:
                return BLIND
        self._think(obs, events)
        return ""

    def _check_in_worker(self, seg: Segment, obs: Observation, events: list[str]) -> tuple[str, bool]:
        """A background check that looks: (its answer, whether any frame passed the pixel check)."""
        obs = self.validator.check_pixels(obs, events)
        return seg.target(obs, events), bool(obs.frames)

    def _collect_job(self, events: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Take up a finished background job: a plan (``_think``), a segment's setpoints or a check's answer.
        Returns what a check's answer means for this tick ((None, None): go on)."""
        job, self._job = self._job, None
        events.extend(self._job_events)
        ticks = max(1, round((time.monotonic() - job.started) / self.dt))
        if self._job_kind == "think":
            if job.error is not None:
                self._think_failed(job.error, events)
            elif job.result == BLIND:
                self._add_blind(ticks, "every camera frame was invalid", events)
            else:
                self._blind_ticks = 0
                self._think_succeeded()
            return None, None
        if job.error is not None:
            raise job.error
        if self._job_kind == "check":
            reason, saw = job.result
            if not saw:
                self._wait += ticks
            return self._check_answered(reason, not saw, events)
        self._apply(self._segment, *job.result)
        return None, None

    def _think(self, obs: Observation, events: list[str]) -> None:
        """Queue the segments of the next action, or call ``_finish``; called with images when requested."""
        raise NotImplementedError

    def _on_abort(self, reason: str) -> None:
        """Told that the running action was aborted (before the back-off is queued)."""

    def _finish(self) -> None:
        self._finished = True
        self.phase = "done"

    def _command(self, q: np.ndarray, dq: np.ndarray, events: list[str]) -> Command:
        return Command(q, dq, self._gripper[0], self._gripper[1], self._finished, self.phase, events)

    def _start_next(self, obs: Observation, events: list[str]) -> bool:
        """Pop the next segment (asking ``_think`` when the queue is empty); False when idle, waiting or done.
        In background mode a think or a segment's IK goes to the worker (``self._job`` is then set)."""
        if self._finished:  # (a plan that arrived after a stop is not executed)
            return False
        if not self._queue:
            if self._think_wait > 0:  # after a failed think
                self._think_wait -= 1
                return False
            if self.wants_images and not obs.frames:
                return False  # the runner renders images for the next tick
            if self.background:
                job_events: list[str] = []
                self._submit("think", lambda: self._think_in_worker(obs, job_events), job_events)
                return False
            self._think_now(obs, events)
            if not self._queue:
                return False
        seg = self._queue.popleft()
        if seg is not self._retry_segment:
            self._retry_segment, self._segment_retries = None, 0
        self._segment, self._index, self._wait, self._widths = seg, 0, 0, []
        if self.background and seg.kind in PREPARED_KINDS:
            q0 = self._hold.copy()
            self._submit("prepare", lambda: self._prepare(seg, q0))
            return True
        self._apply(seg, *self._prepare(seg, self._hold))
        return True

    def _prepare(self, seg: Segment, q0: np.ndarray) -> tuple[np.ndarray | None, str]:
        """(setpoints (T, 7) of a motion segment from q0, or None; the reason to abort, "" when fine).

        Motions are timed within the Panda's velocity, acceleration and jerk limits: a joint move takes at
        least :func:`min_jerk_duration` (the trajectory planner's timing bounds only the velocity, and a short
        move at 60 % of it accelerates several times faster than the robot allows); a straight line whose
        IK waypoints turn sharply is slowed down as a whole until its finite differences are within the limits.
        """
        if seg.kind in ("joint", "pose"):
            q1 = seg.target if seg.kind == "joint" else self.kin.ik(seg.target, q0)
            if q1 is None:
                return None, "target pose unreachable"
            q0, q1 = np.asarray(q0, float), np.asarray(q1, float)
            needed = min_jerk_duration(q0, q1)
            if needed > self.motion.duration(q0, q1, seg.speed):
                return timed_path(np.stack([q0, q1]), needed, self.dt), ""
            return self.motion.joint_move(q0, q1, seg.speed), ""
        if seg.kind == "line":
            setpoints = self.motion.linear_move(q0, seg.target, seg.speed or self.settings.linear_speed)
            if setpoints is None:
                return None, "no straight-line path"
            return self._within_limits(q0, seg.target, setpoints), ""
        return None, ""

    def _within_limits(self, q0: np.ndarray, target: Pose, setpoints: np.ndarray) -> np.ndarray:
        """`setpoints` of a straight line, re-timed slower when they exceed the acceleration or jerk limits
        (velocity, acceleration and jerk at a sharp turn of the path shrink with the slow-down factor)."""
        ratio = max(limit_ratios(q0, setpoints, self.dt))
        if ratio <= 1.0:
            return setpoints
        path = self.motion.line_waypoints(q0, target)
        if path is None:
            return setpoints
        duration = len(setpoints) * self.dt
        for _ in range(RETIME_TRIES):
            duration *= ratio / LIMIT_MARGIN
            setpoints = timed_path(path, duration, self.dt)
            ratio = max(limit_ratios(q0, setpoints, self.dt))
            if ratio <= 1.0:
                break
        return setpoints

    def _apply(self, seg: Segment, setpoints: np.ndarray | None, reason: str) -> None:
        """Make `seg` the running segment with its prepared setpoints (or abort with `reason`)."""
        if reason:
            self._abort(reason)
            return
        if seg.kind == "grip":
            self._gripper = (float(seg.target), seg.force)
        self._setpoints = setpoints
        self.phase = seg.label or seg.kind

    def _play(self) -> tuple[np.ndarray, np.ndarray]:
        """The next setpoint of the running motion, with its feed-forward velocity."""
        q = self._setpoints[self._index]
        prev = self._setpoints[self._index - 1] if self._index else self._hold
        self._index += 1
        self._hold = q
        return q, (q - prev) / self.dt

    def _advance(self, obs: Observation, events: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Progress the active segment; returns (q, dq) to command, or (None, None) if it just ended."""
        seg = self._segment
        if seg is None:
            return None, None
        if self._setpoints is not None:  # a motion: play setpoints, then wait to arrive
            if self._index < len(self._setpoints):
                return self._play()
            self._wait += 1
            arrived = np.max(np.abs(np.asarray(obs.joint_positions) - self._hold)) < ARRIVE_TOL
            if arrived or self._wait * self.dt > ARRIVE_TIMEOUT_S:
                self._segment = None
                return None, None
            return self._hold, np.zeros(7)
        if seg.kind == "grip":
            self._widths.append(obs.gripper_width)
            elapsed = len(self._widths) * self.dt
            if not self.gripper_trusted:  # the reading says nothing: give the fingers their time
                if elapsed >= GRIPPER_BLIND_S:
                    self._segment = None
                    return None, None
                return self._hold, np.zeros(7)
            settled = len(self._widths) > 12 and np.ptp(self._widths[-6:]) < 2e-5
            if settled or elapsed > GRIPPER_TIMEOUT_S:
                problem = grip_problem(float(seg.target), self._widths)
                if problem:
                    self._distrust_gripper(problem, events)
                    return self._hold, np.zeros(7)
                self._segment = None
                return None, None
            return self._hold, np.zeros(7)
        if seg.kind == "settle":
            self._wait += 1
            if self._wait >= int(seg.target):
                self._segment = None
                return None, None
            return self._hold, np.zeros(7)
        if seg.kind == "check":
            if self._looking and not obs.frames:
                self._wait += 1
                if self._wait * self.dt <= LOOK_TIMEOUT_S:
                    return self._hold, np.zeros(7)
            if self.background and obs.frames:  # it looks at pixels: the worker's job
                job_events: list[str] = []
                self._submit("check", lambda: self._check_in_worker(seg, obs, job_events), job_events)
                return self._hold, np.zeros(7)
            return self._check_answered(seg.target(obs, events), obs.frames == {}, events)
        self._segment = None
        return None, None

    def _check_answered(self, reason: str, no_frames: bool, events: list[str]
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Act on a check's answer: LOOK without frames holds and asks for images (until LOOK_TIMEOUT_S);
        otherwise the segment ends, aborting the action when the answer is a reason."""
        if reason == LOOK and self.request_images and not self._finished and no_frames \
                and self._wait * self.dt <= LOOK_TIMEOUT_S:
            self._looking = True  # hold one tick: the runner renders the cameras for the next
            return self._hold, np.zeros(7)
        self._looking = False
        self._segment = None
        if reason == LOOK:
            reason = ""  # no images came: the check could not look (it was told so by an empty obs)
        if reason:
            self._abort(reason)
        return None, None

    def _distrust_gripper(self, problem: str, events: list[str]) -> None:
        """The width sensor read implausibly: from now on grip moves are timed, not watched, and the held
        checks of a subclass ask the cameras."""
        if self.gripper_trusted:
            log.warning("gripper width sensor not trusted any more: %s", problem)
            events.append(f"fault:gripper_sensor:{problem}")
        self.gripper_trusted = False

    def _abort(self, reason: str) -> None:
        """Give up the current action: open, back off upwards, and decide again from a fresh look. When the
        back-off itself fails (its pose out of reach from where the arm is: a low, tilted pre-grasp raised to
        the lift height), the arm goes home by a joint move, which needs no IK — re-queuing the same back-off
        spun the loop until the run's time was spent (bench generalization dev scene 7032)."""
        self._looking = False
        backing_off = self._segment is not None and self._segment.label == BACK_OFF
        self._on_abort(reason)
        log.info("action aborted: %s", reason)
        self._segment, self._setpoints = None, None
        self._queue.clear()
        if backing_off:
            self._queue.extend([Segment("grip", panda.MAX_OPENING), home_segment()])
            return
        up = self.kin.fk(self._hold)
        up = Pose([up.position[0], up.position[1], max(up.position[2], self.settings.lift)], up.quaternion)
        self._queue.extend([Segment("grip", panda.MAX_OPENING), Segment("pose", up, label=BACK_OFF)])
