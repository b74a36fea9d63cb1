"""Perception counts over development seeds: the perception half of ``bench generalization``, scene by scene.

``bench generalization`` reads its bench seeds (0, and 1 held out); perception rules are developed on other
seeds of the same generator (5 and up) and compared scene by scene, before and after a change::

    python -m robot_wm.bench.perception_counts --seeds 5-15 --out after.jsonl [--baseline before.jsonl]

writes one JSON line per scene (``seed``, ``index``, ``kind``, ``cell``, ``n_visible``, ``n_pred``,
``count_exact``) and prints the exact-count rate per kind and, with ``--baseline`` (a file this command
wrote), the scenes whose count changed. Same seeds, same code: same lines. Workers: ``--workers`` (default
$ROBOT_WM_BENCH_WORKERS or 2), spawned processes, one thread each. Bad arguments: one line, exit 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robot_wm.bench.generalization import KINDS, SCENES, run_jobs, scene_spec


def count_rows(seeds: Sequence[int], scenes: int = SCENES, workers: int = 2) -> list[dict[str, Any]]:
    """One row per scene of each seed in `seeds` (the first `scenes` of its generator): the objects some
    camera sees, the objects perception reports, and whether they number the same."""
    rows = []
    for seed in seeds:
        specs = [scene_spec(seed, i) for i in range(scenes)]
        results = run_jobs([("perceive", s, False) for s in specs], workers)
        for s in specs:
            r = results[("perceive", s.index)]
            rows.append({"seed": seed, "index": s.index, "kind": s.kind, "cell": s.cell,
                         "n_visible": int(r["n_visible"]), "n_pred": int(r["n_pred"]),
                         "count_exact": bool(r["count_exact"])})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Exact-count rate over `rows` and per kind, with the misses split into over- and under-counts."""
    out: dict[str, Any] = {"scenes": len(rows), "count_exact": sum(r["count_exact"] for r in rows)}
    out["object_count_exact_rate"] = out["count_exact"] / len(rows) if rows else None
    for kind in KINDS:
        rs = [r for r in rows if r["kind"] == kind]
        out[kind] = {"scenes": len(rs), "count_exact": sum(r["count_exact"] for r in rs),
                     "over": sum(r["n_pred"] > r["n_visible"] for r in rs),
                     "under": sum(r["n_pred"] < r["n_visible"] for r in rs)}
    return out


def changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scenes in both lists whose perceived count changed, with ``to`` = ``right`` / ``wrong`` / ``other``."""
    old = {(r["seed"], r["index"]): r for r in before}
    out = []
    for r in after:
        b = old.get((r["seed"], r["index"]))
        if b is None or b["n_pred"] == r["n_pred"]:
            continue
        to = "right" if r["count_exact"] else ("wrong" if b["count_exact"] else "other")
        out.append({"seed": r["seed"], "index": r["index"], "kind": r["kind"], "cell": r["cell"],
                    "n_visible": r["n_visible"], "before": b["n_pred"], "after": r["n_pred"], "to": to})
    return out


def parse_seeds(text: str) -> list[int]:
    """``"5-15"`` / ``"5,7,9"`` / ``"5-7,12"`` -> seeds in order; ValueError naming the bad part."""
    seeds: list[int] = []
    for part in text.split(","):
        a, sep, b = part.strip().partition("-")
        if not a.isdigit() or (sep and not b.isdigit()):
            raise ValueError(f"not a seed or a range of seeds: {part.strip()!r}")
        lo, hi = int(a), int(b) if sep else int(a)
        if hi < lo:
            raise ValueError(f"empty range: {part.strip()!r}")
        seeds += range(lo, hi + 1)
    return seeds


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a file :func:`main` wrote; ValueError naming the file and line when one is not such a row."""
    if not path.is_file():
        raise ValueError(f"--baseline {path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            r = json.loads(line)
            ok = (isinstance(r, dict) and all(type(r.get(k)) is int for k in ("seed", "index", "n_visible", "n_pred"))
                  and type(r.get("count_exact")) is bool)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{path}: line {n}: not a row of perception_counts "
                             "(seed, index, n_visible, n_pred: integers; count_exact: true or false)")
        rows.append(r)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``--seeds S --out FILE [--baseline FILE] [--scenes N] [--workers N]`` (module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    opts = {"--seeds": None, "--out": None, "--baseline": None, "--scenes": str(SCENES),
            "--workers": os.environ.get("ROBOT_WM_BENCH_WORKERS", "2")}
    try:
        while args:
            key = args.pop(0)
            if key not in opts or not args:
                raise ValueError(f"unknown option or missing value: {key}")
            opts[key] = args.pop(0)
        if opts["--seeds"] is None or opts["--out"] is None:
            raise ValueError("--seeds and --out are required")
        seeds = parse_seeds(opts["--seeds"])
        if not (opts["--scenes"].isdigit() and opts["--workers"].isdigit()
                and int(opts["--scenes"]) > 0 and int(opts["--workers"]) > 0):
            raise ValueError(f"--scenes and --workers take whole numbers >= 1 (got {opts['--scenes']!r}, "
                             f"{opts['--workers']!r})")
        out = Path(opts["--out"])
        if out.is_dir() or not out.parent.is_dir():
            raise ValueError(f"--out {out}: must be a file in an existing folder")
        baseline = read_rows(Path(opts["--baseline"])) if opts["--baseline"] else None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        print(f"perception_counts: {exc}", file=sys.stderr)
        return 2
    rows = count_rows(seeds, int(opts["--scenes"]), int(opts["--workers"]))
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report: dict[str, Any] = {"summary": summary(rows)}
    if baseline is not None:
        ran = {(x["seed"], x["index"]) for x in rows}
        report["baseline"] = summary([r for r in baseline if (r["seed"], r["index"]) in ran])
        report["changed"] = changes(baseline, rows)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
