"""Creating and configuring one isolated PyBullet physics client, and keeping PyBullet's C prints off stdout.

PyBullet's C code prints banners ("pybullet build time", "argv[0]=") straight to file descriptors 1 and 2; they
are silenced here so that machine-readable output on stdout (``--json``) stays clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stdio(stdout_to_stderr: bool = False) -> Iterator[None]:
    """Redirect the process's file descriptors while inside (C-level prints, and processes started inside,
    included): by default fds 1 and 2 go to /dev/null; with `stdout_to_stderr` fd 1 goes to stderr (fd 2)
    and stderr is left alone, so what C code prints stays visible without corrupting stdout.

    Python's buffered ``sys.stdout``/``sys.stderr`` are flushed on entry and ``sys.stdout`` again on exit, so
    what Python printed inside goes where fd 1 pointed inside. Where the descriptors cannot be duplicated
    (no usable stdio) nothing is redirected.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    fds = (1,) if stdout_to_stderr else (1, 2)
    saved: list[int] = []
    try:
        for fd in fds:
            saved.append(os.dup(fd))
    except OSError:  # no usable stdio
        for old in saved:
            os.close(old)
        yield
        return
    target = 2 if stdout_to_stderr else os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(target, fd)
        yield
    finally:
        sys.stdout.flush()
        for fd, old in zip(fds, saved, strict=True):
            os.dup2(old, fd)
            os.close(old)
        if not stdout_to_stderr:
            os.close(target)


with quiet_stdio():
    import pybullet
    import pybullet_data
    from pybullet_utils.bullet_client import BulletClient

TIME_STEP = 1.0 / 240.0


class SafeBulletClient(BulletClient):
    """``BulletClient`` whose destructor tolerates a constructor that never connected: Ctrl-C inside
    ``pybullet.connect`` leaves no ``_client``, and the stock ``__del__`` then printed an AttributeError
    traceback on the way out (breaking the CLI's one-line "interrupted")."""

    def __del__(self) -> None:
        if "_client" in self.__dict__:
            super().__del__()


def gui_available() -> bool:
    """Whether a PyBullet window can open here (an X display is set). PyBullet's GUI connect ends the
    process when it cannot, so callers check first."""
    return bool(os.environ.get("DISPLAY"))


def make_client(gui: bool = False, time_step: float = TIME_STEP) -> BulletClient:
    """A new physics server with its own state (DIRECT unless `gui`), set up for determinism."""
    if gui and not gui_available():
        raise RuntimeError("a PyBullet window needs a display, and DISPLAY is not set")
    with quiet_stdio():
        client = SafeBulletClient(connection_mode=pybullet.GUI if gui else pybullet.DIRECT)
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
