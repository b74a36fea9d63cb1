"""``robot-wm demo``: pick-and-place on a scene, headless by default; writes report.json and demo.gif."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from robot_wm.cli.common import SEED_HELP, load_scene_arg, write_json
from robot_wm.config import load_launch
from robot_wm.control.demo import PERCEPTION_MODES, run_demo
from robot_wm.sim import gui_available

DEFAULT_OUT = Path("out/demo")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        scene: Path = typer.Option(None, "--scene", help="Scene file (default: sim_scenes/two_blocks.yaml)."),
        out: Path = typer.Option(None, "--out", help=f"Folder for report.json and demo.gif (default: {DEFAULT_OUT})."),
        seed: int = typer.Option(None, "--seed", help=SEED_HELP),
        perception: str = typer.Option(None, "--perception",
                                       help=f"Where object estimates come from: {' | '.join(PERCEPTION_MODES)} "
                                            f"(default: {PERCEPTION_MODES[0]})."),
        launch: Path = typer.Option(None, "--launch", help="Launch file (launch/*.yaml) naming scene, perception "
                                                           "and planner; the other options override it."),
        gui: bool = typer.Option(False, "--gui", help="Open the PyBullet window."),
        video: bool = typer.Option(True, "--video/--no-video", help="Record demo.gif."),
        compare: bool = typer.Option(True, "--compare/--no-compare",
                                     help="Also run the oracle on the same scene and report its success."),
    ) -> None:
        """Pick every task object and place it in the scene's place region."""
        from robot_wm.cli.main import BadInput

        planner = None
        if launch is not None:
            lf = load_launch(launch)
            sc = load_scene_arg(scene, seed, require_objects=True) if scene else lf.scene.with_seed(seed)
            perception = perception or lf.config.perception
            out = out or (Path(lf.config.out) if lf.config.out else None)
            planner = lf.planner
        else:
            sc = load_scene_arg(scene, seed, require_objects=True)
        perception = perception or PERCEPTION_MODES[0]
        out = out or DEFAULT_OUT
        if gui and not gui_available():
            raise BadInput("--gui: no display to open a window on (DISPLAY is not set); run without --gui")
        if perception not in PERCEPTION_MODES:
            raise BadInput(f"--perception: must be one of {', '.join(PERCEPTION_MODES)} (got {perception!r})")
        console = Console(stderr=True)
        console.print(f"[bold]robot-wm demo[/] scene={sc.name} seed={sc.config.seed} perception={perception}"
                      + (" (oracle: reads the simulator's true poses)" if perception == "oracle" else ""))
        t0 = time.perf_counter()
        report = run_demo(sc, perception=perception, gui=gui, video_path=out / "demo.gif" if video else None,
                          planner=planner)
        report["wall_s"] = time.perf_counter() - t0
        if compare and perception != "oracle":
            oracle = run_demo(sc, perception="oracle", planner=planner)
            report["oracle_success_rate"] = oracle["success_rate"]
            report["oracle_placed"] = oracle["placed"]
        write_json(out / "report.json", report)
        console.print(
            f"picked {report['picked']}/{report['objects']}, placed {report['placed']}/{report['objects']} "
            f"(success_rate {report['success_rate']:.2f}) in {report['wall_s']:.1f} s wall, {report['sim_s']:.1f} s sim"
        )
        if "oracle_success_rate" in report:
            console.print(f"oracle (true poses) on the same scene: success_rate {report['oracle_success_rate']:.2f}")
        console.print(f"wrote {out / 'report.json'}" + (f" and {report['video']}" if report.get("video") else ""))
        if report["placed"] < report["objects"]:
            raise typer.Exit(1)
