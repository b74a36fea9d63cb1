"""Layer 6: turning estimates and plans into arm motion (pick-and-place, the controller loop)."""
