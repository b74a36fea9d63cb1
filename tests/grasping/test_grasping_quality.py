"""The grasp-quality model (robot_wm.grasping.quality): features (shapes, units, invariances), the model file
(round trip, one-line errors), deterministic ranking, and learning a known rule from synthetic labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robot_wm.config import ConfigError
from robot_wm.geometry import Pose, panda, top_down_quaternion
from robot_wm.grasping import Grasp
from robot_wm.grasping import quality as q

BASE = np.zeros(3)
REACH_FEATURES = {"reach", "radial_approach"}  # the only ones that depend on where the robot stands


def _box_cloud(size: tuple[float, float, float], centre: tuple[float, float], rng: np.random.Generator,
               spacing: float = 0.008) -> np.ndarray:
    """Points on the surface of a box standing on the table (z from 0), spaced more than a feature voxel's
    diagonal apart (so downsampling keeps every point), jittered so that no two distances tie."""
    sx, sy, sz = size
    axes = [np.arange(spacing / 2, s, spacing) - s / 2 for s in (sx, sy)] + [np.arange(spacing / 2, sz, spacing)]
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([gx, gy, gz], -1).reshape(-1, 3)
    lo, hi = pts.min(0), pts.max(0)
    on_surface = np.any(np.isclose(pts, lo) | np.isclose(pts, hi), axis=1)
    pts = pts[on_surface] + rng.uniform(-5e-4, 5e-4, (int(on_surface.sum()), 3))
    return pts + [centre[0], centre[1], 0.0]


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, list[Grasp]]:
    cloud = _box_cloud((0.05, 0.03, 0.06), (0.5, 0.05), rng)
    c = cloud.mean(0)
    grasps = [Grasp(Pose(c, top_down_quaternion(np.pi / 2)), 0.04, 0.3),         # closing along world x (5 cm)
              Grasp(Pose(c, top_down_quaternion(0.0)), 0.02, 0.2),                # along world y (3 cm)
              Grasp(Pose(c + [0.0, 0.0, 0.01], (Rotation.from_euler("y", 0.6) * Rotation.from_euler("x", np.pi)
                                                 * Rotation.from_euler("z", np.pi / 2)).as_quat()), 0.035, 0.1)]
    return cloud, grasps


def _moved(cloud: np.ndarray, grasps: list[Grasp], angle: float, pivot: np.ndarray) -> tuple[np.ndarray, list[Grasp]]:
    """Cloud and grasps turned by `angle` about the vertical axis through `pivot` (3,)."""
    r = Rotation.from_euler("z", angle)
    move = Pose(pivot - r.apply(pivot), r.as_quat())
    return move.transform_points(cloud), [g.transformed(move) for g in grasps]


def test_features_have_the_documented_shape_and_units() -> None:
    cloud, grasps = _scene(np.random.default_rng(0))
    f = q.grasp_features(grasps, cloud, np.array([0.3, np.nan, 0.1]))
    assert f.shape == (len(grasps), q.N_FEATURES) == (3, len(q.FEATURES))
    assert np.all(np.isfinite(f))
    col = {n: f[:, i] for i, n in enumerate(q.FEATURES)}
    widths = np.array([g.width for g in grasps])
    np.testing.assert_allclose(col["opening"], np.minimum(widths + q.OPENING_CLEARANCE, panda.MAX_OPENING))
    # top-down: no tilt, horizontal closing axis; the tilted one is tilted by its 0.6 rad
    np.testing.assert_allclose(col["approach_tilt"][:2], 0.0, atol=1e-6)
    assert abs(col["approach_tilt"][2] - 0.6) < 1e-6
    np.testing.assert_allclose(col["closing_vertical"][:2], 0.0, atol=1e-6)
    # the cloud's extent across the closing axis is the box side the fingers close on; the 3 cm side fits the
    # second grasp's 3 cm opening
    np.testing.assert_allclose(col["extent_y"][:2], np.ptp(cloud[:, :2], axis=0), atol=1e-6)
    assert col["span_ratio"][1] < 1.0
    # heights above the table (m): the TCP at the cloud centroid, the object's top at its highest point
    np.testing.assert_allclose(col["object_height"], cloud[:, 2].max())
    np.testing.assert_allclose(col["tcp_height"][:2], cloud.mean(0)[2])
    assert np.all(col["tip_height"] < col["tcp_height"])
    # the sampler's score only where it proposed the grasp
    np.testing.assert_array_equal(col["sampled"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(col["prior"], [0.3, 0.0, 0.1])
    # a finger on the object: the same grasp closing along the 5 cm side with a 3 cm opening
    narrow = q.grasp_features([Grasp(grasps[0].pose, 0.02, 0.0)], cloud)[0]
    assert narrow[q.FEATURES.index("span_ratio")] > 1.0 and narrow[q.FEATURES.index("finger_points")] > 0.0
    assert q.grasp_features([], cloud).shape == (0, q.N_FEATURES)
    with pytest.raises(ConfigError, match="cloud"):
        q.grasp_features(grasps, np.zeros((5, 2)))


@pytest.mark.parametrize("angle", [0.7, -2.0])
def test_features_are_invariant_to_turning_the_scene_about_a_vertical_axis(angle: float) -> None:
    cloud, grasps = _scene(np.random.default_rng(1))
    prior = np.array([0.3, np.nan, 0.1])
    ref = q.grasp_features(grasps, cloud, prior)
    # about the robot base's vertical axis: every feature
    c2, g2 = _moved(cloud, grasps, angle, BASE)
    np.testing.assert_allclose(q.grasp_features(g2, c2, prior), ref, atol=1e-6)
    # about the object's own vertical axis: every feature but where the object stands relative to the robot
    c3, g3 = _moved(cloud, grasps, angle, cloud.mean(0))
    moved = q.grasp_features(g3, c3, prior)
    keep = [i for i, n in enumerate(q.FEATURES) if n not in REACH_FEATURES]
    np.testing.assert_allclose(moved[:, keep], ref[:, keep], atol=1e-6)
    assert not np.allclose(moved, ref, atol=1e-6)


def _synthetic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features around plausible values; success iff the object fits the opening (span_ratio < 1), 10 % of
    the labels flipped; 40 groups."""
    x = rng.normal(size=(n, q.N_FEATURES)) * 0.05 + 0.1
    span = rng.uniform(0.5, 1.5, n)
    x[:, q.FEATURES.index("span_ratio")] = span
    y = (span < 1.0) ^ (rng.uniform(size=n) < 0.1)
    return x, y.astype(float), rng.integers(0, 40, n)


