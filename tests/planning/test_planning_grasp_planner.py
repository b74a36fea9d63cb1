"""The grasp planner: candidates on perceived points and box sides, collision / table / reachability filters,
ranking by P(success), top-k shadow verification, seeding, settings file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from robot_wm.config import ConfigError
from robot_wm.config.planner_grasp import GraspPlannerConfig, load_grasp_planner_config
from robot_wm.geometry import Pose
from robot_wm.grasping import Grasp
from robot_wm.grasping.candidates import FINGER_Z
from robot_wm.model.world_model import WorldModel
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning import ShadowVerifier, Verdict
from robot_wm.planning.grasp_planner import GraspPlanner, perceived_descriptor
from robot_wm.sim import KinematicModel

SPACING = 0.004  # m between synthetic surface points


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


def _grid(a: float, b: float) -> np.ndarray:
    """Points (M, 2) on a grid over [-a/2, a/2] x [-b/2, b/2]."""
    u = np.linspace(-a / 2, a / 2, max(2, round(a / SPACING) + 1))
    v = np.linspace(-b / 2, b / 2, max(2, round(b / SPACING) + 1))
    return np.stack(np.meshgrid(u, v, indexing="ij"), -1).reshape(-1, 2)


def box_points(extents) -> np.ndarray:
    """Points on a box's top and four side faces (a camera never sees the bottom), box frame."""
    ex, ey, ez = extents
    top = _grid(ex, ey)
    out = [np.c_[top, np.full(len(top), ez / 2)]]
    for sign in (-1, 1):
        s = _grid(ey, ez)
        out.append(np.c_[np.full(len(s), sign * ex / 2), s])
        s = _grid(ex, ez)
        out.append(np.c_[s[:, 0], np.full(len(s), sign * ey / 2), s[:, 1]])
    return np.concatenate(out)


def box_estimate(name: str, xy, extents, yaw: float = 0.0, points: bool = True) -> ObjectEstimate:
    """An estimate of a box resting on the table, with points sampled on its visible faces (world frame)."""
    ext = np.asarray(extents, float)
    pose = Pose([xy[0], xy[1], ext[2] / 2], yaw_quat(yaw))
    return ObjectEstimate(name, pose, ext, pose.transform_points(box_points(ext)) if points else None)


def prism_estimate(name: str, xy, footprint: np.ndarray, height: float, parts=None) -> ObjectEstimate:
    """A prism over a convex polygon `footprint` (V, 2) (or the union of `parts`, several polygons), points
    on its top and sides; the estimate's box is the footprint's axis-aligned bounding box."""
    polys = parts if parts is not None else [footprint]
    pts = []
    for poly in polys:
        lo, hi = poly.min(0), poly.max(0)
        top = _grid(*(hi - lo)) + (lo + hi) / 2
        edges = [(poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly))]
        inside = np.ones(len(top), bool)
        centre = poly.mean(0)
        for a, b in edges:
            n = np.array([b[1] - a[1], a[0] - b[0]])
            n = n if np.dot(n, a - centre) > 0 else -n
            inside &= (top - a) @ n <= 1e-9
        pts.append(np.c_[top[inside], np.full(inside.sum(), height)])
        for a, b in edges:
            t = np.linspace(0, 1, max(2, round(np.linalg.norm(b - a) / SPACING) + 1))
            z = np.linspace(0, height, max(2, round(height / SPACING) + 1))
            tt, zz = np.meshgrid(t, z, indexing="ij")
            xy_ = a + tt.reshape(-1, 1) * (b - a)
            pts.append(np.c_[xy_, zz.ravel()])
    pts = np.concatenate(pts)
    allv = np.concatenate(polys)
    lo, hi = allv.min(0), allv.max(0)
    centre = np.r_[(lo + hi) / 2, height / 2]
    world = pts + np.r_[xy, 0.0] - np.r_[centre[:2], 0.0]
    return ObjectEstimate(name, Pose(np.r_[xy, height / 2], [0, 0, 0, 1]), np.r_[hi - lo, height], world)


