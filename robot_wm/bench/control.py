"""``robot-wm bench control``: can a robot's control loop trust the controller? (issue 16)

Five parts, each with its fields; ``--quick`` shrinks every size (a smoke test, not for reporting).

**Tick latency** (background planning). The planned controller (``PlanningController`` with the default task
planner: RGB-D perception, grasp ranking, shadow-world verification) runs pick-and-place on the shipped scenes
(clutter, then two_blocks, stacked, tray, ... until `ticks` ticks, default 20,000) with
``background_planning`` on, driven by :class:`~robot_wm.control.runner.FixedRateRunner` at 250 Hz on the
simulated Panda (not in real time: the simulation is stepped as fast as it goes, except that while the planner
thinks each tick waits one period, as a real robot would). Each ``step()`` is timed with
``time.perf_counter``: ``tick_ms_p50``, ``tick_ms_p999``, ``tick_ms_max``; ``deadline_misses`` counts the
ticks whose ``step()`` took longer than the 4 ms period (the controller's share of the cycle; the simulator's
physics step and camera rendering stand in for the robot and its camera drivers, which run elsewhere on a real
robot — ``cycle_over_deadline`` counts whole simulated cycles, read + step + send, over 4 ms, for reference).
The planner thread shares the interpreter (GIL): a tick can wait for the planner's current C call and for the
interpreter's switch interval (the runner sets 0.5 ms while it runs; Python's default is 5 ms), and on a shared
machine for the CPU itself: ``tick_cpu_ms_p999``, ``tick_cpu_ms_max`` and ``deadline_misses_cpu`` count the CPU
time the control thread spent in each ``step()`` (``time.thread_time``), which excludes both waits; ``load_1min``
is the machine's load average when the measurement ended (> 2 on this 2-core machine: the wall-time fields
include waiting for a CPU). The same is measured on a shorter run (``switch_ticks``) with Python's default
interval (5 ms), for comparison: fields ``tick_ms_*_switch5ms``.

The runner puts the control thread under the real-time policy SCHED_FIFO (``rt_priority`` RT_PRIORITY, as a
real robot's loop runs; ``tick_realtime_priority`` says whether the OS granted it) and the planner thread at
the lowest real-time priority below it (:func:`~robot_wm.control.executor.lower_thread_priority`). To show
what that buys, ``loaded_ticks`` more ticks (default 10,000) run while one busy-looping process per CPU
competes for every core (another user's work on a shared machine): with the real-time loop
(``tick_ms_*_loaded``, ``deadline_misses_loaded``) and at normal priority with a nice planner
(``*_loaded_normal``), in the same run.

**Fault injection** (synchronous planning: same seed, same numbers). `fault_runs` runs, each a random scene
(``random_scene``: 2-3 training objects, two cameras) picked and placed by the planned controller with RGB-D
perception, with faults injected at random times (one ``numpy`` generator per run, from the bench seed):

* one *major* fault per run, in turn: ``stuck_gripper`` (the width reading frozen at 0 or at its value then,
  for the rest of the run), ``slip_drop`` (the held object taken out of the fingers during a carry, in the
  simulated world: it falls), ``object_moved`` (the pick's target moved 5-10 cm while the arm goes to it),
  ``camera_extrinsics`` (one camera's ``camera2world`` off by 3 cm in a random direction, or turned by 2 deg,
  for the rest of the run: the camera moved, its calibration did not), ``unreachable`` (an object moved out of
  the arm's reach);
* several *minor* faults per run (MINOR_PER_RUN): ``nan_joints`` (1-60 ticks of joint readings that are NaN,
  infinite, out of the limits or of the wrong shape) and ``bad_camera`` (the next 1-3 frames one camera
  delivers after a random tick have all-NaN or all-zero depth, an RGB image of the wrong shape or a NaN pose).

A *faulted cycle* here is one injected fault episode (one fault of one type at a random time, lasting from one
tick to the rest of the run) that reached the controller (the run was still going, and for camera faults a
frame was rendered while it lasted). ``faulted_cycles`` counts them (target >= 1,000), ``faulted_cycles_by_type``
per type, ``faulted_ticks`` the control ticks during which any fault was active and ``faulted_pick_attempts``
the pick decisions executed while one was. Fields: ``crashes`` (exceptions out of ``step()`` or the loop),
``unsafe_commands`` (every command sent, checked independently of the guard: finite, within the joint position
limits, a step from the previous command of at most the velocity limit x dt, feed-forward velocities within the
limits, gripper width and force in range), ``tasks_completed_under_faults`` (objects placed / placeable over
the runs without a camera fault: placeable = in the arm's reach on the table at the end, or placed),
``runs_ending_with_reason`` (runs the controller itself ended with a non-empty ``finish_reason`` / runs),
``calibration_stops`` (camera-fault runs stopped with a calibration message / camera-fault runs that saw the
fault), ``detected_by_type`` (the controller's own fault events per major type), ``finish_reasons`` (counts).
The same scenes without faults (the first `baseline_runs`) give ``tasks_completed_no_faults``.

**Soak**: `soak_picks` picks (default 200) in one process — scenes of 4 objects, oracle perception (cheap), the
real controller loop (planned controller, default planner with shadow verification, runner, guard) —
``rss_growth_mb``: resident memory after the last run minus after the first SOAK_WARMUP_RUNS (2: models, caches
and the allocator's high-water mark settle there; ``rss_growth_mb_from_first_run`` is measured from the first).

**Bad inputs**: the corpus :mod:`robot_wm.bench.bad_inputs` through the CLI's entry point (handed in by the CLI:
the bench layer does not import it): ``bad_inputs_tried``, ``bad_inputs_clean`` (exit 2, one ``error:`` line,
no traceback).

**Gymnasium**: ``gym_check_env_ok`` (Gymnasium's ``check_env``), ``gym_seeds_differ`` (reset seeds 123 and
124 give different initial observations), ``gym_nan_action_rejected`` (a NaN action raises ValueError naming
the action, and the simulated joints stay finite).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from robot_wm.config import REPO_SCENES_DIR, PickPlacePlannerConfig, Scene, load_scene, scene_from_dict
from robot_wm.config.processes import single_threaded_workers, worker_init
from robot_wm.config.random_scene import random_scene
from robot_wm.config.workspace import REACH_MAX, in_reach, on_table
from robot_wm.control.estimate import OracleEstimator
from robot_wm.control.planned import PlanningController, decision_cap
from robot_wm.control.rgbd_estimator import RgbdEstimator
from robot_wm.control.runner import SWITCH_INTERVAL_S, FixedRateRunner, SimPandaDriver
from robot_wm.geometry import Pose, panda
from robot_wm.interface import Command, Observation
from robot_wm.sim import TIME_STEP, Arm, World
from robot_wm.sim.push import set_object_pose
from robot_wm.sim.truth import evaluate_task, held_object, task_objects

log = logging.getLogger(__name__)

RATE_HZ = 250.0
PERIOD_MS = 1e3 / RATE_HZ
TICK_SCENES = ("clutter", "two_blocks", "stacked", "tray", "singulate")
TICKS, TICKS_QUICK = 20_000, 1_500
SWITCH_TICKS, SWITCH_TICKS_QUICK = 6_000, 0
LOADED_TICKS, LOADED_TICKS_QUICK = 10_000, 0
RT_PRIORITY = 50  # SCHED_FIFO priority of the control thread (any 2-99: the planner runs at 1 below it)
DEFAULT_SWITCH_INTERVAL_S = 0.005  # s: Python's own GIL switch interval (the comparison run)
FAULT_RUNS, FAULT_RUNS_QUICK = 100, 3
BASELINE_RUNS, BASELINE_RUNS_QUICK = 10, 1
SOAK_PICKS, SOAK_PICKS_QUICK = 200, 4
SOAK_WARMUP_RUNS = 2  # runs before the reference RSS: models, caches and the allocator's high-water mark
SIM_S_PER_DECISION = 8.0  # simulated s per allowed decision before a run is cut off (as the demo)
MAJOR_FAULTS = ("stuck_gripper", "slip_drop", "object_moved", "camera_extrinsics", "unreachable")
MINOR_FAULTS = ("nan_joints", "bad_camera")
FAULT_TYPES = MINOR_FAULTS + MAJOR_FAULTS
MINOR_PER_RUN = (8, 4)  # nan_joints, bad_camera episodes drawn per run
TICKS_PER_OBJECT = 1300  # expected ticks per object of a run: fault times are drawn within the expected length
CAMERA_SHIFT = 0.03  # m
CAMERA_TURN_DEG = 2.0
RUN_SEED_STRIDE = 7919


# ---------------------------------------------------------------------------------------------- command audit
class CommandAudit:
    """Checks every command sent, independently of the controller's guard: finite; joint targets within
    ``panda.LOWER``/``UPPER``; the step from the previous command at most ``VELOCITY_LIMIT`` x dt (the first
    from the measured joint positions); feed-forward velocities within ``VELOCITY_LIMIT``; gripper width in
    [0, MAX_OPENING] and force in [0, MAX_FINGER_FORCE]. `tol`: relative slack for rounding."""

    def __init__(self, dt: float = TIME_STEP, tol: float = 1e-6) -> None:
        self.dt, self.tol = dt, tol
        self.checked = 0
        self.unsafe = 0
        self.causes: Counter = Counter()
        self._prev: np.ndarray | None = None

    def start(self, q: np.ndarray) -> None:
        """A new run from measured joint positions `q` (7,) rad."""
        q = np.asarray(q, float)
        self._prev = q.copy() if q.shape == (7,) and np.isfinite(q).all() else None

    def problems(self, cmd: Command) -> list[str]:
        """What is unsafe about `cmd` (empty when nothing is); remembers it as the previous command."""
        out = []
        q = np.asarray(cmd.joint_positions, float)
        dq = np.asarray(cmd.joint_velocities, float)
        if q.shape != (7,) or dq.shape != (7,):
            return ["shape"]
        if not (np.isfinite(q).all() and np.isfinite(dq).all() and math.isfinite(cmd.gripper_width)
                and math.isfinite(cmd.gripper_force)):
            return ["non_finite"]
        slack = 1e-9
        if (q < panda.LOWER - slack).any() or (q > panda.UPPER + slack).any():
            out.append("position_limit")
        if (np.abs(dq) > panda.VELOCITY_LIMIT * (1 + self.tol) + slack).any():
            out.append("velocity")
        if self._prev is not None and (np.abs(q - self._prev) > panda.VELOCITY_LIMIT * self.dt * (1 + self.tol)
                                       + slack).any():
            out.append("step")
        if not 0.0 <= cmd.gripper_width <= panda.MAX_OPENING + slack:
            out.append("gripper_width")
        if not 0.0 <= cmd.gripper_force <= panda.MAX_FINGER_FORCE + slack:
            out.append("gripper_force")
        self._prev = q.copy()
        return out

    def __call__(self, cmd: Command) -> None:
        self.checked += 1
        problems = self.problems(cmd)
        if problems:
            self.unsafe += 1
            self.causes.update(problems)


# ---------------------------------------------------------------------------------------------- shared
def _planner(scene: Scene, kin: Any, seed: int, settings: PickPlacePlannerConfig) -> Any:
    from robot_wm.planning.task_planner import default_task_planner

    return default_task_planner(scene, kin, seed, settings=settings)


def _controller(world: World, arm: Arm, scene: Scene, seed: int, perception: str,
                settings: PickPlacePlannerConfig) -> PlanningController:
    names = task_objects(world)
    estimator = RgbdEstimator() if perception == "rgbd" else OracleEstimator(world)
    return PlanningController(estimator, arm.kin, _planner(scene, arm.kin, seed, settings), settings,
                              scene.config.task.place_region, request_images=perception == "rgbd",
                              n_slots=max(1, len(names)))


def _max_ticks(world: World) -> int:
    return int(SIM_S_PER_DECISION * decision_cap(len(world.objects)) / TIME_STEP)


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# ---------------------------------------------------------------------------------------------- tick latency
def tick_latency(seed: int, min_ticks: int, switch_interval: float | None = SWITCH_INTERVAL_S,
                 scenes: list[Path] | None = None, planner_nice: int | None = None,
                 rt_priority: int | None = None) -> dict[str, Any]:
    """Background-planning pick-and-place runs on `scenes` (default TICK_SCENES, cycled) until `min_ticks`
    ticks, the runner's GIL switch interval `switch_interval` s (None: Python's default); the step()
    latencies, deadline misses and what was placed (module docstring)."""
    paths = scenes or [REPO_SCENES_DIR / f"{n}.yaml" for n in TICK_SCENES]
    settings = PickPlacePlannerConfig(background_planning=True)
    if planner_nice is not None:
        settings = settings.model_copy(update={"planner_nice": planner_nice})
    step_ms: list[float] = []
    cpu_ms: list[float] = []
    audit = CommandAudit()
    runs, placed, objects, cycle_misses, reasons, realtime = 0, 0, 0, 0, [], []
    bar = tqdm(total=min_ticks, desc="bench control: tick latency", leave=False)
    try:
        while len(step_ms) < min_ticks:
            scene = load_scene(paths[runs % len(paths)]).with_seed(seed + runs // len(paths))
            with World(scene) as world:
                arm = Arm(world)
                ctrl = _controller(world, arm, scene, seed, "rgbd", settings)
                audit.start(world.joint_positions())
                runner = FixedRateRunner(SimPandaDriver(world, arm, segmentation=False), ctrl, rate_hz=RATE_HZ,
                                         max_consecutive_misses=10**9, realtime=False, on_command=audit,
                                         switch_interval_s=switch_interval, rt_priority=rt_priority)
                res = runner.run(max_ticks=min(_max_ticks(world), max(1, min_ticks - len(step_ms))))
                ctrl.close()
                step_ms += res.step_ms
                cpu_ms += res.step_cpu_ms
                cycle_misses += res.deadline_misses
                names = task_objects(world)
                placed += int(sum(evaluate_task(world, names).values()))
                objects += len(names)
                reasons.append(res.reason)
                realtime.append(res.realtime_priority)
                arm.close()
            runs += 1
            bar.update(len(res.step_ms))
    finally:
        bar.close()
    return {"ticks": len(step_ms), "tick_ms_p50": _pct(step_ms, 50), "tick_ms_p999": _pct(step_ms, 99.9),
            "tick_ms_max": max(step_ms) if step_ms else None,
            "deadline_misses": int(sum(m > PERIOD_MS for m in step_ms)), "cycle_over_deadline": cycle_misses,
            "tick_cpu_ms_p999": _pct(cpu_ms, 99.9), "tick_cpu_ms_max": max(cpu_ms) if cpu_ms else None,
            "deadline_misses_cpu": int(sum(m > PERIOD_MS for m in cpu_ms)),
            "tick_runs": runs, "tick_placed": placed, "tick_objects": objects, "tick_unsafe_commands": audit.unsafe,
            "tick_finish_reasons": reasons, "load_1min": os.getloadavg()[0],
            "tick_realtime_priority": None if rt_priority is None else all(realtime)}


@contextlib.contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """`processes` busy-looping Python processes for the duration (another user's work on a shared machine)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------- fault injection
@dataclass
class Fault:
    """One injected fault: `kind`, the tick it starts (armed, for faults that wait for a phase), how many ticks
    it lasts (None: the rest of the run), its parameters; `applied_at`: the tick it first reached the controller
    (None: never — the run ended first); `ticks`: ticks it was active."""

    kind: str
    start: int
    length: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    applied_at: int | None = None
    ticks: int = 0
    done: bool = False

    def active(self, tick: int) -> bool:
        return tick >= self.start and (self.length is None or tick < self.start + self.length) and not self.done


def draw_faults(rng: np.random.Generator, major: str | None, n_objects: int, n_cameras: int,
                camera_names: list[str]) -> list[Fault]:
    """The faults of one run: `major` (one of MAJOR_FAULTS, or None for a fault-free run) and MINOR_PER_RUN
    minor ones, at random ticks within the run's expected length."""
    if major is None:
        return []
    horizon = TICKS_PER_OBJECT * (n_objects + 1)
    faults = []
    for _ in range(MINOR_PER_RUN[0]):
        faults.append(Fault("nan_joints", int(rng.integers(0, horizon)), int(rng.integers(1, 61)),
                            {"how": str(rng.choice(["nan", "inf", "limits", "shape"])),
                             "joint": int(rng.integers(0, 7))}))
    for _ in range(MINOR_PER_RUN[1]):
        faults.append(Fault("bad_camera", int(rng.integers(0, horizon)), None,
                            {"camera": camera_names[int(rng.integers(0, n_cameras))], "frames": int(rng.integers(1, 4)),
                             "how": str(rng.choice(["depth_nan", "depth_zero", "rgb_shape", "pose_nan"]))}))
    start = int(rng.integers(0, horizon // 2))
    params: dict[str, Any] = {}
    if major == "stuck_gripper":
        params = {"at_zero": bool(rng.random() < 0.5)}
    elif major == "camera_extrinsics":
        v = rng.normal(size=3)
        params = {"camera": camera_names[int(rng.integers(0, n_cameras))], "turn": bool(rng.random() < 0.3),
                  "direction": (v / np.linalg.norm(v)).tolist()}
    elif major in ("slip_drop", "object_moved"):
        params = {"delay": int(rng.integers(0, 40)), "distance": float(rng.uniform(0.05, 0.10)),
                  "angle": float(rng.uniform(-math.pi, math.pi))}
    elif major == "unreachable":
        params = {"angle": float(rng.uniform(-0.45, 0.45)), "radius": float(rng.uniform(REACH_MAX + 0.05,
                                                                                        REACH_MAX + 0.12))}
    faults.append(Fault(major, start, None, params))
    return faults


class FaultyDriver(SimPandaDriver):
    """The simulated Panda with faults: observation faults applied to what ``read`` returns, world faults
    (drop, moved object, unreachable object) applied to the simulation before ``read``. `controller`: read for
    its phase and current decision (when a fault waits for one); `rng`: the run's generator."""

    def __init__(self, world: World, arm: Arm, controller: PlanningController, faults: list[Fault],
                 rng: np.random.Generator) -> None:
        super().__init__(world, arm, segmentation=False)
        self.controller, self.faults, self.rng = controller, faults, rng
        self.tick = 0
        self.faulted_ticks = 0
        self._stuck: float | None = None
        self._phase_ticks = 0
        self._last_phase = ""

    # -------------------------------------------------------------- world faults
    def _free_spot(self, name: str, centre: np.ndarray, radius: float, angle: float, reachable: bool
                   ) -> np.ndarray | None:
        """A spot on the table about `radius` m from `centre` (xy) at `angle` rad (turned until it fits),
        clear of the other objects and the place region, in reach or (not `reachable`) out of it."""
        region = self.world.scene.config.task.place_region
        others = [self.world.object_pose(n).position[:2] for n, o in self.world.objects.items()
                  if n != name and not o.fixed]
        for k in range(24):
            a = angle + (k // 2 + 1) * 0.5 * (1 if k % 2 else -1) if k else angle
            xy = centre + radius * np.array([math.cos(a), math.sin(a)])
            if not on_table(*xy, margin=0.1) or in_reach(*xy) != reachable or xy[0] < 0.3:
                continue
            if region.contains(np.r_[xy, 0.0], margin=-0.08):
                continue
            if all(np.linalg.norm(xy - o) > 0.1 for o in others):
                return xy
        return None

    def _teleport(self, name: str, xy: np.ndarray) -> None:
        pose = self.world.object_pose(name)
        lo, _ = self.world.object_aabb(name)
        z = pose.position[2] - lo[2] + 0.003  # the object's lowest point just above the table
        set_object_pose(self.world, name, Pose([xy[0], xy[1], z], pose.quaternion))

    def _world_fault(self, f: Fault) -> bool:
        """Apply a world fault if its moment has come; True when applied."""
        ctrl = self.controller
        phase = ctrl.phase
        movable = [n for n, o in self.world.objects.items() if not o.fixed]
        if f.kind == "slip_drop":
            if phase != "carry" or self._phase_ticks < f.params["delay"]:
                return False
            name = held_object(self.arm)
            if name is None:
                return False
            pose = self.world.object_pose(name)
            lo, hi = self.world.object_aabb(name)
            drop = pose.position - [0.0, 0.0, (hi[2] - lo[2]) + 0.03]  # below the fingers: it falls
            drop[2] = max(drop[2], pose.position[2] - lo[2] + 0.003)
            set_object_pose(self.world, name, Pose(drop, pose.quaternion))
            f.params["object"] = name
            return True
        if f.kind == "object_moved":
            if phase != "pre-grasp" or self._phase_ticks < f.params["delay"] or ctrl.current is None \
                    or ctrl.current.pick is None:
                return False
            g = np.asarray(ctrl.current.pick.grasp_pose.position, float)
            name = min(movable, key=lambda n: float(np.linalg.norm(self.world.object_pose(n).position - g)))
            start = self.world.object_pose(name).position[:2]
            xy = self._free_spot(name, start, f.params["distance"], f.params["angle"], True)
            if xy is None:
                return False
            self._teleport(name, xy)
            f.params["object"] = name
            return True
        if f.kind == "unreachable":
            if held_object(self.arm) is not None:
                return False
            region = self.world.scene.config.task.place_region
            todo = [n for n in movable if not region.contains(self.world.object_pose(n).position)]
            if not todo:
                return False
            name = todo[int(self.rng.integers(0, len(todo)))]
            xy = self._free_spot(name, np.zeros(2), f.params["radius"], f.params["angle"], False)
            if xy is None:
                return False
            self._teleport(name, xy)
            f.params["object"] = name
            return True
        return False

    # -------------------------------------------------------------- observation faults
    def _observation_fault(self, f: Fault, obs: Observation) -> tuple[Observation, bool]:
        if f.kind == "nan_joints":
            q = np.asarray(obs.joint_positions, float).copy()
            how = f.params["how"]
            if q.shape != (7,):  # already malformed by an overlapping fault
                return obs, True
            if how == "shape":
                return replace(obs, joint_positions=q[:6]), True
            q[f.params["joint"]] = {"nan": math.nan, "inf": math.inf, "limits": 10.0}[how]
            return replace(obs, joint_positions=q), True
        if f.kind == "stuck_gripper":
            if self._stuck is None:
                self._stuck = 0.0 if f.params["at_zero"] else float(obs.gripper_width)
            return replace(obs, gripper_width=self._stuck), True
        name = f.params.get("camera")
        if name not in obs.frames:
            return obs, False
        frame = obs.frames[name]
        if f.kind == "bad_camera":
            how = f.params["how"]
            if how == "depth_nan":
                frame = replace(frame, depth=np.full_like(frame.depth, np.nan))
            elif how == "depth_zero":
                frame = replace(frame, depth=np.zeros_like(frame.depth))
            elif how == "rgb_shape":
                frame = replace(frame, rgb=frame.rgb[:, :-1])
            else:
                frame = replace(frame, camera2world=Pose(np.full(3, np.nan), frame.camera2world.quaternion))
        elif f.kind == "camera_extrinsics":
            pose = frame.camera2world
            if f.params["turn"]:
                turn = Rotation.from_rotvec(math.radians(CAMERA_TURN_DEG) * np.asarray(f.params["direction"]))
                pose = Pose(pose.position, (turn * pose.rotation).as_quat())
            else:
                pose = Pose(pose.position + CAMERA_SHIFT * np.asarray(f.params["direction"]), pose.quaternion)
            frame = replace(frame, camera2world=pose)
        return replace(obs, frames={**obs.frames, name: frame}), True

    def read(self, images: bool = True) -> Observation:
        phase = self.controller.phase
        self._phase_ticks = self._phase_ticks + 1 if phase == self._last_phase else 0
        self._last_phase = phase
        any_active = False
        for f in self.faults:
            if f.kind in ("slip_drop", "object_moved", "unreachable") and f.active(self.tick) and f.applied_at is None:
                if self._world_fault(f):
                    f.applied_at, f.ticks, f.done = self.tick, 1, True
                    any_active = True
        obs = super().read(images)
        for f in self.faults:
            if f.kind in ("slip_drop", "object_moved", "unreachable") or not f.active(self.tick):
                continue
            obs, hit = self._observation_fault(f, obs)
            if hit:
                f.ticks += 1
                any_active = True
                if f.applied_at is None:
                    f.applied_at = self.tick
                if f.kind == "bad_camera" and f.ticks >= f.params["frames"]:
                    f.done = True
        self.faulted_ticks += any_active
        self.tick += 1
        return obs


def fault_run(index: int, seed: int, major: str | None) -> dict[str, Any]:
    """One run of the fault suite (module docstring): scene `index`, faults drawn from (seed, index)."""
    rng = np.random.default_rng([seed, RUN_SEED_STRIDE, index])
    n_objects = 2 + index % 2
    mapping = random_scene(seed * RUN_SEED_STRIDE + index, n_objects)
    scene = scene_from_dict(mapping, mapping["name"], REPO_SCENES_DIR)
    settings = PickPlacePlannerConfig()
    out: dict[str, Any] = {"index": index, "major": major, "objects": n_objects}
    with World(scene) as world:
        arm = Arm(world)
        ctrl = _controller(world, arm, scene, scene.config.seed, "rgbd", settings)
        faults = draw_faults(rng, major, n_objects, len(world.cameras), [c.name for c in world.cameras])
        driver = FaultyDriver(world, arm, ctrl, faults, rng)
        audit = CommandAudit()
        audit.start(world.joint_positions())
        picks_under_fault = 0

        def on_command(cmd: Command) -> None:
            nonlocal picks_under_fault
            audit(cmd)
            if any(e.startswith("pick:") for e in cmd.events) and any(
                    f.applied_at is not None and (f.length is None or driver.tick < f.start + f.length)
                    for f in faults):
                picks_under_fault += 1

        runner = FixedRateRunner(driver, ctrl, rate_hz=RATE_HZ, deadline_s=60.0, max_consecutive_misses=10**9,
                                 realtime=False, on_command=on_command)
        crash = ""
        try:
            res = runner.run(max_ticks=_max_ticks(world))
            if res.reason.startswith("error:"):
                crash = res.reason
        except Exception as exc:  # noqa: BLE001 — counted, never hidden
            crash = f"{type(exc).__name__}: {exc}"
            res = None
        ctrl.close()
        names = task_objects(world)
        placed = evaluate_task(world, names)
        placeable = [n for n in names if placed[n] or (in_reach(*world.object_pose(n).position[:2])
                                                       and on_table(*world.object_pose(n).position[:2])
                                                       and world.object_pose(n).position[2] > -0.01)]
        arm.close()
    applied = [f for f in faults if f.applied_at is not None]
    ended_by_controller = res is not None and res.done
    out |= {
        "placed": int(sum(placed.values())), "placeable": len(placeable),
        "finish_reason": (ctrl.finish_reason or (res.reason if res is not None else "")),
        "ended_with_reason": bool(ended_by_controller and ctrl.finish_reason),
        "crash": crash, "unsafe": audit.unsafe, "unsafe_causes": dict(audit.causes), "commands": audit.checked,
        "faults": [{"kind": f.kind, "start": f.start, "applied_at": f.applied_at, "ticks": f.ticks} for f in faults],
        "applied": Counter(f.kind for f in applied), "faulted_ticks": driver.faulted_ticks,
        "picks_under_fault": picks_under_fault, "noticed": sorted(set(ctrl.faults)),
        "major_applied": any(f.kind == major for f in applied),
        "ticks": res.ticks if res is not None else driver.tick,
    }
    return out


def _fault_job(args: tuple[int, int, str | None]) -> dict[str, Any]:
    logging.getLogger("robot_wm").setLevel(logging.ERROR)
    return fault_run(*args)


NOTICED = {"stuck_gripper": "fault:gripper_sensor", "slip_drop": "fault:dropped", "object_moved": "fault:target_moved",
           "camera_extrinsics": "fault:calibration"}


def fault_suite(seed: int, n_runs: int, n_baseline: int, workers: int) -> dict[str, Any]:
    """`n_runs` faulted runs (majors in turn) and `n_baseline` fault-free ones on the first scenes."""
    jobs = [(i, seed, MAJOR_FAULTS[i % len(MAJOR_FAULTS)]) for i in range(n_runs)]
    jobs += [(i, seed, None) for i in range(n_baseline)]
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(jobs), desc="bench control: fault runs", leave=False)
    if workers > 1 and len(jobs) > 1:
        with single_threaded_workers(), multiprocessing.get_context("spawn").Pool(
                workers, initializer=worker_init, initargs=(os.getpid(),)) as pool:
            for r in pool.imap_unordered(_fault_job, jobs):
                results.append(r)
                bar.update()
    else:
        for job in jobs:
            results.append(_fault_job(job))
            bar.update()
    bar.close()
    results.sort(key=lambda r: (r["major"] is None, r["index"]))
    faulted = [r for r in results if r["major"] is not None]
    clean = [r for r in results if r["major"] is None]
    applied: Counter = Counter()
    for r in faulted:
        applied.update(r["applied"])
    cam = [r for r in faulted if r["applied"].get("camera_extrinsics")]
    scored = [r for r in faulted if not r["applied"].get("camera_extrinsics")]
    detected = {}
    for kind, event in NOTICED.items():
        runs = [r for r in faulted if r["major"] == kind and r["major_applied"]]
        detected[kind] = _ratio(sum(event in r["noticed"] for r in runs), len(runs))
    unreach = [r for r in faulted if r["major"] == "unreachable" and r["major_applied"]]
    detected["unreachable"] = _ratio(sum(r["ended_with_reason"] for r in unreach), len(unreach))
    reasons = Counter(_reason_kind(r["finish_reason"]) for r in faulted)
    return {
        "fault_runs": len(faulted),
        "faulted_cycles": int(sum(applied.values())),
        "faulted_cycles_by_type": {k: int(applied.get(k, 0)) for k in FAULT_TYPES},
        "faulted_ticks": int(sum(r["faulted_ticks"] for r in faulted)),
        "faulted_pick_attempts": int(sum(r["picks_under_fault"] for r in faulted)),
        "crashes": sum(bool(r["crash"]) for r in results),
        "unsafe_commands": int(sum(r["unsafe"] for r in results)),
        "commands_checked": int(sum(r["commands"] for r in results)),
        "tasks_completed_under_faults": _ratio(sum(r["placed"] for r in scored), sum(r["placeable"] for r in scored)),
        "tasks_completed_no_faults": _ratio(sum(r["placed"] for r in clean), sum(r["placeable"] for r in clean)),
        "runs_ending_with_reason": _ratio(sum(r["ended_with_reason"] for r in faulted), len(faulted)),
        "calibration_stops": _ratio(sum("calibration" in r["finish_reason"] for r in cam), len(cam)),
        "detected_by_type": detected,
        "finish_reasons": dict(sorted(reasons.items())),
        "crash_examples": [r["crash"] for r in results if r["crash"]][:3],
    }


def _reason_kind(reason: str) -> str:
    """A finish reason without its details (the part before any parenthesis or colon)."""
    return reason.split(" (")[0].split(":")[0].strip() or "(none)"


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


# ---------------------------------------------------------------------------------------------- soak
def _rss_mb() -> float:
    """Resident set size of this process, MB (from /proc; 0 where it is not available)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def soak(seed: int, picks: int) -> dict[str, Any]:
    """Pick-and-place runs in this process until `picks` pick decisions were executed; RSS growth after the
    first run (module docstring)."""
    settings = PickPlacePlannerConfig()
    done_picks, runs, placed, objects = 0, 0, 0, 0
    rss: list[float] = []
    audit = CommandAudit()
    bar = tqdm(total=picks, desc="bench control: soak", leave=False)
    while done_picks < picks:
        mapping = random_scene(seed * RUN_SEED_STRIDE + 100_000 + runs, 4, urdf_fraction=0.0)
        scene = scene_from_dict(mapping, mapping["name"], REPO_SCENES_DIR)
        with World(scene) as world:
            arm = Arm(world)
            ctrl = _controller(world, arm, scene, scene.config.seed, "oracle", settings)
            audit.start(world.joint_positions())
            runner = FixedRateRunner(SimPandaDriver(world, arm, segmentation=False), ctrl, rate_hz=RATE_HZ,
                                     deadline_s=60.0, max_consecutive_misses=10**9, realtime=False,
                                     on_command=audit)
            runner.run(max_ticks=_max_ticks(world))
            ctrl.close()
            n = sum(d["kind"] == "pick" and d["executed"] is not None for d in ctrl.decisions)
            names = task_objects(world)
            placed += int(sum(evaluate_task(world, names).values()))
            objects += len(names)
            arm.close()
        del ctrl, runner
        runs += 1
        done_picks += n
        bar.update(n)
        gc.collect()
        rss.append(_rss_mb())
    bar.close()
    log.info("soak rss series %s", rss)
    ref = rss[min(SOAK_WARMUP_RUNS, len(rss)) - 1]
    return {"soak_picks": done_picks, "soak_runs": runs, "soak_placed": _ratio(placed, objects),
            "rss_mb_after_warmup": ref, "rss_mb_end": rss[-1], "rss_growth_mb": rss[-1] - ref,
            "rss_growth_mb_from_first_run": rss[-1] - rss[0], "soak_unsafe_commands": audit.unsafe}


# ---------------------------------------------------------------------------------------------- bad inputs, gym
def bad_inputs(cli_main: Callable[[list[str]], int], every: int = 1) -> dict[str, Any]:
    """Every `every`-th case of the corpus through `cli_main`: tried, clean, and the first failures."""
    from robot_wm.bench.bad_inputs import CASES, check_case

    cases = CASES[::every]
    failures = []
    with tempfile.TemporaryDirectory(prefix="robot_wm_bad_inputs_") as tmp:
        for i, case in enumerate(tqdm(cases, desc="bench control: bad inputs", leave=False)):
            problem = check_case(case, Path(tmp) / f"{i:04d}" / "case", cli_main)
            if problem:
                failures.append(f"{case.id}: {problem}")
    return {"bad_inputs_tried": len(cases), "bad_inputs_clean": len(cases) - len(failures),
            "bad_inputs_failures": failures[:5]}


def gym_checks() -> dict[str, Any]:
    """Gymnasium's checker, seeding and NaN actions on the default scene's environment."""
    import gymnasium
    from gymnasium.utils.env_checker import check_env

    import robot_wm.envs  # noqa: F401  (registers the id)
    from robot_wm.envs import ENV_ID, PickPlaceEnv

    out: dict[str, Any] = {}
    env = gymnasium.make(ENV_ID, render_mode="rgb_array").unwrapped
    try:
        check_env(env, skip_render_check=False)
        out["gym_check_env_ok"] = True
    except Exception as exc:  # noqa: BLE001 — reported as the field
        out["gym_check_env_ok"], out["gym_check_env_error"] = False, f"{type(exc).__name__}: {exc}"
    finally:
        env.close()
    env = PickPlaceEnv()
    try:
        a, _ = env.reset(seed=123)
        b, _ = env.reset(seed=124)
        out["gym_seeds_differ"] = any(not np.array_equal(a[k], b[k]) for k in a)
        try:
            env.step(np.full(8, np.nan, np.float32))
            out["gym_nan_action_rejected"] = False
        except ValueError as exc:
            out["gym_nan_action_rejected"] = "action" in str(exc) and bool(np.isfinite(env.world.joint_positions()).all())
    finally:
        env.close()
    return out


# ---------------------------------------------------------------------------------------------- the bench
def run(scenes: list[Path] | None, seed: int, quick: bool, ticks: int | None = None,
        switch_ticks: int | None = None, loaded_ticks: int | None = None, fault_runs: int | None = None, baseline_runs: int | None = None,
        soak_picks: int | None = None, workers: int = 2, cli_main: Callable[[list[str]], int] | None = None,
        bad_input_every: int | None = None) -> dict[str, Any]:
    """Every part of the bench (module docstring); sizes default to the full ones, or the quick ones with
    `quick`; a size of 0 skips its part. `scenes`: the tick-latency scenes instead of TICK_SCENES. `cli_main`:
    the CLI's entry point (the bad-input part is skipped without it)."""
    def size(value: int | None, full: int, small: int) -> int:
        return value if value is not None else (small if quick else full)

    out: dict[str, Any] = {"seed": seed, "quick": quick}
    t0 = time.perf_counter()
    n_ticks = size(ticks, TICKS, TICKS_QUICK)
    if n_ticks:
        t = time.perf_counter()
        out |= tick_latency(seed, n_ticks, SWITCH_INTERVAL_S, scenes, rt_priority=RT_PRIORITY)
        out["tick_wall_s"] = time.perf_counter() - t
    fields = ("ticks", "tick_ms_p50", "tick_ms_p999", "tick_ms_max", "deadline_misses")
    n_switch = size(switch_ticks, SWITCH_TICKS, SWITCH_TICKS_QUICK)
    if n_switch:
        sw = tick_latency(seed, n_switch, DEFAULT_SWITCH_INTERVAL_S, scenes, rt_priority=RT_PRIORITY)
        out |= {f"{k}_switch5ms": sw[k] for k in fields}
    n_loaded = size(loaded_ticks, LOADED_TICKS, LOADED_TICKS_QUICK)
    if n_loaded:
        busy = os.cpu_count() or 1
        with cpu_load(busy):
            rt = tick_latency(seed, n_loaded, SWITCH_INTERVAL_S, scenes, rt_priority=RT_PRIORITY)
            normal = tick_latency(seed, n_loaded, SWITCH_INTERVAL_S, scenes)
        out |= {f"{k}_loaded": rt[k] for k in fields} | {f"{k}_loaded_normal": normal[k] for k in fields}
        out |= {"loaded_busy_processes": busy, "load_1min_loaded": normal["load_1min"]}
    n_runs = size(fault_runs, FAULT_RUNS, FAULT_RUNS_QUICK)
    if n_runs:
        t = time.perf_counter()
        out |= fault_suite(seed, n_runs, min(n_runs, size(baseline_runs, BASELINE_RUNS, BASELINE_RUNS_QUICK)),
                           workers)
        out["fault_wall_s"] = time.perf_counter() - t
    n_picks = size(soak_picks, SOAK_PICKS, SOAK_PICKS_QUICK)
    if n_picks:
        t = time.perf_counter()
        out |= soak(seed, n_picks)
        out["soak_wall_s"] = time.perf_counter() - t
    if cli_main is not None:
        out |= bad_inputs(cli_main, bad_input_every or (10 if quick else 1))
    out |= gym_checks()
    out["wall_s"] = time.perf_counter() - t0
    return out


__all__ = ["CommandAudit", "FaultyDriver", "bad_inputs", "cpu_load", "draw_faults", "fault_run", "fault_suite", "gym_checks",
           "run", "soak", "tick_latency"]
