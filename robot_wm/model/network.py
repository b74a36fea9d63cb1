"""The object-centric transition network: per-object features in the action's frame, one round of
message passing between objects (a factorised interaction network), an ensemble of K members evaluated
as batched matrix products.

Everything here is torch; shapes use B = batch, N = object slots, K = ensemble members,
F = per-object feature count, H = hidden width, E = edge width.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robot_wm.model.state import GRASP

PAD_THICKNESS = 0.012  # m, TCP to the front of the closed finger pads
N_FEATURES = 26
N_EDGE_IN = 4
N_OUT = 8  # mean dx, dy (action frame), dz, dyaw; their log-variances (grasps: robot_wm.model.grasp_head)
LOGVAR_MIN, LOGVAR_MAX = -4.0, 3.0  # bounds of the members' log-variances (normalised units)
N_DELTA = 4


def _columns(states: torch.Tensor, kind: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, az: torch.Tensor,
             yaw: torch.Tensor, dist: torch.Tensor, tilt: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-object feature columns (each of the shape of ``states[..., 0]``, the target flag left out as
    None) and the target score (lower = aimed at; >= 1e3: not a candidate; padding not excluded here).
    The action's columns broadcast against the objects (e.g. (B, 1) for (B, N) objects)."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    px, py, pz = states[..., 0] - ax, states[..., 1] - ay, states[..., 2] - az
    rx, ry = c * px + s * py, -s * px + c * py
    qx, qy, qz, qw = states[..., 3], states[..., 4], states[..., 5], states[..., 6]
    psi = torch.atan2(2 * (qw * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
    phi = psi - yaw
    cphi, sphi = torch.cos(phi), torch.sin(phi)
    # body z axis in the world: third column of the rotation matrix
    zx, zy, zz = 2 * (qx * qz + qw * qy), 2 * (qy * qz - qw * qx), 1 - 2 * (qx * qx + qy * qy)
    ex, ey, ez = states[..., 7], states[..., 8], states[..., 9]
    along = 0.5 * (ex * cphi.abs() + ey * sphi.abs())  # bbox half-size along the action heading
    across = 0.5 * (ex * sphi.abs() + ey * cphi.abs())
    gap = rx - along - PAD_THICKNESS  # free travel before the pad meets the box
    is_grasp = (kind == GRASP).to(states.dtype)
    travel = (dist - gap) * (1 - is_grasp)
    # target: push -> first object in the corridor ahead; grasp -> nearest in xy
    in_corridor = (ry.abs() < across + 0.012) & (rx > -along)
    big = torch.full_like(rx, 1e3)
    push_score = torch.where(in_corridor, gap, big)
    score = torch.where(is_grasp.bool(), torch.sqrt(rx * rx + ry * ry), push_score)
    ones = torch.ones_like(rx)
    cols = [
        rx, ry, pz, states[..., 2], cphi, sphi, torch.cos(2 * phi), torch.sin(2 * phi),
        c * zx + s * zy, -s * zx + c * zy, zz, ex, ey, ez,
        states[..., 10], states[..., 11], states[..., 12], states[..., 13],
        gap, travel, ry / (across + 0.01), None, is_grasp * ones, dist * (1 - is_grasp) * ones,
        # the pad face's tilt (push only): which corner leads, and whether it meets the object off-centre
        tilt * (1 - is_grasp) * ones, tilt * (1 - is_grasp) * ry / (across + 0.01),
    ]
    return cols, score


def _pick_target(score: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N) scores -> one-hot float target (B, N) (all zero when no real object is a candidate)."""
    score = torch.where(mask, score, torch.full_like(score, 1e3))
    best = score.argmin(dim=1, keepdim=True)
    return torch.zeros_like(score).scatter_(1, best, 1.0) * (score.gather(1, best) < 1e3).to(score.dtype)