class StubModel:
    """Returns known grasp probabilities: high when the fingers close along world x, low along y."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, states, actions, mask=None, shapes=None):
        self.calls += 1
        heading = np.asarray(actions)[:, 4]  # the closing axis' heading
        p = 0.1 + 0.85 * np.abs(np.cos(heading))
        return states, p, np.zeros(np.shape(states)[:2] + (4,))


class StubVerifier:
    """Passes the n-th call (1-based) only; records what it was asked."""

    def __init__(self, passes_on: int | None) -> None:
        self.passes_on, self.calls = passes_on, []

    def verify(self, est: ObjectEstimate, grasp: Grasp) -> Verdict:
        self.calls.append(grasp)
        ok = len(self.calls) == self.passes_on
        return Verdict(grasp, 1.0 if ok else 0.0, {"stable" if ok else "slipped": 1}, ok)


@pytest.fixture(scope="module")
def kin():
    k = KinematicModel()
    yield k
    k.close()


def closing(c) -> np.ndarray:
    return c.grasp.pose.rotation.as_matrix()[:, 1]


def approach(c) -> np.ndarray:
    return c.grasp.pose.rotation.as_matrix()[:, 2]


# ---------------------------------------------------------------------------------------------- sources
@pytest.mark.parametrize("yaw", [0.0, 0.7])
def test_box_too_wide_one_way_is_grasped_across_the_narrow_side(kin, yaw):
    est = box_estimate("wide", (0.5, 0.05), (0.11, 0.05, 0.05), yaw)
    plan = GraspPlanner(kin).plan(est, [est])
    c = plan.chosen
    assert c is not None and c.reachable and c.q is not None and c.q_pre is not None
    narrow = est.pose.rotation.as_matrix()[:, 1]
    assert abs(np.dot(closing(c), narrow)) > 0.97
    assert c.contact_width == pytest.approx(0.05, abs=0.006)
    assert approach(c)[2] == pytest.approx(-1.0)
    assert all(g.contact_width <= GraspPlannerConfig().max_width + 1e-9 for g in plan.candidates)
    assert {g.source for g in plan.candidates} == {"sampler", "box"}


def test_object_wider_than_the_gripper_both_ways_is_grasped_by_a_narrower_part(kin):
    # a wedge: 12 cm long, 8.7 cm wide at its base (box sides 12 x 8.7 cm: no box grasp), 40 deg apex
    half = 0.06 * math.tan(math.radians(20)) * 2
    foot = np.array([[0.06, 0.0], [-0.06, half], [-0.06, -half]])
    est = prism_estimate("wedge", (0.5, 0.0), foot, 0.04)
    assert min(est.extents[:2]) > GraspPlannerConfig().max_width
    plan = GraspPlanner(kin).plan(est, [est])
    assert plan.counts["box"] == 0
    c = plan.chosen
    assert c is not None and c.source == "sampler" and c.contact_width < GraspPlannerConfig().max_width
    assert c.grasp.pose.position[0] > 0.5 - 0.03  # towards the narrow end
    assert abs(closing(c)[1]) > 0.9  # across the wedge


def test_an_l_shape_is_grasped_across_an_arm_outside_its_hull(kin):
    # an L of two 12 x 3 cm arms (box sides 12 x 12 cm): grasps across an arm near its end, with both fingers
    # outside the L's convex hull (the object the shadow world collides, planning.shadow.shadow_model)
    arm_a = np.array([[0.0, 0.0], [0.12, 0.0], [0.12, 0.03], [0.0, 0.03]])
    arm_b = np.array([[0.0, 0.0], [0.03, 0.0], [0.03, 0.12], [0.0, 0.12]])
    est = prism_estimate("ell", (0.5, 0.0), None, 0.04, parts=[arm_a, arm_b])
    assert min(est.extents[:2]) > GraspPlannerConfig().max_width
    plan = GraspPlanner(kin).plan(est, [est])
    c = plan.chosen
    assert c is not None and c.source == "sampler" and c.contact_width == pytest.approx(0.03, abs=0.004)
    local = c.grasp.pose.position[:2] - (0.5 - 0.06, -0.06)  # in the L's frame above
    assert max(local) > 0.08  # towards the end of an arm, away from the corner the hull fills
    inner = [g for g in plan.candidates if g.top_down and max(g.grasp.pose.position[:2] - (0.44, -0.06)) < 0.06]
    assert not any(g.collision_free for g in inner)  # near the corner a finger would be inside the hull


def test_estimate_without_points_gets_box_grasps_and_blocks_by_its_box(kin):
    target = box_estimate("t", (0.5, 0.0), (0.04, 0.06, 0.05), points=False)
    plan = GraspPlanner(kin).plan(target, [target])
    assert plan.chosen is not None and plan.chosen.source == "box"
    # a neighbour without points, 1 cm beside the target's narrow side: its box is an obstacle
    other = box_estimate("n", (0.5 + 0.02 + 0.01 + 0.02, 0.0), (0.04, 0.06, 0.05), points=False)
    plan = GraspPlanner(kin).plan(target, [target, other])
    assert abs(closing(plan.chosen)[1]) > 0.99  # across the 6 cm side, fingers clear of the neighbour


# ---------------------------------------------------------------------------------------------- filters
def test_candidates_that_hit_a_neighbour_are_filtered(kin):
    target = box_estimate("t", (0.5, 0.0), (0.04, 0.06, 0.05))
    free = GraspPlanner(kin).plan(target, [target])
    assert abs(closing(free.chosen)[0]) > 0.99  # alone: across the narrow (x) side
    wall = box_estimate("wall", (0.5 + 0.02 + 0.01 + 0.01, 0.0), (0.02, 0.2, 0.08))  # 1 cm beyond the +x face
    plan = GraspPlanner(kin).plan(target, [target, wall])
    c = plan.chosen
    assert c is not None and abs(closing(c)[1]) > 0.99  # across the 6 cm (y) side instead
    blocked = [g for g in plan.candidates if g.top_down and abs(closing(g)[0]) > 0.99]
    assert blocked and not any(g.collision_free for g in blocked)
    assert plan.counts["collision_free"] < free.counts["collision_free"]


def test_a_neighbours_stray_noisy_points_do_not_block_the_hand(kin):
    """Depth noise scatters a few percent of a face seen obliquely ~1 cm along the rays. Strays of the box a
    wider box stands on, reaching out where the upper box's fingers go, are obstacles only inside that box's
    own (robust) extents — the estimate whose box takes them in still blocks the hand."""
    from robot_wm.planning.grasp_planner import clamp_to_box

    lower = box_estimate("lower", (0.5, 0.0), (0.04, 0.04, 0.06))
    top = box_estimate("top", (0.5, 0.0), (0.064, 0.064, 0.04))
    top.pose = Pose([0.5, 0.0, 0.08], top.pose.quaternion)
    top.points = top.pose.transform_points(box_points(top.extents))
    rng = np.random.default_rng(0)
    strays = np.c_[rng.uniform(0.5 - 0.045, 0.5 + 0.045, 200), rng.uniform(-0.045, 0.045, 200),
                   rng.uniform(0.05, 0.062, 200)]  # outside the lower box, under the upper box's rim
    lower.points = np.concatenate([lower.points, strays])
    plan = GraspPlanner(kin).plan(top, [top, lower])
    assert plan.chosen is not None and plan.counts["collision_free"] > 0
    assert np.all(np.abs(clamp_to_box(lower, strays)[:, :2] - [0.5, 0.0]) <= 0.02 + 1e-9)
    grown = ObjectEstimate("lower", lower.pose, np.array([0.09, 0.09, 0.06]), lower.points)  # a box that holds them
    assert GraspPlanner(kin).plan(top, [top, grown]).counts["collision_free"] < plan.counts["collision_free"]


def test_fingers_stay_above_the_table(kin):
    est = box_estimate("t", (0.5, 0.0), (0.04, 0.06, 0.05))
    raised = GraspPlannerConfig(table_z=0.02, sources=["sampler"])  # a table top 2 cm up: low grasps hit it
    plan = GraspPlanner(kin, config=raised).plan(est, [est])
    lowest = [g.grasp.pose.position[2] - FINGER_Z[1] for g in plan.candidates if g.top_down]
    ok = [g.collision_free for g in plan.candidates if g.top_down]
    assert any(z < 0.023 for z in lowest) and not all(ok)
    assert all(z >= 0.023 - 1e-9 for z, f in zip(lowest, ok, strict=True) if f)


def test_unreachable_objects_get_no_grasp():
    far = box_estimate("far", (1.3, 0.0), (0.04, 0.04, 0.05))
    kin = KinematicModel()
    try:
        plan = GraspPlanner(kin, config=GraspPlannerConfig(max_ik_checks=3)).plan(far, [far])
    finally:
        kin.close()
    assert plan.chosen is None and plan.counts["ik_checked"] <= 3 + 3  # top-down stage + tilted stage
    assert plan.pick_action() is None


# ---------------------------------------------------------------------------------------------- ranking
def test_ranking_follows_the_models_probabilities(kin):
    est = box_estimate("cube", (0.5, 0.0), (0.045, 0.045, 0.05))
    model = StubModel()
    plan = GraspPlanner(kin, model).plan(est, [est])
    assert model.calls == 1  # one batched call
    scored = [g for g in plan.candidates if g.collision_free and g.p_success is not None]
    assert len(scored) > 4
    p = [g.p_success for g in scored]
    assert p[0] == pytest.approx(max(p), abs=GraspPlannerConfig().tie_weight * 2)
    assert abs(closing(plan.chosen)[0]) > 0.9  # the stub favours closing along world x
    plain = GraspPlanner(kin).plan(est, [est])  # without a model: the analytic quality's choice differs
    assert abs(closing(plain.chosen)[0]) < 0.5
    ranks = [g.rank for g in scored]
    assert ranks == sorted(ranks, reverse=True)


def test_real_model_scores_perceived_grasps(kin):
    est = box_estimate("b", (0.5, 0.05), (0.1, 0.045, 0.05), 0.3)
    assert perceived_descriptor(est) is not None
    plan = GraspPlanner(kin, WorldModel.load()).plan(est, [est])
    scored = [g.p_success for g in plan.candidates if g.p_success is not None]
    assert scored and all(0.0 <= p <= 1.0 for p in scored)
    assert plan.chosen is not None and plan.chosen.p_success > 0.5
    json.dumps(plan.record())  # JSON-able


# ---------------------------------------------------------------------------------------------- verification
def test_verifier_decides_and_is_called_at_most_top_k_times(kin):
    est = box_estimate("cube", (0.5, 0.0), (0.045, 0.045, 0.05))
    cfg = GraspPlannerConfig(verify_top_k=3, diversity_m=0.0)
    ver = StubVerifier(passes_on=2)
    plan = GraspPlanner(kin, config=cfg, verifier=ver).plan(est, [est])
    assert len(ver.calls) == 2 == plan.shadow_tests
    assert plan.chosen is not None and plan.chosen.verdict.passed
    assert plan.chosen.grasp.pose is ver.calls[1].pose
    assert ver.calls[1].width + 0.01 == pytest.approx(plan.chosen.open_width)  # verified as it opens
    failed = [g for g in plan.candidates if g.verdict is not None and not g.verdict.passed]
    assert len(failed) == 1 and plan.candidates.index(failed[0]) < plan.candidates.index(plan.chosen)

    never = StubVerifier(passes_on=None)
    plan = GraspPlanner(kin, config=cfg, verifier=never).plan(est, [est])
    assert len(never.calls) == 3 == plan.shadow_tests and plan.chosen is None
    assert "shadow" in plan.reason


def test_failed_neighbourhood_is_not_verified_again(kin):
    est = box_estimate("cube", (0.5, 0.0), (0.045, 0.045, 0.05))
    ver = StubVerifier(passes_on=None)
    GraspPlanner(kin, config=GraspPlannerConfig(verify_top_k=4, diversity_m=0.02, diversity_deg=20),
                 verifier=ver).plan(est, [est])
    tested = [g.pose for g in ver.calls]
    assert len(tested) >= 2
    for i, a in enumerate(tested):
        for b in tested[:i]:
            far = np.linalg.norm(a.position - b.position) > 0.02
            turned = (a.rotation.inv() * b.rotation).magnitude()
            assert far or min(turned, math.pi - turned) > math.radians(20) - 1e-6


def test_real_shadow_verifier_passes_a_good_grasp(kin):
    est = box_estimate("cube", (0.5, 0.0), (0.045, 0.045, 0.05))
    plan = GraspPlanner(kin, verifier=ShadowVerifier(trials=1)).plan(est, [est])
    assert plan.chosen is not None and plan.chosen.verdict.passed and plan.shadow_tests >= 1
    action = plan.pick_action()
    assert action.target == "cube" and action.open_width == pytest.approx(plan.chosen.open_width)
    assert set(plan.timing_ms) == {"candidates", "rank", "reach", "verify", "total"}


class LowModel:
    """Rates every top-down grasp 0.2 (below the tilted prior)."""

    def predict(self, states, actions, mask=None, shapes=None):
        return states, np.full(len(actions), 0.2), None


class TiltedOnlyVerifier:
    """Passes only grasps approaching at least 30 deg off straight down (the box grasps' least tilt)."""

    def __init__(self) -> None:
        self.calls: list[Grasp] = []

    def verify(self, est: ObjectEstimate, grasp: Grasp) -> Verdict:
        self.calls.append(grasp)
        ok = bool(grasp.approach[2] > -math.cos(math.radians(30)) - 1e-9)
        return Verdict(grasp, float(ok), {}, ok)


def test_tilted_candidates_come_after_better_rated_top_down_ones(kin):
    est = box_estimate("tall", (0.5, 0.0), (0.04, 0.04, 0.10))
    plan = GraspPlanner(kin, StubModel()).plan(est, [est])  # top-down rated up to 0.95: no tilted sampling
    assert plan.chosen.top_down and plan.counts["tilted"] == 0
    ver = TiltedOnlyVerifier()
    plan = GraspPlanner(kin, LowModel(), ver).plan(est, [est])
    c = plan.chosen
    assert c is not None and not c.top_down and c.verdict.passed and c.reachable
    cfg = GraspPlannerConfig()
    assert math.radians(cfg.snap_tilt_deg) - 1e-6 <= c.tilt <= math.radians(cfg.max_tilt_deg) + 1e-6
    assert c.p_success <= cfg.tilted_prior and len(ver.calls) == 1  # ranked above the 0.2 top-down ones
    tilts = [g.tilt for g in plan.candidates if not g.top_down and g.collision_free]
    assert c.tilt <= min(tilts) + math.radians(8)  # the least tilted first (quality breaks near-ties)


# ---------------------------------------------------------------------------------------------- seeding
def test_same_seed_same_plan_regardless_of_call_history(kin):
    a = box_estimate("a", (0.5, 0.0), (0.045, 0.07, 0.05), 0.2)
    b = box_estimate("b", (0.45, 0.2), (0.05, 0.05, 0.05))
    scene = [a, b]

    def rec(plan):
        r = plan.record()
        r.pop("timing_ms")
        return r

    first = rec(GraspPlanner(kin, seed=3).plan(a, scene))
    planner = GraspPlanner(kin, seed=3)
    planner.plan(b, scene)  # another call first
    assert rec(planner.plan(a, scene)) == first
    other = [rec(GraspPlanner(kin, seed=s).plan(a, scene, attempt=1)) for s in (3, 4)]
    assert other[0] != first or other[1] != first


# ---------------------------------------------------------------------------------------------- settings
def test_shipped_settings_are_the_defaults(repo):
    assert load_grasp_planner_config() == GraspPlannerConfig()
    assert load_grasp_planner_config(repo / "planners" / "grasp_planner.yaml") == GraspPlannerConfig()


@pytest.mark.parametrize("text, key", [
    ("grasp_planner:\n  verify_top_k: 0\n", "grasp_planner.verify_top_k"),
    ("grasp_planner:\n  verify_topk: 3\n", "grasp_planner.verify_topk"),
    ("grasp_planner:\n  sources: [hand]\n", "grasp_planner.sources[0]"),
    ("grasp_planner:\n  snap_tilt_deg: 70\n  max_tilt_deg: 40\n", "grasp_planner.snap_tilt_deg"),
    ("grasp_planner:\n  max_width: 0.09\n", "grasp_planner.max_width"),
    ("grasp_planer:\n  verify_top_k: 2\n", "grasp_planer"),
    ("grasp_planner:\n  box_max_overhang: .nan\n", "grasp_planner.box_max_overhang"),
    ("grasp_planner:\n  box_min_grip: -0.01\n", "grasp_planner.box_min_grip"),
    ("grasp_planner:\n  box_escape_slides: [0.2]\n", "grasp_planner.box_escape_slides"),
])
def test_bad_settings_give_one_line(tmp_path, text, key):
    f = tmp_path / "gp.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_grasp_planner_config(f)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{f}: {key}: ")


