"""``robot-wm demo``: the scene's task, headless by default; writes report.json, plan.jsonl (the planned
controller's decisions) and demo.gif."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from robot_wm.cli.common import check_out_dir, load_scene_arg, seed_option, write_json
from robot_wm.config import load_launch
from robot_wm.control.demo import (
    CONTROLLERS,
    PERCEPTION_MODES,
    PlannerUnavailable,
    default_task_planner_factory,
    run_demo,
)
from robot_wm.sim import gui_available

DEFAULT_OUT = Path("out/demo")


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        scene: Path = typer.Option(None, "--scene", help="Scene file (default: sim_scenes/two_blocks.yaml)."),
        out: Path = typer.Option(None, "--out", help=f"Folder for report.json, plan.jsonl and demo.gif (default: {DEFAULT_OUT})."),
        seed: int = seed_option(None),
        perception: str = typer.Option(None, "--perception",
                                       help=f"Where object estimates come from: {' | '.join(PERCEPTION_MODES)} "
                                            f"(default: {PERCEPTION_MODES[0]})."),
        launch: Path = typer.Option(None, "--launch", help="Launch file (launch/*.yaml) naming scene, perception "
                                                           "and planner; the other options override it."),
        controller: str = typer.Option(CONTROLLERS[0], "--controller",
                                       help=f"Who decides: {' | '.join(CONTROLLERS)} (default: {CONTROLLERS[0]}; "
                                            "scripted is the top-down box picker baseline)."),
        gui: bool = typer.Option(False, "--gui", help="Open the PyBullet window."),
        video: bool = typer.Option(True, "--video/--no-video", help="Record demo.gif."),
        compare: bool = typer.Option(True, "--compare/--no-compare",
                                     help="Also run the oracle on the same scene and report its success."),
    ) -> None:
        """Do the scene's task: pick objects into the place region, or push them to their goals."""
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
        check_out_dir("demo", out)
        if gui and not gui_available():
            raise BadInput("--gui: no display to open a window on (DISPLAY is not set); run without --gui")
        if perception not in PERCEPTION_MODES:
            raise BadInput(f"--perception: must be one of {', '.join(PERCEPTION_MODES)} (got {perception!r})")
        if controller not in CONTROLLERS:
            raise BadInput(f"--controller: must be one of {', '.join(CONTROLLERS)} (got {controller!r})")
        if controller == "planned":
            try:
                default_task_planner_factory()
            except PlannerUnavailable as exc:
                raise BadInput(f"--controller planned: {exc}") from None
        console = Console(stderr=True)
        console.print(f"[bold]robot-wm demo[/] scene={sc.name} seed={sc.config.seed} perception={perception} "
                      f"controller={controller}"
                      + (" (oracle: reads the simulator's true poses)" if perception == "oracle" else ""))
        t0 = time.perf_counter()
        report = run_demo(sc, perception=perception, gui=gui, video_path=out / "demo.gif" if video else None,
                          planner=planner, controller=controller, plan_path=out / "plan.jsonl")
        report["wall_s"] = time.perf_counter() - t0
        if compare and perception != "oracle":
            oracle = run_demo(sc, perception="oracle", planner=planner, controller=controller)
            report["oracle_success_rate"] = oracle["success_rate"]
            report["oracle_placed"] = oracle["placed"]
        write_json(out / "report.json", report)
        done = (f"goals reached {report['goals_reached']}/{len(report['goals'])}" if "goals" in report
                else f"picked {report['picked']}/{report['objects']}, placed {report['placed']}/{report['objects']}")
        console.print(f"{done} (success_rate {report['success_rate']:.2f}) in {report['wall_s']:.1f} s wall, "
                      f"{report['sim_s']:.1f} s sim")
        if "decisions" in report:
            console.print(f"{report['decisions']} decisions ({report['picks']} picks, {report['pushes']} pushes), "
                          f"median {report['decision_ms_median'] or 0:.0f} ms each; {report['finish_reason']}")
        if "oracle_success_rate" in report:
            console.print(f"oracle (true poses) on the same scene: success_rate {report['oracle_success_rate']:.2f}")
        wrote = [str(out / "report.json")] + [report[k] for k in ("plan_log", "video") if report.get(k)]
        console.print("wrote " + ", ".join(wrote))
        failed = (report["goals_reached"] < len(report["goals"]) if "goals" in report
                  else report["placed"] < report["objects"])
        if failed:
            raise typer.Exit(1)
