"""The world model's predict API: shapes, padding, symmetry of the action frame, input checks."""

import numpy as np
import pytest
import torch

from robot_wm.model.network import EnsembleInteractionNet
from robot_wm.model.state import grasp_action, object_state, push_action, stack_scenes
from robot_wm.model.world_model import WorldModel


@pytest.fixture(scope="module")
def model() -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(EnsembleInteractionNet(k=3, hidden=16, edge=8, head=8))


def _scene(rng, n):
    return [object_state([0.5 + rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 0.02],
                         [0, 0, np.sin(y / 2), np.cos(y / 2)], [0.05, 0.04, 0.04], "box")
            for y in rng.uniform(-3, 3, n)]


def test_predict_shapes_and_types(model):
    rng = np.random.default_rng(0)
    states, mask = stack_scenes([_scene(rng, 2), _scene(rng, 4)])
    actions = np.stack([push_action(0.4, 0, 0.02, 0.0, 0.1), grasp_action(0.5, 0.0, 0.02, 0.3)])
    nxt, p, std = model.predict(states, actions, mask)
    assert isinstance(nxt, np.ndarray) and nxt.shape == (2, 4, 15) and p.shape == (2,) and std.shape == (2, 4, 4)
    assert p[0] == 1.0 and 0.0 < p[1] < 1.0
    np.testing.assert_array_equal(nxt[0, 2:], states[0, 2:])  # padding untouched
    assert np.all(std[0, 2:] == 0) and np.all(std[:, :2] >= 0)
    tn, tp, ts = model.predict(torch.as_tensor(states), torch.as_tensor(actions), torch.as_tensor(mask))
    assert isinstance(tn, torch.Tensor)
    np.testing.assert_allclose(tn.numpy(), nxt, atol=1e-6)


def test_padding_and_order_do_not_change_predictions(model):
    rng = np.random.default_rng(1)
    scene = _scene(rng, 3)
    a = push_action(0.38, 0.0, 0.02, 0.2, 0.12)[None]
    s1, m1 = stack_scenes([scene])
    s2, m2 = stack_scenes([scene[::-1]], n_max=6)
    n1, _, d1 = model.predict(s1, a, m1)
    n2, _, d2 = model.predict(s2, a, m2)
    np.testing.assert_allclose(n1[0], n2[0, :3][::-1], atol=1e-5)
    np.testing.assert_allclose(d1[0], d2[0, :3][::-1], atol=1e-5)


def test_prediction_is_equivariant_to_planar_motion(model):
    """Rotating and shifting scene + action about world z rotates and shifts the predicted motion."""
    rng = np.random.default_rng(2)
    s, m = stack_scenes([_scene(rng, 3)])
    a = push_action(0.4, 0.02, 0.02, 0.4, 0.1)[None]
    th, shift = 0.7, np.array([0.05, -0.1])
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    s2, a2 = s.copy(), a.copy()
    s2[..., :2] = s[..., :2] @ R.T + shift
    s2[..., 3:7] = [[(np.cos(th / 2) * q[:3] + np.sin(th / 2) * np.array([-q[1], q[0], q[3]])).tolist()
                     + [np.cos(th / 2) * q[3] - np.sin(th / 2) * q[2]] for q in s[0, :, 3:7]]]
    a2[0, 1:3] = a[0, 1:3] @ R.T + shift
    a2[0, 4] += th
    n1, _, _ = model.predict(s, a, m)
    n2, _, _ = model.predict(s2, a2, m)
    d1 = (n1[..., :2] - s[..., :2]) @ R.T
    d2 = n2[..., :2] - s2[..., :2]
    np.testing.assert_allclose(d1, d2, atol=1e-4)


def test_bad_shapes_raise(model):
    with pytest.raises(ValueError, match="states must have shape"):
        model.predict(np.zeros((2, 15)), np.zeros((2, 6)))
    with pytest.raises(ValueError, match="actions must have shape"):
        model.predict(np.zeros((2, 3, 15)), np.zeros((2, 5)))
    from robot_wm.model.shape import SHAPE_DIM

    states = np.zeros((2, 3, 15), np.float32)
    states[..., 6] = 1
    pushes = np.stack([push_action(0.4, 0, 0.02, 0.0, 0.1)] * 2)
    for bad in (np.zeros((3, 7)), np.zeros((4, 3, SHAPE_DIM)), np.zeros((2, 2, SHAPE_DIM))):
        with pytest.raises(ValueError, match="shapes must have shape"):
            model.predict(states, pushes, shapes=bad)  # checked even when no grasp reads them


