"""``robot-wm bench pick-place``: task success of the demo on the shipped scenes and on 20 random scenes
(seeds 0-19, 3-6 objects from the training set), for every available perception mode."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from tqdm import tqdm

from robot_wm.config import REPO_SCENES_DIR, load_scene, scene_from_dict
from robot_wm.config.random_scene import random_scene
from robot_wm.control.demo import PERCEPTION_MODES, run_demo

RANDOM_SEEDS = range(20)


def random_scene_set(seeds=RANDOM_SEEDS):
    """The benchmark's random scenes: seed s has 3 + s % 4 objects (3-6)."""
    return [scene_from_dict(random_scene(s, 3 + s % 4), f"random_s{s}", REPO_SCENES_DIR) for s in seeds]


def run(scenes: list[Path] | None, seed: int, quick: bool) -> dict[str, Any]:
    named = [load_scene(p).with_seed(seed) for p in scenes] if scenes else [
        load_scene(REPO_SCENES_DIR / f"{n}.yaml").with_seed(seed) for n in ("two_blocks", "clutter")]
    randoms = [] if scenes else random_scene_set(range(5) if quick else RANDOM_SEEDS)
    out: dict[str, Any] = {}
    for mode in PERCEPTION_MODES:
        for sc in tqdm(named, desc=f"{mode}: scenes", leave=False):
            out[f"{mode}_success_{sc.name}"] = run_demo(sc, mode, controller="scripted")["success_rate"]
        if randoms:
            reports = [run_demo(sc, mode, controller="scripted")
                       for sc in tqdm(randoms, desc=f"{mode}: random scenes", leave=False)]
            placed, total = sum(r["placed"] for r in reports), sum(r["objects"] for r in reports)
            out[f"{mode}_success_random{len(randoms)}"] = placed / total
            out[f"{mode}_scenes_fully_cleared_random{len(randoms)}"] = sum(r["placed"] == r["objects"] for r in reports)
            out[f"{mode}_wall_s_per_scene_median"] = statistics.median(r["plan_wall_s"] for r in reports)
    return out