# ---------------------------------------------------------------------------------------------- one camera
CAMERA = np.array([1.2, 0.0, 0.8])  # calibration/front.yaml's optical centre


def one_view(est: ObjectEstimate, cam: np.ndarray = CAMERA) -> ObjectEstimate:
    """`est` (a box_estimate) with only the points of the faces that face the camera at `cam` (3,)."""
    local = est.pose.inverse().transform_points(est.points)
    half = np.asarray(est.extents) / 2
    normal = np.zeros_like(local)
    for a in range(3):
        on = np.isclose(np.abs(local[:, a]), half[a])
        normal[on, a] = np.sign(local[on, a])
    facing = np.sum(est.pose.rotation.apply(normal) * (cam - est.points), axis=1) > 0
    return ObjectEstimate(est.id, est.pose, est.extents, est.points[facing])


class RecordingVerifier:
    """Passes every grasp; records the estimates it was asked to verify on."""

    def __init__(self) -> None:
        self.ests: list[ObjectEstimate] = []

    def verify(self, est: ObjectEstimate, grasp: Grasp) -> Verdict:
        self.ests.append(est)
        return Verdict(grasp, 1.0, {"stable": 1}, True)


def test_one_camera_plans_on_the_completed_view(kin):
    """One camera: candidates from the single-view completion, scored by the grasp-quality model and verified
    on the completed object (it reaches the far side the camera never saw); other camera counts keep the
    usual pipeline."""
    full = box_estimate("b", (0.5, 0.05), (0.04, 0.05, 0.07), 0.4)
    est = one_view(full)
    assert len(est.points) < 0.7 * len(full.points)
    ver = RecordingVerifier()
    plan = GraspPlanner(kin, None, ver, cameras=[CAMERA]).plan(est, [est])
    c = plan.chosen
    assert c is not None and c.source == "single_view" and c.reachable and c.verdict.passed
    assert 0.0 < c.p_success <= 1.0 and plan.counts["single_view"] >= 1 and "single_view" in plan.timing_ms
    assert c.open_width == pytest.approx(min(c.contact_width + 0.01, 0.08))  # as the quality model's trials open
    verified = ver.ests[0]
    assert verified.id == est.id and len(verified.points) > len(est.points)
    # the far side faces were inferred: points below the top near the faces that look away from the camera
    half = np.asarray(full.extents) / 2

    def far_side(points: np.ndarray) -> int:
        local = full.pose.inverse().transform_points(points)
        away = [(a, s) for a in (0, 1) for s in (-1.0, 1.0)
                if np.dot(full.pose.rotation.apply(np.eye(3)[a] * s), CAMERA - full.pose.position) < 0]
        low = local[:, 2] < half[2] - 0.01
        return int(sum(np.sum(low & (np.abs(local[:, a] - s * half[a]) < 0.004)
                              & (np.abs(local[:, 1 - a]) < half[1 - a] - 0.006)) for a, s in away))

    assert far_side(est.points) == 0 and far_side(verified.points) > 20
    assert verified.bottom_z < 0.01
    json.dumps(plan.record())
    for cameras in (None, [CAMERA, np.array([0.5, 0.8, 0.7])]):
        other = GraspPlanner(kin, None, None, cameras=cameras).plan(est, [est])
        assert other.counts["single_view"] == 0 and all(g.source != "single_view" for g in other.candidates)


