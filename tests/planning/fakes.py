"""Fake dynamics shared by the planning tests."""

from __future__ import annotations

import math

import torch

from robot_wm.planning.dynamics import Prediction


class Slide:
    """Every push moves the object nearest its start along the heading by its travel after 1 cm."""

    def __call__(self, states, mask, actions) -> Prediction:
        d = (states[..., 0:2] - actions[:, None, 1:3]).square().sum(-1).masked_fill(~mask, math.inf)
        first = torch.nn.functional.one_hot(d.argmin(1), states.shape[1]).to(states.dtype)
        out = states.clone()
        step = (actions[:, 5] - 0.01)[:, None] * first
        out[..., 0] += step * torch.cos(actions[:, 4:5])
        out[..., 1] += step * torch.sin(actions[:, 4:5])
        b, n = mask.shape
        return Prediction(out, torch.ones(b), torch.zeros(b, n, 4))
