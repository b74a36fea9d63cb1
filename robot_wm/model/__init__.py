"""Layer 4: the learned world model (object-centric transition model, data collection, training)."""
