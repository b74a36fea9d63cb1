"""Shared fixtures: repository paths and small scenes built in code."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO


def box_scene_dict(**overrides) -> dict:
    """A one-box scene mapping with both shipped cameras; keys in `overrides` replace top-level keys."""
    data = {
        "name": "one_box",
        "seed": 0,
        "cameras": [{"calibration": "front.yaml"}, {"calibration": "side.yaml"}],
        "objects": [{"name": "box", "shape": "box", "size": [0.05, 0.05, 0.05], "mass": 0.1,
                     "friction": 0.8, "color": [0.9, 0.1, 0.1, 1.0], "position": [0.5, 0.0, 0.025]}],
    }
    data.update(overrides)
    return data
