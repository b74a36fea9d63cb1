"""Layer 4: the learned world model. The model itself — ``state`` (layouts), ``network``, ``grasp_head``,
``shape``, ``world_model`` — and its data set on disk (``dataset``) and training (``train``) need neither the
simulator nor the grasping module; data generation (``collect``: the recorder, action sampling, episodes;
``collect_jobs``: running them into a folder) drives PyBullet and labels grasps with the shake test."""
