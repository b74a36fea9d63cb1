"""Batched dynamics the sampling MPC rolls its action sequences through.

A dynamics is any callable ``(states (B, N, 15), mask (B, N), actions (B, 7)) -> Prediction`` on float32
CPU torch tensors, in the layouts of :mod:`robot_wm.model.state` (world frame, SI units):

* ``next_states`` (B, N, 15): the objects after the action (padded slots unchanged);
* ``p_success`` (B,): the probability that the action does what it was meant to (a grasp holds; a push
  is 1 unless the adapter knows better);
* ``std`` (B, N, 4): per object, the spread of the predicted world-frame delta (dx, dy, dz m, dyaw rad)
  across the ensemble's members: their *disagreement* (0 for deterministic dynamics and padded slots).

Adapters: :class:`WorldModelDynamics` (the learned model; the default), :class:`NoMotionDynamics` (nothing
ever moves: a floor for planning rates and a null model), :class:`PhysicsDynamics` (PyBullet rolls the
same actions with the Panda on a copy of the *perceived* scene, built only from the states it is given:
the reference that separates planner error from model error).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from robot_wm.model.network import LOGVAR_MAX, LOGVAR_MIN, N_DELTA, action_frame_features, compact_features
from robot_wm.model.state import ACTION_DIM, GRASP, PUSH, SHAPES, STATE_DIM, TILT, object_state
from robot_wm.model.world_model import WorldModel, apply_delta

log = logging.getLogger(__name__)


class Prediction(NamedTuple):
    """What a dynamics returns; see the module docstring for shapes and units."""

    next_states: torch.Tensor
    p_success: torch.Tensor
    std: torch.Tensor


@runtime_checkable
class Dynamics(Protocol):
    """``dynamics(states (B, N, 15), mask (B, N) bool, actions (B, 7)) -> Prediction``. It must not
    modify its inputs (the planner passes views of shared tensors) and may return `states` itself for
    rows that do not change."""

    def __call__(self, states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor) -> Prediction: ...


def _check(states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor) -> None:
    if states.ndim != 3 or states.shape[-1] != STATE_DIM:
        raise ValueError(f"states must have shape (B, N, {STATE_DIM}) (got {tuple(states.shape)})")
    if mask.shape != states.shape[:2]:
        raise ValueError(f"mask must have shape {tuple(states.shape[:2])} (got {tuple(mask.shape)})")
    if actions.shape != (states.shape[0], ACTION_DIM):
        raise ValueError(f"actions must have shape ({states.shape[0]}, {ACTION_DIM}) (got {tuple(actions.shape)})")


class NoMotionDynamics:
    """Nothing moves: next_states is `states` itself (not a copy), p_success 1, std 0."""

    def __call__(self, states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor) -> Prediction:
        _check(states, mask, actions)
        b, n, _ = states.shape
        return Prediction(states, torch.ones(b), torch.zeros(b, n, N_DELTA))


class WorldModelDynamics:
    """The learned :class:`~robot_wm.model.world_model.WorldModel` as MPC dynamics.

    Pushes run the model's fused inference path on torch tensors end to end (no NumPy, no autograd), on
    the real objects only (the compact path of ``FusedInference.moments``, mirrored here so that the
    members' spread stays apart from their noise; tested against :meth:`WorldModel.predict`): per-object
    features in the action frame, every member's (dx, dy, dz, dyaw) mean, the ensemble mean applied as the
    next state (exactly :meth:`WorldModel.predict`'s next_states; at_rest = 1).

    ``std`` measures the members' disagreement: with ``uncertainty="epistemic"`` (default) the standard
    deviation of the K member means (their spread: what the ensemble does not know); with ``"total"`` the
    predictive std of the ensemble as a mixture of Gaussians, that spread plus the members' mean predicted
    noise variance (= :meth:`WorldModel.predict`'s std). Both are rotated from the action frame to the
    world frame with their x-y covariance and reported per component (dx, dy, dz m, dyaw rad).

    ``turn="expected"``: each member's yaw change is its expected turn (the model file's readout,
    :mod:`robot_wm.model.turn_readout`: the mean of the yaw change, where the network's own output is its
    most likely value — no turn wherever a turn is uncertain); the ensemble mean and the members' spread
    of the yaw are those of the expected turns, everything else as with ``"mode"`` (the default).

    Grasp actions (kind 1) go through :meth:`WorldModel.predict` (grasp head P(success), object lifted on
    success); their std is 0. `shapes` (N, SHAPE_DIM) are the objects' shape descriptors the grasp head
    reads (None: bounding boxes).
    """

    def __init__(self, model: WorldModel | None = None, path: str | Path | None = None,
                 uncertainty: str = "epistemic", shapes: torch.Tensor | None = None, turn: str = "mode") -> None:
        if uncertainty not in ("epistemic", "total"):
            raise ValueError(f"uncertainty must be 'epistemic' or 'total' (got {uncertainty!r})")
        if turn not in ("mode", "expected"):
            raise ValueError(f"turn must be 'mode' or 'expected' (got {turn!r})")
        self.model = model if model is not None else WorldModel.load(path)
        if turn == "expected" and self.model.turn_readout is None:
            from robot_wm.model.world_model import ModelFileError

            raise ModelFileError(str(path or "world model"), "turn.readout",
                                 "turn: expected needs the expected-turn readout, which this model file lacks "
                                 "(robot-wm turn-readout adds it; docs/world_model.md)")
        self.turn = turn
        self.uncertainty = uncertainty
        self.shapes = shapes
        self._scale = self.model.norm.out_scale.to(torch.float32)  # (4,) normalised -> (m, m, m, rad)
        self._fast_for: object | None = None  # the fused inference _fast was made from
        self._fast: tuple | None = None

    _FUSED_PARTS = ("decoder_input", "wout", "bout", "k")

    def _fast_weights(self):
        """(fused inference, output rows and biases this adapter needs) or None when the model's fused
        path does not have the layout :meth:`_pushes_compact` reads (then the generic path is used)."""
        fused = self.model.fused()
        if self._fast_for is fused:
            return self._fast
        self._fast_for, self._fast = fused, None
        if all(hasattr(fused, a) for a in self._FUSED_PARTS):
            nd = N_DELTA * fused.k
            rows = fused.wout.shape[0]
            if rows == 2 * nd + N_DELTA:
                # output rows [member deviations 4K | log-variances 4K | ensemble mean 4]; epistemic: skip
                # the log-variances
                wout, bout = fused.wout, fused.bout
                if self.turn == "expected":
                    wout, bout = self._expected_turn_rows(wout, bout, fused.k)
                keep = torch.cat([torch.arange(nd), torch.arange(2 * nd, rows)])
                if self.uncertainty != "total":
                    wout, bout = wout.index_select(0, keep).contiguous(), bout.index_select(0, keep).contiguous()
                self._fast = (fused, wout, bout)
        return self._fast

    def _expected_turn_rows(self, wout: torch.Tensor, bout: torch.Tensor, k: int
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused output rows [dev 4K | logvar 4K | mean 4] with the yaw's member deviations (rows 3K
        to 4K) and ensemble mean (the last row) replaced by those of the expected turns (both linear in
        the hidden layer z, like the rows they replace)."""
        r = self.model.turn_readout.to(wout.dtype)
        head = r.shape[1] - 1
        w = torch.zeros(k, k * head, dtype=wout.dtype)
        for i in range(k):
            w[i, i * head:(i + 1) * head] = r[i, :head]
        b = r[:, head]
        wout, bout = wout.clone(), bout.clone()
        wout[3 * k:4 * k] = w - w.mean(0)
        bout[3 * k:4 * k, 0] = b - b.mean()
        wout[-1] = w.mean(0)
        bout[-1, 0] = b.mean()
        return wout, bout

    def _pushes_compact(self, s: torch.Tensor, m: torch.Tensor, a: torch.Tensor, fast
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The members' moments of the real objects only (the model's compact fused path, as
        FusedInference.moments, with the spread of the member means kept apart from their noise).
        Returns world-frame delta (R, 4), its spread (R, 4) and the flat indices (R,) into B*N."""
        fu, wout, bout = fast
        b, n, _ = s.shape
        fc, relc, tc, idx, scene = compact_features(s, m, a)
        k, nd = fu.k, N_DELTA * fu.k
        z = fu.decoder_input(fc, relc, tc, idx, scene, b, n)
        o = torch.addmm(bout, wout, z.T)  # [dev 4K | (logvar 4K) | mean 4] x R, normalised action frame
        sc = self._scale[:, None]
        dev = o[:nd].view(N_DELTA, k, -1)
        mean = o[-N_DELTA:] * sc  # (4, R)
        var = dev.square().mean(1) * (sc * sc)  # spread of the member means
        cov = (dev[0] * dev[1]).mean(0) * (sc[0] * sc[1])
        if self.uncertainty == "total":
            noise = o[nd:2 * nd].clamp(LOGVAR_MIN, LOGVAR_MAX).exp_().view(N_DELTA, k, -1).mean(1)
            var = var + noise * (sc * sc)
        yaw = a[:, 4].index_select(0, scene)
        c, sn = torch.cos(yaw), torch.sin(yaw)
        delta = torch.stack([c * mean[0] - sn * mean[1], sn * mean[0] + c * mean[1], mean[2], mean[3]], 1)
        c2, s2, cs2 = c * c, sn * sn, 2 * c * sn
        wvar = torch.stack([c2 * var[0] + s2 * var[1] - cs2 * cov, s2 * var[0] + c2 * var[1] + cs2 * cov,
                            var[2], var[3]], 1)
        return delta, wvar.clamp_min_(0.0).sqrt_(), idx

    def _pushes(self, s: torch.Tensor, m: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Next states (B, N, 15) and the spread (B, N, 4) of the world-frame delta, for push actions."""
        b, n, _ = s.shape
        fast = self._fast_weights()
        if fast is not None:
            delta, sd, idx = self._pushes_compact(s, m, a, fast)
            rows = s.reshape(b * n, -1)
            if len(idx) == b * n:  # no padding: the compact rows are all the rows, in order
                nxt = apply_delta(rows, delta)
                nxt[:, 14] = 1.0
                return nxt.reshape(b, n, -1), sd.reshape(b, n, N_DELTA)
            moved = apply_delta(rows.index_select(0, idx), delta)
            moved[:, 14] = 1.0
            nxt = rows.clone().index_copy_(0, idx, moved).reshape(b, n, -1)
            std = torch.zeros(b * n, N_DELTA).index_copy_(0, idx, sd).reshape(b, n, N_DELTA)
            return nxt, std
        delta, std = self._pushes_generic(s, m, a)
        nxt = apply_delta(s, delta)
        nxt[..., 14].masked_fill_(m, 1.0)
        return nxt, std

    def _pushes_generic(self, s: torch.Tensor, m: torch.Tensor, a: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """World-frame delta (B, N, 4) of the ensemble mean and its spread (B, N, 4) from the fused
        path's per-member outputs (every slot, padding masked)."""
        f, rel, target = action_frame_features(s, m, a)
        fused = self.model.fused()
        out = fused(f, rel, m, target)  # (K, B, N, 8) normalised, action frame
        if self.turn == "expected":
            from robot_wm.model.turn_readout import expected_turn

            b, n, _ = s.shape
            z = fused._hidden(f, rel, m, target).reshape(b, n, self.model.k, -1)
            out = out.clone()
            out[..., 3] = expected_turn(self.model.turn_readout, z).permute(2, 0, 1)
        sc = self._scale
        mu = out[..., :N_DELTA] * sc  # (K, B, N, 4) members' means
        mean = mu.mean(0)
        dev = mu - mean
        var = dev.square().mean(0)  # (B, N, 4) spread of the member means
        c = torch.cos(a[:, 4])[:, None]
        sn = torch.sin(a[:, 4])[:, None]
        cov = (dev[..., 0] * dev[..., 1]).mean(0)
        if self.uncertainty == "total":
            noise = out[..., N_DELTA:].clamp(LOGVAR_MIN, LOGVAR_MAX).exp().mean(0) * (sc * sc)
            var = var + noise
        c2, s2, cs2 = c * c, sn * sn, 2 * c * sn
        vx, vy = var[..., 0], var[..., 1]
        wvar = torch.stack([c2 * vx + s2 * vy - cs2 * cov, s2 * vx + c2 * vy + cs2 * cov,
                            var[..., 2], var[..., 3]], -1)
        ax, ay = mean[..., 0], mean[..., 1]
        delta = torch.stack([c * ax - sn * ay, sn * ax + c * ay, mean[..., 2], mean[..., 3]], -1)
        real = m[..., None].to(delta.dtype)
        return delta * real, wvar.clamp_min(0.0).sqrt() * real

    def __call__(self, states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor) -> Prediction:
        _check(states, mask, actions)
        with torch.inference_mode():
            s, m, a = states.float(), mask.bool(), actions.float()
            b = s.shape[0]
            is_grasp = a[:, 0] == GRASP
            if not bool(is_grasp.any()):
                nxt, std = self._pushes(s, m, a)
                return Prediction(nxt, torch.ones(b), std)
            # mixed batch: pushes here, grasps through predict (its next states and grasp P(success))
            nxt, p, std = self.model.predict(s, a, m, self.shapes)
            std = std.clone()
            std[is_grasp] = 0.0
            push = (~is_grasp).nonzero().squeeze(1)
            if len(push):
                sp, mp, ap = s.index_select(0, push), m.index_select(0, push), a.index_select(0, push)
                np_, sd = self._pushes(sp, mp, ap)
                nxt.index_copy_(0, push, np_)
                std.index_copy_(0, push, sd)
            return Prediction(nxt, p, std)


class PhysicsDynamics:
    """PyBullet rolls each action with the Panda on a world rebuilt from the given (perceived) states.

    For every batch row a fresh :class:`robot_wm.sim.World` is built (table, Panda, one body per real
    object slot), the objects settle, the push is executed with :func:`robot_wm.sim.push.execute_push`
    (the motion the training data were recorded with), the objects settle again and are read back.
    Geometry comes from the state only: a box of the state's extents for boxes and meshes, a cylinder
    (radius ex/2, height ez) or sphere (radius ex/2) for those one-hots. Mass and friction cannot be
    perceived: `mass` (kg) and `friction` are used for every object (or per slot, sequences of N).

    Deterministic (each row is a fresh world; IK restarts are a fixed sequence) and slow (~0.5-2 s per
    row): a reference, not a planner's inner loop. ``p_success`` is 1 where the push was executed and 0
    where the arm could not (start blocked or unreachable; the objects then only settle). Grasps are not
    simulated here (ValueError). ``std`` is 0.
    """

    def __init__(self, mass: float | list[float] = 0.1, friction: float | list[float] = 0.5,
                 calibration: str = "front.yaml", seed: int = 0) -> None:
        self.mass, self.friction = mass, friction
        self.calibration = calibration
        self.seed = seed
        self._kin = None

    def scene_dict(self, states: np.ndarray, mask: np.ndarray) -> tuple[dict, list[int]]:
        """A contract scene dict of the real objects of one scene (N, 15) and their slots."""
        objects, slots = [], []
        for i, (s, real) in enumerate(zip(states, mask, strict=True)):
            if not real:
                continue
            shape = SHAPES[int(np.argmax(s[10:14]))]
            ext = np.maximum(np.asarray(s[7:10], float), 1e-3)
            if shape == "cylinder":
                geo = {"shape": "cylinder", "size": [float(ext[0] / 2), float(ext[2])]}
            elif shape == "sphere":
                geo = {"shape": "sphere", "size": [float(ext[0] / 2)]}
            else:
                geo = {"shape": "box", "size": [float(v) for v in ext]}
            mass = self.mass[i] if isinstance(self.mass, list | tuple) else self.mass
            fric = self.friction[i] if isinstance(self.friction, list | tuple) else self.friction
            q = np.asarray(s[3:7], float)
            objects.append({"name": f"obj{i}", **geo, "mass": float(mass), "friction": float(fric),
                            "position": [float(v) for v in s[0:3]],
                            "orientation": [float(v) for v in q / np.linalg.norm(q)]})
            slots.append(i)
        return {"name": "physics_dynamics", "seed": self.seed, "cameras": [{"calibration": self.calibration}],
                "objects": objects}, slots

    def _kinematics(self, world):
        if self._kin is None:
            from robot_wm.sim import KinematicModel

            self._kin = KinematicModel(str(world.scene.robot_urdf), np.asarray(world.scene.config.robot.base_position))
        return self._kin

    def rollout_one(self, states: np.ndarray, mask: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float]:
        """One scene (N, 15), its mask (N,) and one push (7,) -> next states (N, 15), 1.0 / 0.0 executed."""
        from robot_wm.config import scene_from_dict
        from robot_wm.sim import Arm, World
        from robot_wm.sim.push import execute_push, object_at_rest

        if int(round(float(action[0]))) != PUSH:
            raise ValueError(f"PhysicsDynamics simulates pushes only (action kind {action[0]})")
        scene, slots = self.scene_dict(states, mask)
        out = np.array(states, np.float32, copy=True)
        if not slots:
            return out, 1.0
        world = World(scene_from_dict(scene, "<physics_dynamics>"), seed=self.seed)
        try:
            arm = Arm(world, kin=self._kinematics(world))
            _, x, y, z, yaw, dist = (float(v) for v in action[:6])
            res = execute_push(world, arm, np.array([x, y, z]), yaw, dist, tilt=float(action[TILT]))
            for i in slots:
                name = f"obj{i}"
                p = world.object_pose(name)
                shape = SHAPES[int(np.argmax(states[i, 10:14]))]
                out[i] = object_state(p.position, p.quaternion, states[i, 7:10], shape, object_at_rest(world, name))
            return out, 1.0 if res.ok else 0.0
        finally:
            world.close()

    def __call__(self, states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor) -> Prediction:
        _check(states, mask, actions)
        s = states.detach().cpu().numpy()
        m = mask.detach().cpu().numpy().astype(bool)
        a = actions.detach().cpu().numpy()
        nxt = np.empty_like(s, dtype=np.float32)
        p = np.empty(len(s), np.float32)
        for b in range(len(s)):
            nxt[b], p[b] = self.rollout_one(s[b], m[b], a[b])
        return Prediction(torch.from_numpy(nxt), torch.from_numpy(p), torch.zeros(*s.shape[:2], N_DELTA))

    def close(self) -> None:
        if self._kin is not None:
            self._kin.close()
            self._kin = None


def make_dynamics(kind: str = "world_model", model: str | Path | None = None, uncertainty: str = "epistemic",
                  turn: str = "mode", **physics) -> Dynamics:
    """The dynamics named in planners/mpc.yaml (``dynamics``, ``model``, ``uncertainty``, ``turn``). A
    relative `model` path is looked up in the working directory, then in the repository."""
    if kind == "world_model":
        if model is not None and not Path(model).is_absolute() and not Path(model).exists():
            from robot_wm.config import REPO_ROOT

            if (REPO_ROOT / model).exists():
                model = REPO_ROOT / model
        return WorldModelDynamics(path=model, uncertainty=uncertainty, turn=turn)
    if kind == "no_motion":
        return NoMotionDynamics()
    if kind == "physics":
        return PhysicsDynamics(**physics)
    raise ValueError(f"unknown dynamics {kind!r} (world_model | no_motion | physics)")