@pytest.fixture(scope="module")
def synthetic_model() -> q.QualityModel:
    x, y, groups = _synthetic(np.random.default_rng(0), 600)
    return q.train_quality_model(x, y, groups, seed=0, members=2, hidden=16, epochs=150, lr=1e-2)


def test_model_learns_that_an_object_wider_than_the_opening_fails(synthetic_model: q.QualityModel) -> None:
    x = np.tile(synthetic_model.mean, (2, 1))
    x[:, q.FEATURES.index("span_ratio")] = [0.8, 1.2]
    fits, too_wide = synthetic_model.probability(x)
    assert fits > 0.5 > too_wide
    # cross-fitted calibration: out-of-fold probabilities of every sample, their AUC / ECE recorded
    info = synthetic_model.info
    assert info["calibration_folds"] == 4 and info["calibration_samples"] == 600
    assert info["cv_auc"] > 0.8 and 0.0 <= info["calibration_ece"] < 0.1
    assert synthetic_model.platt != (1.0, 0.0)
    # the same seed and data give the same model
    again = q.train_quality_model(*_synthetic(np.random.default_rng(0), 600), seed=0, members=2, hidden=16,
                                  epochs=150, lr=1e-2)
    np.testing.assert_array_equal(again.probability(x), synthetic_model.probability(x))


