"""Every malformed input of the corpus (robot_wm/bench/bad_inputs.py) ends the command with exit status 2 and one
line on stderr naming the file (or option) and the problem, never a traceback, before any work starts; and
the rest of the exit contract: Ctrl-C gives 130 and one line within 2 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot_wm.bench.bad_inputs import CASES, check_case
from robot_wm.cli.main import main

MIN_CASES = 150


def test_the_corpus_is_large_and_its_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) >= MIN_CASES, f"{len(ids)} bad inputs, the issue asks for >= {MIN_CASES}"
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line(case, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing a case does may write into the repository
    d = tmp_path / "case"
    d.mkdir()
    argv = case.build(d)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}, stderr: {err[-2000:]}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"{len(lines)} lines on stderr: {err[-2000:]}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in case.expect:
        assert fragment.replace("{d}", str(d)) in lines[0], f"{fragment!r} not in {lines[0]!r}"


def test_the_bench_checker_agrees_with_the_contract(tmp_path: Path):
    """check_case (what ``bench control`` runs) passes a corpus case and reports one that breaks the contract."""
    good = CASES[0]
    assert check_case(good, tmp_path / "good", main) == ""
    wrong = type(good)("wrong", good.build, ("a fragment no error message holds",))
    assert "not in" in check_case(wrong, tmp_path / "wrong", main)


def _run_and_interrupt(args: list[str], ready: str, timeout_s: float = 120.0) -> tuple[int, str, float]:
    """Start ``robot-wm ARGS`` as a process, wait until its stderr shows `ready`, send SIGINT; returns (exit
    status, stderr after `ready`, seconds from the signal to the exit)."""
    proc = subprocess.Popen([sys.executable, "-m", "robot_wm.cli.main", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        seen = ""
        deadline = time.monotonic() + timeout_s
        while ready not in seen:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, f"exited {proc.returncode} before {ready!r}: {seen[-2000:]}"
            seen += line
            assert time.monotonic() < deadline, f"no {ready!r} within {timeout_s} s: {seen[-2000:]}"
        time.sleep(1.0)  # inside the command's work
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()  # until the process closes stderr (exits)
        proc.wait(timeout=10)
        return proc.returncode, rest, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_exits_130_with_one_line_within_2_s(tmp_path: Path):
    code, rest, dt = _run_and_interrupt(["demo", "--out", str(tmp_path / "o"), "--no-compare", "--no-video"],
                                        ready="robot-wm demo")
    assert code == 130, rest
    assert [line for line in rest.splitlines() if line.strip()] == ["interrupted"], rest
    # the contract is 2 s (about 1 s when the machine is quiet); the bound here is loose so that a loaded CI
    # machine does not fail it, while the old behaviour (10-19 s, exit 0) still does
    assert dt < 5.0, f"{dt:.2f} s from SIGINT to exit"


def test_failed_task_exits_1(tmp_path: Path, monkeypatch, capsys):
    """A demo that does not place every object is a task failure: exit status 1 (not 0, not 2)."""
    import robot_wm.cli.cmd_demo as cmd_demo

    def half_done(scene, **kwargs):
        return {"objects": 2, "picked": 1, "placed": 1, "success_rate": 0.5, "sim_s": 1.0}

    monkeypatch.setattr(cmd_demo, "run_demo", half_done)
    assert main(["demo", "--out", str(tmp_path / "o"), "--no-compare", "--no-video", "--perception", "oracle"]) == 1
    assert (tmp_path / "o" / "report.json").is_file()
    monkeypatch.setattr(cmd_demo, "run_demo", lambda scene, **kw: {**half_done(scene), "placed": 2, "picked": 2,
                                                                    "success_rate": 1.0})
    assert main(["demo", "--out", str(tmp_path / "o"), "--no-compare", "--no-video", "--perception", "oracle"]) == 0
    capsys.readouterr()


def test_repository_inputs_pass_check(repo: Path, capsys):
    """The validators refuse none of the project's own files (scenes, calibrations, launch and planner files,
    models)."""
    files = [*sorted((repo / "sim_scenes").glob("*.yaml")), *sorted((repo / "calibration").glob("*.yaml")),
             *sorted((repo / "launch").glob("*.yaml")), *sorted((repo / "planners").glob("*.yaml")),
             *sorted((repo / "robot_wm" / "assets").glob("*.safetensors"))]
    cwd = os.getcwd()
    try:
        os.chdir(repo)
        assert main(["check", *map(str, files)]) == 0, capsys.readouterr().err
    finally:
        os.chdir(cwd)
    assert len(capsys.readouterr().out.splitlines()) == len(files)
