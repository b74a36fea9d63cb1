"""The expected-turn readout: fitted on the frozen network, stored in the model file, read back."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from robot_wm.model.network import EnsembleInteractionNet
from robot_wm.model.training_data import prepare
from robot_wm.model.turn_readout import (
    _ridge,
    expected_turn,
    fit_turn_readout,
    has_turn_target,
    member_hidden,
)
from robot_wm.model.world_model import ModelFileError, Normalisation, WorldModel
from tests.model.synthetic import synthetic


@pytest.fixture(scope="module")
def model() -> WorldModel:
    torch.manual_seed(0)
    net = EnsembleInteractionNet(k=3, hidden=16, edge=8, head=8)
    norm = Normalisation(out_scale=torch.tensor([0.02, 0.02, 0.005, 0.1]))
    return WorldModel(net, norm)


def with_turns(data: dict[str, np.ndarray], dyaw: np.ndarray) -> dict[str, np.ndarray]:
    """`data` whose objects end turned by dyaw (T, N) rad about world z."""
    out = dict(data)
    after = data["after"].copy()
    before_rot = Rotation.from_quat(data["before"][..., 3:7].reshape(-1, 4))
    after[..., 3:7] = (Rotation.from_euler("z", dyaw.reshape(-1, 1)) * before_rot).as_quat().reshape(after[..., 3:7].shape)
    out["after"] = after
    return out


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(size=(500, 8)))
    w = torch.tensor(rng.normal(size=8))
    y = z @ w + 0.3
    fit = _ridge(z, y, 1e-9)
    assert torch.allclose(fit[:8], w, atol=1e-6) and fit[8].item() == pytest.approx(0.3, abs=1e-6)


def test_readout_learns_turns_its_hidden_layer_explains(model):
    """Turns that are a linear function of member 0's hidden layer: its readout reproduces them."""
    data = synthetic(96, seed=1)
    p = prepare(data)
    z = member_hidden(model, p)  # (T, N, K, head)
    assert z.shape == (96, 2, 3, 8)
    rng = np.random.default_rng(2)
    w = rng.normal(size=8)
    turn_norm = z[..., 0, :].numpy() @ w * 0.3 + 0.05  # normalised units
    dyaw = np.clip(turn_norm * float(model.norm.out_scale[3]), -1.0, 1.0)
    readout, info = fit_turn_readout(model, with_turns(data, dyaw), ridge=1e-9)
    assert readout.shape == (3, 9) and torch.isfinite(readout).all()
    pushes = (p.grasp < 0).numpy()
    rows = has_turn_target(p).numpy() & pushes[:, None]
    pred = expected_turn(readout, z)[..., 0].numpy() * float(model.norm.out_scale[3])
    assert np.allclose(pred[rows], dyaw[rows], atol=1e-4)
    assert info["pushes"] == int(pushes.sum()) and info["val_objects"]["n"] > 0
    assert info["val_objects"]["expected"]["corr"] > 0.99
    again, _ = fit_turn_readout(model, with_turns(data, dyaw), ridge=1e-9)
    assert torch.equal(again, readout)  # deterministic


def test_readout_is_saved_and_loaded(model, tmp_path):
    data = synthetic(64, seed=3)
    readout, info = fit_turn_readout(model, data)
    with_readout = WorldModel(model.net, model.norm, turn_readout=readout, turn_info=info)
    path = tmp_path / "m.safetensors"
    with_readout.save(path)
    back = WorldModel.load(path)
    assert torch.allclose(back.turn_readout, readout) and back.turn_info["pushes"] == info["pushes"]
    model.save(tmp_path / "plain.safetensors")  # a file without it still loads
    assert WorldModel.load(tmp_path / "plain.safetensors").turn_readout is None


def test_readout_of_the_wrong_shape_is_refused(model, tmp_path):
    bad = WorldModel(model.net, model.norm, turn_readout=torch.zeros(3, 5))
    bad.save(tmp_path / "bad.safetensors")
    with pytest.raises(ModelFileError, match="turn.readout"):
        WorldModel.load(tmp_path / "bad.safetensors")


def test_no_pushes_no_readout(model):
    data = synthetic(16, seed=4)
    grasps = np.flatnonzero(data["action"][:, 0] != data["action"][1, 0])
    only = {k: (v[grasps] if len(v) == len(data["action"]) else v) for k, v in data.items()}
    with pytest.raises(ValueError, match="no push"):
        fit_turn_readout(model, only)


def test_cli_turn_readout(collected, tmp_path, capsys):
    """`robot-wm turn-readout` adds the readout to an existing model file, everything else unchanged;
    bad input is one line, exit 2."""
    import json

    from robot_wm.cli.main import main

    src = tmp_path / "m.safetensors"
    torch.manual_seed(0)
    WorldModel(EnsembleInteractionNet(k=2, hidden=8, edge=4, head=4)).save(src)
    out = tmp_path / "m_turn.safetensors"
    assert main(["turn-readout", "--model", str(src), "--data", str(collected), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["pushes"] > 0
    back = WorldModel.load(out)
    assert back.turn_readout.shape == (2, 5)
    before = WorldModel.load(src)
    assert all(torch.equal(a, b) for a, b in zip(back.net.state_dict().values(), before.net.state_dict().values(),
                                                 strict=True))
    assert main(["turn-readout", "--model", str(tmp_path / "nope.safetensors"), "--data", str(collected),
                 "--out", str(out)]) == 2
    assert main(["turn-readout", "--model", str(src), "--data", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert main(["turn-readout", "--model", str(src), "--data", str(collected), "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
