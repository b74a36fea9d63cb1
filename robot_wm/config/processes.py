"""Settings for worker processes: one native thread each, and no worker outliving its parent.

PyTorch (imported by the shape descriptors) and Open3D start an OpenMP thread pool in every process, and
OpenMP threads spin-wait after each parallel region. With one worker per core those spinning threads take
CPU from the other workers: a single collector used 3.8 CPU-s per 3.3 s episode, and two collectors on two
cores ran 10 % slower per episode than with ``OMP_NUM_THREADS=1``. Worker pools therefore start their
processes inside :func:`single_threaded_workers`, whose environment the spawned processes inherit.

A worker (a few hundred MB each) must not keep running when its parent is killed (SIGKILL, OOM): pools
start their processes with ``initializer=worker_init, initargs=(os.getpid(),)``. On Linux the kernel then
sends the worker SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a watchdog thread
polls the parent. Workers ignore SIGINT: a Ctrl-C in the terminal reaches the whole process group, and the
parent alone handles it (it terminates its pool: :func:`terminate_executor`) instead of every worker
printing a traceback.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCHDOG_PERIOD_S = 0.5


@contextlib.contextmanager
def single_threaded_workers() -> Iterator[None]:
    """Within the block, processes started (spawned) get one OpenMP/BLAS thread each; the calling process's
    environment is restored afterwards. Start the pool's processes inside the block."""
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _parent_death_signal(sig: int) -> bool:
    """Ask the Linux kernel to send `sig` to this process when its parent exits; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    """Daemon thread: end this process as soon as `parent_pid` is no longer its parent."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_PERIOD_S)
        os._exit(1)

    threading.Thread(target=watch, name="robot_wm-parent-watchdog", daemon=True).start()


def worker_init(parent_pid: int) -> None:
    """Pool initializer (``initializer=worker_init, initargs=(os.getpid(),)``): the worker dies with its
    parent (`parent_pid`, the pid of the process creating the pool) and ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _parent_death_signal(signal.SIGKILL):
        _watch_parent(parent_pid)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)


def terminate_executor(pool: ProcessPoolExecutor) -> None:
    """Stop a process pool now: cancel what has not started and kill the running workers (shutdown(wait=True)
    would wait for every running task; on Ctrl-C that can be minutes)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=2.0)


__all__ = ["THREAD_VARIABLES", "single_threaded_workers", "terminate_executor", "worker_init"]
