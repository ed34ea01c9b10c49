"""Ablation runner and its data pipeline (not part of the augkit library)."""
