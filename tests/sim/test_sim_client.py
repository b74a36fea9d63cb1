"""The physics client wrapper (robot_wm.sim.client)."""

import pytest


def test_client_interrupted_before_connecting_is_destroyed_quietly():
    """Ctrl-C inside pybullet.connect leaves a client without ``_client``; its destructor must not raise (the
    stock BulletClient's printed a traceback after the CLI's one-line "interrupted")."""
    from pybullet_utils.bullet_client import BulletClient

    from robot_wm.sim.client import SafeBulletClient

    stock = BulletClient.__new__(BulletClient)
    with pytest.raises(AttributeError):
        stock.__del__()
    stock._client = -1  # so that its collection is quiet
    SafeBulletClient.__new__(SafeBulletClient).__del__()
