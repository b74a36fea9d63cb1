"""Plain JSON values from what the stack computes: for reports, plan logs and ``--json`` output."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from robot_wm.geometry import Pose


def to_jsonable(obj: Any) -> Any:
    """NumPy arrays/scalars, Poses ([position, quaternion]), paths, tuples and non-finite floats (-> None)
    as plain JSON values; dict keys become strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Pose):
        return obj.as_list()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
