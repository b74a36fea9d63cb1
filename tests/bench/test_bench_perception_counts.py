"""Perception counts over development seeds (robot_wm.bench.perception_counts)."""

from __future__ import annotations

import json

import pytest

from robot_wm.bench.perception_counts import changes, count_rows, main, parse_seeds, read_rows, summary


def test_seed_lists_and_ranges_parse_and_bad_ones_are_named():
    assert parse_seeds("5-7,12") == [5, 6, 7, 12]
    assert parse_seeds("3") == [3]
    for bad in ("5-", "a", "7-5", "5;6"):
        with pytest.raises(ValueError, match="seed|range"):
            parse_seeds(bad)


def test_a_scene_is_counted_the_same_twice_and_the_file_round_trips(tmp_path):
    rows = count_rows([5], scenes=1, workers=1)
    assert rows == count_rows([5], scenes=1, workers=1)
    (r,) = rows
    assert r["seed"] == 5 and r["index"] == 0 and r["n_visible"] >= 1
    assert r["count_exact"] == (r["n_pred"] == r["n_visible"])
    out = tmp_path / "c.jsonl"
    assert main(["--seeds", "5", "--scenes", "1", "--workers", "1", "--out", str(out)]) == 0
    assert read_rows(out) == rows


def test_changes_say_which_scenes_went_right_and_which_wrong():
    def row(i, n_pred, n_vis=3):
        return {"seed": 9, "index": i, "kind": "stack", "cell": "default/none", "n_visible": n_vis,
                "n_pred": n_pred, "count_exact": n_pred == n_vis}

    before = [row(0, 2), row(1, 3), row(2, 4), row(3, 3)]
    after = [row(0, 3), row(1, 4), row(2, 5), row(3, 3)]
    assert [(c["index"], c["to"]) for c in changes(before, after)] == [(0, "right"), (1, "wrong"), (2, "other")]
    s = summary(after)
    assert s["count_exact"] == 2 and s["stack"]["over"] == 2 and s["stack"]["under"] == 0


def test_bad_arguments_and_files_get_one_line_and_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.jsonl"
    junk.write_text(json.dumps({"seed": 1}) + "\n")
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"seed": 5, "index": 0, "n_visible": 3, "n_pred": NaN, "count_exact": true}\n')
    for argv in (["--seeds", "x", "--out", "o"], ["--out", "o"], ["--seeds", "5", "--out", "o", "--workers", "0"],
                 ["--seeds", "5", "--out", "o", "--baseline", str(junk)], ["--what", "1"],
                 ["--seeds", "5", "--out", "o", "--scenes", "0"], ["--seeds", "5", "--out", str(tmp_path)],
                 ["--seeds", "5", "--out", str(tmp_path / "no" / "o.jsonl")],
                 ["--seeds", "5", "--out", "o", "--baseline", str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("perception_counts: ") and err.count("\n") == 1
    assert main(["--seeds", "5", "--out", "o", "--baseline", str(nan)]) == 2
    assert "nan.jsonl: line 1" in capsys.readouterr().err
    assert "junk.jsonl: line 1" in (main(["--seeds", "5", "--out", "o", "--baseline", str(junk)]) == 2
                                    and capsys.readouterr().err)
