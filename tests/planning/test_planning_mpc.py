"""The sampling MPC (CEM / MPPI), its dynamics adapters, goal costs and settings file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from robot_wm.config import ConfigError
from robot_wm.config.planner_mpc import MPCConfig, load_mpc_config
from robot_wm.model.network import PAD_THICKNESS
from robot_wm.model.state import GRASP, grasp_action, object_state, stack_scenes
from robot_wm.planning.costs import GoalCost, PoseGoal, yaw_error, yaw_period
from robot_wm.planning.dynamics import (
    Dynamics,
    NoMotionDynamics,
    PhysicsDynamics,
    Prediction,
    WorldModelDynamics,
)
from robot_wm.planning.mpc import NOOP, PUSH_Z_MAX, PUSH_Z_MIN, MPCPlanner, blocked_starts, push_actions


def quat(yaw: float) -> list[float]:
    return [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]


def point(x: float, y: float) -> np.ndarray:
    """A tiny box (2 mm) at (x, y): for the point-object dynamics below."""
    return object_state([x, y, 0.001], [0, 0, 0, 1], [0.002, 0.002, 0.002], "box")


class PointPush:
    """Synthetic dynamics with a known optimum: the first object in the pad's corridor ahead moves by
    `gain` x (the pad's travel beyond it) along the push heading turned by `turn` rad."""

    def __init__(self, turn: float = 0.0, gain: float = 1.0) -> None:
        self.turn, self.gain, self.calls = turn, gain, 0

    def __call__(self, states, mask, actions) -> Prediction:
        self.calls += 1
        h = actions[:, 4:5]
        c, s = torch.cos(h), torch.sin(h)
        rel = states[..., 0:2] - actions[:, None, 1:3]
        rx = c * rel[..., 0] + s * rel[..., 1]
        ry = -s * rel[..., 0] + c * rel[..., 1]
        half = 0.5 * states[..., 7]
        ok = mask & (rx > 0) & (ry.abs() < half + 0.012)
        score = torch.where(ok, rx, torch.full_like(rx, 1e9))
        first = torch.nn.functional.one_hot(score.argmin(1), states.shape[1]).bool() & ok
        travel = (actions[:, 5:6] - (rx - half - PAD_THICKNESS)).clamp_min(0.0) * self.gain * first
        out = states.clone()
        out[..., 0] += travel * torch.cos(h + self.turn)
        out[..., 1] += travel * torch.sin(h + self.turn)
        b, n = mask.shape
        return Prediction(out, torch.ones(b), torch.zeros(b, n, 4))


class TwoBranch:
    """Every push moves the object nearest its start +x by the push's depth, whatever the heading (equal
    means); the ensemble disagrees (std 0.02) when the heading points right (cos > 0), not when left."""

    def __init__(self, gap: float) -> None:
        self.gap = gap

    def __call__(self, states, mask, actions) -> Prediction:
        d = (states[..., 0:2] - actions[:, None, 1:3]).square().sum(-1).masked_fill(~mask, math.inf)
        first = torch.nn.functional.one_hot(d.argmin(1), states.shape[1]).to(states.dtype)
        out = states.clone()
        out[..., 0] += (actions[:, 5:6] - self.gap) * first
        b, n = mask.shape
        std = torch.zeros(b, n, 4)
        std[torch.cos(actions[:, 4]) > 0] = 0.02
        return Prediction(out, torch.ones(b), std * mask[..., None])


def small(**kw) -> MPCConfig:
    """Settings for fast tests (top-level MPCConfig fields, plus kappa)."""
    base = dict(samples=400, horizon=3, iterations=8, kappa=0.0)
    base.update(kw)
    cost = {"kappa": base.pop("kappa")}
    return MPCConfig.model_validate(base | {"cost": cost})


# ---------------------------------------------------------------------------------------- push geometry
def test_push_actions_start_just_outside_the_footprint_at_training_height():
    s = torch.from_numpy(stack_scenes([[object_state([0.5, 0.1, 0.03], quat(0.4), [0.08, 0.04, 0.06], "box")]])[0])
    heading = torch.linspace(-3.0, 3.0, 13)
    b = len(heading)
    params = torch.stack([heading, torch.zeros(b), torch.full((b,), 0.05)], 1)
    a = push_actions(s.expand(b, -1, -1), torch.zeros(b, dtype=torch.long), params)
    cfg = MPCConfig().push
    # distance from the start to the object's centre along the heading = support of the oriented box
    # along the heading + pad thickness + gap; on the centre line (lateral 0)
    phi = 0.4 - heading
    along = 0.5 * (0.08 * phi.cos().abs() + 0.04 * phi.sin().abs())
    rel = torch.tensor([0.5, 0.1]) - a[:, 1:3]
    rx = rel[:, 0] * heading.cos() + rel[:, 1] * heading.sin()
    ry = -rel[:, 0] * heading.sin() + rel[:, 1] * heading.cos()
    assert torch.allclose(rx, along + PAD_THICKNESS + cfg.gap, atol=1e-6)
    assert torch.allclose(ry, torch.zeros(b), atol=1e-6)
    assert torch.allclose(a[:, 3], torch.full((b,), 0.5 * 0.06))  # z = half the top height (0.06 m)
    assert torch.allclose(a[:, 5], torch.full((b,), cfg.gap + 0.05))
    assert (a[:, 0] == 0).all()
    # clamps: lateral to 0.8 of the half-width, depth to its range, heading wrapped, height range
    a2 = push_actions(s, torch.zeros(1, dtype=torch.long), torch.tensor([[7.0, 5.0, 1.0]]))
    assert a2[0, 5] == pytest.approx(cfg.gap + cfg.depth[1])
    assert -math.pi <= float(a2[0, 4]) <= math.pi
    assert PUSH_Z_MIN <= float(a2[0, 3]) <= PUSH_Z_MAX


def test_push_actions_carry_the_tilt_and_start_a_tilted_face_further_back():
    """The tilt is the action's last column (clamped to tilt_max); a tilted face (its corner reaches further)
    starts up to tilt_gap further back, in full from the least tilt the collector draws, and travels as much
    further, so it meets the object where a square face would."""
    s = torch.from_numpy(stack_scenes([[object_state([0.5, 0.0, 0.03], quat(0.0), [0.08, 0.04, 0.06], "box")]])[0])
    cfg = MPCConfig().push
    tilts = torch.tensor([0.0, 0.075, -0.3, 5.0])
    params = torch.stack([torch.zeros(4), torch.zeros(4), torch.full((4,), 0.05), tilts], 1)
    a = push_actions(s.expand(4, -1, -1), torch.zeros(4, dtype=torch.long), params)
    assert a.shape == (4, 7)
    assert torch.allclose(a[:, 6], torch.tensor([0.0, 0.075, -0.3, cfg.tilt_max]))
    extra = torch.tensor([0.0, 0.5 * cfg.tilt_gap, cfg.tilt_gap, cfg.tilt_gap])
    assert torch.allclose(a[0, 1] - a[:, 1], extra, atol=1e-6)  # heading 0: further back = smaller x
    assert torch.allclose(a[:, 5] - a[0, 5], extra, atol=1e-6)
    three = push_actions(s, torch.zeros(1, dtype=torch.long), params[:1, :3])  # (B, 3) params: a square face
    assert torch.equal(three, a[:1])


def test_push_height_rule_matches_the_data_collector():
    from robot_wm.model import collect

    assert PUSH_Z_MIN == collect.PUSH_Z_MIN
    assert PAD_THICKNESS == collect.PAD_THICKNESS


# ---------------------------------------------------------------------------------------- planner
@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_planner_converges_to_the_known_optimum(method):
    # the object moves 0.8 x the depth along the heading turned by +0.3 rad: the optimum is one push at
    # heading (goal direction - 0.3) with depth |goal - object| / 0.8, cost = one push
    dyn = PointPush(turn=0.3, gain=0.8)
    goal = (0.58, 0.05)
    planner = MPCPlanner(dyn, small(method=method, iterations=12), seed=0)
    plan = planner.plan(np.stack([point(0.5, 0.0)]), None, [PoseGoal(0, goal)])
    err = np.linalg.norm(plan.states[-1, 0, :2] - goal)
    assert err < 0.004, (method, err, plan.objects, plan.params)
    assert plan.n_pushes == 1 and plan.objects[0] == 0
    direction = math.atan2(0.05, 0.08)
    assert plan.params[0, 0] == pytest.approx(direction - 0.3, abs=0.06)
    assert plan.params[0, 2] == pytest.approx(math.hypot(0.08, 0.05) / 0.8, abs=0.006)
    w = MPCConfig().cost
    assert plan.cost == pytest.approx(w.push_cost + err * (1 + w.stage_weight * 2), abs=1e-4)  # push + errors
    assert plan.model_calls <= 12 * 3
    assert plan.first_action() is not None and plan.actions[1:, 0].tolist() == [NOOP, NOOP]


def test_plan_fields_shapes_and_units():
    planner = MPCPlanner(PointPush(), small(iterations=2), seed=0)
    state = np.stack([point(0.5, 0.0), point(0.5, 0.2)])
    plan = planner.plan(state, np.array([True, True]), [PoseGoal(0, (0.55, 0.0))])
    assert plan.actions.shape == (3, 7) and plan.objects.shape == (3,) and plan.params.shape == (3, 4)
    assert plan.states.shape == (4, 2, 15) and np.array_equal(plan.states[0], state)
    assert plan.std.shape == (3, 2, 4) and plan.step_p_success.shape == (3,)
    assert plan.p_success == pytest.approx(1.0) and plan.disagreement == 0.0
    assert plan.cost == pytest.approx(plan.mean_cost)
    assert plan.samples == 2 * 400 and plan.method == "cem" and plan.wall_s > 0
    assert plan.reached
    # canonical form: pushes first, then no-ops
    assert list(plan.objects[: plan.n_pushes] >= 0) == [True] * plan.n_pushes
    assert (plan.objects[plan.n_pushes:] == -1).all() and (plan.actions[plan.n_pushes:, 0] == NOOP).all()


def test_warm_start_reaches_a_lower_cost_in_fewer_iterations():
    # 0.18 m at 0.8 x the depth: two pushes. Plan, execute the first push, re-plan with one iteration.
    dyn = PointPush(gain=0.8)
    goals = [PoseGoal(0, (0.63, 0.0))]
    cfg = small(iterations=10)
    planner = MPCPlanner(dyn, cfg, seed=0)
    state = np.stack([point(0.45, 0.0)])
    first = planner.plan(state, None, goals)
    assert first.n_pushes == 2
    s1 = dyn(torch.from_numpy(state)[None], torch.ones(1, 1, dtype=torch.bool),
             torch.from_numpy(first.actions[:1])).next_states[0].numpy()
    one = cfg.model_copy(update={"iterations": 1})
    planner.config = one
    warm = planner.plan(s1, None, goals)  # shifted by one step
    cold = MPCPlanner(dyn, one, seed=0).plan(s1, None, goals)
    assert warm.cost < cold.cost
    assert warm.n_pushes == 1 and warm.cost < 0.003 + 0.005  # the rest of the first plan: one push
    # a cold start needs more iterations to get as low: twice as many are not enough
    two = MPCPlanner(dyn, cfg.model_copy(update={"iterations": 2}), seed=0).plan(s1, None, goals)
    assert two.cost > warm.cost


def test_same_seed_same_plan_other_seed_other_samples():
    state = np.stack([point(0.5, 0.0), point(0.45, 0.1)])
    goals = [PoseGoal(0, (0.6, 0.05))]
    plans = [MPCPlanner(PointPush(), small(iterations=2), seed=s).plan(state, None, goals) for s in (3, 3, 4)]
    assert np.array_equal(plans[0].actions, plans[1].actions) and plans[0].cost == plans[1].cost
    assert np.array_equal(plans[0].states, plans[1].states)
    assert not np.array_equal(plans[0].actions, plans[2].actions)
    # the draws themselves differ with the seed
    a, b = MPCPlanner(PointPush(), small(), seed=3), MPCPlanner(PointPush(), small(), seed=4)
    d = a._prior(torch.from_numpy(state), torch.ones(2, dtype=torch.bool), GoalCost(goals), 3)
    assert not torch.equal(a._sample(d, 50)[1], b._sample(d, 50)[1])
    a.reset(seed=4)
    assert torch.equal(a._sample(d, 50)[1], MPCPlanner(PointPush(), small(), seed=4)._sample(d, 50)[1])


def test_kappa_prefers_the_low_disagreement_branch():
    # equal means whatever the heading; the prior (towards the goal, heading 0) lies in the risky branch
    state = np.stack([point(0.5, 0.0)])
    goals = [PoseGoal(0, (0.58, 0.0))]
    cfg = dict(iterations=8, heading_std=1.0, horizon=2, samples=300)
    gap = MPCConfig().push.gap
    risky = [MPCPlanner(TwoBranch(gap), small(kappa=0.0, **cfg), seed=s).plan(state, None, goals) for s in range(3)]
    safe = [MPCPlanner(TwoBranch(gap), small(kappa=2.0, **cfg), seed=s).plan(state, None, goals) for s in range(3)]
    for r, p in zip(risky, safe, strict=True):
        assert p.mean_cost == pytest.approx(r.mean_cost, abs=0.003)  # both reach the goal
        assert p.disagreement == 0.0 and p.cost == pytest.approx(p.mean_cost)
        pushed = p.objects >= 0
        assert pushed.any() and (np.cos(p.params[pushed, 0]) < 0).all()
    assert any(r.disagreement > 0.0 for r in risky)  # without kappa the branches are alike to the planner
    r = next(r for r in risky if r.disagreement > 0.0)
    assert r.cost == pytest.approx(r.mean_cost)  # kappa = 0: the disagreement does not count


def test_noop_when_the_goal_is_already_met_and_max_pushes():
    state = np.stack([point(0.5, 0.0)])
    plan = MPCPlanner(PointPush(), small(iterations=2), seed=0).plan(state, None, [PoseGoal(0, (0.5, 0.0))])
    assert plan.n_pushes == 0 and plan.first_action() is None and plan.model_calls <= 2 * 3
    capped = MPCPlanner(PointPush(), small(max_pushes=1, noop_prob=0.0, min_prob=0.0), seed=0)
    plan = capped.plan(state, None, [PoseGoal(0, (0.8, 0.0))])
    assert plan.n_pushes == 1


def test_plan_rejects_bad_inputs():
    planner = MPCPlanner(NoMotionDynamics(), small(), seed=0)
    with pytest.raises(ValueError, match="state must have shape"):
        planner.plan(np.zeros((2, 14), np.float32))
    with pytest.raises(ValueError, match="no such movable object"):
        planner.plan(np.stack([point(0.5, 0.0)]), None, [PoseGoal(3, (0.5, 0.0))])
    with pytest.raises(ValueError, match="no such movable object"):  # a wall cannot have a goal
        planner.plan(np.stack([point(0.5, 0.0)]), None, [PoseGoal(0, (0.6, 0.0))], fixed=np.array([True]))


# ---------------------------------------------------------------------------------------- costs
def test_yaw_symmetry_and_workspace_penalty():
    square = torch.from_numpy(object_state([0.5, 0, 0.02], quat(0.0), [0.05, 0.05, 0.05], "box"))
    rect = torch.from_numpy(object_state([0.5, 0, 0.02], quat(0.0), [0.08, 0.04, 0.05], "box"))
    cyl = torch.from_numpy(object_state([0.5, 0, 0.02], quat(0.0), [0.04, 0.04, 0.05], "cylinder"))
    yaw = torch.tensor(math.pi / 2 + 0.1)
    assert float(yaw_error(yaw, 0.0, yaw_period(square))) == pytest.approx(0.1, abs=1e-6)
    assert float(yaw_error(yaw, 0.0, yaw_period(rect))) == pytest.approx(math.pi / 2 - 0.1, abs=1e-6)
    assert float(yaw_error(torch.tensor(math.pi - 0.1), 0.0, yaw_period(rect))) == pytest.approx(0.1, abs=1e-6)
    assert float(yaw_error(yaw, 0.0, yaw_period(cyl))) == 0.0
    mesh = torch.from_numpy(object_state([0.5, 0, 0.02], quat(0.0), [0.05, 0.05, 0.05], "mesh"))
    assert float(yaw_error(torch.tensor(math.pi - 0.1), 0.0, yaw_period(mesh))) == pytest.approx(math.pi - 0.1, abs=1e-6)
    cost = GoalCost([PoseGoal(0, (0.5, 0.0), yaw=0.0)])
    states = torch.stack([rect, rect])[None].repeat(2, 1, 1)
    states[1, 1, 0] = 0.9  # object 1 pushed 0.1 m beyond the workspace's x range (0.8)
    mask = torch.ones(2, dtype=torch.bool)
    c = cost.state_cost(states, states[0], mask)
    w = cost.weights
    expected = w.outside_penalty + w.outside_slope * 0.1 + w.disturb_weight * 0.4
    assert float(c[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(c[1]) == pytest.approx(expected, abs=1e-5)
    assert cost.reached(states).tolist() == [True, True]


# ---------------------------------------------------------------------------------------- settings
def test_shipped_mpc_yaml_is_the_defaults():
    assert load_mpc_config() == MPCConfig()


@pytest.mark.parametrize(("data", "key", "words"), [
    ({"samples": -5}, "samples", "must be >= 2 (got -5)"),
    ({"cost": {"kappa": -1}}, "cost.kappa", "must be >= 0"),
    ({"method": "ilqr"}, "method", "must be one of"),
    ({"sample": 10}, "sample", "unknown key"),
    ({"samples": 10, "elites": 20}, "elites", "must be <= samples (10)"),
    ({"push": {"depth": [0.1, 0.05]}}, "push.depth", "need 0 < min < max"),
])
def test_bad_mpc_yaml_gives_one_line_naming_file_and_key(tmp_path, data, key, words):
    path = tmp_path / "mpc.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_mpc_config(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {key}: ") and words in msg, msg


# ---------------------------------------------------------------------------------------- dynamics
@pytest.fixture(scope="module")
def world_model():
    from robot_wm.model.world_model import WorldModel

    return WorldModel.load()


def random_scenes(b: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(b):
        k = int(rng.integers(1, n + 1))
        scenes.append([object_state([rng.uniform(0.4, 0.65), rng.uniform(-0.15, 0.15), 0.025],
                                    quat(rng.uniform(-3, 3)), rng.uniform(0.03, 0.07, 3),
                                    str(rng.choice(["box", "cylinder", "mesh"]))) for _ in range(k)])
    s, m = stack_scenes(scenes, n)
    return torch.from_numpy(s), torch.from_numpy(m)


def test_world_model_dynamics_on_the_shipped_model(world_model):
    s, m = random_scenes(64, 5)
    gen = torch.Generator().manual_seed(0)
    obj = torch.stack([torch.multinomial(row.float(), 1, generator=gen)[0] for row in m])
    params = torch.stack([torch.rand(64, generator=gen) * 6 - 3, torch.rand(64, generator=gen) - 0.5,
                          0.02 + 0.1 * torch.rand(64, generator=gen)], 1)
    a = push_actions(s, obj, params)
    dyn = WorldModelDynamics(world_model)
    assert isinstance(dyn, Dynamics)
    nxt, p, std = dyn(s, m, a)
    assert nxt.shape == (64, 5, 15) and p.shape == (64,) and std.shape == (64, 5, 4)
    assert torch.isfinite(nxt).all() and torch.isfinite(std).all() and (std >= 0).all()
    assert torch.equal(p, torch.ones(64))
    assert torch.equal(nxt[~m], s[~m]) and (std[~m] == 0).all()
    want, _, want_std = world_model.predict(s, a, m)
    assert torch.allclose(nxt, want, atol=1e-5)  # the ensemble mean, as predict gives it
    total = WorldModelDynamics(world_model, uncertainty="total")(s, m, a).std
    assert torch.allclose(total, want_std, atol=1e-5)  # the mixture std is predict's
    assert (std <= total + 1e-6).all()  # member spread alone is part of it
    generic = WorldModelDynamics(world_model)  # the per-member path (used if the fused layout changes)
    generic._fast_for, generic._fast = world_model.fused(), None
    g_nxt, _, g_std = generic(s, m, a)
    assert torch.allclose(g_nxt, nxt, atol=1e-6) and torch.allclose(g_std, std, atol=1e-6)
    moved = (nxt[..., :2] - s[..., :2]).norm(dim=-1)[torch.arange(64), obj]
    assert (moved > 0.005).float().mean() > 0.5  # most pushed objects move
    # grasps in the batch go through predict (grasp head P(success)); their std is 0
    a2 = a.clone()
    a2[:8] = torch.from_numpy(np.stack([grasp_action(*s[i, obj[i], :3].tolist(), 0.0) for i in range(8)]))
    nxt2, p2, std2 = dyn(s, m, a2)
    assert (a2[:8, 0] == GRASP).all() and ((p2[:8] > 0) & (p2[:8] < 1)).all() and (std2[:8] == 0).all()
    assert torch.allclose(nxt2[8:], nxt[8:], atol=1e-6)


def test_planner_with_the_world_model(world_model):
    state = np.stack([object_state([0.5, 0.0, 0.025], quat(0.3), [0.05, 0.05, 0.05], "box"),
                      object_state([0.55, 0.12, 0.025], quat(0.0), [0.04, 0.06, 0.05], "box")])
    cfg = MPCConfig.model_validate({"samples": 200, "horizon": 4, "iterations": 3})
    planner = MPCPlanner(WorldModelDynamics(world_model), cfg, seed=0)
    goal = (0.58, 0.02)
    plan = planner.plan(state, None, [PoseGoal(0, goal)])
    assert np.isfinite(plan.cost) and plan.model_calls <= 3 * 4 and plan.n_pushes >= 1
    before = np.linalg.norm(state[0, :2] - goal)
    assert np.linalg.norm(plan.states[-1, 0, :2] - goal) < 0.5 * before
    assert plan.p_success == pytest.approx(1.0) and plan.disagreement > 0.0
    again = planner.command(plan.states[1], None, [PoseGoal(0, goal)])  # warm, shifted
    assert again is None or again.shape == (7,)


def test_planner_builds_the_dynamics_its_config_names():
    planner = MPCPlanner(config=MPCConfig(dynamics="no_motion", samples=50, horizon=2))
    assert isinstance(planner.dynamics, NoMotionDynamics)
    plan = planner.plan(np.stack([point(0.5, 0.0)]), None, [PoseGoal(0, (0.6, 0.0))])
    assert plan.n_pushes == 0  # nothing moves: no push is worth its cost
    assert MPCPlanner(NoMotionDynamics(), seed=0, method="mppi", horizon=4).config.horizon == 4


def test_no_motion_dynamics():
    s, m = random_scenes(4, 3)
    a = torch.zeros(4, 7)
    nxt, p, std = NoMotionDynamics()(s, m, a)
    assert torch.equal(nxt, s) and torch.equal(p, torch.ones(4)) and std.shape == (4, 3, 4) and not std.any()


def test_physics_dynamics_pushes_a_box_the_pushed_way():
    box = object_state([0.5, 0.0, 0.025], [0, 0, 0, 1], [0.05, 0.05, 0.05], "box")
    other = object_state([0.5, 0.2, 0.025], [0, 0, 0, 1], [0.04, 0.06, 0.05], "box")
    s = torch.from_numpy(np.stack([box, other]))[None]
    m = torch.ones(1, 2, dtype=torch.bool)
    a = push_actions(s, torch.tensor([0]), torch.tensor([[0.0, 0.0, 0.05]]))
    dyn = PhysicsDynamics()
    try:
        nxt, p, std = dyn(s, m, a)
        again = dyn(s, m, a).next_states
    finally:
        dyn.close()
    assert torch.equal(nxt, again)  # a fresh world per row: bit-identical
    d = (nxt - s)[0]
    assert float(p[0]) == 1.0 and not std.any()
    assert 0.03 < float(d[0, 0]) < 0.06 and abs(float(d[0, 1])) < 0.01  # +x by about the depth
    assert float(d[1, :2].abs().max()) < 0.002  # the other box stays


# ---------------------------------------------------------------------------------------- obstacles
def test_blocked_starts_flags_pads_inside_a_neighbour_or_wall():
    box = object_state([0.60, 0.0, 0.025], quat(0.0), [0.05, 0.09, 0.05], "box")
    wall = object_state([0.635, 0.0, 0.04], quat(0.0), [0.02, 0.3, 0.08], "box")  # flush with the box's +x face
    states = torch.from_numpy(np.stack([box, wall]))[None].expand(2, 2, 15)
    obj = torch.zeros(2, dtype=torch.long)
    towards_robot = push_actions(states[:1], obj[:1], torch.tensor([[math.pi, 0.0, 0.05]]))  # starts at +x
    sideways = push_actions(states[:1], obj[:1], torch.tensor([[-math.pi / 2, 0.0, 0.05]]))  # starts at +y
    a = torch.cat([towards_robot, sideways])
    assert blocked_starts(states, obj, a, torch.ones(2, dtype=torch.bool), 0.012).tolist() == [True, False]
    # without the wall nothing blocks
    assert not blocked_starts(states, obj, a, torch.tensor([True, False]), 0.012).any()


def test_fixed_obstacles_are_never_pushed_and_never_move():
    """A wall (fixed) beside the goal object: every plan pushes only the movable object, no push starts
    inside the wall, and the predicted wall stays where it is."""
    box = object_state([0.60, 0.0, 0.025], quat(0.0), [0.05, 0.09, 0.05], "box")
    wall = object_state([0.635, 0.0, 0.04], quat(0.0), [0.02, 0.3, 0.08], "box")
    planner = MPCPlanner(PointPush(gain=1.0), small(horizon=2, iterations=4), seed=1)
    plan = planner.plan(np.stack([box, wall]), None, [PoseGoal(0, (0.60, -0.12))], fixed=np.array([False, True]))
    assert set(plan.objects[plan.objects >= 0].tolist()) <= {0}
    assert np.allclose(plan.states[:, 1], wall)
    a = plan.first_action()
    assert a is not None
    start = torch.from_numpy(a)[None]
    st = torch.from_numpy(np.stack([box, wall]))[None]
    assert not blocked_starts(st, torch.zeros(1, dtype=torch.long), start, torch.ones(2, dtype=torch.bool), 0.012)


def test_blocked_starts_sees_a_wall_between_the_pads_and_the_object():
    """Pads set down beyond a wall and pushing back through it towards the object are blocked."""
    box = object_state([0.685, 0.0, 0.025], quat(0.0), [0.05, 0.09, 0.05], "box")
    wall = object_state([0.72, 0.1, 0.04], quat(0.0), [0.02, 0.3, 0.08], "box")
    states = torch.from_numpy(np.stack([box, wall]))[None]
    through = torch.tensor([[0.0, 0.759, 0.02, 0.025, math.pi, 0.1]])  # behind the wall, heading -x
    clear = torch.tensor([[0.0, 0.685, -0.08, 0.025, math.pi / 2, 0.1]])  # from -y, along +y: wall not crossed
    obj = torch.zeros(1, dtype=torch.long)
    m = torch.ones(2, dtype=torch.bool)
    assert bool(blocked_starts(states, obj, through, m, 0.012)[0])
    assert not bool(blocked_starts(states, obj, clear, m, 0.012)[0])


def test_expected_turn_dynamics(world_model):
    """turn="expected": the yaw change is the members' mean expected turn (the readout on their hidden
    layers), positions and their spread as with the mode; the fused and per-member paths agree."""
    from robot_wm.model.network import action_frame_features
    from robot_wm.model.turn_readout import expected_turn, fit_turn_readout
    from robot_wm.model.world_model import ModelFileError, WorldModel
    from robot_wm.planning.costs import yaw_of
    from tests.model.synthetic import synthetic

    readout, info = fit_turn_readout(world_model, synthetic(64, seed=5))
    model = WorldModel(world_model.net, world_model.norm, world_model.temperature, grasp_head=world_model.grasp_head,
                       turn_readout=readout + torch.tensor([0.0] * (readout.shape[1] - 1) + [0.5]), turn_info=info)
    s, m = random_scenes(32, 4, seed=1)
    gen = torch.Generator().manual_seed(1)
    obj = torch.stack([torch.multinomial(row.float(), 1, generator=gen)[0] for row in m])
    params = torch.stack([torch.rand(32, generator=gen) * 6 - 3, torch.rand(32, generator=gen) - 0.5,
                          0.02 + 0.1 * torch.rand(32, generator=gen)], 1)
    a = push_actions(s, obj, params)
    mode = WorldModelDynamics(model)(s, m, a)
    exp = WorldModelDynamics(model, turn="expected")(s, m, a)
    assert torch.equal(exp.next_states[..., :3], mode.next_states[..., :3])
    assert torch.allclose(exp.std[..., :3], mode.std[..., :3])
    f, rel, target = action_frame_features(s, m, a)
    x = (f - model.norm.feat_mean) / model.norm.feat_std
    with torch.no_grad():
        z = model.net.decoder_hidden(x, rel, m, target).reshape(32, 4, model.k, -1)
    want = expected_turn(model.turn_readout, z) * model.norm.out_scale[3]  # (B, N, K) rad
    got = torch.remainder(yaw_of(exp.next_states) - yaw_of(s) + math.pi, 2 * math.pi) - math.pi
    assert torch.allclose(got[m], want.mean(-1)[m], atol=1e-4)  # upright objects: a turn about z is the yaw
    assert torch.allclose(exp.std[..., 3][m], want.std(-1, unbiased=False)[m], atol=1e-5)
    generic = WorldModelDynamics(model, turn="expected")
    generic._fast_for, generic._fast = model.fused(), None
    g = generic(s, m, a)
    assert torch.allclose(g.next_states, exp.next_states, atol=1e-5) and torch.allclose(g.std, exp.std, atol=1e-5)
    with pytest.raises(ModelFileError, match="turn.readout"):
        WorldModelDynamics(world_model if world_model.turn_readout is None else
                           WorldModel(world_model.net, world_model.norm), turn="expected")
    with pytest.raises(ValueError, match="turn"):
        WorldModelDynamics(model, turn="sideways")

