"""``genagent-tiny``: a small vision-language agent for ShapesWorld, built from configs and trained here.

- :mod:`agents.tiny.perception`: the CNN that turns an image into object slots (pretrained alone);
- :mod:`agents.tiny.model`: the Hugging Face model (perception, projector, Qwen2 decoder);
- :mod:`agents.tiny.processor`: its chat template, tokenizer and image input;
- :mod:`agents.tiny.teacher`: the describe-first teacher whose trajectories it is trained on;
- :mod:`agents.tiny.consistency`: whether a run's judgments in the teacher's form agree with
  themselves (checks with the description, verdicts with the checks).

Importing this package registers the ``genagent_tiny`` model type with ``transformers``' Auto
classes, so ``LLMAgent.from_pretrained(folder)`` loads its checkpoints. The trained agents ship in
``agents/tiny/checkpoints/`` and load by name: ``load_agent("tiny-sft")`` (``examples/train_sft.py``),
``load_agent("tiny-grpo")`` (``examples/train_grpo.py`` from it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.tiny.model import register

#: Where the shipped checkpoints live (one Hugging Face model folder per name).
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
#: The shipped agents, by name.
SHIPPED = ("tiny-sft", "tiny-grpo")

register()


def load_agent(name_or_path: str | Path = "tiny-sft", **kwargs: Any) -> Any:
    """An :class:`~agents.llm.LLMAgent` on a shipped checkpoint (``"tiny-sft"``, ``"tiny-grpo"``) or a
    folder written by ``examples/train_sft.py`` or ``examples/train_grpo.py``. Greedy decoding unless
    ``kwargs`` say otherwise."""
    from agents.llm import LLMAgent

    path = CHECKPOINTS / str(name_or_path) if str(name_or_path) in SHIPPED else Path(name_or_path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no genagent-tiny checkpoint at {path} (train one with examples/train_sft.py)")
    kwargs.setdefault("max_new_tokens", 200)
    agent = LLMAgent.from_pretrained(path, **kwargs)
    agent.name = str(name_or_path) if str(name_or_path) in SHIPPED else "llm"
    return agent


__all__ = ["CHECKPOINTS", "SHIPPED", "load_agent", "register"]
