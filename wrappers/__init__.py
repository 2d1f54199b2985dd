"""Gymnasium wrappers for ``GenAgent-v0`` (one wrapper per module)."""
