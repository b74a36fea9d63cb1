"""Model files: round trip, and one-line errors for corrupt / foreign / mismatched / pickled files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from robot_wm.model.network import EnsembleInteractionNet
from robot_wm.model.shape import box_descriptor
from robot_wm.model.state import grasp_action, object_state, push_action, stack_scenes
from robot_wm.model.world_model import DEFAULT_MODEL, ModelFileError, WorldModel


def _model() -> WorldModel:
    torch.manual_seed(3)
    return WorldModel(EnsembleInteractionNet(k=2, hidden=8, edge=4, head=4), temperature=1.7, info={"x": 1})


def _inputs():
    s, m = stack_scenes([[object_state([0.5, 0, 0.02], [0, 0, 0, 1], [0.05] * 3, "box"),
                          object_state([0.58, 0.01, 0.02], [0, 0, 0.3, 0.95], [0.04] * 3, "mesh")]])
    return s, push_action(0.42, 0, 0.02, 0.0, 0.1)[None], m


def test_round_trip(tmp_path: Path):
    m = _model()
    f = tmp_path / "m.safetensors"
    m.save(f)
    m2 = WorldModel.load(f)
    assert m2.temperature == 1.7 and m2.info == {"x": 1} and m2.k == 2
    for a, b in zip(m.predict(*_inputs()), m2.predict(*_inputs()), strict=True):
        np.testing.assert_array_equal(a, b)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_bad_files(tmp_path: Path):
    with pytest.raises(ModelFileError) as e:
        WorldModel.load(tmp_path / "missing.safetensors")
    assert "not found" in _one_line(e)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ModelFileError) as e:
        WorldModel.load(junk)
    assert "not a readable safetensors" in _one_line(e)
    pickled = tmp_path / "pickle.safetensors"
    torch.save({"a": torch.zeros(2)}, pickled)  # a pickle: must be refused, never loaded
    with pytest.raises(ModelFileError):
        WorldModel.load(pickled)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelFileError) as e:
        WorldModel.load(foreign)
    assert "no robot_wm header" in _one_line(e)


def _rewrite(src: Path, dst: Path, header_edit=None, drop: str | None = None) -> None:
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    h = json.loads(meta["robot_wm"])
    if header_edit:
        header_edit(h)
    if drop:
        tensors.pop(drop)
    save_file(tensors, str(dst), metadata={"robot_wm": json.dumps(h)})


def test_mismatched_files(tmp_path: Path):
    f = tmp_path / "m.safetensors"
    _model().save(f)
    cases = [
        (lambda h: h.update(version=99), "version 99"),
        (lambda h: h.update(state_dim=14), "state_dim"),
        (lambda h: h.update(hidden=16), "do not match"),
        (lambda h: h.update(grasp_hidden=16), "do not match"),
        (lambda h: h.update(shape_dim=7), "shape_dim"),
    ]
    for edit, text in cases:
        bad = tmp_path / "bad.safetensors"
        _rewrite(f, bad, edit)
        with pytest.raises(ModelFileError) as e:
            WorldModel.load(bad)
        assert text in _one_line(e)
    bad = tmp_path / "bad2.safetensors"
    for key in ("norm.out_scale", "grasp.w1"):
        _rewrite(f, bad, drop=key)
        with pytest.raises(ModelFileError) as e:
            WorldModel.load(bad)
        assert "do not match" in _one_line(e)
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ModelFileError):
        WorldModel.load(truncated)


def test_shipped_model_loads_and_is_small():
    assert DEFAULT_MODEL.is_file(), "the trained model ships in robot_wm/assets"
    assert DEFAULT_MODEL.stat().st_size <= 10 * 1024 * 1024
    m = WorldModel.load()
    nxt, p, std = m.predict(*_inputs())
    assert np.isfinite(nxt).all() and np.isfinite(std).all()
    # a push straight into the first box from 2 cm away moves it forward, not backwards
    assert nxt[0, 0, 0] > 0.5 + 0.02
    # grasping the 5 cm box across a face, centred near its top, beats grasping beside it or too narrow
    states, _, mask = _inputs()
    shapes = np.stack([box_descriptor([0.05] * 3)] * 2)
    acts = np.stack([grasp_action(0.5, 0.0, 0.035, 0.0, 0.05), grasp_action(0.5, 0.06, 0.035, 0.0, 0.05),
                     grasp_action(0.5, 0.0, 0.035, 0.0, 0.01)])
    _, p, _ = m.predict(np.repeat(states, 3, 0), acts, np.repeat(mask, 3, 0), shapes)
    assert p[0] > 0.8 and p[1] < 0.3 and p[2] < 0.3, p
