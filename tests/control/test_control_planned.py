"""PlanningController: decisions become motions, outcomes are reported back, and every run ends.

These drive the controller without a simulator: the "robot" follows each command exactly (joint positions,
gripper width — the fingers stop at `held_width` when closing on an object, at 0 on air), so what is
checked is what the controller commands (through the kinematic model's FK), not physics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.config import PickPlacePlannerConfig, PlaceRegion
from robot_wm.control.planned import PlanningController, decision_cap
from robot_wm.geometry import Intrinsics, Pose, panda
from robot_wm.interface import CameraFrame, Observation
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning.decision import Decision, PickAction, PushAction
from robot_wm.sim import KinematicModel
from robot_wm.sim.push import PUSH_SPEED

DT = 1 / 240
REGION = PlaceRegion(center=[0.45, -0.35, 0.0], size=[0.2, 0.2])
BLOCK = ObjectEstimate("b1", Pose([0.5, 0.05, 0.025], [0, 0, 0, 1]), np.array([0.05, 0.04, 0.05]))


class FixedEstimator:
    """Reports the same objects at every look, and counts the looks."""

    name = "fixed"

    def __init__(self, estimates):
        self.estimates, self.calls = estimates, 0

    def estimate(self, obs):
        assert obs.frames, "the controller looked without asking for images"
        self.calls += 1
        return self.estimates


class ScriptPlanner:
    """A TaskPlanner test double: returns the given decisions in order (then "done"), records the calls."""

    def __init__(self, decisions=(), repeat: Decision | None = None):
        self.script, self.repeat = list(decisions), repeat
        self.decided: list[str] = []
        self.outcomes: list[tuple[str, bool]] = []

    def decide(self, estimates, obs):
        d = self.script.pop(0) if self.script else self.repeat or Decision("done", reason="script finished")
        self.decided.append(d.kind)
        return d

    def outcome(self, decision, estimates, succeeded):
        self.outcomes.append((decision.kind, succeeded))
        return {"told": succeeded}


@pytest.fixture(scope="module")
def kin():
    k = KinematicModel()
    yield k
    k.close()


# A valid (tiny) camera frame: the controller drops invalid ones, and these tests' estimators ignore images.
FRAME = CameraFrame("cam", np.zeros((2, 2, 3), np.uint8), np.ones((2, 2), np.float32),
                    Intrinsics(2, 2, 2.0, 2.0, 0.5, 0.5), Pose.identity())


def drive(ctrl, held_width: float = 0.0, max_ticks: int = 40_000):
    """Run `ctrl` on a robot that tracks every command exactly; returns the commands."""
    obs = Observation({"cam": FRAME}, panda.HOME.copy(), panda.MAX_OPENING, 0.0)
    cmds = []
    for i in range(max_ticks):
        cmd = ctrl.step(obs)
        cmds.append(cmd)
        if cmd.done:
            return cmds
        width = cmd.gripper_width
        if cmd.gripper_width < held_width and obs.gripper_width >= held_width:
            width = held_width  # the fingers stop on the object
        obs = Observation({"cam": FRAME} if ctrl.wants_images else {}, cmd.joint_positions.copy(), width, (i + 1) * DT)
    raise AssertionError("the controller never finished")


def controller(kin, planner, estimates=(BLOCK,), **kw):
    return PlanningController(FixedEstimator(list(estimates)), kin, planner, PickPlacePlannerConfig(), REGION,
                              dt=DT, **kw)


def tcp_path(kin, cmds, phase):
    poses = [kin.fk(c.joint_positions) for c in cmds if c.phase == phase]
    assert poses, f"no {phase!r} phase commanded"
    return poses


def test_push_moves_the_pads_along_the_push_line_at_the_start_height(kin):
    start, yaw, dist = np.array([0.45, 0.05, 0.02]), 0.4, 0.06
    planner = ScriptPlanner([Decision("push", push=PushAction("b1", start, yaw, dist), reason="test",
                                      predicted={"end_xy_yaw": {"b1": [0.5, 0.07, 0.4]}})])
    ctrl = controller(kin, planner)
    cmds = drive(ctrl)
    u = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    pts = np.array([p.position for p in tcp_path(kin, cmds, "push")])
    rel = pts - start
    along = rel @ u
    across = rel - np.outer(along, u)
    assert np.abs(rel[:, 2]).max() < 1.5e-3  # at the start height throughout
    assert np.linalg.norm(across[:, :2], axis=1).max() < 1.5e-3  # on the line
    assert along[0] < 0.005 and along[-1] == pytest.approx(dist, abs=1.5e-3)
    assert np.all(np.diff(along) > -1e-4)  # forwards only
    speed = np.linalg.norm(np.diff(pts, axis=0), axis=1) / DT
    assert speed.max() <= PUSH_SPEED * 1.1  # quasi-static
    # the descent ends at the start, straight down; the fingers are closed; the pads face the push
    descent = np.array([p.position for p in tcp_path(kin, cmds, "descend")])
    assert np.linalg.norm(descent[:, :2] - start[:2], axis=1).max() < 1.5e-3
    assert all(c.gripper_width == 0.0 for c in cmds if c.phase in ("descend", "push"))
    rot = tcp_path(kin, cmds, "push")[0].rotation
    assert rot.apply([0, 0, 1])[2] < -0.999 and abs(rot.apply([0, 1, 0]) @ u) < 1e-2
    # the outcome was observed after the action and compared with the prediction
    assert planner.outcomes == [("push", True)]
    entry = ctrl.decisions[0]
    assert entry["kind"] == "push" and entry["executed"] is True and entry["outcome"] == {"told": True}
    assert entry["observed"]["b1"]["error_m"] == pytest.approx(math.hypot(0.5 - 0.5, 0.07 - 0.05), abs=1e-9)
    assert entry["decision_ms"] >= entry["decide_ms"] >= 0


def test_a_tilted_pick_approaches_along_its_own_z_axis_and_places(kin):
    rot = Rotation.from_euler("z", 0.3) * Rotation.from_euler("x", math.pi) * Rotation.from_euler("x", 0.45)
    grasp = Pose([0.5, 0.05, 0.035], rot.as_quat())
    z_axis = rot.apply([0, 0, 1])
    assert z_axis[2] > -0.95  # really tilted (about 26 degrees off vertical)
    pick = PickAction("b1", grasp, open_width=0.07, contact_width=0.04, approach=0.1)
    planner = ScriptPlanner([Decision("pick", pick=pick, predicted={"p_success": 0.9})])
    ctrl = controller(kin, planner)
    cmds = drive(ctrl, held_width=0.04)
    approach = tcp_path(kin, cmds, "approach")
    pts = np.array([p.position for p in approach]) - grasp.position
    along = pts @ z_axis
    off_axis = pts - np.outer(along, z_axis)
    assert np.linalg.norm(off_axis, axis=1).max() < 1.5e-3  # on the grasp's own z axis
    assert along[0] == pytest.approx(-0.1, abs=0.01) and along[-1] == pytest.approx(0.0, abs=1e-3)
    assert max((p.rotation.inv() * rot).magnitude() for p in approach) < math.radians(1)
    assert next(c.gripper_width for c in cmds if c.phase == "approach") == pytest.approx(0.07)
    # carried and released in the place region, then the outcome reported as a success
    # set down: fast to set_down_height above the release, the rest slowly, still, then open to the grasp's width
    cfg = PickPlacePlannerConfig()
    lowered, set_down = tcp_path(kin, cmds, "lower")[-1], tcp_path(kin, cmds, "set down")
    release = set_down[-1]
    assert REGION.contains(release.position)
    assert release.position[2] == pytest.approx(0.035 - BLOCK.bottom_z + cfg.set_down_clearance, abs=1e-3)
    assert lowered.position[2] - release.position[2] == pytest.approx(cfg.set_down_height, abs=1e-3)
    assert len(set_down) * ctrl.dt >= 0.9 * cfg.set_down_height / cfg.set_down_speed
    phases = [c.phase for c in cmds]
    after = phases[len(phases) - phases[::-1].index("set down"):]
    still = next(i for i, ph in enumerate(after) if ph != "settle")
    assert still >= round(cfg.release_settle_s / ctrl.dt) - 2 and after[still] == "release"
    assert next(c.gripper_width for c in cmds if c.phase == "release") == pytest.approx(0.07)
    assert planner.outcomes == [("pick", True)] and planner.decided == ["pick", "done", "done"]
    assert ctrl.finish_reason == "script finished"


def test_a_pick_with_the_planners_pre_grasp_joints_moves_to_them_and_approaches_from_there(kin):
    """The planner checked the straight approach from its own pre-grasp solution `q_pre`: the arm goes to
    exactly those joints (not to an IK solution from wherever it is) and runs the line from them."""
    grasp = Pose([0.5, 0.05, 0.03], [1, 0, 0, 0])
    pre = Pose(grasp.position + [0.0, 0.0, 0.1], grasp.quaternion)
    seed = panda.HOME.copy()
    seed[6] -= 1.2  # another wrist turn than the one IK from home would pick
    q_pre = kin.ik(pre, seed)
    assert q_pre is not None and kin.fk(q_pre).distance(pre)[0] < 1e-3
    pick = PickAction("b1", grasp, open_width=0.07, contact_width=0.04, approach=0.1, q_pre=q_pre)
    ctrl = controller(kin, ScriptPlanner([Decision("pick", pick=pick)]))
    cmds = drive(ctrl, held_width=0.04)
    pre_cmds = [c.joint_positions for c in cmds if c.phase == "pre-grasp"]
    assert np.allclose(pre_cmds[-1], q_pre)
    assert np.allclose(ctrl.decisions[0]["action"]["q_pre"], q_pre)  # recorded in plan.jsonl
    first = next(c.joint_positions for c in cmds if c.phase == "approach")
    assert np.abs(first - q_pre).max() < 0.05  # the line starts where the joint move ended


def test_an_empty_gripper_after_the_lift_is_a_failure_and_the_planner_is_asked_again(kin):
    pick = PickAction("b1", Pose([0.5, 0.05, 0.03], [1, 0, 0, 0]), open_width=0.07, contact_width=0.04)
    planner = ScriptPlanner([Decision("pick", pick=pick)])
    ctrl = controller(kin, planner)
    cmds = drive(ctrl, held_width=0.0)  # the fingers close on air
    assert planner.outcomes == [("pick", False)]
    assert planner.decided == ["pick", "done", "done"]  # asked again after the failure
    entry = ctrl.decisions[0]
    assert entry["executed"] is False and entry["failure"] == "nothing in hand after lift"
    assert not any(c.phase in ("carry", "lower") for c in cmds)  # never carried
    assert any("grasp_checked:b1" in c.events for c in cmds)


def test_done_goes_home_and_looks_once_more_before_finishing(kin):
    planner = ScriptPlanner([Decision("done", reason="nothing to do"),
                             Decision("push", push=PushAction("b1", np.array([0.45, 0.05, 0.02]), 0.0, 0.02)),
                             Decision("done", reason="first"), Decision("done", reason="all done")])
    ctrl = controller(kin, planner)
    cmds = drive(ctrl)
    assert planner.decided == ["done", "push", "done", "done"]  # the look from home found work to do
    assert any(c.phase == "home" for c in cmds)
    assert ctrl.estimator.calls == 4 and ctrl.finish_reason == "all done"
    np.testing.assert_allclose(cmds[-1].joint_positions, panda.HOME, atol=1e-9)


def test_the_decision_cap_ends_an_endless_run_with_a_reason(kin):
    endless = Decision("push", push=PushAction("b1", np.array([0.45, 0.05, 0.02]), 0.0, 0.005))
    planner = ScriptPlanner(repeat=endless)
    ctrl = controller(kin, planner)
    cmds = drive(ctrl)
    cap = decision_cap(1)
    assert len(ctrl.decisions) == cap and cmds[-1].done and cmds[-1].phase == "done"
    assert ctrl.finish_reason == f"decision cap reached ({cap} decisions)"
    assert len(planner.outcomes) == cap  # the last push's outcome was still observed
    small = controller(kin, ScriptPlanner(repeat=endless), max_decisions=2)
    drive(small)
    assert len(small.decisions) == 2 and "cap" in small.finish_reason


def test_unreachable_targets_abort_and_are_reported(kin):
    far = PickAction("b1", Pose([1.5, 0.0, 0.03], [1, 0, 0, 0]), open_width=0.07, contact_width=0.04)
    planner = ScriptPlanner([Decision("pick", pick=far)])
    ctrl = controller(kin, planner)
    drive(ctrl)
    assert planner.outcomes == [("pick", False)]
    assert ctrl.decisions[0]["failure"] == "target pose unreachable"


class NoIK:
    """The kinematic model with every IK query out of reach (FK and the rest as they are)."""

    def __init__(self, kin):
        self.kin = kin

    def ik(self, *args, **kwargs):
        return None

    def __getattr__(self, name):
        return getattr(self.kin, name)


def test_a_back_off_out_of_reach_sends_the_arm_home_instead_of_looping(kin):
    """An aborted action backs off upwards; when that pose is out of reach too, the arm goes home by a joint
    move (no IK) and the planner decides again — re-queuing the back-off spun until the run's time ran out."""
    pick = PickAction("b1", Pose([0.5, 0.05, 0.03], [1, 0, 0, 0]), open_width=0.07, contact_width=0.04)
    planner = ScriptPlanner([Decision("pick", pick=pick)])
    ctrl = controller(NoIK(kin), planner)
    cmds = drive(ctrl, max_ticks=20_000)
    assert planner.outcomes == [("pick", False)] and cmds[-1].done
    assert ctrl.decisions[0]["failure"] == "target pose unreachable"
    assert any(c.phase == "home" for c in cmds)


