"""``robot-wm grasp-eval``: offline shake-test evaluation of grasps on many objects."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from robot_wm.cli.common import check_backend_and_out, seed_option

log = logging.getLogger(__name__)


def _extents(shape: str, size: tuple[float, ...]) -> tuple[float, ...]:
    """Full extents (m) of a primitive given in the scene contract's size convention."""
    if shape == "box":
        return tuple(size)
    if shape == "cylinder":
        return (2 * size[0], size[1])
    return (2 * size[0],)


def register(app: typer.Typer) -> None:
    @app.command("grasp-eval")
    def grasp_eval(
        objects: list[str] = typer.Option(..., "--objects", help="URDF path/glob (current folder, then pybullet_data) "
                                          "or primitive box:LxWxH | cylinder:RxH | sphere:R, with optional "
                                          ",scale=/,mass=/,friction=. Repeat for more."),
        out: Path = typer.Option(..., "--out", help="Output folder (re-run with the same arguments to resume)."),
        grasps_per_object: int = typer.Option(None, "--grasps-per-object", help="Grasps sampled per object (default 20)."),
        grasps: Path = typer.Option(None, "--grasps", help="Grasp file (.json or .npz, object frame) instead of sampling."),
        workers: int = typer.Option(1, "--workers", help="Parallel worker processes."),
        backend: str = typer.Option("local", "--backend", help="local (process pool) or ray."),
        ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster address (default: start a local Ray)."),
        config: Path = typer.Option(None, "--config", help="Shake-test protocol YAML (default planners/shake_test.yaml)."),
        seed: int = seed_option(0),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        more: list[str] = typer.Argument(None, metavar="[SPEC]...",
                                         help="More SPECs (so `--objects a.urdf b.urdf` and shell globs work)."),
    ) -> None:
        """Shake-test grasps on objects; writes trials.jsonl/.csv, summary.json and PNG plots to --out."""
        from robot_wm.cli.main import BadInput
        from robot_wm.config.loader import check_urdf
        from robot_wm.config.workspace import MAX_OBJECT_EXTENT
        from robot_wm.grasping.config import load_shake_config
        from robot_wm.grasping.evaluate import RunMismatch, evaluate
        from robot_wm.grasping.grasp import load_grasps
        from robot_wm.grasping.objects import parse_object_specs
        from robot_wm.sim.client import quiet_stdio

        if grasps is not None and grasps_per_object is not None:
            raise BadInput("grasp-eval: give either --grasps-per-object or --grasps, not both")
        if grasps_per_object is not None and grasps_per_object < 1:
            raise BadInput(f"grasp-eval: --grasps-per-object must be >= 1 (got {grasps_per_object})")
        if workers < 1:
            raise BadInput(f"grasp-eval: --workers must be >= 1 (got {workers})")
        check_backend_and_out("grasp-eval", backend, out)
        if ray_address and backend != "ray":
            raise BadInput("grasp-eval: --ray-address needs --backend ray")
        cfg = load_shake_config(config)
        objs = parse_object_specs(list(objects) + list(more or []))
        for obj in objs:  # every URDF and mesh, and sizes, checked before the workers start
            if obj.urdf is not None:
                check_urdf(obj.urdf)
            elif obj.shape is not None and max(_extents(obj.shape, obj.size)) > MAX_OBJECT_EXTENT:
                raise BadInput(f"grasp-eval: --objects {obj.name}: larger than {MAX_OBJECT_EXTENT:g} m")
        given = load_grasps(grasps) if grasps is not None else None
        try:
            with quiet_stdio(stdout_to_stderr=True):  # pybullet prints "argv[0]=" on fd 1 at every connect
                summary = evaluate(objs, out, cfg, seed, grasps_per_object or 20, given, workers, backend, ray_address,
                                   progress=not quiet)
        except RunMismatch as exc:
            raise BadInput(f"grasp-eval: {exc}") from None
        short = {k: summary[k] for k in ("trials", "success_rate", "labels", "trials_per_s", "elapsed_s")}
        print(json.dumps(short))