def action_frame_features(states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-object features in the frame of the action, and the action's target object.

    states (B, N, 15), mask (B, N) bool, actions (B, 7) -> features (B, N, F), rel (B, N, 3) object
    positions in the action frame (m), target (B, N) float one-hot of the object the action is aimed at
    (push: the first object in the ~pad-wide corridor ahead; grasp: the object nearest the grasp point).
    The action frame: origin at (x, y, z) of the action, x along heading `yaw`, z up.
    """
    cols, score = _columns(states, *(v[:, None] for v in actions.unbind(-1)))
    target = _pick_target(score, mask)
    cols[21] = target
    return torch.stack(cols, dim=-1), torch.stack(cols[:3], dim=-1), target


def compact_features(states: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`action_frame_features` of the real objects only (the planner's fast path): features
    (R, F), rel (R, 3), target (R,) for the R rows where `mask` is True, their flat indices into B*N
    (R,) and their scene indices (R,).

    Features and rel are column-major views (each feature contiguous): per-column arithmetic then reads
    contiguous memory, the columns stack without a strided copy, and the first layer's product reads the
    transposed block as it is."""
    b, n, _ = states.shape
    idx = mask.reshape(-1).nonzero().squeeze(1)
    scene = torch.div(idx, n, rounding_mode="floor")
    st = states.reshape(b * n, -1).index_select(0, idx).T.contiguous()  # (15, R)
    act = actions.index_select(0, scene).T.contiguous()  # (7, R)
    cols, score = _columns(st.T, *act)
    full = torch.full((b * n,), 1e3, dtype=score.dtype).index_copy_(0, idx, score).reshape(b, n)
    tc = _pick_target(full, mask).reshape(-1).index_select(0, idx)
    cols[21] = tc
    feats = torch.stack(cols, dim=0).T  # (R, F) view of (F, R)
    return feats, feats[:, :3], tc, idx, scene


class EnsembleInteractionNet(nn.Module):
    """An object-centric interaction network with K ensemble members.

    Per object i (features x_i, action-frame position r_i) and the action's target object t:

    * trunk (shared by the members): h_i = MLP(x_i) (H); interaction with the target in both directions,
      u_i = relu(A h_i + B h_t + C [r_i - r_t, |r_i - r_t|]) (2E): object i receives u_i[:E] (what the
      pushed object does to it), the target receives the sum over the others of u_i[E:] (who blocks it);
    * K member heads: out_i^k = W2^k relu(W1^k [h_i, m_i]) -> 8 values: normalised mean dx, dy, dz, dyaw in
      the action frame and their log-variances (PETS-style probabilistic members), each member trained on
      its own bootstrap weights. The K heads run as two dense products (the second block-diagonal).
      Grasp outcomes are the grasp head's (robot_wm.model.grasp_head), not this network's.

    The star-shaped interaction (through the object the action touches) keeps the cost linear in N,
    which is what makes ~10^5 transitions/s on one core possible.
    """

    def __init__(self, k: int = 5, hidden: int = 16, edge: int = 8, head: int = 8) -> None:
        super().__init__()
        self.k, self.hidden, self.edge, self.head = k, hidden, edge, head
        self.enc1 = nn.Linear(N_FEATURES, hidden)
        self.enc2 = nn.Linear(hidden, hidden)
        self.inter_a = nn.Linear(hidden, 2 * edge)
        self.inter_b = nn.Linear(hidden, 2 * edge, bias=False)
        self.inter_c = nn.Linear(N_EDGE_IN, 2 * edge, bias=False)
        self.dec1_h = nn.Linear(hidden, k * head)
        self.dec1_m = nn.Linear(edge, k * head, bias=False)
        self.dec2 = nn.Linear(k * head, k * N_OUT)
        block = torch.block_diag(*[torch.ones(head, N_OUT)] * k).T  # (K*5, K*head)
        self.register_buffer("block", block, persistent=False)
        with torch.no_grad():  # each member's output layer initialised as its own (head -> N_OUT) layer
            bound = 1 / math.sqrt(head)
            self.dec2.weight.uniform_(-bound, bound).mul_(block)
            self.dec2.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor, rel: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """x (B, N, F) normalised features, rel (B, N, 3) action-frame positions (m), mask (B, N) bool,
        target (B, N) one-hot float -> (K, B, N, N_OUT)."""
        b, n, _ = x.shape
        return self.member_outputs(self.decoder_hidden(x, rel, mask, target), b, n)

    def member_outputs(self, z: torch.Tensor, b: int, n: int) -> torch.Tensor:
        """The members' outputs (K, B, N, N_OUT) from their hidden layer z (B*N, K*head)
        (:meth:`decoder_hidden`)."""
        w2 = self.dec2.weight * self.block if self.training else self.dec2.weight
        out = nn.functional.linear(z, w2, self.dec2.bias)  # (BN, K*N_OUT)
        return out.reshape(b, n, self.k, N_OUT).permute(2, 0, 1, 3)

    def decoder_hidden(self, x: torch.Tensor, rel: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
                       ) -> torch.Tensor:
        """The members' hidden layer z (B*N, K*head) (member k: columns k*head to (k+1)*head) for the inputs
        of :meth:`forward`: every member output is one linear map of its block of z."""
        b, n, f = x.shape
        e = self.edge
        relu = torch.relu
        h = relu(self.enc2(relu(self.enc1(x.reshape(b * n, f)))))  # (BN, H)
        h3 = h.reshape(b, n, -1)
        ht = torch.bmm(target[:, None, :], h3)[:, 0]  # (B, H)
        rt = torch.bmm(target[:, None, :], rel)  # (B, 1, 3)
        d = rel - rt
        r = torch.cat([d, torch.linalg.vector_norm(d, dim=-1, keepdim=True)], dim=-1) * 10.0
        u = self.inter_a(h).reshape(b, n, -1) + self.inter_b(ht)[:, None, :] + self.inter_c(r)
        u = relu(u)
        others = (mask.to(x.dtype) * (1 - target))[..., None]
        m = u[..., :e] * others + (u[..., e:] * others).sum(dim=1, keepdim=True) * target[..., None]
        return relu(self.dec1_h(h) + self.dec1_m(m.reshape(b * n, e)))

    def fused(self, feat_mean: torch.Tensor, feat_std: torch.Tensor) -> FusedInference:
        """An inference-only copy with the input normalisation folded into the first layer and the
        layers that read h merged into one product (same outputs, fewer passes over memory)."""
        return FusedInference(self, feat_mean, feat_std)


class FusedInference:
    """Inference path of :class:`EnsembleInteractionNet` (no autograd); call with raw features.
    Returns outputs as (K, B, N, N_OUT), like the training path."""

    def __init__(self, net: EnsembleInteractionNet, feat_mean: torch.Tensor, feat_std: torch.Tensor) -> None:
        with torch.no_grad():
            w1 = net.enc1.weight / feat_std  # (H, F)
            self.w1t = w1.T.contiguous()
            self.b1 = net.enc1.bias - w1 @ feat_mean
            self.w2t, self.b2 = net.enc2.weight.T.contiguous(), net.enc2.bias.clone()
            self.wht = torch.cat([net.inter_a.weight, net.dec1_h.weight]).T.contiguous()  # (H, 2E + K*head)
            self.bh = torch.cat([net.inter_a.bias, net.dec1_h.bias])
            self.wbt = net.inter_b.weight.T.contiguous()
            self.wct = net.inter_c.weight.T.contiguous()
            self.wmt = net.dec1_m.weight.T.contiguous()
            k, hd = net.k, net.head
            w2 = net.dec2.weight.reshape(k, N_OUT, k, hd)  # block-diagonal: member i's rows and columns
            self.wo = torch.stack([w2[i, :, i, :].T for i in range(k)])  # (K, head, N_OUT)
            self.bo = net.dec2.bias.reshape(k, 1, N_OUT).clone()
            # moments(): separate products for the interaction and the members' first layer (no slicing)
            self.wat, self.ba = net.inter_a.weight.T.contiguous(), net.inter_a.bias.clone()
            self.wdt, self.bd = net.dec1_h.weight.T.contiguous(), net.dec1_h.bias.clone()
            # all members' output layers as one dense product, re-expressed as what the moments need:
            # rows [member deviations from the ensemble mean (4 x K) | log-variances (4 x K) | ensemble
            # mean (4)] (the deviations and the mean are linear in z)
            w = (net.dec2.weight * net.block).T.reshape(-1, k, N_OUT)  # (K*head, K, 8)
            bias = net.dec2.bias.reshape(k, N_OUT)
            wmu, bmu = w[..., :N_DELTA], bias[:, :N_DELTA]
            wdev, bdev = wmu - wmu.mean(1, keepdim=True), bmu - bmu.mean(0)
            self.wout = torch.cat([wdev.transpose(1, 2).reshape(-1, N_DELTA * k),
                                   w[..., N_DELTA:].transpose(1, 2).reshape(-1, N_DELTA * k),
                                   wmu.mean(1)], 1).T.contiguous()  # (8K + 4, K*head)
            self.bout = torch.cat([bdev.T.reshape(-1), bias[:, N_DELTA:].T.reshape(-1), bmu.mean(0)])[:, None]
        self.k, self.edge, self.head = net.k, net.edge, net.head

    def _hidden(self, f: torch.Tensor, rel: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The members' hidden activations z (B*N, K*head)."""
        b, n, nf = f.shape
        e = self.edge
        h = torch.addmm(self.b1, f.reshape(b * n, nf), self.w1t).relu_()
        h = torch.addmm(self.b2, h, self.w2t).relu_()
        hh = torch.addmm(self.bh, h, self.wht)  # (BN, 2E + K*head)
        h3 = h.reshape(b, n, -1)
        ht = torch.bmm(target[:, None, :], h3)[:, 0]
        rt = torch.bmm(target[:, None, :], rel)
        d = rel - rt
        r = torch.cat([d, torch.linalg.vector_norm(d, dim=-1, keepdim=True)], dim=-1).mul_(10.0)
        u = torch.addmm(hh[:, : 2 * e], r.reshape(b * n, N_EDGE_IN), self.wct).reshape(b, n, -1)
        u = u.add_((ht @ self.wbt)[:, None, :]).relu_()
        others = (mask.to(f.dtype) * (1 - target))[..., None]
        m = u[..., :e] * others
        m.add_((u[..., e:] * others).sum(dim=1, keepdim=True) * target[..., None])
        return torch.addmm(hh[:, 2 * e:], m.reshape(b * n, e), self.wmt).relu_()

    def __call__(self, f: torch.Tensor, rel: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        b, n, _ = f.shape
        z = self._hidden(f, rel, mask, target)
        zk = z.reshape(b * n, self.k, self.head).transpose(0, 1)  # (K, BN, head) view
        out = torch.baddbmm(self.bo, zk, self.wo)  # (K, BN, N_OUT): each member's own layer only
        return out.reshape(self.k, b, n, N_OUT)

    def decoder_input(self, fc: torch.Tensor, relc: torch.Tensor, tc: torch.Tensor, idx: torch.Tensor,
                      scene: torch.Tensor, b: int, n: int) -> torch.Tensor:
        """The decoder's hidden layer (R, hidden) for the real objects of :func:`compact_features`: trunk,
        the messages between each object and its scene's target, and their sum at the target — every
        member's output rows are one product away (``wout @ z.T + bout``)."""
        e = self.edge
        h = torch.addmm(self.b1, fc, self.w1t).relu_()
        h = torch.addmm(self.b2, h, self.w2t).relu_()
        # the target's trunk features and position per scene (one target row per scene at most)
        trow = tc.nonzero().squeeze(1)
        tscene = scene.index_select(0, trow)
        hb = torch.zeros(b, 2 * e).index_copy_(0, tscene, h.index_select(0, trow) @ self.wbt)
        rt = torch.zeros(b, 3).index_copy_(0, tscene, relc.index_select(0, trow))
        d = (relc - rt.index_select(0, scene)).T.mul(10.0)  # (3, R)
        r = torch.cat([d, d.square().sum(0, keepdim=True).sqrt_()]).T  # (R, 4) [d, |d|] x 10
        u = torch.addmm(self.ba, h, self.wat).addmm_(r, self.wct).add_(hb.index_select(0, scene)).relu_()
        tcc = tc[:, None]
        u.mul_(1.0 - tcc)  # messages from the other objects only
        # what the others do to the target: a sum over each scene's slots
        back = torch.zeros(b * n, e).index_copy_(0, idx, u[:, e:]).reshape(b, n, e).sum(1)
        m = u[:, :e].addcmul_(back.index_select(0, scene), tcc)
        return torch.addmm(self.bd, h, self.wdt).addmm_(m, self.wmt).relu_()

    def moments(self, fc: torch.Tensor, relc: torch.Tensor, tc: torch.Tensor, idx: torch.Tensor,
                scene: torch.Tensor, b: int, n: int) -> torch.Tensor:
        """The ensemble's moments in normalised action-frame units from :func:`compact_features` (real
        objects only; padding gets 0), quantity-major: (9, B, N) = [mean of the member means (4) | their
        variance plus the mean member noise variance (4) | x-y covariance of the member means (1)], for
        (dx, dy, dz, dyaw). Same numbers as :meth:`__call__` (tested)."""
        k, nd = self.k, N_DELTA * self.k
        z = self.decoder_input(fc, relc, tc, idx, scene, b, n)
        # outputs transposed (one contiguous row per quantity and member, so the element-wise passes and
        # the sums over members are contiguous): [dev 4K | logvar 4K | mean 4] x R
        o = torch.addmm(self.bout, self.wout, z.T)
        stats = torch.empty(2 * N_DELTA + 1, len(fc))
        stats[:N_DELTA] = o[2 * nd:]
        stats[2 * N_DELTA] = (o[:k] * o[k:2 * k]).sum(0).mul_(1.0 / k)  # x-y covariance of the member means
        o[:nd].square_()
        o[nd:2 * nd].clamp_(LOGVAR_MIN, LOGVAR_MAX).exp_()
        # mixture variance: spread of the member means plus their mean noise variance
        v = o[:2 * nd].view(2, N_DELTA, k, -1).sum(2)  # (2, 4, R)
        torch.add(v[0], v[1], out=stats[N_DELTA:2 * N_DELTA]).mul_(1.0 / k)
        return torch.zeros(stats.shape[0], b * n).index_copy_(1, idx, stats).reshape(-1, b, n)
