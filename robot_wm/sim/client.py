"""Creating and configuring one isolated PyBullet physics client.

PyBullet's C code prints banners ("pybullet build time", "argv[0]=") straight to file descriptors 1 and 2; they
are silenced here so that machine-readable output on stdout (``--json``) stays clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stdio() -> Iterator[None]:
    """Redirect the process's fds 1 and 2 to /dev/null for the duration (C-level prints included)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no usable stdio
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


with quiet_stdio():
    import pybullet
    import pybullet_data
    from pybullet_utils.bullet_client import BulletClient

TIME_STEP = 1.0 / 240.0


def gui_available() -> bool:
    """Whether a PyBullet window can open here (an X display is set). PyBullet's GUI connect ends the
    process when it cannot, so callers check first."""
    return bool(os.environ.get("DISPLAY"))


def make_client(gui: bool = False, time_step: float = TIME_STEP) -> BulletClient:
    """A new physics server with its own state (DIRECT unless `gui`), set up for determinism."""
    if gui and not gui_available():
        raise RuntimeError("a PyBullet window needs a display, and DISPLAY is not set")
    with quiet_stdio():
        client = BulletClient(connection_mode=pybullet.GUI if gui else pybullet.DIRECT)
    configure_client(client, time_step)
    if gui:
        client.configureDebugVisualizer(pybullet.COV_ENABLE_GUI, 0)
    return client


def configure_client(client: BulletClient, time_step: float = TIME_STEP) -> None:
    """Gravity, time step and solver settings; called again after every resetSimulation."""
    client.setAdditionalSearchPath(pybullet_data.getDataPath())
    client.setPhysicsEngineParameter(
        fixedTimeStep=time_step, numSolverIterations=50, deterministicOverlappingPairs=1, enableFileCaching=1
    )
    client.setGravity(0.0, 0.0, -9.81)
