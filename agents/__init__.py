"""Agents for ``GenAgent-v0``: the interface, the baselines, the scripted teacher, the LLM agent
(:class:`~agents.llm.LLMAgent`, any Hugging Face LM or VLM), and rollouts."""

from agents.base import Agent
from agents.passthrough import PassthroughAgent
from agents.random_agent import RandomAgent
from agents.rollout import Trajectory, run_episode, run_episodes

__all__ = [
    "Agent",
    "Generation",
    "LLMAgent",
    "PassthroughAgent",
    "RandomAgent",
    "ScriptedAgent",
    "Trajectory",
    "make_agent",
    "run_episode",
    "run_episodes",
]


def __getattr__(name: str):
    # The teacher imports the scorer registry, the LLM agent torch: load them only when asked for.
    if name == "ScriptedAgent":
        from agents.scripted import ScriptedAgent

        return ScriptedAgent
    if name in ("LLMAgent", "Generation"):
        from agents import llm

        return getattr(llm, name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


#: The genagent-tiny checkpoints shipped in ``agents/tiny/checkpoints/`` (``agents.tiny.SHIPPED``; named
#: here too so that listing them needs no torch).
TINY_AGENTS = ("tiny-sft", "tiny-grpo")


def make_agent(name: str, **kwargs) -> Agent:
    """An agent by name: ``passthrough``, ``random``, ``scripted``, ``resample`` (the teacher that
    re-sends the user's prompt with new seeds), ``tiny-sft`` or ``tiny-grpo`` (the shipped
    genagent-tiny after SFT, and after GRPO from it)."""
    if name == "passthrough":
        return PassthroughAgent(**kwargs)
    if name == "random":
        return RandomAgent(**kwargs)
    if name in ("scripted", "resample"):
        from agents.scripted import ScriptedAgent

        return ScriptedAgent(rewrite_prompt=name == "scripted", **kwargs)
    if name in TINY_AGENTS:  # the shipped genagent-tiny checkpoints
        from agents.tiny import load_agent

        return load_agent(name, **kwargs)
    from genagent_env.registry import unknown_name_error

    raise unknown_name_error("agent", name, ["passthrough", "random", "resample", "scripted", *TINY_AGENTS])
