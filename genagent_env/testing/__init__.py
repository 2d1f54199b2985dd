"""Tiny, randomly initialised models built from configs, for offline tests of the real-model code.

Each builder makes a model small enough to run on a CPU in a second, saves it with
``save_pretrained`` and loads it back with ``from_pretrained`` where the library has them, so the
loading code users run on real checkpoints is exercised too. Nothing here downloads anything.
"""