def test_place_slots_skip_those_taken_by_perceived_objects(kin):
    region_slots = PlanningController(FixedEstimator([]), kin, ScriptPlanner(), None, REGION, n_slots=2).slots
    occupant = ObjectEstimate("placed", Pose([*region_slots[0], 0.025], [0, 0, 0, 1]), np.array([0.05, 0.05, 0.05]))
    pick = PickAction("b1", Pose([0.5, 0.05, 0.03], [1, 0, 0, 0]), open_width=0.07, contact_width=0.04)
    planner = ScriptPlanner([Decision("pick", pick=pick)])
    ctrl = controller(kin, planner, estimates=(BLOCK, occupant), n_slots=2)
    cmds = drive(ctrl, held_width=0.04)
    release = tcp_path(kin, cmds, "lower")[-1].position
    np.testing.assert_allclose(release[:2], region_slots[1], atol=1e-3)


class SequenceEstimator(FixedEstimator):
    """Reports each list of objects in turn, the last one from then on."""

    def estimate(self, obs):
        self.calls += 1
        return self.estimates[min(self.calls, len(self.estimates)) - 1]


def test_a_pushed_object_under_a_new_id_is_still_compared_with_its_prediction(kin):
    moved = ObjectEstimate("b9", Pose([0.52, 0.06, 0.025], [0, 0, math.sin(0.1), math.cos(0.1)]),
                           np.array([0.05, 0.04, 0.05]))
    wall = ObjectEstimate("w", Pose([0.535, 0.06, 0.04], [0, 0, 0, 1]), np.array([0.02, 0.3, 0.08]))  # seen before
    big = ObjectEstimate("b8", Pose([0.53, 0.06, 0.025], [0, 0, 0, 1]), np.array([0.12, 0.09, 0.05]))  # other size
    push = Decision("push", push=PushAction("b1", np.array([0.45, 0.05, 0.02]), 0.0, 0.04),
                    predicted={"end_xy_yaw": {"b1": [0.53, 0.06, 0.25]}})
    ctrl = PlanningController(SequenceEstimator([[BLOCK, wall], [wall, big, moved]]), kin, ScriptPlanner([push]),
                              None, REGION, dt=DT)
    drive(ctrl)
    seen = ctrl.decisions[0]["observed"]["b1"]
    assert seen["id"] == "b9"  # the new object of its size nearest to the prediction
    assert seen["error_m"] == pytest.approx(0.01, abs=1e-9)
    assert seen["error_deg"] == pytest.approx(math.degrees(0.05), abs=1e-6)


