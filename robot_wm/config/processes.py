"""Settings for worker processes: one native thread each.

PyTorch (imported by the shape descriptors) and Open3D start an OpenMP thread pool in every process, and
OpenMP threads spin-wait after each parallel region. With one worker per core those spinning threads take
CPU from the other workers: a single collector used 3.8 CPU-s per 3.3 s episode, and two collectors on two
cores ran 10 % slower per episode than with ``OMP_NUM_THREADS=1``. Worker pools therefore start their
processes inside :func:`single_threaded_workers`, whose environment the spawned processes inherit.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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


__all__ = ["THREAD_VARIABLES", "single_threaded_workers"]
