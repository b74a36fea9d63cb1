"""Tracking: stable ids across frames, object permanence under occlusion, forgetting on evidence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robot_wm.config import scene_from_dict
from robot_wm.control.rgbd_estimator import RgbdEstimator
from robot_wm.perception import Perceiver
from robot_wm.perception.tracking import Tracker
from robot_wm.sim import World

BOX = {"shape": "box", "size": [0.04, 0.04, 0.04], "mass": 0.1}


def _scene(objects):
    return scene_from_dict({"name": "t", "cameras": [{"calibration": "front.yaml"}], "objects": objects})


@pytest.fixture(scope="module")
def frames():
    a = {"name": "a", **BOX, "color": [0.9, 0.1, 0.1, 1], "position": [0.5, 0.1, 0.02]}
    b = {"name": "b", **BOX, "color": [0.1, 0.2, 0.9, 1], "position": [0.6, -0.1, 0.02]}
    # a tall wall between the front camera (x = 1.15) and b hides b in the second scene
    wall = {"name": "wall", "shape": "box", "size": [0.02, 0.12, 0.2], "mass": 1.0, "color": [0.2, 0.8, 0.2, 1],
            "position": [0.7, -0.1, 0.1]}
    out = {}
    for key, objs in (("ab", [a, b]), ("ab_wall", [a, b, wall]), ("a", [a])):
        with World(_scene(objs)) as w:
            out[key] = w.observe().frames["front"]
    return out


def test_ids_stay_stable_and_hidden_objects_are_remembered(frames):
    p, t = Perceiver(), Tracker()
    g1 = t.update(p.perceive([frames["ab"]]), [frames["ab"]])
    ids = {o.id: o.pose.position for o in g1.objects}
    assert len(ids) == 2
    g2 = t.update(p.perceive([frames["ab"]]), [frames["ab"]])
    assert {o.id for o in g2.objects} == set(ids)
    # b hidden behind the wall: kept, invisible, at its last pose; the wall is new
    g3 = t.update(p.perceive([frames["ab_wall"]]), [frames["ab_wall"]])
    hidden = [o for o in g3.objects if not o.visible]
    assert len(hidden) == 1
    assert np.linalg.norm(hidden[0].pose.position - [0.6, -0.1, 0.02]) < 0.01
    assert len([o for o in g3.objects if o.visible]) == 2 and len(set(o.id for o in g3.objects)) == 3
    # b gone and its place in view: forgotten
    g4 = t.update(p.perceive([frames["a"]]), [frames["a"]])
    assert [o.visible for o in g4.objects] == [True]
    a_id = next(i for i, pos in ids.items() if pos[1] > 0)
    assert g4.objects[0].id == a_id


def test_moved_object_beyond_the_gate_gets_a_new_id(frames):
    t = Tracker(gate=0.05)
    g1 = t.update(Perceiver().perceive([frames["a"]]), [frames["a"]])
    moved = replace(g1.objects[0], pose=replace(g1.objects[0].pose, position=g1.objects[0].pose.position + [0.2, 0, 0]))
    g = replace(g1, objects=[moved])
    g2 = t.update(g, None)
    assert {o.id for o in g2.objects if o.visible} != {g1.objects[0].id}


def test_an_expected_move_keeps_the_id(frames):
    """Told where a push should leave an object (expect), the next update keeps its id 12 cm away; the
    expectation holds for one update only, and the old place still matches (a push that did nothing)."""
    t = Tracker(gate=0.05)
    g1 = t.update(Perceiver().perceive([frames["a"]]), [frames["a"]])
    obj = g1.objects[0]
    moved = replace(obj, pose=replace(obj.pose, position=obj.pose.position + [0.12, 0, 0]))
    t.expect({obj.id: obj.pose.position[:2] + [0.11, 0.01], "nobody": [0.0, 0.0]})
    g2 = t.update(replace(g1, objects=[moved]), None)
    assert [o.id for o in g2.objects if o.visible] == [obj.id]
    back = replace(obj, pose=replace(obj.pose, position=obj.pose.position + [0.24, 0, 0]))
    g3 = t.update(replace(g1, objects=[back]), None)  # no expectation any more: 12 cm is beyond the gate
    assert obj.id not in {o.id for o in g3.objects if o.visible}
    t2 = Tracker(gate=0.05)
    g = t2.update(Perceiver().perceive([frames["a"]]), [frames["a"]])
    t2.expect({g.objects[0].id: g.objects[0].pose.position[:2] + [0.1, 0.0]})
    assert [o.id for o in t2.update(g, None).objects] == [g.objects[0].id]  # it did not move: still matched


def test_expected_ends_of_a_push():
    from robot_wm.control.planned import expected_ends
    from robot_wm.geometry import Pose
    from robot_wm.perception.estimate import ObjectEstimate
    from robot_wm.planning.decision import PushAction

    box = ObjectEstimate("obj_0", Pose([0.5, 0.0, 0.02], [0, 0, 0, 1]), np.array([0.04, 0.04, 0.04]))
    push = PushAction("obj_0", np.array([0.44, 0.0, 0.02]), 0.0, 0.1)  # pads end at x 0.54
    assert np.allclose(expected_ends(push, {}, [box])["obj_0"], [0.56, 0.0])  # centre 2 cm beyond the pads
    short = PushAction("obj_0", np.array([0.40, 0.0, 0.02]), 0.0, 0.02)  # stops 8 cm short
    assert np.allclose(expected_ends(short, {}, [box])["obj_0"], [0.5, 0.0])
    pred = {"end_xy_yaw": {"obj_0": [0.6, 0.05, 0.3], "obj_1": [0.3, 0.2, 0.0]}}
    ends = expected_ends(push, pred, [box])
    assert np.allclose(ends["obj_0"], [0.6, 0.05]) and np.allclose(ends["obj_1"], [0.3, 0.2])


def test_rgbd_estimator_matches_the_protocol(frames):
    a = {"name": "a", **BOX, "color": [0.9, 0.1, 0.1, 1], "position": [0.5, 0.1, 0.02]}
    with World(_scene([a, {"name": "tray", "urdf": "tray/traybox.urdf", "scale": 0.5,
                           "position": [0.55, -0.15, 0.0]}])) as w:
        obs = w.observe()
        est = RgbdEstimator()
        assert est.name == "rgbd"
        out = est.estimate(obs)
        true_a = w.object_pose("a").position
    movable = [e for e in out if not e.fixed]
    fixed = [e for e in out if e.fixed]
    assert len(movable) == 1 and len(fixed) == 1
    assert np.linalg.norm(movable[0].pose.position - true_a) < 0.003
    assert abs(movable[0].top_z - 0.04) < 0.003
    assert np.allclose(np.sort(movable[0].extents), 0.04, atol=0.003)
    assert est.estimate(obs)[0].id == out[0].id


def _slab(oid: str, centre, ext, color, support="table", n=200):
    """A synthetic upright detection: a box `ext` (m) at `centre` with `n` points inside it."""
    from robot_wm.geometry import Pose
    from robot_wm.perception.graph import PerceivedObject

    rng = np.random.default_rng(len(oid) + n)
    pts = (np.asarray(centre) + (rng.random((n, 3)) - 0.5) * np.asarray(ext)).astype(np.float32)
    return PerceivedObject(oid, Pose(list(centre), [0, 0, 0, 1]), np.asarray(ext, float), np.asarray(color, float), pts,
                           support=support)


def test_a_piece_split_off_a_tracked_object_is_rejoined():
    """A tracked 4.4 cm object seen next as a flat base (darker: shaded) with a part on it — an irregular
    mesh a push turned — stays one object with its id; a piece of another colour, or a stack the tracker
    saw as two objects from the start, stays apart."""
    from robot_wm.perception.graph import SceneGraph

    yellow, shaded = [0.62, 0.69, 0.13], [0.44, 0.48, 0.09]
    t = Tracker()
    one = _slab("obj_0", [0.5, 0.0, 0.022], [0.07, 0.05, 0.044], yellow)
    g1 = t.update(SceneGraph([one]), None)
    tid = g1.objects[0].id
    base = _slab("obj_0", [0.5, 0.0, 0.0075], [0.09, 0.07, 0.015], shaded)
    head = _slab("obj_1", [0.5, 0.0, 0.0295], [0.07, 0.05, 0.029], yellow, support="obj_0")
    g2 = t.update(SceneGraph([base, head]), None)
    assert [o.id for o in g2.objects] == [tid]
    merged = g2.objects[0]
    assert merged.bottom_z == pytest.approx(0.0, abs=1e-6) and merged.top_z == pytest.approx(0.044, abs=1e-6)
    assert merged.point_count == 400 and merged.support == "table"
    assert merged.extents[0] == pytest.approx(0.09, abs=0.005)

    t2 = Tracker()
    t2.update(SceneGraph([one]), None)
    blue_base = _slab("obj_0", [0.5, 0.0, 0.0075], [0.09, 0.07, 0.015], [0.1, 0.2, 0.9])
    assert len(t2.update(SceneGraph([blue_base, head]), None).objects) == 2  # another colour: two objects

    t3 = Tracker()
    t3.update(SceneGraph([base, head]), None)  # seen as a stack of two from the start
    g = t3.update(SceneGraph([base, head]), None)
    assert len(g.objects) == 2 and {o.id for o in g.objects} == {"obj_0", "obj_1"}
