"""Worker processes started inside single_threaded_workers() get one native thread each."""

import multiprocessing
import os

from robot_wm.config.processes import THREAD_VARIABLES, single_threaded_workers


def _child_env(_: int) -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in THREAD_VARIABLES}


def test_spawned_workers_get_one_thread_and_the_environment_is_restored(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with single_threaded_workers(), multiprocessing.get_context("spawn").Pool(1) as pool:
        assert os.environ["OMP_NUM_THREADS"] == "1"
        child = pool.map(_child_env, [0])[0]
    assert child == dict.fromkeys(THREAD_VARIABLES, "1")
    assert os.environ["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in os.environ