def test_one_camera_candidates_keep_off_a_neighbour_and_repeat(kin):
    a = one_view(box_estimate("a", (0.5, 0.0), (0.04, 0.05, 0.06)))
    b = one_view(box_estimate("b", (0.5, 0.075), (0.05, 0.05, 0.08)))  # 5 cm gap to a's +y side
    planner = GraspPlanner(kin, cameras=[CAMERA], seed=2)
    cands, completed = planner.single_view_candidates(a, np.random.default_rng(0), scene=[a, b])
    assert cands and completed.id == "a"
    free = [g for g in cands if g.collision_free]
    assert free and all(g.rank >= h.rank for g, h in zip(free, free[1:], strict=False))
    # no collision-free candidate's open hand holds one of b's points
    from robot_wm.grasping.candidates import collision_free
    rot = np.stack([g.grasp.pose.rotation.as_matrix() for g in free])
    pos = np.stack([g.grasp.pose.position for g in free])
    assert collision_free(rot, pos, np.array([g.open_width for g in free]), b.points, planner.sampler_config).all()
    rec = []
    for _ in range(2):
        r = GraspPlanner(kin, cameras=[CAMERA], seed=2).plan(a, [a, b]).record()
        r.pop("timing_ms")
        rec.append(r)
    assert rec[0] == rec[1] and rec[0]["chosen"] is not None
    with pytest.raises(ValueError, match="cameras"):
        GraspPlanner(kin, cameras=[np.array([np.nan, 0.0, 1.0])])


