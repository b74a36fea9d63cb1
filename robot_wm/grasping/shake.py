"""The physics shake test: close, lift, shake, pull, hold -> one label per grasp; robust mode -> a rate.

Protocol (all numbers from :class:`~robot_wm.grasping.config.ShakeConfig`, ``planners/shake_test.yaml``):

1. Hand (fingers open to grasp width + clearance) at the grasp pose, object floating, no gravity.
   Penetration deeper than ``collision_tolerance`` -> ``collision``; width beyond the gripper -> ``unreachable``
   (also when an optional reachability check rejects the grasp).
2. Close under the finger force limit. Both fingers not touching the object -> ``no_contact``.
3. Gravity on; lift 0.10 m; rotational shakes about the grasp (closing) axis; translational shakes;
   pulls of ``weight_factor`` x the object's weight along each TCP-frame direction; hold.
4. No finger touching the object at the end -> ``dropped``; object moved more than ``slip_threshold``
   relative to the TCP since the close -> ``slipped``; else ``stable`` (the only success). A trial whose
   object has provably fallen clear of the hand for good stops early as ``dropped`` (the label the full
   protocol gives; ``slip``/``max_slip``/``steps`` are then those at that phase end).

The ``arm_table`` protocol (:func:`arm_table_trials`) judges grasps with the Panda arm on a table instead
(:func:`robot_wm.sim.arm_grasp_trial.arm_grasp_trial`): its labels are :data:`ARM_TABLE_LABELS`, those
above plus ``table_collision``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from robot_wm.geometry import Pose
from robot_wm.grasping.config import ArmTableConfig, ShakeConfig, load_shake_config
from robot_wm.grasping.grasp import MAX_WIDTH, Grasp
from robot_wm.grasping.objects import collision_parts
from robot_wm.sim.arm_grasp_trial import TRIAL_LABELS, ArmTrialResult
from robot_wm.sim.hand import HandWorld, ObjectModel

log = logging.getLogger(__name__)

LABELS = ("stable", "slipped", "dropped", "no_contact", "collision", "unreachable")
ARM_TABLE_LABELS = TRIAL_LABELS  # LABELS + "table_collision" (the arm or hand pressed on the table)
GRAVITY = 9.81
# Clearance (m) between the falling object's highest and the hand's lowest possible points, beyond the
# conservative geometric bounds, before a trial stops early as `dropped` (covers hand tracking error and
# contact margins many times over).
DROP_CLEARANCE = 0.05


@dataclass
class ShakeResult:
    """Outcome of one trial. `slip`: final object displacement relative to the TCP since the close (m);
    `max_slip`: largest such displacement seen at phase ends; `closed_width`: finger opening after
    closing (m); `steps`: physics steps simulated."""

    label: str
    slip: float = math.nan
    max_slip: float = math.nan
    closed_width: float = math.nan
    steps: int = 0

    @property
    def success(self) -> bool:
        return self.label == "stable"


@dataclass
class RobustResult:
    """Robust mode: `success_rate` = fraction of `trials` labelled stable; `labels` counts each label."""

    success_rate: float
    trials: list[ShakeResult] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, int]:
        return dict(Counter(t.label for t in self.trials))


_WORLDS: dict[tuple, HandWorld] = {}


def _world(cfg: ShakeConfig) -> HandWorld:
    """One world per process and physics setting (rebuilt from scratch by every trial)."""
    key = (cfg.physics.time_step, cfg.physics.solver_iterations, cfg.physics.rolling_friction, cfg.arm.enabled,
           cfg.arm.base_position)
    if key not in _WORLDS:
        if cfg.arm.enabled:
            from robot_wm.sim.arm_hand import ArmWorld

            _WORLDS[key] = ArmWorld(*key[:3], base_position=cfg.arm.base_position)
        else:
            _WORLDS[key] = HandWorld(*key[:3])
    return _WORLDS[key]


def shake_test(obj: ObjectModel, grasp: Grasp, object_pose: Pose | None = None, config: ShakeConfig | None = None,
               reachable: Callable[[Grasp], bool] | None = None, mass_scale: float = 1.0,
               friction_scale: float = 1.0, world: HandWorld | None = None) -> ShakeResult:
    """Shake-test one grasp (world frame TCP pose) on `obj` placed at `object_pose` (world, default identity).

    Deterministic: the same inputs give the same label bit for bit. `reachable`, if given, is asked first
    (e.g. a Panda IK check for the grasp in the robot's workspace).
    """
    cfg = config or load_shake_config()
    object_pose = object_pose or Pose.identity()
    if grasp.width > MAX_WIDTH + 1e-6 or (reachable is not None and not reachable(grasp)):
        return ShakeResult("unreachable")
    w = world or _world(cfg)
    opening = min(grasp.width + cfg.close.opening_clearance, MAX_WIDTH)
    w.build(obj, object_pose, grasp.pose, opening, cfg.physics.hand_max_force, cfg.physics.finger_friction,
            mass_scale, friction_scale)
    if not w.reachable:
        return ShakeResult("unreachable")
    if w.hand_object_penetration() > cfg.close.collision_tolerance:
        return ShakeResult("collision")
    dt = cfg.physics.time_step
    steps = 0

    def n_steps(seconds: float) -> int:
        return max(1, int(round(seconds / dt))) if seconds > 0 else 0

    # --- close (no gravity; the hand holds its pose)
    w.squeeze(cfg.close.finger_force, cfg.close.speed)
    n = n_steps(cfg.close.duration_s)
    w.step(n)
    steps += n
    w.grip(cfg.close.finger_force)  # from here on each finger presses with the full finger_force
    closed = w.gripper_width()
    if not all(w.finger_contacts()):
        return ShakeResult("no_contact", closed_width=closed, steps=steps)
    ref = w.object_in_tcp()

    def slip_now() -> float:
        return float(np.linalg.norm(w.object_in_tcp() - ref))

    w.set_gravity(GRAVITY)
    g0 = grasp.pose
    max_slip = 0.0
    # --- lift (min-jerk), then shakes about the closing axis (TCP y) and along the shake axis
    n = n_steps(cfg.lift.duration_s)
    s = np.arange(1, n + 1) / n
    s = 10 * s**3 - 15 * s**4 + 6 * s**5
    w.follow(g0.position + np.outer(s, [0.0, 0.0, cfg.lift.height]), np.tile(g0.quaternion, (n, 1)))
    steps += n
    max_slip = _track(max_slip, slip_now(), steps)
    lifted = Pose(g0.position + np.array([0.0, 0.0, cfg.lift.height]), g0.quaternion)
    ts, pc = cfg.translational_shakes, cfg.pulls
    rmat = lifted.rotation.as_matrix()
    tax = np.asarray(ts.axis, float) / np.linalg.norm(ts.axis)
    # From here on the TCP targets stay at `lifted`, but for the translational shakes along `tax`.
    tcp_z_min = lifted.position[2] - ts.amplitude * abs(tax[2])
    # Pull k onwards: the object's net vertical force (pull + gravity) never points up.
    pull_z = [pc.weight_factor * (rmat @ (np.asarray(d, float) / np.linalg.norm(d)))[2] for d in pc.directions]
    never_up = [all(z <= 1.0 for z in pull_z[k:]) for k in range(len(pull_z) + 1)]

    def dropped_for_good(next_pull: int) -> bool:
        """Early exit, exact: the object fell clear of the hand and nothing can bring it back, so the final
        label is `dropped` (the free-floating hand world only: nothing else there for the object to hit)."""
        return not cfg.arm.enabled and never_up[next_pull] and w.object_fell_clear(tcp_z_min, DROP_CLEARANCE)

    def dropped_now() -> ShakeResult:
        slip = slip_now()
        return ShakeResult("dropped", slip, max(max_slip, slip), closed, steps)

    if dropped_for_good(0):
        return dropped_now()
    rs = cfg.rotational_shakes
    n = n_steps(rs.count * rs.period_s)
    if n:
        axis = lifted.rotation.as_matrix()[:, 1]
        ang = rs.amplitude * np.sin(2 * np.pi * np.arange(1, n + 1) * dt / rs.period_s)
        quats = (Rotation.from_rotvec(np.outer(ang, axis)) * lifted.rotation).as_quat()
        w.follow(np.tile(lifted.position, (n, 1)), quats)
        steps += n
        max_slip = _track(max_slip, slip_now(), steps)
        if dropped_for_good(0):
            return dropped_now()
    n = n_steps(ts.count * ts.period_s)
    if n:
        off = ts.amplitude * np.sin(2 * np.pi * np.arange(1, n + 1) * dt / ts.period_s)
        w.follow(lifted.position + np.outer(off, tax), np.tile(lifted.quaternion, (n, 1)))
        steps += n
        max_slip = _track(max_slip, slip_now(), steps)
        if dropped_for_good(0):
            return dropped_now()
    w.set_tcp_target(lifted)
    # --- pulls (TCP-frame directions, on top of gravity); quasi-static, so optionally a larger step
    qs_dt = cfg.physics.quasi_static_time_step or dt
    if qs_dt != dt:
        w.set_time_step(qs_dt)
    magnitude = pc.weight_factor * w.object_mass * GRAVITY
    n = max(1, int(round(pc.duration_s / qs_dt))) if pc.duration_s > 0 else 0
    for k, d in enumerate(pc.directions):
        d = np.asarray(d, float)
        w.pull(rmat @ (d / np.linalg.norm(d)) * magnitude, n)
        steps += n
        max_slip = _track(max_slip, slip_now(), steps)
        if dropped_for_good(k + 1):
            return dropped_now()
    # --- hold
    n = max(1, int(round(cfg.hold.duration_s / qs_dt))) if cfg.hold.duration_s > 0 else 0
    w.step(n)
    steps += n
    slip = slip_now()
    max_slip = max(max_slip, slip)
    if not any(w.finger_contacts()):
        return ShakeResult("dropped", slip, max_slip, closed, steps)
    if slip > cfg.labels.slip_threshold:
        return ShakeResult("slipped", slip, max_slip, closed, steps)
    return ShakeResult("stable", slip, max_slip, closed, steps)


def _track(max_slip: float, slip: float, steps: int) -> float:
    log.debug("step %d: slip %.4f m", steps, slip)
    return max(max_slip, slip)


def perturbed(grasp: Grasp, cfg: ShakeConfig, rng: np.random.Generator) -> tuple[Grasp, float, float]:
    """One robust-mode draw: (grasp with pose noise, mass scale, friction scale)."""
    r = cfg.robust
    dp = rng.normal(0.0, r.position_sigma, 3)
    dr = Rotation.from_rotvec(rng.normal(0.0, r.rotation_sigma, 3))
    pose = Pose(grasp.pose.position + dp, (dr * grasp.pose.rotation).as_quat())
    mass_scale = 1.0 + rng.uniform(-r.mass_spread, r.mass_spread)
    friction_scale = 1.0 + rng.uniform(-r.friction_spread, r.friction_spread)
    return Grasp(pose, grasp.width, grasp.score), float(mass_scale), float(friction_scale)


def robust_shake_test(obj: ObjectModel, grasp: Grasp, seed: int | np.random.SeedSequence,
                      object_pose: Pose | None = None, config: ShakeConfig | None = None,
                      trials: int | None = None, reachable: Callable[[Grasp], bool] | None = None,
                      stop: Callable[[list[ShakeResult]], bool] | None = None) -> RobustResult:
    """Robust mode: `trials` shake tests under pose noise and mass/friction spread; trial i draws from
    ``SeedSequence(seed).spawn`` child i, so results do not depend on how trials are distributed. `stop`:
    asked after each trial with the results so far; True ends the test early (a caller whose decision is
    already made; the trials run are those a full test would have run first, bit for bit)."""
    cfg = config or load_shake_config()
    n = cfg.robust.trials if trials is None else trials
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    results = []
    for child in ss.spawn(n):
        g, ms, fs = perturbed(grasp, cfg, np.random.default_rng(child))
        results.append(shake_test(obj, g, object_pose, cfg, reachable, ms, fs))
        if stop is not None and stop(results):
            break
    rate = sum(r.success for r in results) / max(1, len(results))
    return RobustResult(rate, results)


# ---------------------------------------------------------------------------------------------- arm_table
def table_spawn_pose(obj: ObjectModel, cfg: ArmTableConfig) -> Pose:
    """Where the ``arm_table`` protocol spawns `obj` (world): `cfg.object_position` (x, y) and
    `cfg.object_orientation`, the lowest point of its collision geometry `cfg.spawn_clearance` m above the
    table top (z = 0)."""
    rot = Rotation.from_quat(cfg.object_orientation)
    low = min(float(rot.apply(p)[:, 2].min()) for p in collision_parts(obj))
    return Pose([cfg.object_position[0], cfg.object_position[1], cfg.spawn_clearance - low], cfg.object_orientation)


def arm_table_trials(obj: ObjectModel, grasps: list[Grasp], config: ShakeConfig | None = None,
                     seed: int = 0) -> tuple[Pose, list[ArmTrialResult]]:
    """Judge `grasps` (object frame, TCP poses) on `obj` with the ``arm_table`` protocol; returns the
    object's pose (world) at the start of every trial (settled, or the spawn pose) and one result per
    grasp. Each trial runs in a freshly reset world, so the results depend only on the inputs (bit for
    bit); a width beyond the gripper is ``unreachable``, as in :func:`shake_test`. `seed` seeds the world
    (nothing in a trial draws from it)."""
    from robot_wm.sim.arm_trial_world import ArmTrialWorld, object_entry, single_object_scene

    cfg = config or load_shake_config()
    trial_cfg = cfg.arm_trial_config()
    scene = single_object_scene(object_entry(obj, table_spawn_pose(obj, cfg.arm_table)), f"arm_table_{obj.name}", seed)
    results = []
    with ArmTrialWorld(scene, seed, settle=cfg.arm_table.settle) as tw:
        start = tw.start_pose
        for g in grasps:
            if g.width > MAX_WIDTH + 1e-6:
                results.append(ArmTrialResult("unreachable"))
                continue
            opening = min(g.width + cfg.close.opening_clearance, MAX_WIDTH)
            results.append(tw.trial(g.transformed(start).pose, opening, trial_cfg))
    return start, results
