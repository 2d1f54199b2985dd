"""Plug your own text-to-image model into GenAgent-v0 as a tool, and run the teacher with it.

    python examples/custom_generator.py

A tool is any function ``(prompt, seed) -> PIL.Image``; subclass ``genagent_env.Generator`` instead
to batch requests or let the agent set more arguments. Here the "model" draws with ShapesWorld's
renderer but always forgets the colour blue, so the teacher has something to judge and refine.
"""

import gymnasium as gym
from PIL import Image

from agents import make_agent, run_episode
from genagent_env.shapes import ShapesGenerator
from genagent_env.tools import GenerationRequest

shapes = ShapesGenerator(preset="strong")


def colour_blind_model(prompt: str, seed: int) -> Image.Image:
    """Draws the prompt, but blue comes out purple."""
    return shapes.generate([GenerationRequest(prompt.replace("blue", "purple"), seed)])[0]


env = gym.make("genagent_env:GenAgent-v0", generators={"colour-blind": colour_blind_model}, max_rounds=2,
               privileged=True)  # privileged: the scripted teacher reads the checklist
for task in ("two red hearts and a yellow star", "a blue circle above a green square"):
    trajectory = run_episode(env, make_agent("scripted"), seed=0, options={"prompt": task})
    print(f"{task!r}: passed={trajectory.passed} reward={trajectory.reward:.2f} images={len(trajectory.images)}")
    for turn in trajectory.turns[1:]:
        print("   ", turn["action"][:160])