# ---------------------------------------------------------------------------------------------- against a wall
def test_a_box_flush_against_a_wall_gets_grasps_that_lean_or_slide_away_from_it(kin):
    """A low box 1 mm from a 7 cm wall: gripped at its centre the 6.3 cm deep palm touches the wall, whichever
    way the fingers close (across the wall, a finger would go between the two). Tilted about the closing axis
    (along the wall), the palm leans away from it and the hand clears it."""
    target = box_estimate("t", (0.5, 0.0), (0.035, 0.057, 0.034))  # the wall runs along y at x = 0.5 - 0.0185
    wall = box_estimate("wall", (0.5 - 0.0185 - 0.01, 0.0), (0.02, 0.25, 0.07))
    wall = ObjectEstimate("wall", wall.pose, wall.extents, wall.points, fixed=True)
    centre_only = GraspPlannerConfig(box_slides=[0.0], box_tilts_deg=[], sources=["box"])
    planner = GraspPlanner(kin, config=centre_only)
    cands, _ = planner.candidates(target, [target, wall], np.random.default_rng(0))
    assert cands and not any(g.collision_free for g in cands)  # every top-down box grasp at the centre touches it
    tilted = GraspPlanner(kin, config=GraspPlannerConfig(sources=["box"])).tilted_box_candidates(
        target, planner._geometry(target, [target, wall]))
    free = [g for g in tilted if g.collision_free]
    assert free and all(math.radians(30) - 1e-9 <= g.tilt <= math.radians(45) + 1e-9 for g in tilted)
    for g in free:  # the palm (above the TCP, along -approach) leans away from the wall (towards +x)
        palm = g.grasp.pose.position - 0.08 * g.grasp.pose.rotation.apply([0.0, 0.0, 1.0])
        assert palm[0] > g.grasp.pose.position[0]
        closing = g.grasp.pose.rotation.apply([0.0, 1.0, 0.0])
        assert abs(closing[1]) > 0.99  # the same faces: closing along the wall, across the 5.7 cm side
    plan = GraspPlanner(kin, config=GraspPlannerConfig(sources=["box"])).plan(target, [target, wall])
    assert plan.chosen is not None and plan.chosen.collision_free and plan.chosen.reachable