def test_a_grasp_with_nothing_between_its_pads_has_no_chance(synthetic_model: q.QualityModel) -> None:
    cloud, grasps = _scene(np.random.default_rng(8))
    above = Grasp(Pose(cloud.mean(0) + [0.0, 0.0, 0.2], top_down_quaternion(0.0)), 0.04, 0.0)  # 20 cm over it
    f = q.grasp_features([grasps[0], above], cloud)
    assert f[1, q.FEATURES.index("grip_points")] == 0.0 < f[0, q.FEATURES.index("grip_points")]
    p = synthetic_model.probability(f)
    assert p[1] == 0.0 and p[0] > 0.0


def test_model_file_round_trips(synthetic_model: q.QualityModel, tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    synthetic_model.save(path)
    back = q.QualityModel.load(path)
    x = np.random.default_rng(2).normal(size=(7, q.N_FEATURES))
    np.testing.assert_allclose(back.probability(x), synthetic_model.probability(x), atol=1e-5)
    assert back.platt == pytest.approx(synthetic_model.platt) and back.info == synthetic_model.info


def test_auc_counts_ordered_pairs() -> None:
    assert q._auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert np.isnan(q._auc(np.array([0.1, 0.2]), np.array([1, 1])))


def _one_line_error(path, field: str | None = None) -> None:
    with pytest.raises(ConfigError) as err:
        q.QualityModel.load(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    if field:
        assert field in msg


def test_bad_model_files_give_one_line_errors(synthetic_model: q.QualityModel, tmp_path) -> None:
    from safetensors.numpy import save_file

    _one_line_error(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04not a safetensors file at all" * 10)
    _one_line_error(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    _one_line_error(foreign, "robot_wm")
    good = tmp_path / "good.safetensors"
    synthetic_model.save(good)
    tensors = {k: getattr(synthetic_model, k).astype(np.float32) for k in ("w1", "b1", "w2", "b2", "w3", "b3",
                                                                             "mean", "std")}
    for field, header in (("format", {**synthetic_model.header(), "format": "robot_wm.world_model"}),
                          ("version", {**synthetic_model.header(), "version": 999}),
                          ("features", {**synthetic_model.header(), "features": ["a", "b"]})):
        bad = tmp_path / f"bad_{field}.safetensors"
        save_file(tensors, str(bad), metadata={"robot_wm": json.dumps(header)})
        _one_line_error(bad, field)
    short = tmp_path / "short.safetensors"
    save_file({**tensors, "w1": tensors["w1"][:, :3]}, str(short),
              metadata={"robot_wm": json.dumps(synthetic_model.header())})
    _one_line_error(short, "w1")


def test_ranking_is_deterministic_and_scores_are_probabilities(synthetic_model: q.QualityModel) -> None:
    cloud, grasps = _scene(np.random.default_rng(3))
    grasps = grasps + [grasps[0]]  # a duplicate: the tie keeps the input order
    a = q.rank_grasps(grasps, cloud, synthetic_model)
    b = q.rank_grasps(grasps, cloud, synthetic_model)
    assert [(g.pose.position.tolist(), g.width, g.score) for g in a] == [(g.pose.position.tolist(), g.width, g.score)
                                                                         for g in b]
    # ordered by the robust score, each grasp's own P(success) as its score
    p, robust = q.robust_scores(synthetic_model, grasps, cloud, np.array([g.score for g in grasps]))
    order = np.argsort(-robust, kind="stable")
    assert [g.score for g in a] == pytest.approx(p[order].tolist())
    assert all(0.0 <= g.score <= 1.0 for g in a)
    assert q.rank_grasps([], cloud, synthetic_model) == []


def test_robust_score_is_the_mean_over_the_pose_stencil(synthetic_model: q.QualityModel) -> None:
    cloud, grasps = _scene(np.random.default_rng(6))
    prior = np.array([0.3, np.nan, 0.1])
    off, turns = q.pose_stencil()
    assert off.shape == (13, 3) and turns.shape == (13, 3, 3)
    np.testing.assert_allclose(off[0], 0.0) and np.testing.assert_allclose(turns[0], np.eye(3))
    assert sorted(np.round(np.abs(off).sum(1), 6).tolist()) == [0.0] * 7 + [q.ROBUST_STEP] * 6
    p, robust = q.robust_scores(synthetic_model, grasps, cloud, prior, top=2)
    np.testing.assert_allclose(p, synthetic_model.probability(q.grasp_features(grasps, cloud, prior)))
    best = np.argsort(-p, kind="stable")
    for i in best[:2]:  # the mean P over the grasp moved and turned in its own frame
        g = grasps[i]
        r = g.pose.rotation.as_matrix()
        moved = [Grasp(Pose(g.pose.position + r @ o, Rotation.from_matrix(r @ t).as_quat()), g.width, 0.0)
                 for o, t in zip(off, turns, strict=True)]
        expect = synthetic_model.probability(q.grasp_features(moved, cloud, np.full(13, prior[i]))).mean()
        assert robust[i] == pytest.approx(expect)
    assert robust[best[2]] == pytest.approx(p[best[2]] - 1.0)  # beyond `top`: after the others, by P


class _PeakModel:
    """P(success) from the TCP height alone: 0.99 within 1 mm of 3 cm (a lone peak), 0.95 from 5 to 8 cm
    (a plateau), 0.1 elsewhere."""

    def probability(self, features: np.ndarray) -> np.ndarray:
        h = features[:, q.FEATURES.index("tcp_height")]
        return np.where(np.abs(h - 0.03) < 0.001, 0.99, np.where((h > 0.05) & (h < 0.08), 0.95, 0.1))


def test_ranking_prefers_a_plateau_to_a_lone_peak() -> None:
    cloud = _box_cloud((0.04, 0.04, 0.10), (0.5, 0.0), np.random.default_rng(7))
    peak, plateau = (Grasp(Pose([0.5, 0.0, h], top_down_quaternion(0.0)), 0.03, 0.0) for h in (0.03, 0.065))
    p, robust = q.robust_scores(_PeakModel(), [peak, plateau], cloud)
    assert p[0] > p[1] and robust[1] > robust[0]
    ranked = q.rank_grasps([peak, plateau], cloud, _PeakModel())
    assert ranked[0].pose.position[2] == pytest.approx(0.065) and ranked[0].score == pytest.approx(0.95)


def test_topdown_candidates_point_down_and_keep_the_fingertips_off_the_table() -> None:
    cloud, _ = _scene(np.random.default_rng(4))
    flat = cloud[cloud[:, 2] < 0.012]  # a low object: both heights clamp to the same one
    for pts in (cloud, flat):
        g = q.topdown_grasps(pts, np.random.default_rng(0), yaws=6)
        assert len(g) in (6, 12)
        assert all(np.allclose(x.approach, [0.0, 0.0, -1.0]) and x.width == panda.MAX_OPENING for x in g)
        f = q.grasp_features(g, pts)
        assert np.all(f[:, q.FEATURES.index("tip_height")] > 0.0)


def test_shipped_model_loads_and_ranks() -> None:
    model = q.QualityModel.load()
    cloud, grasps = _scene(np.random.default_rng(5))
    ranked = q.rank_grasps(grasps, cloud, model)
    assert len(ranked) == len(grasps) and all(0.0 <= g.score <= 1.0 for g in ranked)
    assert model.info["samples"] > 0


def test_cli_rejects_bad_arguments_with_status_2(tmp_path, capsys) -> None:
    from robot_wm.cli.main import main

    assert main(["grasp-quality", "train", "--out", str(tmp_path / "m.txt")]) == 2
    assert main(["grasp-quality", "train", "--objects", "0", "--out", str(tmp_path / "m.safetensors")]) == 2
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    assert main(["grasp-quality", "train", "--guide", str(bad), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert main(["grasp-quality", "train", "--kind", "lying", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert main(["grasp-quality", "train", "--repeats", "0", "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5 and all(line.startswith("error: ") for line in err)
