"""The object sets of design.md: train and tune on primitives and random_urdfs 000-699; report on 700-999."""

from __future__ import annotations

TRAIN_URDF_IDS = range(0, 700)
HELDOUT_URDF_IDS = range(700, 1000)
# pybullet_data ships random_urdfs/168 with a mesh whose vertices are all NaN: never sampled
BROKEN_URDF_IDS = frozenset({168})


def random_urdf_path(index: int) -> str:
    """pybullet_data-relative path of random_urdfs/NNN."""
    return f"random_urdfs/{index:03d}/{index:03d}.urdf"


def random_urdf_index(path: str) -> int | None:
    """NNN of a ``random_urdfs/NNN/...`` path (as :func:`random_urdf_path` writes it); None for any other path."""
    return int(path.split("/")[1]) if path.startswith("random_urdfs/") else None
