"""Rendering a trajectory (picture and transcript) takes bounded work and stays printable, whatever
text the agent or the tool wrote."""

from __future__ import annotations

from PIL import Image


def test_hostile_text_renders_in_bounded_work():
    from genagent_env.render import trajectory_picture, transcript

    image = Image.new("RGB", (32, 32))
    frame = trajectory_picture("y" * 200_000, [{"image": image, "tool": "t", "seed": 1, "prompt": "p" * 200_000,
                                                "judge": "\ud800" * 1000 + "z" * 200_000}])
    assert frame.ndim == 3
    assert "?" in transcript([{"role": "assistant", "content": "\ud800 lone surrogate"}])
