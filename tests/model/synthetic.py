"""Tiny synthetic transitions for training and evaluation tests (no simulator)."""

import numpy as np

from robot_wm.model.state import GRASP, PUSH, object_state


def synthetic(n: int, seed: int) -> dict[str, np.ndarray]:
    """One box per scene pushed straight on: it moves by (travel - gap) along the push ('physics' =
    kinematic follow plus a 5 mm slide). Grasps succeed when the box is narrower than 6 cm."""
    rng = np.random.default_rng(seed)
    T, N = n, 2
    before = np.zeros((T, N, 15), np.float32)
    before[..., 6] = 1
    mask = np.zeros((T, N), bool)
    act = np.zeros((T, 7), np.float32)
    grasp_ok = np.full(T, -1, np.int8)
    after = before.copy()
    for t in range(T):
        w = rng.uniform(0.03, 0.09)
        yaw = rng.uniform(-np.pi, np.pi)
        c = np.array([rng.uniform(0.4, 0.6), rng.uniform(-0.2, 0.2), 0.02])
        before[t, 0] = object_state(c, [0, 0, np.sin(yaw / 2), np.cos(yaw / 2)], [w, w, 0.04], "box")
        before[t, 1] = object_state(c + [0.3, 0.3, 0], [0, 0, 0, 1], [0.04] * 3, "box")
        mask[t] = True
        after[t] = before[t]
        if t % 4 == 3:
            act[t] = [GRASP, c[0], c[1], 0.02, yaw, 0.07, 0.0]
            grasp_ok[t] = int(w < 0.06)
            after[t, 0, 2] += 0.1 * grasp_ok[t]
        else:
            h = rng.uniform(-np.pi, np.pi)
            u = np.array([np.cos(h), np.sin(h), 0])
            gap = rng.uniform(0.005, 0.03)
            reach = w / 2 * min(1 / max(abs(np.cos(h - yaw)), 1e-6), 1 / max(abs(np.sin(h - yaw)), 1e-6))
            start = c - u * (reach + 0.012 + gap)
            travel = gap + rng.uniform(0.02, 0.12)
            tilt = rng.uniform(-0.6, 0.6) if t % 2 else 0.0  # the face tilt is not modelled by this 'physics'
            act[t] = [PUSH, start[0], start[1], 0.02, h, travel, tilt]
            after[t, 0, :3] += u * (travel - gap + 0.005)
    return {"before": before, "after": after, "mask": mask, "action": act, "target": np.zeros(T, np.int16),
            "touched": np.zeros((T, N), bool) | (np.arange(N) == 0), "grasp_ok": grasp_ok,
            "episode": np.arange(T) // 8, "step": np.arange(T) % 8}
