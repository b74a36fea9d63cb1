"""Running data collection into a folder: episodes (:func:`robot_wm.model.collect.run_episode`) grouped into
shards, run in this process, a local process pool or on Ray, written as they finish (format:
:mod:`robot_wm.model.dataset`), resumable. Every episode draws from its own seed, so the data do not
depend on the number of workers, the backend, or on resuming."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from robot_wm.config.errors import ConfigError
from robot_wm.config.processes import single_threaded_workers, worker_init
from robot_wm.model.collect import CollectConfig, run_episode
from robot_wm.model.dataset import (
    pack_shard,
    read_manifest,
    read_shard,
    shard_path,
    write_manifest,
    write_shard,
)


def run_shard(cfg: CollectConfig, shard: int, n_episodes: int) -> dict[str, np.ndarray]:
    """Episodes [shard*E, min((shard+1)*E, n_episodes)) concatenated into one shard's arrays."""
    lo = shard * cfg.episodes_per_shard
    hi = min(lo + cfg.episodes_per_shard, n_episodes)
    return pack_shard([run_episode(cfg, e) for e in range(lo, hi)], lo)


def _shard_job(args: tuple[dict, int, int]) -> tuple[int, dict[str, np.ndarray]]:
    cfg, shard, n = args
    return shard, run_shard(CollectConfig(**cfg), shard, n)


def resume_state(out: Path, episodes: int, cfg: CollectConfig) -> tuple[dict, list[int]]:
    """What collecting `episodes` episodes of `cfg` into `out` would resume from: the manifest (new if there
    is none) and the shards still to do. Every shard the manifest lists as done is checked first (a corrupt,
    truncated or empty one raises ConfigError naming the file); a folder of another config raises
    ValueError. Call it before starting work to report a bad folder at once."""
    manifest = read_manifest(out)
    if manifest is not None and manifest["config"] != asdict(cfg):
        raise ValueError(f"{out}: holds data collected with a different config ({manifest['config']}); "
                         "use another --out or the same options")
    if manifest is None:
        manifest = {"config": asdict(cfg), "episodes": episodes, "shards": {}}
    if manifest.get("episodes", episodes) != episodes:
        # more (or fewer) episodes: shards that no longer end at a shard boundary are redone
        e = cfg.episodes_per_shard
        keep = min(manifest["episodes"], episodes) // e
        manifest["shards"] = {k: v for k, v in manifest["shards"].items() if int(k) < keep}
    manifest["episodes"] = episodes
    n_shards = -(-episodes // cfg.episodes_per_shard)
    todo = [s for s in range(n_shards) if str(s) not in manifest["shards"] or not shard_path(out, s).is_file()]
    for s in range(n_shards):
        if s not in todo:
            _check_done_shard(out, s, manifest["shards"][str(s)], cfg, episodes)
    return manifest, todo


def collect(out: Path, episodes: int, cfg: CollectConfig, workers: int = 1, backend: str = "local",
            progress: Callable[[int], None] | None = None) -> dict:
    """Collect `episodes` episodes into `out` (resuming whatever shards are already there) with `workers`
    processes of `backend` ('local': a process pool, or this process for 1 worker; 'ray'); `progress(n)`
    is told the episodes already there, then each shard's as it is written.

    Raises ValueError when `out` holds data collected with a different config.
    Returns the manifest.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifest, todo = resume_state(out, episodes, cfg)
    n_shards = -(-episodes // cfg.episodes_per_shard)
    done_eps = sum(v["episodes"] for k, v in manifest["shards"].items() if int(k) < n_shards)
    if progress:
        progress(done_eps)
    t0 = time.time()
    jobs = [(asdict(cfg), s, episodes) for s in todo]
    for shard, arrays in _run_jobs(jobs, workers, backend):
        write_shard(out, shard, arrays)
        n_ep = len(arrays["scene_episode"])
        manifest["shards"][str(shard)] = {"file": shard_path(out, shard).name, "episodes": n_ep,
                                          "transitions": len(arrays["action"])}
        write_manifest(out, manifest)
        if progress:
            progress(n_ep)
    manifest["shards"] = {k: v for k, v in manifest["shards"].items() if int(k) < n_shards}
    manifest["transitions"] = sum(v["transitions"] for v in manifest["shards"].values())
    manifest["wall_s_last_run"] = round(time.time() - t0, 1)
    write_manifest(out, manifest)
    return manifest


def _check_done_shard(out: Path, shard: int, entry: dict, cfg: CollectConfig, episodes: int) -> None:
    """Refuse to resume over a shard the manifest lists as done that is not what collecting it would have
    written (unreadable, truncated, empty, other episodes): ConfigError naming the file."""
    f = shard_path(out, shard)
    lo = shard * cfg.episodes_per_shard
    want = list(range(lo, min(lo + cfg.episodes_per_shard, episodes)))
    try:
        if entry["file"] != f.name:
            raise ConfigError(str(out / "manifest.json"), f"shards.{shard}.file", f"expected {f.name!r} "
                              f"(got {entry['file']!r})")
        arrays = read_shard(f)
        if arrays["scene_episode"].tolist() != want or entry["episodes"] != len(want):
            raise ConfigError(str(f), "scene_episode", f"holds episodes {arrays['scene_episode'].tolist()}, "
                              f"shard {shard} is episodes {want}")
        if entry["transitions"] != len(arrays["action"]):
            raise ConfigError(str(f), "action", f"holds {len(arrays['action'])} transitions, manifest.json "
                              f"says {entry['transitions']}")
    except ConfigError as exc:
        raise ConfigError(exc.source, exc.path, f"{exc.message}; delete it (and its manifest entry) to collect "
                          "that shard again") from None


def _run_jobs(jobs: list, workers: int, backend: str) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
    """(shard, arrays) of each job as it finishes: on Ray, in a spawned process pool, or here (1 worker)."""
    if backend == "ray":
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        try:
            remote = ray.remote(_shard_job)
            pending = [remote.remote(j) for j in jobs]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                yield ray.get(ready[0])
        finally:
            ray.shutdown()
        return
    if workers <= 1:
        for j in jobs:
            yield _shard_job(j)
        return
    ctx = multiprocessing.get_context("spawn")
    with single_threaded_workers(), ctx.Pool(workers, initializer=worker_init, initargs=(os.getpid(),)) as pool:
        yield from pool.imap_unordered(_shard_job, jobs)  # leaving the block (also on Ctrl-C) terminates the pool


__all__ = ["collect", "resume_state", "run_shard"]
