"""``robot-wm train``: fit the ensemble world model on collected data; safetensors + curve PNG."""

from __future__ import annotations

from pathlib import Path

import typer

from robot_wm.cli.common import check_out_file, seed_option
from robot_wm.config import ConfigError


def _check_out_and_data(command: str, out: Path, data: list[Path]) -> None:
    """BadInput (one line) unless `out` is a writable .safetensors name and every `data` is a folder."""
    from robot_wm.cli.main import BadInput

    if out.suffix != ".safetensors":
        raise BadInput(f"{command}: --out must end in .safetensors (got {out.name})")
    check_out_file(command, out)
    for d in data:
        if not d.is_dir():
            raise BadInput(f"{command}: --data {d} is not a folder")


def _add_turn_readout(model, arrays: dict, seed: int) -> None:
    """Fit the expected-turn readout of a trained `model` on the same arrays (robot_wm.model.turn_readout);
    without pushes in the data the model is left without one (said on stderr)."""
    from robot_wm.model.turn_readout import fit_turn_readout

    try:
        model.turn_readout, model.turn_info = fit_turn_readout(model, arrays, seed=seed)
    except ValueError as exc:
        typer.echo(f"train: no expected-turn readout ({exc})", err=True)


def register(app: typer.Typer) -> None:
    @app.command("turn-readout")
    def turn_readout(
        model_path: Path = typer.Option(..., "--model", help="Trained world-model file (.safetensors)."),
        data: list[Path] = typer.Option(..., "--data", help="Collected folder(s) with pushes (robot-wm collect)."),
        out: Path = typer.Option(..., "--out", help="Model file to write: the same model with the readout."),
        seed: int = seed_option(0),
    ) -> None:
        """Fit the expected-turn readout (the mean yaw change of a push) of an existing model, its network
        frozen (every other output unchanged), and write the model with it; prints how well it predicts."""
        import json

        from robot_wm.cli.main import BadInput
        from robot_wm.model.collect import scene_descriptors
        from robot_wm.model.dataset import clean, load_dataset
        from robot_wm.model.turn_readout import fit_turn_readout
        from robot_wm.model.world_model import WorldModel

        _check_out_and_data("turn-readout", out, data)
        model = WorldModel.load(model_path)
        try:
            arrays = clean(load_dataset(data, scene_descriptors))
            model.turn_readout, model.turn_info = fit_turn_readout(model, arrays, seed=seed)
        except ConfigError:
            raise
        except ValueError as exc:
            raise BadInput(f"turn-readout: {exc}") from None
        model.save(out)
        typer.echo(json.dumps({"out": str(out)} | model.turn_info))

    @app.command()
    def train(
        data: list[Path] = typer.Option(..., "--data", help="Collected folder(s) (robot-wm collect --out)."),
        out: Path = typer.Option(..., "--out", help="Model file to write (.safetensors); the curve goes beside it."),
        epochs: int = typer.Option(200, "--epochs", help="Maximum epochs (early stopping usually ends sooner)."),
        patience: int = typer.Option(40, "--patience", help="Epochs without validation improvement before stopping."),
        minutes: float = typer.Option(8.0, "--minutes", help="Wall-time budget; the best epoch so far is kept."),
        members: int = typer.Option(5, "--members", help="Ensemble members K."),
        val_split: str = typer.Option("objects", "--val-split",
                                      help="objects: validate on episodes with random_urdfs ids = 0 mod 10, never "
                                           "trained on (needs one --data folder); episodes: a random 10%."),
        refit: bool = typer.Option(True, "--refit/--no-refit",
                                   help="After validation, train again on every episode for the epochs "
                                        "validation chose (the shipped model is refitted)."),
        seed: int = seed_option(0),
    ) -> None:
        """Train the object-centric ensemble transition model (seeded, early-stopped)."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from robot_wm.cli.common import write_json
        from robot_wm.cli.main import BadInput
        from robot_wm.model.collect import scene_descriptors
        from robot_wm.model.dataset import clean, load_dataset, unseen_object_episodes
        from robot_wm.model.train import TrainConfig, plot_curves, train_and_refit
        from robot_wm.model.train import train as run_train

        if epochs < 1 or patience < 1 or members < 1 or minutes <= 0:
            raise BadInput("train: --epochs, --patience, --members must be >= 1 and --minutes > 0")
        if val_split not in ("objects", "episodes"):
            raise BadInput(f"train: --val-split must be objects or episodes (got {val_split!r})")
        if val_split == "objects" and len(data) != 1:
            raise BadInput("train: --val-split objects needs exactly one --data folder")
        _check_out_and_data("train", out, data)
        try:
            arrays = clean(load_dataset(data, scene_descriptors))  # (older shards: descriptors recomputed)
        except ConfigError:  # a bad manifest or shard: it names the file and the array
            raise
        except ValueError as exc:
            raise BadInput(f"train: {exc}") from None
        if len(arrays["action"]) < 20:
            raise BadInput(f"train: only {len(arrays['action'])} usable transitions in {', '.join(map(str, data))}")
        cfg = TrainConfig(max_epochs=epochs, patience=patience, max_minutes=minutes, k=members)
        with Progress(TextColumn("train"), BarColumn(), TextColumn("{task.completed}/{task.total} epochs"),
                      TextColumn("{task.fields[msg]}"), TimeElapsedColumn()) as bar:
            task = bar.add_task("train", total=epochs, msg="")

            def progress(epoch: int, tr: float, va: float) -> None:
                stage = f"val {va:.4f}" if va == va else "refit on all episodes"
                bar.update(task, completed=epoch + 1, msg=f"train {tr:.4f} {stage}")

            val_eps = unseen_object_episodes(data[0]) if val_split == "objects" else None
            model, hist = (train_and_refit if refit else run_train)(arrays, cfg, seed, progress, val_episodes=val_eps)
        _add_turn_readout(model, arrays, seed)
        hist["turn_readout"] = model.turn_info
        model.save(out)
        curve = out.with_name(out.name.removesuffix(".safetensors") + "_curve.png")
        plot_curves(hist, curve)
        write_json(out.with_name(out.name.removesuffix(".safetensors") + "_train.json"), hist)
        typer.echo(f"{out}: {hist['n_train']} train / {hist['n_val']} val transitions, best epoch "
                   f"{hist['best_epoch'] + 1} (push network) / {hist['best_epoch_grasp'] + 1} (grasp head) of "
                   f"{hist['epochs']}, {hist['wall_s']} s; curve {curve}"
                   + (f"; refitted on all {hist['refit']['n_train']} transitions in {hist['refit']['wall_s']} s"
                      if "refit" in hist else ""))