def test_fused_inference_matches_training_path(model):
    rng = np.random.default_rng(4)
    states, mask = stack_scenes([_scene(rng, 3), _scene(rng, 1)])
    actions = torch.as_tensor(np.stack([push_action(0.4, 0, 0.02, 0.1, 0.1), grasp_action(0.5, 0, 0.02, 0)]))
    s, m = torch.as_tensor(states), torch.as_tensor(mask)
    model.norm.feat_mean = torch.linspace(-0.1, 0.1, model.norm.feat_mean.numel())
    model.norm.feat_std = torch.linspace(0.5, 2.0, model.norm.feat_std.numel())
    model.invalidate()
    slow, _ = model.raw(s, m, actions)  # (K, B, N, 9)
    from robot_wm.model.network import action_frame_features

    f, rel, tgt = action_frame_features(s, m, actions)
    with torch.no_grad():
        fast = model.fused()(f, rel, m, tgt)  # (K, B, N, 9)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-4)


def test_std_is_the_world_frame_mixture_std(model):
    """predict's std equals the std of the K Gaussian members rotated into the world frame."""
    from robot_wm.model.network import LOGVAR_MAX, LOGVAR_MIN

    rng = np.random.default_rng(5)
    states, mask = stack_scenes([_scene(rng, 3), _scene(rng, 2)])
    actions = np.stack([push_action(0.4, 0, 0.02, 0.9, 0.1), push_action(0.45, 0.05, 0.02, -2.0, 0.05)])
    _, _, std = model.predict(states, actions, mask)
    out, _ = model.raw(torch.as_tensor(states), torch.as_tensor(mask), torch.as_tensor(actions))
    out = out.detach().numpy().astype(np.float64)
    sc = model.norm.out_scale.numpy()
    da = out[..., :4] * sc  # (K, B, N, 4)
    va = np.exp(np.clip(out[..., 4:8], LOGVAR_MIN, LOGVAR_MAX)) * sc**2
    yaw = actions[:, 4][None, :, None]
    c, s = np.cos(yaw), np.sin(yaw)
    dw = np.stack([c * da[..., 0] - s * da[..., 1], s * da[..., 0] + c * da[..., 1], da[..., 2], da[..., 3]], -1)
    vw = np.stack([c * c * va[..., 0] + s * s * va[..., 1], s * s * va[..., 0] + c * c * va[..., 1],
                   va[..., 2], va[..., 3]], -1)
    ref = np.sqrt(dw.var(0) + vw.mean(0)) * mask[..., None]
    np.testing.assert_allclose(std, ref, rtol=1e-3, atol=1e-6)


def test_predict_fast_path_matches_dense_members(model):
    """predict (real rows only, moments in one pass) equals the dense K-member outputs of raw()."""
    rng = np.random.default_rng(6)
    states, mask = stack_scenes([_scene(rng, 3), _scene(rng, 1), _scene(rng, 5)], n_max=6)
    actions = np.stack([push_action(0.4, 0, 0.02, 0.3, 0.1), grasp_action(0.5, 0, 0.02, 0.0),
                        push_action(0.45, 0.05, 0.02, -2.0, 0.05)])
    nxt, p, _ = model.predict(states, actions, mask)
    out, tgt = model.raw(torch.as_tensor(states), torch.as_tensor(mask), torch.as_tensor(actions))
    da = out.detach().numpy()[..., :4].mean(0) * model.norm.out_scale.numpy()  # (B, N, 4) action frame
    yaw = actions[:, 4][:, None]
    dx = np.cos(yaw) * da[..., 0] - np.sin(yaw) * da[..., 1]
    push = mask & (actions[:, 0] == 0)[:, None]
    np.testing.assert_allclose((nxt[..., 0] - states[..., 0])[push], dx[push], atol=1e-5)
    np.testing.assert_array_equal(nxt[~mask], states[~mask])
    # the grasp: its target lifted by 0.10 m (the outcome on success), nothing else moves
    lift = np.zeros_like(states)
    lift[1, tgt.numpy()[1].argmax(), 2] = 0.10
    np.testing.assert_allclose(nxt[1, :, :3], (states + lift)[1, :, :3], atol=1e-6)
    t = int(tgt.numpy()[1].argmax())
    with torch.no_grad():
        logit = float(model.grasp_logits(torch.as_tensor(states[1:2, t]), None, torch.as_tensor(actions[1:2])).mean())
    np.testing.assert_allclose(p[1], 1 / (1 + np.exp(-logit / model.temperature)), atol=1e-5)
    assert p[0] == 1.0 and p[2] == 1.0


def test_predict_in_chunks_equals_all_at_once(model, monkeypatch):
    """Large batches are evaluated PUSH_CHUNK scenes at a time: same numbers as one pass, including
    scenes whose push aims at nothing and grasps mixed in."""
    import robot_wm.model.world_model as wm

    rng = np.random.default_rng(7)
    states, mask = stack_scenes([_scene(rng, int(n)) for n in rng.integers(1, 6, 9)], n_max=6)
    actions = np.stack([push_action(0.4, 0, 0.02, 0.3, 0.1), push_action(0.9, 0.5, 0.02, 0.0, 0.05),
                        grasp_action(0.5, 0, 0.02, 0.0)] * 3)
    whole = model.predict(states, actions, mask)
    monkeypatch.setattr(wm, "PUSH_CHUNK", 2)
    for a, b in zip(model.predict(states, actions, mask), whole, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
