"""``robot-wm bench planning``: does the shadow world — built from perception alone — predict whether a grasp
holds on the real object?

Each held-out object (random_urdfs 700-999, scale 0.6, alone on the table) is perceived with the demo's
cameras; top-down grasps from its estimate and deliberately worse variants (off-centre, shallow) are
shake-tested twice: in the shadow world (perceived hull, pessimistic mass and friction) and on the true
object (true mesh, pose, mass and friction). Both use the same robust criterion. Reported in the same run:
the shadow built from the perceived box only, and no verification at all (the base rate).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robot_wm.config import REPO_SCENES_DIR, scene_from_dict
from robot_wm.config.object_sets import HELDOUT_URDF_IDS, random_urdf_path
from robot_wm.config.random_scene import object_entry, scene_mapping
from robot_wm.control.rgbd_estimator import RgbdEstimator
from robot_wm.geometry import Pose
from robot_wm.grasping import Grasp, ObjectModel, load_shake_config, robust_shake_test
from robot_wm.perception.estimate import ObjectEstimate
from robot_wm.planning import ShadowVerifier
from robot_wm.planning.box_grasps import TopDownGrasp, top_down_grasps
from robot_wm.sim import World

SCALE = 0.6
TRIALS = 3


def _variants(g: TopDownGrasp) -> list[Grasp]:
    """The grasp itself, off-centre along the palm (TCP x) by 1.5 and 3 cm, and 2 cm shallower."""
    rot = g.pose.rotation.as_matrix()
    out = [Grasp(g.pose, g.contact_width)]
    for dx in (0.015, 0.03):
        out.append(Grasp(Pose(g.pose.position + dx * rot[:, 0], g.pose.quaternion), g.contact_width))
    out.append(Grasp(Pose(g.pose.position + [0, 0, 0.02], g.pose.quaternion), g.contact_width))
    return out


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def run(scenes: list[Path] | None, seed: int, quick: bool) -> dict[str, Any]:
    ids = list(HELDOUT_URDF_IDS)[:: 50 if quick else 10]
    cfg = load_shake_config()
    hull_v = ShadowVerifier(cfg, trials=TRIALS, seed=seed)
    box_v = ShadowVerifier(cfg, trials=TRIALS, seed=seed)
    rows: list[tuple[bool, bool, bool]] = []  # (true holds, hull shadow passes, box shadow passes)
    verify_s: list[float] = []
    for i in tqdm(ids, desc="bench planning", leave=False):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        yaw = float(rng.uniform(-np.pi, np.pi))
        data = scene_mapping(f"heldout_{i}", [object_entry("target", [0.52, 0.05, 0.06], yaw, urdf=random_urdf_path(i),
                                                           scale=SCALE, mass=0.1)], seed=seed)
        with World(scene_from_dict(data, data["name"], REPO_SCENES_DIR)) as world:
            ests = [e for e in RgbdEstimator().estimate(world.observe()) if not e.fixed]
            true_pose = world.object_pose("target")
            info = world.objects["target"]
        if not ests:
            continue
        est = min(ests, key=lambda e: np.linalg.norm(e.pose.position[:2] - true_pose.position[:2]))
        box_est = ObjectEstimate(est.id, est.pose, est.extents)  # same estimate without its points
        truth_model = ObjectModel(str(i), urdf=str(world.scene.urdf_paths["target"]), scale=SCALE,
                                  mass=info.mass, friction=info.friction)
        for k, g in enumerate(g for base in top_down_grasps(est) for g in _variants(base)):
            t0 = time.perf_counter()
            hull = hull_v.verify(est, g).passed
            verify_s.append(time.perf_counter() - t0)
            box = box_v.verify(box_est, g).passed
            truth = robust_shake_test(truth_model, g, np.random.SeedSequence([seed, i, k]), true_pose, cfg,
                                      trials=TRIALS).success_rate >= hull_v.min_success
            rows.append((truth, hull, box))
    truth = np.array([r[0] for r in rows], bool)
    hull = np.array([r[1] for r in rows], bool)
    box = np.array([r[2] for r in rows], bool)
    return {
        "objects": len(ids),
        "grasps": len(rows),
        "true_success_rate_unverified": float(truth.mean()) if len(rows) else float("nan"),
        "shadow_precision": _ratio(int((truth & hull).sum()), int(hull.sum())),
        "shadow_recall": _ratio(int((truth & hull).sum()), int(truth.sum())),
        "shadow_agreement": float((truth == hull).mean()) if len(rows) else float("nan"),
        "box_shadow_precision": _ratio(int((truth & box).sum()), int(box.sum())),
        "box_shadow_recall": _ratio(int((truth & box).sum()), int(truth.sum())),
        "box_shadow_agreement": float((truth == box).mean()) if len(rows) else float("nan"),
        "verify_ms_median": statistics.median(verify_s) * 1e3 if verify_s else float("nan"),
        "verify_trials": TRIALS,
    }
