"""The world model the planner calls: ``WorldModel.predict(states, actions, mask)`` and its file format.

File: safetensors; all tensors are the network's parameters plus ``norm.*``; the metadata key
``robot_wm`` holds a JSON header::

    {"format": "robot_wm.world_model", "version": 4, "state_dim": 15, "action_dim": 7,
     "n_features": 24, "n_out": 8, "k": 5, "hidden": 16, "edge": 8, "head": 8,
     "shape_dim": 7430, "grasp_in": 299, "grasp_hidden": 32, "temperature": 1.0,
     "train": {...how it was trained, data counts, validation losses...}}

Tensors: ``net.*`` (interaction network), ``grasp.*`` (grasp head), ``norm.*``, and optionally
``turn.readout`` (K, head + 1): the expected-turn readout (:mod:`robot_wm.model.turn_readout`; files
without it load, and planners that ask for the expected turn say it is missing). The header then holds
``"turn": {...}`` (how the readout was fitted and how well it predicts).

Loading never unpickles anything; a corrupt, foreign or mismatched file raises :class:`ModelFileError`
with a one-line message.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_wm.config.errors import ConfigError
from robot_wm.model.grasp_head import N_GRASP_IN, GraspHead, grasp_features
from robot_wm.model.network import (
    N_DELTA,
    N_FEATURES,
    N_OUT,
    EnsembleInteractionNet,
    action_frame_features,
    compact_features,
)
from robot_wm.model.shape import SHAPE_DIM
from robot_wm.model.state import ACTION_DIM, GRASP, LIFT, STATE_DIM

log = logging.getLogger(__name__)

FORMAT = "robot_wm.world_model"
VERSION = 4  # 3: shape descriptors with convex parts, grasp head with exact hand-object overlaps; 4: push tilt
PUSH_CHUNK = 4096  # scenes evaluated at once: intermediates stay in cache (measured 7-20 % faster than 16384)
GRASP_CHUNK = 2048  # grasps whose head inputs are built at once (bounds memory for large batches)
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "world_model.safetensors"


class ModelFileError(ConfigError):
    """A world-model file that cannot be used (missing, corrupt, foreign, the wrong dimensions, non-finite
    weights): a :class:`~robot_wm.config.ConfigError` (``file: field: what``, one line), so the CLI reports
    it as bad input (exit status 2)."""


# header entries that size the network: name -> the largest value a real model could have
_SIZE_KEYS = {"k": 64, "hidden": 4096, "edge": 4096, "head": 4096, "grasp_hidden": 4096}


@dataclass
class Normalisation:
    """Feature mean/std (F,) and output scales (4,) for (dx, dy, dz, dyaw) in action frame (m, m, m, rad)."""

    feat_mean: torch.Tensor = field(default_factory=lambda: torch.zeros(N_FEATURES))
    feat_std: torch.Tensor = field(default_factory=lambda: torch.ones(N_FEATURES))
    out_scale: torch.Tensor = field(default_factory=lambda: torch.ones(N_DELTA))


class WorldModel:
    """Ensemble transition model over padded object sets. See :mod:`robot_wm.model.state` for layouts."""

    def __init__(self, net: EnsembleInteractionNet, norm: Normalisation | None = None,
                 temperature: float = 1.0, info: dict[str, Any] | None = None,
                 grasp_head: GraspHead | None = None, turn_readout: torch.Tensor | None = None,
                 turn_info: dict[str, Any] | None = None) -> None:
        self.net = net.eval()
        self.turn_readout = turn_readout  # (K, head + 1) expected-turn readout, or None
        self.turn_info = turn_info or {}
        self.grasp_head = (grasp_head or GraspHead(net.k)).eval()
        self.norm = norm or Normalisation()
        self.temperature = float(temperature)
        self.info = info or {}
        self._fused = None

    def fused(self):
        """The inference path (normalisation folded in); rebuilt after :meth:`invalidate`."""
        if self._fused is None:
            self._fused = self.net.fused(self.norm.feat_mean, self.norm.feat_std)
        return self._fused

    def invalidate(self) -> None:
        """Call after changing the network's weights in place."""
        self._fused = None

    @property
    def k(self) -> int:
        return self.net.k

    # ------------------------------------------------------------------ core
    def raw(self, states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Member outputs (K, B, N, 9) in normalised units and the target one-hot (B, N)."""
        feats, rel, target = action_frame_features(states, mask, actions)
        x = (feats - self.norm.feat_mean) / self.norm.feat_std
        return self.net(x, rel, mask, target), target

    def grasp_logits(self, obj_states: torch.Tensor, shapes: torch.Tensor | None, actions: torch.Tensor
                     ) -> torch.Tensor:
        """Grasp-head logits (K, R) for R grasps (each member's mean over the grasp's four reflections):
        obj_states (R, 15) of the grasped objects, their shape descriptors (R, SHAPE_DIM) (None: filled
        bounding boxes), actions (R, 7)."""
        return self.grasp_head.symmetric(grasp_features(obj_states, shapes, actions))

    def _grasp_p(self, s: torch.Tensor, a: torch.Tensor, slot: torch.Tensor,
                 sh: torch.Tensor | None, scene: torch.Tensor) -> torch.Tensor:
        """P(stable) (R,) of R grasps on objects `slot` (R,) of scenes s (R, N, 15); descriptors sh
        (S, N, SHAPE_DIM) indexed by `scene` (R,), or None. In chunks of GRASP_CHUNK grasps."""
        out = []
        for lo in range(0, len(a), GRASP_CHUNK):
            i = slice(lo, lo + GRASP_CHUNK)
            desc = None if sh is None else sh[scene[i], slot[i]]
            logit = self.grasp_logits(s[i].gather(1, slot[i, None, None].expand(-1, 1, s.shape[-1]))[:, 0], desc,
                                      a[i]).mean(0)
            out.append(torch.sigmoid(logit / self.temperature))
        return torch.cat(out)

    def _push_moments(self, s: torch.Tensor, mp: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The ensemble's moments (9, B, N) (see FusedInference.moments) of the objects where `mp` is True,
        PUSH_CHUNK scenes at a time (their intermediate products then stay in the cache)."""
        b, n = mp.shape
        out = torch.empty(2 * N_DELTA + 1, b, n)
        for lo in range(0, b, PUSH_CHUNK):
            i = slice(lo, lo + PUSH_CHUNK)
            out[:, i] = self.fused().moments(*compact_features(s[i], mp[i], a[i]), len(a[i]), n)
        return out

    def predict(self, states: Any, actions: Any, mask: Any = None, shapes: Any = None
                ) -> tuple[Any, Any, Any]:
        """Predict the outcome of one action per scene.

        states (B, N, 15) float, actions (B, 7) float, mask (B, N) bool (None: every slot is real),
        shapes (B, N, SHAPE_DIM) or (N, SHAPE_DIM) (one scene's, shared by all B) float: the objects' shape
        descriptors (:mod:`robot_wm.model.shape`); None: each object's filled bounding box. Only grasps
        read them. Returns (same array type as `states`: torch tensor or NumPy array):

        * next_states (B, N, 15): pushes: position and yaw moved by the ensemble-mean delta, at_rest = 1;
          grasps: the outcome on success: the grasped object raised by the lift (0.10 m), the others
          unchanged. Padded slots are returned unchanged.
        * p_success (B,): grasp actions: P(the shake test labels the grasp `stable`: held through close,
          lift, shakes, pulls and hold without slipping); push actions: 1.0.
        * std (B, N, 4): pushes: predictive standard deviation of the world-frame delta (dx, dy, dz m,
          dyaw rad) of the ensemble as a mixture of its K Gaussian members (PETS): spread of the member
          means (epistemic) plus their mean predicted noise variance (aleatoric); grasps and padded slots: 0.
        """
        as_numpy = not isinstance(states, torch.Tensor)
        s = torch.as_tensor(np.asarray(states, np.float32) if as_numpy else states, dtype=torch.float32)
        a = torch.as_tensor(np.asarray(actions, np.float32) if as_numpy else actions, dtype=torch.float32)
        if s.ndim != 3 or s.shape[-1] != STATE_DIM:
            raise ValueError(f"states must have shape (B, N, {STATE_DIM}) (got {tuple(s.shape)})")
        if a.shape != (s.shape[0], ACTION_DIM):
            raise ValueError(f"actions must have shape ({s.shape[0]}, {ACTION_DIM}) (got {tuple(a.shape)})")
        m = torch.ones(s.shape[:2], dtype=torch.bool) if mask is None else torch.as_tensor(
            np.asarray(mask, bool) if as_numpy else mask, dtype=torch.bool)
        is_grasp = a[:, 0] == GRASP
        sh = None
        if shapes is not None:
            sh = torch.as_tensor(np.asarray(shapes, np.float32) if as_numpy else shapes, dtype=torch.float32)
            if sh.shape[-1] != SHAPE_DIM or sh.ndim not in (2, 3) or sh.shape[-2] != s.shape[1] or (
                    sh.ndim == 3 and sh.shape[0] not in (1, s.shape[0])):
                raise ValueError(f"shapes must have shape (B, N, {SHAPE_DIM}) or (N, {SHAPE_DIM}) "
                                 f"(got {tuple(sh.shape)})")
            sh = sh.reshape(-1, s.shape[1], SHAPE_DIM)
        with torch.inference_mode():
            # pushes: features of the real objects only; ensemble moments in the action frame, one rotation
            mp = m & ~is_grasp[:, None]
            mo = self._push_moments(s, mp, a)  # (9, B, N) normalised
            sc = self.norm.out_scale
            mo[:N_DELTA] *= sc[:, None, None]  # mean
            mo[N_DELTA:2 * N_DELTA] *= (sc * sc)[:, None, None]  # variance of the mixture of K Gaussians
            mo[2 * N_DELTA] *= sc[0] * sc[1]  # x-y covariance (member noise is diagonal)
            # action frame -> world frame: rotate (dx, dy) and their covariance by the action's yaw
            yaw = a[:, 4:5]
            c, sn = torch.cos(yaw), torch.sin(yaw)
            c2, s2, cs2 = c * c, sn * sn, 2 * c * sn
            ax, ay, vx, vy, cov_xy = mo[0], mo[1], mo[N_DELTA], mo[N_DELTA + 1], mo[2 * N_DELTA]
            delta = torch.stack([c * ax - sn * ay, sn * ax + c * ay, mo[2], mo[3]])  # (4, B, N)
            var = torch.stack([c2 * vx + s2 * vy - cs2 * cov_xy, s2 * vx + c2 * vy + cs2 * cov_xy,
                               mo[N_DELTA + 2], mo[N_DELTA + 3]])
            std = var.clamp_min_(0.0).sqrt_().permute(1, 2, 0).contiguous()  # padding and grasps: 0
            p = torch.ones(s.shape[0])
            g = is_grasp.nonzero().squeeze(1)
            if len(g):
                # grasps: the grasp head on the object nearest the grasp point; the outcome on success
                sg, ag = s.index_select(0, g), a.index_select(0, g)
                slot = grasp_targets(sg, m.index_select(0, g), ag)
                scene = g if sh is not None and sh.shape[0] > 1 else torch.zeros_like(g)
                p.index_copy_(0, g, self._grasp_p(sg, ag, slot, sh, scene))
                delta[2, g, slot] = LIFT
            nxt = apply_delta(s, delta.permute(1, 2, 0))
            nxt[..., 14].masked_fill_(m, 1.0)
        if as_numpy:
            return nxt.numpy(), p.numpy(), std.numpy()
        return nxt, p, std

    # ------------------------------------------------------------------ files
    def header(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "state_dim": STATE_DIM, "action_dim": ACTION_DIM,
                "n_features": N_FEATURES, "n_out": N_OUT, "k": self.net.k, "hidden": self.net.hidden,
                "edge": self.net.edge, "head": self.net.head, "shape_dim": SHAPE_DIM, "grasp_in": N_GRASP_IN,
                "grasp_hidden": self.grasp_head.hidden, "temperature": self.temperature, "train": self.info} | (
                    {"turn": self.turn_info} if self.turn_readout is not None else {})

    def save(self, path: Path) -> None:
        """Write safetensors (atomic) with the JSON header in its metadata."""
        from safetensors.torch import save_file

        tensors = {f"net.{k}": v.detach().contiguous() for k, v in self.net.state_dict().items()}
        tensors |= {f"grasp.{k}": v.detach().contiguous() for k, v in self.grasp_head.state_dict().items()}
        tensors |= {"norm.feat_mean": self.norm.feat_mean, "norm.feat_std": self.norm.feat_std,
                    "norm.out_scale": self.norm.out_scale}
        if self.turn_readout is not None:
            tensors["turn.readout"] = self.turn_readout.detach()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={"robot_wm": json.dumps(self.header())})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str | None = None) -> WorldModel:
        """Load a model file (default: the shipped model). Raises ModelFileError with a one-line reason."""
        from safetensors import SafetensorError, safe_open

        path = Path(path) if path is not None else DEFAULT_MODEL
        src = str(path)
        if not path.is_file():
            raise ModelFileError(src, "", "model file not found")
        try:
            with safe_open(src, framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items)
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise ModelFileError(src, "", f"not a readable safetensors file ({msg})") from None
        if "robot_wm" not in meta:
            raise ModelFileError(src, "robot_wm", "no robot_wm header (not a robot_wm world-model file)")
        try:
            h = json.loads(meta["robot_wm"])
        except (json.JSONDecodeError, RecursionError):
            raise ModelFileError(src, "robot_wm", "corrupt robot_wm header (invalid JSON)") from None
        if not isinstance(h, dict):
            raise ModelFileError(src, "robot_wm", f"header is a JSON {type(h).__name__}, expected an object")
        if h.get("format") != FORMAT:
            raise ModelFileError(src, "format", f"header format is {h.get('format')!r}, expected {FORMAT!r}")
        if h.get("version") != VERSION:
            raise ModelFileError(src, "version", f"model version {h.get('version')} but this code reads version "
                                 f"{VERSION}")
        for key, want in (("state_dim", STATE_DIM), ("action_dim", ACTION_DIM), ("n_features", N_FEATURES),
                          ("n_out", N_OUT), ("shape_dim", SHAPE_DIM), ("grasp_in", N_GRASP_IN)):
            if h.get(key) != want:
                raise ModelFileError(src, key, f"header {key} = {h.get(key)}, this code needs {want}")
        for key, most in _SIZE_KEYS.items():
            v = h.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most:
                raise ModelFileError(src, key, f"header {key} must be an integer in [1, {most}] (got {v!r})")
        temperature = h.get("temperature", 1.0)
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not (
                math.isfinite(temperature) and temperature > 0):
            raise ModelFileError(src, "temperature", f"must be a finite number > 0 (got {temperature!r})")
        for key in ("train", "turn"):
            if not isinstance(h.get(key, {}), dict):
                raise ModelFileError(src, key, f"must be a mapping (got {type(h[key]).__name__})")
        for name, t in tensors.items():
            if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
                raise ModelFileError(src, name, "tensor holds NaN, infinite or non-float values")
        try:
            net = EnsembleInteractionNet(h["k"], h["hidden"], h["edge"], h["head"])
            state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
            net.load_state_dict(state, strict=True)
            head = GraspHead(h["k"], h["grasp_hidden"])
            head.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("grasp.")}, strict=True)
            norm = Normalisation(tensors["norm.feat_mean"], tensors["norm.feat_std"], tensors["norm.out_scale"])
            if norm.feat_mean.shape != (N_FEATURES,) or norm.feat_std.shape != (N_FEATURES,) or (
                    norm.out_scale.shape != (N_DELTA,)):
                raise ValueError("normalisation tensors have the wrong shape")
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(src, "", f"tensors do not match the header ({msg[:200]})") from None
        if not bool((norm.feat_std > 0).all()) or not bool((norm.out_scale > 0).all()):
            raise ModelFileError(src, "norm.feat_std" if not bool((norm.feat_std > 0).all()) else "norm.out_scale",
                                 "must be > 0 (a scale)")
        readout = tensors.get("turn.readout")
        if readout is not None and tuple(readout.shape) != (h["k"], h["head"] + 1):
            raise ModelFileError(src, "turn.readout", f"expected shape ({h['k']}, {h['head'] + 1}) "
                                 f"(got {tuple(readout.shape)})")
        return cls(net, norm, float(temperature), h.get("train", {}), head, readout, h.get("turn", {}))


def grasp_targets(states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Slot (R,) of the object each grasp acts on: the real object nearest the grasp point in x-y (the
    same rule as robot_wm.model.network's target for grasps). states (R, N, 15), mask (R, N), actions (R, 7)."""
    d = (states[..., 0:2] - actions[:, None, 1:3]).square().sum(-1)
    return torch.where(mask, d, torch.full_like(d, float("inf"))).argmin(1)


# Rz(a) * q = cos(a/2) q + sin(a/2) (-qy, qx, qw, -qz) for q = (qx, qy, qz, qw): the second term as q @ _QUAT_Z
_QUAT_Z = torch.tensor([[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 1.0, 0.0]])


def apply_delta(states: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """states (..., 15) moved by world-frame delta (..., 4) = (dx, dy, dz m, dyaw rad): position += d,
    orientation := Rz(dyaw) * orientation."""
    out = states.clone()
    out[..., 0:3] += delta[..., 0:3]
    half = delta[..., 3:4] * 0.5
    q = out[..., 3:7]
    turn = (q.reshape(-1, 4) @ _QUAT_Z).reshape(q.shape)
    q.mul_(torch.cos(half)).addcmul_(turn, torch.sin(half))
    return out