# ------------------------------------------------------------------ faults
def drive_stuck(ctrl, stuck_width: float, held_width: float = 0.04, max_ticks: int = 40_000):
    """As `drive`, but the gripper sensor reads `stuck_width` whatever the fingers do."""
    obs = Observation({"cam": FRAME}, panda.HOME.copy(), stuck_width, 0.0)
    cmds = []
    for i in range(max_ticks):
        cmd = ctrl.step(obs)
        cmds.append(cmd)
        if cmd.done:
            return cmds
        obs = Observation({"cam": FRAME} if ctrl.wants_images else {}, cmd.joint_positions.copy(), stuck_width,
                          (i + 1) * DT)
    raise AssertionError("the controller never finished")


@pytest.mark.parametrize("stuck", [0.0, panda.MAX_OPENING])
def test_a_stuck_gripper_sensor_is_noticed_and_grip_moves_are_then_timed(kin, stuck):
    pick = PickAction("b1", Pose([0.5, 0.05, 0.03], [1, 0, 0, 0]), open_width=0.07, contact_width=0.04)
    planner = ScriptPlanner([Decision("pick", pick=pick)])
    ctrl = controller(kin, planner)
    cmds = drive_stuck(ctrl, stuck)
    assert "fault:gripper_sensor" in ctrl.faults and not ctrl.gripper_trusted
    assert any(e.startswith("fault:gripper_sensor:") for c in cmds for e in c.events)
    # after the fault every grip move lasted GRIPPER_BLIND_S (no settling to wait for on a frozen reading)
    from robot_wm.control.executor import GRIPPER_BLIND_S
    runs, current = [], None
    for c in cmds:
        if c.phase in ("close", "release"):
            if current is None or current[0] != c.phase:
                current = [c.phase, 0]
                runs.append(current)
            current[1] += 1
        else:
            current = None
    assert runs and all(n * DT >= GRIPPER_BLIND_S - 2 * DT for _, n in runs)
    # the width can no longer say whether the hand holds the block, and these cameras cannot see it: the pick goes
    # on (the next look decides) instead of opening at lift height and retrying forever
    assert ctrl.decisions[0]["executed"] is True and planner.outcomes == [("pick", True)]


