"""Offline grasp-stability evaluation: many objects x many grasps, shake-tested on a process pool or Ray.

Work unit = one object: sample (or take the given) grasps, shake-test each. Every finished unit is
written by the driver as one shard file (temp file + atomic rename) under ``DIR/shards/``; a restarted
run with the same arguments skips finished shards, so no row is lost or duplicated. When all units are
done, the shards are merged (in object order) into ``DIR/trials.jsonl`` and ``DIR/trials.csv``, and
``DIR/summary.json`` and the plots are written.

Determinism: object i's draws come from ``SeedSequence(seed, spawn_key=(crc32(name),))``, and the
judge has no randomness (the ``arm_table`` protocol builds one fresh world per object and resets it before
every trial), so labels do not depend on the worker count, the backend, or which objects were evaluated
before.

The judge is the config's ``protocol``: ``free_hand`` (:func:`~robot_wm.grasping.shake.shake_test`) or
``arm_table`` (:func:`~robot_wm.grasping.shake.arm_table_trials`; rows gain :data:`ARM_TABLE_FIELDS` and
labels ``table_collision``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robot_wm.config import ConfigError
from robot_wm.config.processes import single_threaded_workers, terminate_executor, worker_init
from robot_wm.geometry import Pose
from robot_wm.grasping.candidates import SamplerConfig, sample_grasps
from robot_wm.grasping.config import ShakeConfig
from robot_wm.grasping.grasp import Grasp
from robot_wm.grasping.objects import surface_points
from robot_wm.grasping.shake import arm_table_trials, shake_test
from robot_wm.sim.hand import ObjectModel

log = logging.getLogger(__name__)

ROW_FIELDS = ("object", "grasp", "width", "score", "label", "slip", "max_slip", "closed_width",
              "position", "quaternion")
# extra row fields of the arm_table protocol: object rise (m) and peak robot-table force (N, approach to lift)
# of the trial, and the object's pose (world) at the start of every trial
ARM_TABLE_FIELDS = ("rise", "max_table_force", "object_position", "object_quaternion")
SURFACE_POINTS = 2000


class RunMismatch(ValueError):
    """DIR holds a run made with different arguments."""


@dataclass(frozen=True)
class Unit:
    """One object's work: `grasps` None = sample `n_grasps` from the object's geometry."""

    index: int
    obj: ObjectModel
    n_grasps: int
    grasps: tuple[Grasp, ...] | None

    @property
    def shard(self) -> str:
        return f"{self.index:05d}_{self.obj.name}.jsonl"


def object_seed(seed: int, name: str) -> np.random.SeedSequence:
    """Seed sequence of one object, independent of the other objects and of the order of evaluation."""
    return np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))


def sample_object_grasps(obj: ObjectModel, n: int, seed: int) -> list[Grasp]:
    """`n` collision-free antipodal grasps (object frame) drawn uniformly from the object's candidates."""
    rng = np.random.default_rng(object_seed(seed, obj.name))
    pts, nrm = surface_points(obj, SURFACE_POINTS, rng)
    cands = sample_grasps(pts, rng, nrm, None, SamplerConfig(num_contacts=120, table_z=None))
    if len(cands) <= n:
        return cands
    pick = np.sort(rng.choice(len(cands), n, replace=False))
    return [cands[i] for i in pick]


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def row_fields(config: ShakeConfig) -> tuple[str, ...]:
    """Columns of ``trials.csv`` (and keys of each ``trials.jsonl`` row) under the config's protocol."""
    return ROW_FIELDS + (ARM_TABLE_FIELDS if config.protocol == "arm_table" else ())


