"""grasp-eval: output files, same labels whatever the worker count, resume after a kill, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot_wm.cli.main import main
from robot_wm.grasping import load_shake_config, parse_object_specs
from robot_wm.grasping.evaluate import evaluate

OBJECTS = ["box:0.05x0.04x0.06", "cylinder:0.02x0.07", "sphere:0.03,mass=2,friction=0.2", "random_urdfs/701/701.urdf,scale=0.6"]


def _rows(out: Path) -> list[tuple]:
    return [(r["object"], r["grasp"], r["label"], r["slip"]) for r in map(json.loads, (out / "trials.jsonl").read_text().splitlines())]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    evaluate(parse_object_specs(OBJECTS), out, load_shake_config(), seed=3, grasps_per_object=3, workers=1,
             progress=False)
    return out


def test_outputs(reference: Path) -> None:
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["trials"] == 12 and len(_rows(reference)) == 12
    assert set(summary["per_object"]) == {"box_0.05x0.04x0.06", "cylinder_0.02x0.07", "sphere_0.03_friction0.2_mass2", "701"}
    assert sum(summary["labels"].values()) == 12
    assert 0.0 <= summary["success_rate"] <= 1.0 and summary["trials_per_s"] > 0
    # the heavy, slippery sphere is dropped; the light box is held at least once
    assert summary["per_object"]["sphere_0.03_friction0.2_mass2"] == 0.0
    assert summary["per_object"]["box_0.05x0.04x0.06"] > 0.0
    for name in ("trials.csv", "per_object_success.png", "labels.png"):
        assert (reference / name).stat().st_size > 0
    # the default protocol is the free-floating hand; its run.json leaves the protocol keys out, so run
    # folders made before `protocol:` existed still resume
    assert summary["protocol"] == "free_hand"
    assert not {"protocol", "arm_table"} & set(json.loads((reference / "run.json").read_text())["config"])


def test_two_workers_same_labels(reference: Path, tmp_path: Path) -> None:
    code = main(["grasp-eval", *sum([["--objects", o] for o in OBJECTS], []), "--grasps-per-object", "3",
                 "--seed", "3", "--workers", "2", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    assert _rows(tmp_path) == _rows(reference)


def test_resume_after_kill(reference: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "robot_wm.cli.main", "grasp-eval", *sum([["--objects", o] for o in OBJECTS], []),
           "--grasps-per-object", "3", "--seed", "3", "--out", str(tmp_path), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "shards").glob("*.jsonl")) and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((tmp_path / "shards").glob("*.jsonl")))
    assert 1 <= done < len(OBJECTS), "the kill should land mid-run"
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert _rows(tmp_path) == _rows(reference)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["objects_resumed"] == done and summary["trials"] == 12


def test_given_grasps_file(reference: Path, tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (reference / "trials.jsonl").read_text().splitlines()]
    box = [r for r in rows if r["object"] == "box_0.05x0.04x0.06"]
    gfile = tmp_path / "g.json"
    gfile.write_text(json.dumps({"grasps": [{"position": r["position"], "quaternion": r["quaternion"],
                                             "width": r["width"]} for r in box]}))
    out = tmp_path / "out"
    assert main(["grasp-eval", "--objects", OBJECTS[0], "--grasps", str(gfile), "--seed", "3", "--out", str(out),
                 "--quiet"]) == 0
    assert [r[2] for r in _rows(out)] == [r["label"] for r in box]


@pytest.mark.parametrize("args, needle", [
    (["--objects", "box:0.05x0.05"], "box:0.05x0.05: expected box:LxWxH"),
    (["--objects", "no/such/thing.urdf"], "no/such/thing.urdf: no such URDF"),
    (["--objects", "box:0.05x0.05x0.05", "--grasps", "missing.json"], "missing.json: file not found"),
    (["--objects", "box:0.05x0.05x0.05", "--grasps-per-object", "0"], "--grasps-per-object must be >= 1"),
    (["--objects", "box:0.05x0.05x0.05", "--backend", "dask"], "--backend must be local or ray"),
    (["--objects", "box:0.05x0.05x0.05", "--config", "CFG"], "lift.hieght: unknown key"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("lift:\n  hieght: 0.1\n")
    args = [str(cfg) if a == "CFG" else a for a in args]
    code = main(["grasp-eval", *args, "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and needle in err[0]


def test_several_specs_after_one_flag(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["grasp-eval", "--objects", "sphere:0.02", "box:0.03x0.03x0.03", "--grasps-per-object", "1",
                 "--out", str(out), "--quiet"]) == 0
    assert [r[0] for r in _rows(out)] == ["sphere_0.02", "box_0.03x0.03x0.03"]


def test_changed_arguments_refused(reference: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["grasp-eval", "--objects", OBJECTS[0], "--grasps-per-object", "1", "--out", str(out), "--quiet"]) == 0
    assert main(["grasp-eval", "--objects", OBJECTS[0], "--grasps-per-object", "2", "--out", str(out), "--quiet"]) == 2
    assert "different arguments" in capsys.readouterr().err


def test_c_level_stdout_goes_to_stderr_during_grasp_eval() -> None:
    """The redirection grasp-eval and `bench grasping` run under (sim.client.quiet_stdio): with
    stdout_to_stderr, fd 1 (C prints such as pybullet's "argv[0]=", and Python's buffered prints) lands on
    stderr; by default both fds are silenced; afterwards stdout is stdout again."""
    code = ("import os\nfrom robot_wm.sim.client import quiet_stdio\n"
            "with quiet_stdio(stdout_to_stderr=True):\n    os.write(1, b'c-moved\\n')\n    print('py-moved')\n"
            "    os.write(2, b'c-err\\n')\n"
            "with quiet_stdio():\n    os.write(1, b'gone-1\\n')\n    os.write(2, b'gone-2\\n')\n"
            "os.write(1, b'data\\n')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert r.stdout == b"data\n"
    assert b"c-moved\n" in r.stderr and b"py-moved\n" in r.stderr and b"c-err\n" in r.stderr
    assert b"gone" not in r.stderr
