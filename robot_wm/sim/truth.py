"""Ground truth for scoring: what the simulator's true state says about a task.

Reports, the Gymnasium env's reward and benchmarks judge runs with these; nothing on the product path
(perception, planning, the controller) may use them — a real robot has no such oracle.
"""

from __future__ import annotations

from robot_wm.sim.arm import Arm
from robot_wm.sim.world import World


def task_objects(world: World) -> list[str]:
    """Names the task is about (scene order): the objects with goals for ``push_to_goal``; every movable
    object for ``clear``; for ``pick_place`` the scene's ``task.objects``, or every movable object."""
    task = world.scene.config.task
    if task.kind == "push_to_goal":
        return [g.object for g in task.goals]
    if task.kind == "pick_place" and task.objects is not None:
        return list(task.objects)
    return [n for n, o in world.objects.items() if not o.fixed]


def evaluate_task(world: World, names: list[str]) -> dict[str, bool]:
    """For each object in `names`: does the x, y of its true base position (world frame) lie inside the
    scene's place-region rectangle (edges included)? Height and motion are not checked: the caller judges
    a world that has come to rest."""
    region = world.scene.config.task.place_region
    return {n: region.contains(world.object_pose(n).position) for n in names}


def held_object(arm: Arm) -> str | None:
    """The object both fingers of `arm` touch now (the first in scene order), or None."""
    return next((n for n in arm.world.objects if arm.is_holding(n)), None)


def true_poses(world: World) -> dict[str, list[list[float]]]:
    """name -> [position (3,) m, quaternion xyzw (4,)] of every object's base frame (world), as JSON lists."""
    return {n: world.object_pose(n).as_list() for n in world.objects}
