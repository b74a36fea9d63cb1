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


PARENT = """
import multiprocessing, os, sys, time
from robot_wm.config.processes import worker_init

def pid(_):
    return os.getpid()

def sleep(_):
    time.sleep(120)

if __name__ == "__main__":
    pool = multiprocessing.get_context("spawn").Pool(2, initializer=worker_init, initargs=(os.getpid(),))
    pids = sorted(set(pool.map(pid, range(8), chunksize=1)))
    pool.map_async(sleep, range(2), chunksize=1)
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (dead, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_workers_die_with_their_parent(tmp_path):
    """SIGKILL on a process whose pool was started with worker_init: its busy workers are gone within 2 s
    (they do not run on for minutes holding hundreds of MB each)."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    workers: list[int] = []
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert workers and all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 2.0
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers), "workers outlived their parent"
    finally:
        parent.kill()
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_worker_init_ignores_sigint_and_terminate_executor_stops_busy_workers():
    """Ctrl-C reaches the parent only; terminate_executor ends running tasks at once instead of waiting."""
    import signal
    import time
    from concurrent.futures import ProcessPoolExecutor

    from robot_wm.config.processes import terminate_executor, worker_init

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(2, mp_context=ctx, initializer=worker_init, initargs=(os.getpid(),))
    assert pool.submit(signal.getsignal, signal.SIGINT).result(timeout=60) == signal.SIG_IGN
    pool.submit(time.sleep, 120)
    t0 = time.monotonic()
    terminate_executor(pool)
    assert time.monotonic() - t0 < 3.0
