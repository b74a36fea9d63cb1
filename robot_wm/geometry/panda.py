"""Constants of the Franka Panda as modelled by pybullet_data's ``franka_panda/panda.urdf`` (no simulator:
a real-robot controller reads its limits from here too).

TCP (tool centre point) frame = link ``panda_grasptarget``: origin between the fingertip pads,
z = approach direction (out of the palm), y = closing direction of the fingers, x = z cross y... i.e. the
palm's long axis. A top-down grasp has TCP z = world -z.
"""

from __future__ import annotations

import numpy as np

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
TCP_LINK = 11
HAND_LINK = 8
# the arm's flange (``panda_link8``, Franka's flange frame F): where a hand-mounted camera is fixed (the
# calibration of a ``mount: hand`` camera is its camera2flange); the hand (link 8) is this turned -45 deg about z
FLANGE_LINK = 7
FINGER_LINKS = (9, 10)
LOWER = np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973])
UPPER = np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973])
VELOCITY_LIMIT = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])  # rad/s
# Franka's datasheet (the robot rejects commands beyond these; the control loop's guard enforces them):
ACCELERATION_LIMIT = np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0])  # rad/s^2
JERK_LIMIT = np.array([7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0])  # rad/s^3
EFFORT_LIMIT = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])  # N m
HOME = np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785])
MAX_FINGER_OPENING = 0.04  # m per finger
MAX_OPENING = 2 * MAX_FINGER_OPENING  # m between the fingers, fully open (0.08)
FINGER_FORCE = 40.0  # N per finger when closing
MAX_FINGER_FORCE = 70.0  # N per finger: the Franka Hand grasps with at most 140 N (datasheet)
FINGER_DEPTH = 0.045  # m, how far the finger pads reach along the approach axis
HAND_TO_TCP = 0.105  # m from the hand frame to the TCP along z
