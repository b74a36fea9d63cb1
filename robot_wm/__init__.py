"""robot_wm: a manipulation planning stack that looks before it acts and checks before it commits."""

__version__ = "0.1.0"
