"""``robot-wm collect``: self-supervised push and grasp data for the world model (shards + manifest)."""

from __future__ import annotations

from pathlib import Path

import typer

from robot_wm.cli.common import check_backend_and_out, seed_option
from robot_wm.config import ConfigError


def register(app: typer.Typer) -> None:
    @app.command()
    def collect(
        episodes: int = typer.Option(..., "--episodes", help="Number of episodes (random scenes) to collect."),
        out: Path = typer.Option(..., "--out", help="Output folder (shards + manifest.json); resumed if it exists."),
        workers: int = typer.Option(1, "--workers", help="Parallel worker processes."),
        backend: str = typer.Option("local", "--backend", help="local (process pool) or ray (needs robot-wm[ray])."),
        objects: str = typer.Option("train", "--objects",
                                    help="train: primitives + random_urdfs 000-699; test: held-out 700-999."),
        pushes: int | None = typer.Option(None, "--pushes", help="Pushes per episode [default: CollectConfig's, 10]."),
        grasps: int | None = typer.Option(None, "--grasps", help="Shake-tested grasps per episode (after the "
                                          "pushes) [default: CollectConfig's, 40]."),
        seed: int = seed_option(0),
    ) -> None:
        """Execute random pushes and grasps in random scenes and record object-centric transitions."""
        from tqdm import tqdm

        from robot_wm.cli.main import BadInput
        from robot_wm.model.collect import CollectConfig
        from robot_wm.model.collect_jobs import collect as run_collect
        from robot_wm.model.collect_jobs import resume_state

        if episodes < 1:
            raise BadInput(f"collect: --episodes must be >= 1 (got {episodes})")
        if workers < 1:
            raise BadInput(f"collect: --workers must be >= 1 (got {workers})")
        if objects not in ("train", "test"):
            raise BadInput(f"collect: --objects must be train or test (got {objects!r})")
        pushes = CollectConfig.pushes_per_episode if pushes is None else pushes
        grasps = CollectConfig.grasps_per_episode if grasps is None else grasps
        if pushes < 0 or grasps < 0 or pushes + grasps == 0:
            raise BadInput("collect: --pushes and --grasps must be >= 0 and not both 0")
        check_backend_and_out("collect", backend, out)
        cfg = CollectConfig(seed=seed, object_set=objects, pushes_per_episode=pushes, grasps_per_episode=grasps)
        if out.is_dir():  # resuming: a corrupt manifest or shard is reported now, before any work
            try:
                resume_state(out, episodes, cfg)
            except ConfigError:
                raise
            except ValueError as exc:
                raise BadInput(f"collect: {exc}") from None
        bar = tqdm(total=episodes, desc="collect", unit="ep")
        try:
            manifest = run_collect(out, episodes, cfg, workers, backend, progress=bar.update)
        except ConfigError:  # a corrupt manifest or shard of an earlier run: it names the file
            raise
        except ValueError as exc:
            raise BadInput(f"collect: {exc}") from None
        finally:
            bar.close()
        typer.echo(f"{out}: {manifest['episodes']} episodes, {manifest['transitions']} transitions")