def test_a_thin_box_against_a_wall_taller_than_the_palm_gets_an_escape_grasp(kin):
    """A 2.3 cm thick box 1 mm from a 6.4 cm wall (the hard suite's case): closing along the wall the 2.1 cm
    fingers pass 2 mm from it at the centre (inside the 3 mm margin), and 2.5 cm below the box's top the
    palm (4.7 cm above the TCP) is on the wall. The escape grasps slide away from the wall and rise until the
    palm clears it, keeping box_min_grip of the box between the pads; a box too low for that gets none."""
    target = box_estimate("t", (0.5, 0.0), (0.023, 0.053, 0.041))
    wall = box_estimate("wall", (0.5 - 0.0115 - 0.001 - 0.01, 0.0), (0.02, 0.23, 0.064))
    wall = ObjectEstimate("wall", wall.pose, wall.extents, wall.points, fixed=True)
    no_tilts = GraspPlannerConfig(sources=["box"], box_tilts_deg=[])
    planner = GraspPlanner(kin, config=no_tilts)
    cands, _ = planner.candidates(target, [target, wall], np.random.default_rng(0))
    assert cands and not any(g.collision_free for g in cands)
    geo = planner._geometry(target, [target, wall])
    escape = planner.escape_box_candidates(target, geo)
    free = [g for g in escape if g.collision_free]
    assert free and all(g.source == "box_escape" and g.tilt == 0.0 for g in escape)
    for g in free:
        p = g.grasp.pose.position
        assert p[0] > 0.5 + 0.001  # slid away from the wall (at -x)
        assert 0.064 + 0.003 - 0.0466 <= p[2] <= 0.041 - no_tilts.box_min_grip + 1e-9  # palm over the wall top
        assert abs(g.grasp.pose.rotation.apply([0.0, 1.0, 0.0])[1]) > 0.99  # closing along the wall
    plan = planner.plan(target, [target, wall])
    assert plan.chosen is not None and plan.chosen.source == "box_escape" and plan.chosen.reachable
    low = box_estimate("t", (0.5, 0.0), (0.023, 0.053, 0.025))  # its top 2.5 cm: no grip clears a 6.4 cm wall
    assert not any(g.collision_free for g in planner.escape_box_candidates(low, planner._geometry(low, [low, wall])))
    off = GraspPlanner(kin, config=no_tilts.model_copy(update={"box_min_grip": 0.0, "box_escape_slides": []}))
    assert not any(g.collision_free for g in off.escape_box_candidates(target, geo))


