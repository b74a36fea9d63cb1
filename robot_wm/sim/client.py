"""Creating and configuring one isolated PyBullet physics client."""

from __future__ import annotations

import pybullet
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

TIME_STEP = 1.0 / 240.0


def make_client(gui: bool = False, time_step: float = TIME_STEP) -> BulletClient:
    """A new physics server with its own state (DIRECT unless `gui`), set up for determinism."""
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
