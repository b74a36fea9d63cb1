"""``robot-wm grasp-quality train``: label grasp candidates of training objects with the Panda arm trial and
fit the grasp-quality model (``robot_wm.grasping.quality``); writes the model (.safetensors), the labels
(``<out stem>_data.npz``, reusable with ``--data``) and a summary (``<out stem>_train.json``)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from robot_wm.cli.common import check_out_file, seed_option


def _read_labels(path: Path, keys: tuple[str, ...], n_features: int) -> dict:
    """The arrays of a labels file (``<stem>_data.npz``): features (N, F) finite, success (N,) 0/1 and the
    other `keys` (N,); ConfigError (one line naming the file and the array) otherwise."""
    import zipfile
    import zlib

    import numpy as np

    from robot_wm.config import ConfigError

    src = str(path)
    if not path.is_file():
        raise ConfigError(src, "", "labels file (--data) not found")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ConfigError(src, "", "a single array, not an .npz archive of labels")
        with f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise ConfigError(src, missing[0], "array is missing (not a grasp-quality labels file)")
            arrays = {k: f[k] for k in keys}
    except ConfigError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ConfigError(src, "", f"not a readable .npz labels file ({msg})") from None
    feats = arrays["features"]
    if feats.ndim != 2 or feats.shape[1] != n_features or feats.shape[0] == 0:
        raise ConfigError(src, "features", f"expected shape (N >= 1, {n_features}) (got {feats.shape})")
    if feats.dtype.kind not in "fiu" or not np.all(np.isfinite(feats)):
        raise ConfigError(src, "features", "holds NaN, infinite or non-numeric values")
    for k in keys[1:]:
        if arrays[k].shape != (len(feats),):
            raise ConfigError(src, k, f"expected shape ({len(feats)},) (got {arrays[k].shape})")
    if not np.isin(arrays["success"], (0, 1)).all():
        raise ConfigError(src, "success", "labels must be 0 or 1")
    return arrays


def register(app: typer.Typer) -> None:
    quality_app = typer.Typer(help="The learned grasp-quality model (P(success) under the arm).", no_args_is_help=True)
    app.add_typer(quality_app, name="grasp-quality")

    @quality_app.command("train")
    def train(
        objects: int = typer.Option(160, "--objects", help="Training objects to label (random_urdfs 000-699 only; "
                                    "0: none, train on --data alone)."),
        out: Path = typer.Option(..., "--out", help="Model file to write (.safetensors)."),
        per_object: int = typer.Option(8, "--per-object", help="Arm trials (candidates) per object."),
        workers: int = typer.Option(1, "--workers", help="Worker processes for the trials (0: this process)."),
        data: list[Path] = typer.Option(None, "--data", help="Labels of earlier runs (their _data.npz) to train on "
                                        "as well. Repeatable."),
        guide: Path = typer.Option(None, "--guide", help="Execute this model's most likely candidates instead of "
                                   "a random mix (a second round labels what a first model would choose)."),
        kind: list[str] = typer.Option(None, "--kind", help="Label only training objects of this spawn kind "
                                       "(upright, tilted, random; repeatable; default all)."),
        repeats: int = typer.Option(1, "--repeats", help="Trials per candidate: the first at its pose, the others "
                                    "with a small execution error (2 mm, 0.03 rad), each a labelled row."),
        members: int = typer.Option(5, "--members", help="Ensemble members."),
        seed: int = seed_option(0),
    ) -> None:
        """Label grasp candidates of training objects with the arm trial (seeded) and train the calibrated
        grasp-quality model on them (and on --data)."""
        import numpy as np

        from robot_wm.cli.common import write_json
        from robot_wm.cli.main import BadInput
        from robot_wm.grasping.quality import FEATURES, QualityModel, train_quality_model

        keys = ("features", "success", "label", "object", "sampled")
        if objects < 0 or per_object < 1 or members < 1 or workers < 0 or repeats < 1:
            raise BadInput("grasp-quality train: --objects >= 0, --per-object >= 1, --members >= 1, --workers >= 0, "
                           "--repeats >= 1")
        if objects == 0 and not data:
            raise BadInput("grasp-quality train: --objects 0 needs --data")
        from robot_wm.bench.grasping_hard import POSE_KINDS

        bad_kind = [k for k in kind or [] if k not in POSE_KINDS]
        if bad_kind:
            raise BadInput(f"grasp-quality train: --kind {bad_kind[0]} is not one of {', '.join(POSE_KINDS)}")
        if out.suffix != ".safetensors":
            raise BadInput(f"grasp-quality train: --out must end in .safetensors (got {out.name})")
        check_out_file("grasp-quality train", out)
        if guide is not None:
            QualityModel.load(guide)  # a bad file: one line now, not in a worker
        stem = out.with_name(out.name.removesuffix(".safetensors"))
        parts = []
        for d in data or []:
            parts.append(_read_labels(d, keys, len(FEATURES)))
        t0 = time.perf_counter()
        if objects:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            from robot_wm.bench.grasping_hard import quality_samples

            with Progress(TextColumn("arm trials"), BarColumn(), TextColumn("{task.completed}/{task.total} objects"),
                          TimeElapsedColumn()) as bar:
                task = bar.add_task("trials", total=objects)
                new = quality_samples(seed, objects, per_object, workers,
                                      lambda done, total: bar.update(task, completed=done), guide,
                                      tuple(kind) if kind else None, repeats)
            out.parent.mkdir(parents=True, exist_ok=True)
            np.savez(f"{stem}_data.npz", **new)
            parts.append(new)
        gen_s = time.perf_counter() - t0
        arrays = {k: np.concatenate([p[k] for p in parts]) for k in keys}
        if len(arrays["success"]) < 20 or arrays["success"].min() == arrays["success"].max():
            raise BadInput(f"grasp-quality train: {len(arrays['success'])} labels, not enough of both outcomes")
        t1 = time.perf_counter()
        model = train_quality_model(arrays["features"], arrays["success"], arrays["object"], seed=seed,
                                    members=members)
        counts = np.unique(arrays["label"], return_counts=True)
        model.info.update({"label_counts": {str(k): int(v) for k, v in zip(*counts, strict=True)},
                           "new_objects": objects, "per_object": per_object, "repeats": repeats, "seed": seed,
                           "guide": None if guide is None else guide.name, "kinds": list(kind or []),
                           "data": [str(d.name) for d in data or []], "labels_s": round(gen_s, 1),
                           "train_s": round(time.perf_counter() - t1, 1)})
        model.save(out)
        write_json(Path(f"{stem}_train.json"), model.header())
        info = model.info
        typer.echo(f"{out}: {info['samples']} trials on {info['objects']} objects (success rate "
                   f"{info['positive_rate']:.2f}), new labels {gen_s:.0f} s, training {info['train_s']} s; cross-validated "
                   f"calibration ECE {info.get('calibration_ece', float('nan')):.3f} on "
                   f"{info['calibration_samples']} trials (out-of-fold, {info['calibration_folds']} folds by object), "
                   f"AUC {info.get('cv_auc', float('nan')):.3f}")