def test_an_upright_cylinder_against_a_wall_is_gripped_across_its_diameter_along_the_wall(kin):
    """A cylinder (r 1.3 cm) 1 mm from a 7.1 cm wall, its perceived box turned 40 deg (a round footprint's
    axes are arbitrary): both box axes point a finger's corner at the wall. The escape grasps also close in
    other directions every 15 deg; one along the wall clears it."""
    r, h = 0.013, 0.064
    ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    zs = np.linspace(-h / 2, h / 2, 16)
    side = np.array([[r * math.cos(a), r * math.sin(a), z] for a in ang for z in zs])
    top = np.array([[q * math.cos(a), q * math.sin(a), h / 2] for a in ang for q in (0.004, 0.008, 0.012)])
    pose = Pose([0.5, 0.0, h / 2], yaw_quat(math.radians(40)))
    target = ObjectEstimate("t", pose, np.array([2 * r, 2 * r, h]), pose.transform_points(np.r_[side, top]))
    wall = box_estimate("wall", (0.5 - r - 0.001 - 0.01, 0.0), (0.02, 0.25, 0.071))
    wall = ObjectEstimate("wall", wall.pose, wall.extents, wall.points, fixed=True)
    planner = GraspPlanner(kin, config=GraspPlannerConfig(sources=["box"], box_tilts_deg=[]))
    cands, _ = planner.candidates(target, [target, wall], np.random.default_rng(0))
    assert cands and not any(g.collision_free for g in cands)
    free = [g for g in planner.escape_box_candidates(target, planner._geometry(target, [target, wall]))
            if g.collision_free]
    assert free
    for g in free:
        closing = g.grasp.pose.rotation.apply([0.0, 1.0, 0.0])
        assert abs(closing[1]) > math.cos(math.radians(20))  # along the wall (y), give or take a turn
        assert g.contact_width == pytest.approx(2 * r)


