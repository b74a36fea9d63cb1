"""Safety filters of the control loop: what goes out (:class:`CommandGuard`) and what comes in
(:class:`ObservationValidator`).

Every :class:`~robot_wm.interface.Command` a controller returns passes the guard; every
:class:`~robot_wm.interface.Observation` it is given passes the validator first. Neither raises on bad data:
a bad command becomes a safe hold, a bad reading is reported, with an event naming the cause.

Commands — what is checked, and what happens (joint values in rad, the tick `dt` in s):

- shapes (7,), finite positions, velocities, gripper width and force, else ``guard:shape`` /
  ``guard:non_finite``;
- Franka Panda joint position limits (``geometry.panda.LOWER``/``UPPER``): a target at most
  `position_tolerance` outside is clamped onto the limit (rounding of an IK solution that sits on it), further
  out is ``guard:position_limit``;
- the step from the last command sent: at most `max_step` per tick (default: the velocity limit x dt),
  else ``guard:step``; feed-forward velocities within the velocity limits, else ``guard:velocity``;
- acceleration and jerk of the commanded positions (finite differences over the ticks, against the
  datasheet's ``ACCELERATION_LIMIT``/``JERK_LIMIT``): an overshoot of at most `clamp_ratio` x the limit is
  rate-limited — the command is moved to the nearest one whose acceleration and jerk are within the limits,
  as libfranka's ``limitRate`` (on by default in ``franka::Robot::control``) does, with the event
  ``guard_clamped:acceleration`` / ``guard_clamped:jerk``; a larger one means a discontinuous plan (a jump,
  a planner bug) and becomes ``guard:acceleration`` / ``guard:jerk``. Why clamp small ones and not hold:
  a robot integrator expects the motion generator's small discretisation overshoots to be smoothed, as the
  robot's own interface does; a hold stops the arm within one tick, a far larger acceleration than the
  overshoot it would prevent. The executor's own minimum-jerk trajectories stay well inside (~40 % of the
  acceleration and ~20 % of the jerk limits at 240 Hz), so in normal runs the guard changes nothing;
- the gripper: width in [0, ``MAX_OPENING``] (clamped within `gripper_tolerance`, else
  ``guard:gripper_width``), force in [0, ``MAX_FINGER_FORCE``] N per finger, else ``guard:gripper_force``.

A violation turns the whole command into a safe hold: the last safe joint positions, zero velocity, the
gripper's last safe target (unchanged). The hold resets the guard's acceleration history (it is the stop).

Observations — joint positions (7,) finite and within the limits plus `joint_margin`; gripper width finite and
within [0, MAX_OPENING] plus `gripper_margin`; each camera frame: rgb (H, W, 3) uint8 of the intrinsics' size,
depth (H, W) float metres (non-finite or negative pixels become 0 = invalid, as the depth contract says), not
(almost) all invalid, a finite ``camera2world``. A bad camera is dropped for that tick (the others are used)
with ``sensor:camera:<name>:<cause>``; a bad joint or gripper reading is flagged (``sensor:joints:<cause>``,
``sensor:gripper:<cause>``) and the controller does not act on it.

Checking a frame's pixels costs ~0.2-0.5 ms per camera (a full pass over the depth image). A controller that
plans in the background (the control thread never looks at pixels) validates with ``pixels=False`` in the
tick — shapes, types, intrinsics and pose only — and has the worker that uses the images run
:meth:`ObservationValidator.check_pixels` on them first: the same causes and notes, the same frames dropped,
just off the control thread.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from robot_wm.geometry import panda
from robot_wm.interface import CameraFrame, Command, Observation

log = logging.getLogger(__name__)

GUARD_PREFIX = "guard:"  # + cause: the command was replaced by a safe hold
CLAMPED_PREFIX = "guard_clamped:"  # + what: the command was rate-limited / clamped, not held
SENSOR_PREFIX = "sensor:"  # + source + cause: a reading the controller did not use
# The controller has never had a valid joint reading, so it knows no pose it could safely hold: its command is
# a finite placeholder (panda.HOME) that a runner must not send (FixedRateRunner does not).
NO_SAFE_POSE = "guard:no_safe_pose"


@dataclass
class GuardStats:
    """What the guard did: commands checked, held (by cause) and clamped (by what)."""

    checked: int = 0
    held: int = 0
    clamped: int = 0
    causes: Counter = field(default_factory=Counter)


class CommandGuard:
    """Filters each outgoing command (see the module docstring).

    dt: control tick (s). max_step: most joint change per tick (rad, scalar or (7,); default the velocity
    limits x dt). position_tolerance (rad) / gripper_tolerance (m): how far outside a limit a target is still
    clamped onto it. clamp_ratio: acceleration or jerk overshoots up to this multiple of the limit are
    rate-limited, larger ones held. Call :meth:`reset` with the measured joint positions before the first
    :meth:`filter`.
    """

    def __init__(self, dt: float, max_step: float | np.ndarray | None = None, position_tolerance: float = 1e-3,
                 gripper_tolerance: float = 1e-3, clamp_ratio: float = 1.5) -> None:
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds (got {dt})")
        self.dt = float(dt)
        self.max_step = (panda.VELOCITY_LIMIT * self.dt if max_step is None
                         else np.broadcast_to(np.asarray(max_step, float), (7,)).copy())
        self.position_tolerance, self.gripper_tolerance = position_tolerance, gripper_tolerance
        self.clamp_ratio = clamp_ratio
        self.stats = GuardStats()
        self._q: np.ndarray | None = None
        self._v = np.zeros(7)
        self._a = np.zeros(7)
        self._gripper = (panda.MAX_OPENING, panda.FINGER_FORCE)
        self._clamping = ""

    @property
    def ready(self) -> bool:
        """True once :meth:`reset` gave it a safe pose."""
        return self._q is not None

    @property
    def safe_q(self) -> np.ndarray | None:
        """The last safe joint positions (7,) rad: what a hold commands."""
        return None if self._q is None else self._q.copy()

    @property
    def safe_gripper(self) -> tuple[float, float]:
        """The last safe gripper target: (width m, force N per finger)."""
        return self._gripper

    def clear(self) -> None:
        """Forget the safe pose (a new run): :meth:`reset` must come before the next :meth:`filter`."""
        self._q = None

    def reset(self, q: np.ndarray, gripper: tuple[float, float] | None = None) -> None:
        """Start from joint positions `q` (7,) rad at rest (a valid reading), holding the gripper at
        `gripper` (width m, force N; default: fully open at the closing force)."""
        q = np.asarray(q, float).reshape(7)
        if not np.isfinite(q).all():
            raise ValueError("CommandGuard.reset needs finite joint positions")
        self._q = np.clip(q, panda.LOWER, panda.UPPER)
        self._v, self._a = np.zeros(7), np.zeros(7)
        if gripper is not None:
            width = float(np.clip(gripper[0], 0.0, panda.MAX_OPENING)) if math.isfinite(gripper[0]) else 0.0
            force = float(gripper[1]) if math.isfinite(gripper[1]) else panda.FINGER_FORCE
            self._gripper = (width, float(np.clip(force, 0.0, panda.MAX_FINGER_FORCE)))
        self._clamping = ""

    # ------------------------------------------------------------------ the filter
    def filter(self, cmd: Command) -> tuple[Command, str]:
        """(the command to send, the cause of a hold or "" when it passed, possibly clamped). Never raises on
        a bad command; the returned command's events include the guard's."""
        if self._q is None:
            raise RuntimeError("CommandGuard.reset(q) must be called with a valid reading first")
        self.stats.checked += 1
        try:
            out, cause = self._check(cmd)
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            log.debug("unreadable command: %s", exc)
            out, cause = None, "shape"
        if out is None:
            return self._hold(cmd, cause), cause
        return out, ""

    def _check(self, cmd: Command) -> tuple[Command | None, str]:
        q = np.asarray(cmd.joint_positions, dtype=float)
        dq = np.asarray(cmd.joint_velocities, dtype=float)
        if q.shape != (7,) or dq.shape != (7,):
            return None, "shape"
        width, force = float(cmd.gripper_width), float(cmd.gripper_force)
        if not (np.isfinite(q).all() and np.isfinite(dq).all() and math.isfinite(width) and math.isfinite(force)):
            return None, "non_finite"
        changed = False
        events: list[str] = []
        # positions
        outside = np.maximum(panda.LOWER - q, q - panda.UPPER)
        if (outside > 0).any():
            if outside.max() > self.position_tolerance:
                return None, "position_limit"
            q = np.clip(q, panda.LOWER, panda.UPPER)
            changed = True
            if outside.max() > 1e-6:
                events.append(CLAMPED_PREFIX + "position")
        # step and velocity
        step = q - self._q
        if (np.abs(step) > self.max_step * (1 + 1e-9)).any():
            return None, "step"
        if (np.abs(dq) > panda.VELOCITY_LIMIT * (1 + 1e-6)).any():
            return None, "velocity"
        # acceleration and jerk of the commanded positions
        v = step / self.dt
        a = (v - self._v) / self.dt
        j = (a - self._a) / self.dt
        ratio_a = float(np.max(np.abs(a) / panda.ACCELERATION_LIMIT))
        ratio_j = float(np.max(np.abs(j) / panda.JERK_LIMIT))
        if ratio_a > 1.0 or ratio_j > 1.0:
            if ratio_a > self.clamp_ratio or ratio_j > self.clamp_ratio:
                return None, "acceleration" if ratio_a >= ratio_j else "jerk"
            what = "acceleration" if ratio_a >= ratio_j else "jerk"
            a_lim = panda.ACCELERATION_LIMIT
            lo = np.maximum(-a_lim, self._a - panda.JERK_LIMIT * self.dt)
            hi = np.minimum(a_lim, self._a + panda.JERK_LIMIT * self.dt)
            a = np.clip(a, lo, hi)
            v = np.clip(self._v + a * self.dt, -panda.VELOCITY_LIMIT, panda.VELOCITY_LIMIT)
            a = (v - self._v) / self.dt
            q = self._q + v * self.dt
            if (q < panda.LOWER).any() or (q > panda.UPPER).any():
                return None, "position_limit"
            dq = v
            changed = True
            if self._clamping != what:  # announce when clamping starts, not on every tick of it
                events.append(CLAMPED_PREFIX + what)
            self._clamping = what
        else:
            self._clamping = ""
        # gripper
        if width < -self.gripper_tolerance or width > panda.MAX_OPENING + self.gripper_tolerance:
            return None, "gripper_width"
        if not 0.0 <= width <= panda.MAX_OPENING:
            width = float(np.clip(width, 0.0, panda.MAX_OPENING))
            changed = True
        if not 0.0 <= force <= panda.MAX_FINGER_FORCE:
            return None, "gripper_force"
        # passed
        self._q, self._v, self._a = q.copy(), v, a
        self._gripper = (width, force)
        if events:
            self.stats.clamped += 1
        if not changed and not events:
            return cmd, ""
        return replace(cmd, joint_positions=q, joint_velocities=np.asarray(dq, float), gripper_width=width,
                       events=[*cmd.events, *events]), ""

    def _hold(self, cmd: Any, cause: str) -> Command:
        self.stats.held += 1
        self.stats.causes[cause] += 1
        log.warning("unsafe command replaced by a hold: %s", cause)
        self._v, self._a = np.zeros(7), np.zeros(7)
        self._clamping = ""
        events = getattr(cmd, "events", None)
        events = [e for e in events if isinstance(e, str)] if isinstance(events, list) else []
        try:
            done = bool(cmd.done)
        except (TypeError, ValueError, AttributeError):
            done = False
        phase = getattr(cmd, "phase", "")
        return Command(self._q.copy(), np.zeros(7), self._gripper[0], self._gripper[1], done,
                       phase if isinstance(phase, str) else "", [*events, GUARD_PREFIX + cause])


def is_safe(cmd: Command, previous: np.ndarray | None, dt: float, tolerance: float = 1e-9) -> bool:
    """An independent check of one command (for tests and benchmarks): finite, shapes (7,), inside the joint
    position limits, a step from `previous` (7,) within the velocity limits x `dt`, gripper width in
    [0, MAX_OPENING] and force in [0, MAX_FINGER_FORCE]."""
    try:
        q = np.asarray(cmd.joint_positions, float)
        dq = np.asarray(cmd.joint_velocities, float)
        width, force = float(cmd.gripper_width), float(cmd.gripper_force)
    except (TypeError, ValueError):
        return False
    if q.shape != (7,) or dq.shape != (7,) or not (np.isfinite(q).all() and np.isfinite(dq).all()):
        return False
    if not (math.isfinite(width) and math.isfinite(force)):
        return False
    if (q < panda.LOWER - tolerance).any() or (q > panda.UPPER + tolerance).any():
        return False
    if previous is not None and (np.abs(q - previous) > panda.VELOCITY_LIMIT * dt * (1 + 1e-6) + tolerance).any():
        return False
    return 0.0 <= width <= panda.MAX_OPENING and 0.0 <= force <= panda.MAX_FINGER_FORCE


# ---------------------------------------------------------------------- observations
@dataclass
class CheckedObservation:
    """The validator's verdict on one observation.

    obs: the observation to use (bad cameras removed, invalid depth pixels zeroed; the input itself when
    nothing needed changing), or None when the input was not readable at all. joints_ok / gripper_ok: whether
    the proprioceptive readings can be trusted; dropped: names of the cameras dropped this tick; received:
    how many camera frames came in.
    """

    obs: Observation | None
    joints_ok: bool
    gripper_ok: bool
    dropped: list[str] = field(default_factory=list)
    received: int = 0

    @property
    def proprio_ok(self) -> bool:
        return self.obs is not None and self.joints_ok and self.gripper_ok


class ObservationValidator:
    """Checks each tick's observation (see the module docstring); never raises on bad data.

    joint_margin (rad): how far outside the position limits a reading may be (encoder noise, the soft
    limits). gripper_margin (m): the same for the finger width. min_valid_depth: fraction of depth pixels
    that must be valid for a camera to be used.
    """

    def __init__(self, joint_margin: float = 0.05, gripper_margin: float = 0.005,
                 min_valid_depth: float = 0.01) -> None:
        self.joint_margin, self.gripper_margin, self.min_valid_depth = joint_margin, gripper_margin, min_valid_depth
        self._last_time = 0.0

    def validate(self, obs: Any, events: list[str], pixels: bool = True) -> CheckedObservation:
        """Check `obs`; events describing what was wrong are appended to `events`. pixels=False: the frames'
        depth pixels are not looked at (see the module docstring: :meth:`check_pixels` does it later)."""
        try:
            q_raw, width_raw, time_raw, frames_raw = (obs.joint_positions, obs.gripper_width, obs.time, obs.frames)
        except AttributeError:
            events.append(SENSOR_PREFIX + "observation:unreadable")
            return CheckedObservation(None, False, False)
        changed = False
        joints_ok, q = self._joints(q_raw, events)
        gripper_ok, width = self._gripper(width_raw, events)
        try:
            t = float(time_raw)
        except (TypeError, ValueError):
            t = math.nan
        if not math.isfinite(t):
            events.append(SENSOR_PREFIX + "time:non_finite")
            t, changed = self._last_time, True
        self._last_time = t
        frames: dict[str, CameraFrame] = {}
        dropped: list[str] = []
        received = 0
        if isinstance(frames_raw, Mapping):
            received = len(frames_raw)
            for name, frame in frames_raw.items():
                cause, clean, notes = self._frame(frame, pixels)
                events.extend(f"{SENSOR_PREFIX}camera:{name}:{n}" for n in notes)
                if cause:
                    events.append(f"{SENSOR_PREFIX}camera:{name}:{cause}")
                    dropped.append(str(name))
                    changed = True
                    continue
                changed = changed or clean is not frame
                frames[name] = clean
        else:
            events.append(SENSOR_PREFIX + "frames:not_a_mapping")
            changed = True
        if joints_ok and not isinstance(q_raw, np.ndarray):
            changed = True
        if changed or not gripper_ok or not joints_ok:
            out = Observation(frames, q if joints_ok else np.asarray(q, float), width, t)
        else:
            out = obs
        return CheckedObservation(out, joints_ok, gripper_ok, dropped, received)

    def _joints(self, q_raw: Any, events: list[str]) -> tuple[bool, np.ndarray]:
        try:
            q = np.asarray(q_raw, dtype=float)
        except (TypeError, ValueError):
            events.append(SENSOR_PREFIX + "joints:unreadable")
            return False, np.full(7, np.nan)
        if q.shape != (7,):
            events.append(SENSOR_PREFIX + "joints:shape")
            return False, np.full(7, np.nan)
        if not np.isfinite(q).all():
            events.append(SENSOR_PREFIX + "joints:non_finite")
            return False, q
        m = self.joint_margin
        if (q < panda.LOWER - m).any() or (q > panda.UPPER + m).any():
            events.append(SENSOR_PREFIX + "joints:out_of_limits")
            return False, q
        return True, q

    def _gripper(self, width_raw: Any, events: list[str]) -> tuple[bool, float]:
        try:
            width = float(width_raw)
        except (TypeError, ValueError):
            events.append(SENSOR_PREFIX + "gripper:unreadable")
            return False, math.nan
        if not math.isfinite(width):
            events.append(SENSOR_PREFIX + "gripper:non_finite")
            return False, width
        if width < -self.gripper_margin or width > panda.MAX_OPENING + self.gripper_margin:
            events.append(SENSOR_PREFIX + "gripper:out_of_range")
            return False, width
        return True, width

    def check_pixels(self, obs: Observation, events: list[str]) -> Observation:
        """The pixel part of the frame check for an observation that passed ``validate(..., pixels=False)``:
        `obs` with the frames whose depth is (almost) all invalid dropped and invalid depth pixels zeroed
        (events as :meth:`validate` gives them); `obs` itself when nothing changed."""
        frames: dict[str, CameraFrame] = {}
        changed = False
        for name, frame in obs.frames.items():
            cause, clean, notes = self._depth(frame)
            events.extend(f"{SENSOR_PREFIX}camera:{name}:{n}" for n in notes)
            if cause:
                events.append(f"{SENSOR_PREFIX}camera:{name}:{cause}")
                changed = True
                continue
            changed = changed or clean is not frame
            frames[name] = clean
        return replace(obs, frames=frames) if changed else obs

    def _frame(self, frame: Any, pixels: bool = True) -> tuple[str, Any, list[str]]:
        """(cause, frame to use, notes): cause "" for a usable frame — the input, or a copy with invalid depth
        pixels zeroed (note ``depth_non_finite_zeroed``) or a mis-shaped segmentation removed (note
        ``segmentation_shape``). pixels=False: the depth values are not checked (:meth:`_depth` does it)."""
        if not isinstance(frame, CameraFrame):
            return "not_a_frame", None, []
        k = frame.intrinsics
        try:
            w, h = int(k.width), int(k.height)
            values = np.array([k.fx, k.fy, k.cx, k.cy], float)
        except (TypeError, ValueError, AttributeError):
            return "intrinsics", None, []
        if w <= 0 or h <= 0 or not np.isfinite(values).all() or values[0] <= 0 or values[1] <= 0:
            return "intrinsics", None, []
        rgb, depth = frame.rgb, frame.depth
        if not isinstance(rgb, np.ndarray) or rgb.shape != (h, w, 3):
            return "rgb_shape", None, []
        if rgb.dtype != np.uint8:
            return "rgb_dtype", None, []
        if not isinstance(depth, np.ndarray) or depth.shape != (h, w):
            return "depth_shape", None, []
        if not np.issubdtype(depth.dtype, np.floating):
            return "depth_dtype", None, []
        try:
            pose = frame.camera2world
            pose_ok = (np.isfinite(np.asarray(pose.position, float)).all()
                       and np.isfinite(np.asarray(pose.quaternion, float)).all())
        except (TypeError, ValueError, AttributeError):
            pose_ok = False
        if not pose_ok:
            return "camera2world", None, []
        notes, changes = [], {}
        seg = frame.segmentation
        if seg is not None and getattr(seg, "shape", None) != (h, w):
            notes.append("segmentation_shape")
            changes["segmentation"] = None
        frame = replace(frame, **changes) if changes else frame
        if not pixels:
            return "", frame, notes
        cause, clean, more = self._depth(frame)
        return cause, clean, notes + more

    def _depth(self, frame: CameraFrame) -> tuple[str, CameraFrame | None, list[str]]:
        """The depth pixels of a frame whose structure is valid: ("depth_invalid", None, []) when (almost) all
        are invalid, else ("", the frame or a copy with non-finite / negative pixels zeroed, notes)."""
        depth = frame.depth
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(depth) | (depth < 0)
            valid = np.count_nonzero((depth > 0) & ~bad)
        if valid == 0 or valid < self.min_valid_depth * depth.size:
            return "depth_invalid", None, []
        if not bad.any():
            return "", frame, []
        clean = depth.copy()
        clean[bad] = 0.0
        return "", replace(frame, depth=clean), ["depth_non_finite_zeroed"]
