"""The robot-wm command: help on every subcommand, exit codes, scene generation, bench sim output."""

import json
import subprocess
import sys

import pytest

from robot_wm.cli.main import main
from robot_wm.config import load_scene
from robot_wm.config.object_sets import TRAIN_URDF_IDS


def test_every_subcommand_has_help(capsys):
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    for cmd in ("demo", "bench", "scene"):
        assert cmd in listing
        assert main([cmd, "--help"]) == 0


def test_unknown_bench_area_exits_2(capsys):
    assert main(["bench", "nonsense"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: bench: AREA must be one of")


def test_bad_option_value_exits_2(tmp_path, capsys):
    assert main(["demo", "--perception", "telepathy", "--out", str(tmp_path)]) == 2
    capsys.readouterr()
    assert main(["demo", "--controller", "telepathy", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --controller: must be one of planned, scripted (got 'telepathy')"
    assert main(["scene", "random", "--objects", "0", "--out", str(tmp_path / "x.yaml")]) == 2


@pytest.mark.parametrize("seed", [0, 7])
def test_scene_random_is_valid_and_seeded(tmp_path, seed):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert main(["scene", "random", "--seed", str(seed), "--objects", "5", "--out", str(a)]) == 0
    assert main(["scene", "random", "--seed", str(seed), "--objects", "5", "--out", str(b)]) == 0
    assert a.read_text() == b.read_text()
    scene = load_scene(a)
    assert len(scene.config.objects) == 5
    for obj in scene.config.objects:
        if obj.urdf:
            assert int(obj.urdf.split("/")[1]) in TRAIN_URDF_IDS  # never the held-out set


def test_bench_sim_json_on_stdout():
    """Run as a real process: stdout must hold exactly one JSON object (PyBullet's banners silenced)."""
    out = subprocess.run([sys.executable, "-m", "robot_wm.cli.main", "bench", "sim", "--json", "--quick"],
                         capture_output=True, text=True, timeout=300, check=True)
    data = json.loads(out.stdout)
    for key in ("steps_per_s", "raw_steps_per_s", "render_ms_640x480", "ik_ms", "reset_ms", "deterministic"):
        assert key in data
    assert data["deterministic"] is True
    assert data["steps_per_s"] > 0.3 * data["raw_steps_per_s"]  # loose here; the bench reports the ratio


def test_bench_takes_several_scene_files_after_one_flag(monkeypatch, capsys, repo, tmp_path):
    import types

    seen = {}
    fake = types.ModuleType("robot_wm.bench.sim")
    fake.run = lambda scenes, seed, quick: seen.update(scenes=scenes, seed=seed) or {"ok": True}
    monkeypatch.setitem(sys.modules, "robot_wm.bench.sim", fake)
    names = ["two_blocks.yaml", "stacked.yaml", "clutter.yaml"]
    files = [str(repo / "sim_scenes" / n) for n in names]
    assert main(["bench", "sim", "--scenes", *files, "--json", "--seed", "4"]) == 0
    assert [p.name for p in seen["scenes"]] == names and seen["seed"] == 4
    assert json.loads(capsys.readouterr().out) == {"ok": True}
    # every scene file is checked before the bench runs: a missing one is one line, exit 2
    seen.clear()
    assert main(["bench", "sim", "--scenes", files[0], str(tmp_path / "missing.yaml"), "--json"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.yaml'}: file not found" and not seen


def test_gui_without_display_is_a_clear_error(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert main(["demo", "--gui", "--out", str(tmp_path)]) == 2
    assert "--gui: no display" in capsys.readouterr().err


def test_task_failure_and_interrupt_exit_codes(monkeypatch, capsys):
    """A command's typer.Exit(1) (task failure) reaches the caller; Ctrl-C gives 130 and one line."""
    import typer

    from robot_wm.cli import main as cli_main

    @cli_main.app.command("fail-for-test", hidden=True)
    def _fail() -> None:
        raise typer.Exit(1)

    @cli_main.app.command("interrupt-for-test", hidden=True)
    def _interrupt() -> None:
        raise KeyboardInterrupt

    try:
        assert main(["fail-for-test"]) == 1
        assert main(["interrupt-for-test"]) == 130
        assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    finally:
        cli_main.app.registered_commands[:] = [c for c in cli_main.app.registered_commands
                                               if c.name not in ("fail-for-test", "interrupt-for-test")]