class NewIdEachLook(FixedEstimator):
    """The same block, under a new tracker id at every look (as after a drop it fell back from)."""

    def estimate(self, obs):
        self.calls += 1
        return [ObjectEstimate(f"t{self.calls}", BLOCK.pose, BLOCK.extents)]


class PickWhatIsSeen(ScriptPlanner):
    """Picks the first object it is shown, every time."""

    def decide(self, estimates, obs):
        self.decided.append("pick")
        return Decision("pick", pick=PickAction(estimates[0].id, Pose([0.5, 0.05, 0.03], [1, 0, 0, 0]),
                                                open_width=0.07, contact_width=0.04))


def test_the_retry_budget_follows_the_object_across_new_tracker_ids(kin):
    planner = PickWhatIsSeen()
    ctrl = PlanningController(NewIdEachLook([]), kin, planner, PickPlacePlannerConfig(), REGION, dt=DT,
                              max_failures_per_object=2, max_failures=10)
    drive(ctrl, held_width=0.0)  # the fingers always close on air
    executed = [d for d in ctrl.decisions if d["executed"] is not None and not d["failure"].startswith("retry")]
    assert len(executed) == 2 and {d["identity"] for d in ctrl.decisions} == {"obj0"}
    assert len({d["target"] for d in ctrl.decisions}) == len(ctrl.decisions)  # a new tracker id every time
    refused = [d for d in ctrl.decisions if d["failure"].startswith("retry budget of this object spent")]
    assert refused and all(d["executed"] is False for d in refused)
    assert ctrl.finish_reason == f"decision cap reached ({decision_cap(1)} decisions)"


def test_the_global_failure_budget_ends_the_run_with_its_reason(kin):
    ctrl = PlanningController(NewIdEachLook([]), kin, PickWhatIsSeen(), PickPlacePlannerConfig(), REGION, dt=DT,
                              max_failures=2)
    cmds = drive(ctrl, held_width=0.0)
    assert cmds[-1].done
    assert ctrl.finish_reason == "retry budget spent: 2 failed actions (last: nothing in hand after lift)"