def run_unit(unit: Unit, seed: int, config: ShakeConfig) -> list[dict[str, Any]]:
    """Judge one object's grasps under the config's protocol; one row per trial."""
    grasps = list(unit.grasps) if unit.grasps is not None else sample_object_grasps(unit.obj, unit.n_grasps, seed)
    if config.protocol == "arm_table":
        start, results = arm_table_trials(unit.obj, grasps, config, seed)
        return [{"object": unit.obj.name, "grasp": i, "width": g.width, "score": g.score, "label": r.label,
                 "slip": _num(r.slip), "max_slip": None, "closed_width": _num(r.closed_width),
                 "position": g.pose.position.tolist(), "quaternion": g.pose.quaternion.tolist(),
                 "rise": _num(r.rise), "max_table_force": r.max_table_force,
                 "object_position": start.position.tolist(), "object_quaternion": start.quaternion.tolist()}
                for i, (g, r) in enumerate(zip(grasps, results, strict=True))]
    rows = []
    obj_pose = Pose(config.arm.object_position, [0, 0, 0, 1]) if config.arm.enabled else None
    for i, g in enumerate(grasps):
        r = shake_test(unit.obj, g if obj_pose is None else g.transformed(obj_pose), obj_pose, config)
        rows.append({"object": unit.obj.name, "grasp": i, "width": g.width, "score": g.score, "label": r.label,
                     "slip": _num(r.slip), "max_slip": _num(r.max_slip), "closed_width": _num(r.closed_width),
                     "position": g.pose.position.tolist(), "quaternion": g.pose.quaternion.tolist()})
    return rows


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _fingerprint(units: list[Unit], seed: int, config: ShakeConfig) -> dict[str, Any]:
    h = hashlib.sha256()
    for u in units:
        h.update(json.dumps([u.index, asdict(u.obj), u.n_grasps,
                             None if u.grasps is None else [g.to_dict() for g in u.grasps]], sort_keys=True).encode())
    # free_hand: the protocol keys are left out, so run folders from before they existed still resume
    skip = {"protocol", "arm_table"} if config.protocol == "free_hand" else None
    return {"seed": seed, "objects": [u.obj.name for u in units], "units_sha256": h.hexdigest(),
            "config": config.model_dump(mode="json", exclude=skip)}


# ---------------------------------------------------------------------------- backends
def _local(units: list[Unit], seed: int, config: ShakeConfig, workers: int) -> Iterator[tuple[Unit, list]]:
    if workers <= 1:
        for u in units:
            yield u, run_unit(u, seed, config)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = None
    try:
        with single_threaded_workers():  # the workers start at submit: inside the block
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init,
                                       initargs=(os.getpid(),))
            pending = {pool.submit(run_unit, u, seed, config): u for u in units}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield pending.pop(f), f.result()
    except BaseException:  # Ctrl-C, a failed unit, the caller closing the generator: stop the workers now
        if pool is not None:
            terminate_executor(pool)
        raise
    pool.shutdown(wait=True)


def _ray(units: list[Unit], seed: int, config: ShakeConfig, workers: int,
         address: str | None) -> Iterator[tuple[Unit, list]]:
    try:
        import ray
    except ImportError:
        raise RuntimeError("the ray backend needs Ray: pip install 'robot-wm[ray]'") from None
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=max(1, workers), **kwargs)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(run_unit)
        cfg_ref = ray.put(config)
        refs = {remote.remote(u, seed, cfg_ref): u for u in units}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for r in done:
                yield refs.pop(r), ray.get(r)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------------- driver
