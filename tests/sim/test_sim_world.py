"""The World: settling, isolation between worlds, determinism of rebuilds."""

import numpy as np
import pytest

from robot_wm.config import load_scene, scene_from_dict
from robot_wm.sim import World
from tests.conftest import REPO, box_scene_dict


def test_objects_settle_on_the_table(repo):
    with World(load_scene(repo / "sim_scenes/stacked.yaml")) as w:
        assert w.at_rest()
        for name in w.objects:
            lo, _ = w.object_aabb(name)
            assert lo[2] > -2e-3, name  # nothing sinks through the table
        # the stack stands: the top block rests on its base
        assert w.object_pose("top_a").position[2] > w.object_pose("base_a").position[2] + 0.03
        contacts = w.contacts("top_a", "base_a")
        assert contacts
        mass = w.objects["top_a"].mass
        for c in contacts:
            assert (c.a, c.b) == ("top_a", "base_a")
            assert c.normal_on_b[2] > 0.99  # on the base, pointing up towards the top block
            assert abs(c.distance) < 1e-3 and c.normal_force >= 0.0
            np.testing.assert_allclose(c.position_on_a, c.position_on_b, atol=1e-3)
        assert sum(c.normal_force for c in contacts) == pytest.approx(mass * 9.81, rel=0.1)  # it carries the weight
        assert w.contacts("top_a", "table") == []


def test_worlds_are_isolated(repo):
    a = World(load_scene(repo / "sim_scenes/two_blocks.yaml"))
    b = World(load_scene(repo / "sim_scenes/two_blocks.yaml"))
    try:
        before = b.object_pose("red_block").position.copy()
        a.client.resetBasePositionAndOrientation(a.objects["red_block"].body, [0.3, 0.3, 0.3], [0, 0, 0, 1])
        a.step(60)
        assert a.object_pose("red_block").position[2] < 0.3
        np.testing.assert_array_equal(b.object_pose("red_block").position, before)
        b.step(60)
        assert np.linalg.norm(b.object_pose("red_block").position - before) < 1e-4
    finally:
        a.close()
        b.close()


def test_reset_rebuilds_bit_for_bit(repo):
    with World(load_scene(repo / "sim_scenes/clutter.yaml")) as w:
        first = {n: p.as_list() for n, p in w.object_poses().items()}
        w.client.resetBasePositionAndOrientation(w.objects["red_box"].body, [0.4, 0.0, 0.3], [0, 0, 0, 1])
        w.step(100)
        w.reset()
        assert {n: p.as_list() for n, p in w.object_poses().items()} == first


def test_urdf_object_overrides(repo):
    data = box_scene_dict(objects=[{"name": "blob", "urdf": "random_urdfs/005/005.urdf", "scale": 0.5,
                                    "mass": 0.25, "friction": 0.4, "color": [0.1, 0.9, 0.1, 1.0],
                                    "position": [0.5, 0.0, 0.05]}])
    with World(scene_from_dict(data, "blob", REPO / "sim_scenes")) as w:
        info = w.objects["blob"]
        assert info.mass == 0.25 and abs(info.friction - 0.4) < 1e-9
        lo, hi = w.object_aabb("blob")
        assert (hi - lo).max() < 0.09  # scaled down from ~0.1 m
        verts = w.object_vertices("blob")
        assert verts is not None and verts[:, 2].min() > -2e-3


def test_observation_contents(repo):
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as w:
        obs = w.observe()
        assert set(obs.frames) == {"front", "side"}
        assert obs.joint_positions.shape == (7,)
        assert 0.07 < obs.gripper_width <= 0.081
        assert obs.time == w.time > 0  # settling took simulated time


def test_render_by_name_matches_observe_and_noise_is_optional(repo):
    data = box_scene_dict(cameras=[{"calibration": "front_noisy.yaml"}, {"calibration": "side.yaml"}])
    with World(scene_from_dict(data, "noisy", repo / "sim_scenes"), seed=3) as w:
        state = w.rng.bit_generator.state
        clean = w.render("front_noisy", noise=False)
        assert w.rng.bit_generator.state == state  # a noise-free render leaves the generator alone
        noisy = w.render("front_noisy", segmentation=False)
        assert w.rng.bit_generator.state != state and noisy.segmentation is None
        assert not np.array_equal(clean.depth, noisy.depth)
        np.testing.assert_array_equal(clean.rgb, noisy.rgb)
        np.testing.assert_array_equal(w.render(w.cameras[1]).depth, w.observe().frames["side"].depth)
        small = w.render("side", scale=0.25)
        assert small.rgb.shape == (120, 160, 3) and small.intrinsics.width == 160


def test_step_raw_skips_hooks_and_bookkeeping(repo):
    with World(load_scene(repo / "sim_scenes/two_blocks.yaml")) as w:
        calls = []
        w.add_step_hook(lambda world: calls.append(world.step_count))
        t, n = w.time, w.step_count
        w.step_raw(10)
        assert (w.time, w.step_count, calls) == (t, n, [])
        w.step(2)
        assert calls == [n + 1, n + 2] and w.time > t
        assert w.num_bodies() == 2 + len(w.objects)  # table, robot, objects


@pytest.mark.parametrize("speed", [0.008, 0.03, 0.09])
def test_a_lying_cylinder_set_rolling_slows_down_and_stops(repo, speed):
    """Bullet's cylinder-box contact feeds energy into a lying cylinder that rolls (at the old rolling
    friction, 1e-4, one started at 3 cm/s was rolling at 20 cm/s 5 s later, 48 cm on): round objects get
    the rolling resistance of a real cylinder on a table, so a roll only ever slows down."""
    r, h = 0.017, 0.1
    cyl = {"name": "cyl", "shape": "cylinder", "size": [r, h], "mass": 0.2, "friction": 0.6,
           "color": [0.2, 0.5, 0.9, 1.0], "position": [0.45, 0.0, r], "orientation": [0.7071068, 0, 0, 0.7071068]}
    scene = scene_from_dict(box_scene_dict(objects=[cyl]), "cyl", REPO / "sim_scenes")
    with World(scene) as w:
        c, body = w.client, w.objects["cyl"].body
        c.resetBaseVelocity(body, [speed, 0, 0], [0, speed / r, 0])  # rolling along x, axis along y
        start = np.array(c.getBasePositionAndOrientation(body)[0])
        speeds = []
        for _ in range(6):
            w.step(120)
            speeds.append(float(np.linalg.norm(c.getBaseVelocity(body)[0][:2])))
        travelled = float(np.linalg.norm(np.array(c.getBasePositionAndOrientation(body)[0])[:2] - start[:2]))
    assert all(b <= a + 1e-4 for a, b in zip([speed, *speeds[:-1]], speeds, strict=True))  # never faster
    assert speeds[-1] < 1e-3 and travelled < 0.06
