"""``robot-wm perceive``: render a scene, perceive it, write scene_graph.json, overlay.png and cloud.ply."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import typer

from robot_wm.cli.common import check_out_dir, load_scene_arg, seed_option

log = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command()
    def perceive(
        scene: Path = typer.Option(None, "--scene", help="Scene file (default: the default scene)."),
        out: Path = typer.Option(Path("out/perceive"), "--out", help="Output folder."),
        seed: int = seed_option(None),
        camera: list[str] = typer.Option(None, "--camera", help="Use only these cameras (default: all)."),
    ) -> None:
        """RGB-D -> scene graph: writes DIR/scene_graph.json, DIR/overlay.png (first camera) and DIR/cloud.ply."""
        import imageio.v2 as imageio

        from robot_wm.cli.main import BadInput
        from robot_wm.perception import Perceiver, PerceptionInputError
        from robot_wm.perception.overlay import draw_overlay, graph_cloud, write_ply
        from robot_wm.perception.tracking import Tracker
        from robot_wm.sim import World

        check_out_dir("perceive", out)
        sc = load_scene_arg(scene, seed)
        names = [c.name for c in sc.calibrations]
        missing = [c for c in camera or [] if c not in names]
        if missing:  # checked before the world is built
            raise BadInput(f"--camera: no camera named {missing[0]!r} (scene has {', '.join(names)})")
        with World(sc) as world:
            obs = world.observe()
        frames = obs.frames
        if camera:
            frames = {c: frames[c] for c in camera}
        try:
            t0 = time.perf_counter()
            perceived = Perceiver().perceive(frames, obs.time)
            perceive_ms = (time.perf_counter() - t0) * 1e3
            graph = Tracker().update(perceived, frames)
        except PerceptionInputError as exc:
            raise BadInput(str(exc)) from None
        out.mkdir(parents=True, exist_ok=True)
        graph.to_json(out / "scene_graph.json")
        first = next(iter(frames.values()))
        imageio.imwrite(out / "overlay.png", draw_overlay(graph, first))
        pts, cols = graph_cloud(graph)
        write_ply(out / "cloud.ply", pts, cols)
        n_rel = sum(1 for r in graph.relations if r.kind != "supports")
        typer.echo(f"{len(graph.objects)} objects, {n_rel} relations from {len(frames)} camera(s) "
                   f"({perceive_ms:.0f} ms); "
                   f"wrote {out}/scene_graph.json, overlay.png, cloud.ply")