def evaluate(objects: list[ObjectModel], out: Path, config: ShakeConfig, seed: int = 0,
             grasps_per_object: int = 20, given: dict[str | None, list[Grasp]] | None = None,
             workers: int = 1, backend: str = "local", ray_address: str | None = None,
             progress: bool = True, plots: bool = True) -> dict[str, Any]:
    """Run (or resume) an evaluation into `out`; returns the summary (also written to summary.json).

    `given`: grasps from a file ({object name or None: grasps}, object frame) instead of sampling.
    """
    units = []
    for i, obj in enumerate(objects):
        gs = None
        if given is not None:
            gs = given.get(obj.name, given.get(None))
            if gs is None:
                raise RunMismatch(f"--grasps: the grasp file has no grasps for object {obj.name!r}")
            gs = tuple(gs)
        units.append(Unit(i, obj, len(gs) if gs is not None else grasps_per_object, gs))
    out.mkdir(parents=True, exist_ok=True)
    shards = out / "shards"
    shards.mkdir(exist_ok=True)
    fp = _fingerprint(units, seed, config)
    manifest = out / "run.json"
    if manifest.exists():
        old = read_run_manifest(manifest)
        if old != fp:
            raise RunMismatch(f"--out: {out} holds a run made with different arguments; use another folder")
    else:
        _atomic_write(manifest, json.dumps(fp, indent=1))
    done_rows = {u.index: read_shard(shards / u.shard, u, config) for u in units if (shards / u.shard).exists()}
    todo = [u for u in units if u.index not in done_rows]
    log.info("%d of %d objects already done", len(units) - len(todo), len(units))
    total = sum(u.n_grasps for u in units)
    done_trials = total - sum(u.n_grasps for u in todo)
    bar = tqdm(total=total, initial=done_trials, unit="trial", disable=not progress, desc="grasp-eval")
    t0 = time.perf_counter()
    new_trials = 0
    runner = _ray(todo, seed, config, workers, ray_address) if backend == "ray" else _local(todo, seed, config, workers)
    try:
        for unit, rows in runner:
            _atomic_write(shards / unit.shard, "".join(json.dumps(r) + "\n" for r in rows))
            done_rows[unit.index] = rows
            new_trials += len(rows)
            bar.update(unit.n_grasps)
    finally:
        runner.close()  # on Ctrl-C: the pool's workers are stopped now, not when the generator is collected
        bar.close()
    elapsed = time.perf_counter() - t0
    rows = [r for u in units for r in done_rows[u.index]]
    _atomic_write(out / "trials.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _write_csv(out / "trials.csv", rows, row_fields(config))
    summary = summarize(rows, [u.obj.name for u in units])
    summary.update({"protocol": config.protocol, "trials_per_s": new_trials / elapsed if new_trials and elapsed > 0 else None,
                    "trials_this_run": new_trials, "elapsed_s": elapsed, "seed": seed, "backend": backend,
                    "workers": workers, "objects_resumed": len(units) - len(todo)})
    _atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if plots:
        from robot_wm.grasping.plots import plot_summary

        plot_summary(summary, out)
    return summary


def read_run_manifest(path: Path) -> dict[str, Any]:
    """A run folder's ``run.json`` (the fingerprint of the arguments it was made with); ConfigError (one line)
    when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"corrupt resume file, not valid JSON ({str(exc).splitlines()[0][:120]}); "
                          "delete the folder or use another --out") from None
    if not isinstance(data, dict) or not {"seed", "objects", "units_sha256", "config"} <= set(data):
        raise ConfigError(str(path), "", "corrupt resume file (expected seed, objects, units_sha256, config); "
                          "delete the folder or use another --out")
    return data


def read_shard(path: Path, unit: Unit, config: ShakeConfig) -> list[dict[str, Any]]:
    """The rows of one finished object's shard (``shards/NNNNN_name.jsonl``), checked against the unit it
    should hold: one JSON row per grasp with this protocol's fields, the object's name, grasps 0..n-1.
    ConfigError naming the file and the line otherwise."""
    fields = set(row_fields(config))
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(str(path), "", f"corrupt resume shard ({type(exc).__name__}); delete it to redo the object"
                          ) from None
    rows = []
    for i, line in enumerate(lines):
        where = f"line {i + 1}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(str(path), where, f"corrupt resume shard, not valid JSON ({exc.msg}); delete it to "
                              "redo the object") from None
        if not isinstance(row, dict) or not fields <= set(row):
            raise ConfigError(str(path), where, f"corrupt resume shard (a row needs {', '.join(sorted(fields))}); "
                              "delete it to redo the object")
        if row["object"] != unit.obj.name or row["grasp"] != i:
            raise ConfigError(str(path), where, f"row of {row['object']!r} grasp {row['grasp']!r}, expected "
                              f"{unit.obj.name!r} grasp {i}; delete the shard to redo the object")
        rows.append(row)
    if len(rows) > unit.n_grasps:  # (fewer: the sampler found fewer candidates)
        raise ConfigError(str(path), "", f"resume shard has {len(rows)} rows, at most {unit.n_grasps} expected (one "
                          "per grasp); delete it to redo the object")
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...] = ROW_FIELDS) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()})
    tmp.replace(path)


def summarize(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """trials, success_rate, per_object (name -> stable fraction), labels (label -> count)."""
    per: dict[str, list[int]] = {n: [] for n in names}
    for r in rows:
        per.setdefault(r["object"], []).append(r["label"] == "stable")
    n = len(rows)
    return {"trials": n, "success_rate": (sum(r["label"] == "stable" for r in rows) / n) if n else None,
            "per_object": {k: (sum(v) / len(v) if v else None) for k, v in per.items()},
            "labels": dict(sorted(Counter(r["label"] for r in rows).items()))}