def test_a_thin_box_against_a_wall_above_the_palm_is_gripped_leaning_away_and_slid_off_the_wall(kin):
    """The hard suite's case (dev scene 2002): a box 2.4 cm thick, 6.5 cm along a 7.7 cm wall, 3.5 cm tall.
    Top-down, the palm is on the wall wherever the fingers grip (raised to clear it they would hold 1 mm);
    leaning away from it, the palm clears the wall but the fingertips swing towards it, 13 mm from the TCP at
    30 deg — more than the box's half-thickness. Slid away from the wall along the end faces (a pad may hang
    half off them), the tilted grasp is free; it leans towards the robot, past the wrist's limit, so IK reaches
    it as its twin (turned half a turn about the approach)."""
    target = box_estimate("t", (0.6, -0.18), (0.065, 0.024, 0.035))
    wall = box_estimate("wall", (0.6, -0.18 - 0.012 - 0.001 - 0.01), (0.24, 0.02, 0.077))
    wall = ObjectEstimate("wall", wall.pose, wall.extents, wall.points, fixed=True)
    planner = GraspPlanner(kin, config=GraspPlannerConfig(sources=["box"]))
    geo = planner._geometry(target, [target, wall])
    cands, _ = planner.candidates(target, [target, wall], np.random.default_rng(0))
    escape = planner.escape_box_candidates(target, geo)
    assert cands and escape and not any(g.collision_free for g in cands + escape)
    tilted = [g for g in planner.tilted_box_candidates(target, geo) if g.collision_free]
    assert tilted
    for g in tilted:
        p = g.grasp.pose.position
        assert p[1] >= -0.18 + 0.004 - 1e-9  # slid off the wall (at -y) along the end faces
        assert abs(g.grasp.pose.rotation.apply([0.0, 1.0, 0.0])[0]) > 0.99  # closing along the wall
    plan = planner.plan(target, [target, wall])
    assert plan.chosen is not None and plan.chosen.reachable and plan.chosen.tilt >= math.radians(30) - 1e-9
    assert "twin" in plan.chosen.note
    q = kin.fk(plan.chosen.q)
    dp, dr = q.distance(plan.chosen.grasp.pose)
    assert dp < 1e-3 and dr < 0.01  # the joints reach the pose the candidate now carries


def test_a_grasp_and_its_twin_are_the_same_grasp_with_the_fingers_swapped():
    from robot_wm.planning.grasp_planner import twin_pose

    pose = Pose([0.5, 0.1, 0.02], [0.3, -0.2, 0.1, 0.9])
    twin = twin_pose(pose)
    a, b = pose.rotation.as_matrix(), twin.rotation.as_matrix()
    assert np.allclose(twin.position, pose.position)
    assert np.allclose(b[:, 2], a[:, 2])  # the same approach
    assert np.allclose(b[:, 1], -a[:, 1]) and np.allclose(b[:, 0], -a[:, 0])  # closing axis reversed
    assert np.allclose(twin_pose(twin).rotation.as_matrix(), a)


def test_the_chosen_grasp_carries_the_pre_grasp_joints_its_straight_approach_was_checked_from(kin):
    """What the controller executes is what the planner checked: it moves to `q_pre` and then in a straight
    line, and that line is feasible from `q_pre` (waypoint by waypoint, no IK branch flip) ending at `q`."""
    from robot_wm.sim.trajectory import TrajectoryPlanner

    est = box_estimate("b", (0.55, -0.1), (0.05, 0.04, 0.05), 0.4)
    plan = GraspPlanner(kin).plan(est, [est])
    c, action = plan.chosen, plan.pick_action()
    assert c is not None and action is not None
    assert action.q_pre is not None and np.array_equal(action.q_pre, c.q_pre)
    path = TrajectoryPlanner(kin).line_waypoints(c.q_pre, c.grasp.pose)
    assert path is not None and np.allclose(path[-1], c.q)
    pre = kin.fk(c.q_pre)
    dp, dr = pre.distance(Pose(c.grasp.pose.position - plan.approach * approach(c), c.grasp.pose.quaternion))
    assert dp < 1e-3 and dr < 0.01


def test_a_grasp_whose_straight_approach_is_infeasible_is_unreachable(kin, monkeypatch):
    """IK at the pre-grasp and at the grasp is not enough: with no straight line between them (a point on
    the way out of reach or an IK branch flip), the candidate — and its twin — is passed over."""
    from robot_wm.sim.trajectory import TrajectoryPlanner

    monkeypatch.setattr(TrajectoryPlanner, "line_waypoints", lambda self, q0, target, step=0.01: None)
    est = box_estimate("b", (0.55, -0.1), (0.05, 0.04, 0.05), 0.4)
    plan = GraspPlanner(kin).plan(est, [est])
    assert plan.chosen is None and plan.pick_action() is None
    checked = [g for g in plan.candidates if g.reachable is not None]
    assert checked and all(g.reachable is False and g.note == "unreachable (IK)" for g in checked)
    assert "straight approach" in plan.reason
