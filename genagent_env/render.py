"""Pictures and transcripts of a trajectory, for ``render()``, reports and recorded episodes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_PANEL = 192  # each round's image is shown at this size
_PAD = 8
_LINE = 12  # line height of PIL's default bitmap font
_BACKGROUND = (250, 250, 248)
_INK = (30, 30, 30)
_PASS = (20, 130, 60)
_FAIL = (190, 40, 40)


def _wrap(draw: Any, text: str, width: int, lines: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels, at most ``lines`` lines (the last one ends in "...").

    Agent text can be anything, so the work is bounded: the text is cut to what ``lines`` lines
    could hold, and an over-long word is split at a measured character count, not char by char.
    """
    chars_per_line = max(int(width // max(draw.textlength("x"), 1.0)) * 2, 8)
    flat = _ascii(" ".join(str(text)[: lines * chars_per_line * 2].split()))
    out: list[str] = []
    current = ""
    for word in flat.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and draw.textlength(candidate) > width:
            out.append(current)
            current = word
        else:
            current = candidate
        while draw.textlength(current) > width and len(out) <= lines:
            fits = max(1, int(len(current) * width / draw.textlength(current)))
            out.append(current[:fits])
            current = current[fits:]
        if len(out) > lines:
            break
    out.append(current)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: max(len(out[-1]) - 3, 0)] + "..."
    return out


def _ascii(text: str) -> str:
    # PIL's default bitmap font has Latin-1 glyphs only.
    return text.encode("latin-1", "replace").decode("latin-1")


def trajectory_picture(task_prompt: str, rounds: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """One RGB picture: the request on top, then per round its image, the tool, seed and prompt
    used, the agent's verdict (``judge``) and the scorer's pass mark.

    ``rounds`` items hold ``image`` (PIL), ``tool``, ``seed``, ``prompt``, ``judge`` (str or None),
    and optionally ``passed`` and ``score``.
    """
    from PIL import Image, ImageDraw

    width = _PAD + max(len(rounds), 1) * (_PANEL + _PAD)
    text_lines = 14
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    header = _wrap(measure, f"Request: {task_prompt}", width - 2 * _PAD, 3)
    height = _PAD + len(header) * _LINE + _PAD + _PANEL + _PAD + text_lines * _LINE + _PAD
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = _PAD
    for line in header:
        draw.text((_PAD, y), line, fill=_INK)
        y += _LINE
    top = y + _PAD
    if not rounds:
        draw.rectangle([_PAD, top, _PAD + _PANEL, top + _PANEL], outline=_INK)
        draw.text((_PAD + 8, top + _PANEL // 2), "no image yet", fill=_INK)
    for index, item in enumerate(rounds):
        x = _PAD + index * (_PANEL + _PAD)
        image = item["image"].convert("RGB").resize((_PANEL, _PANEL))
        canvas.paste(image, (x, top))
        passed = item.get("passed")
        if passed is not None:
            colour = _PASS if passed else _FAIL
            draw.rectangle([x, top, x + _PANEL - 1, top + _PANEL - 1], outline=colour, width=3)
        lines = [f"image_{index + 1}: {item.get('tool', '')}", f"seed {item.get('seed', '')}"]
        if passed is not None:
            lines.append(f"scorer: {'PASS' if passed else 'FAIL'} ({float(item.get('score', 0.0)):.2f})")
        lines += _wrap(draw, f"prompt: {item.get('prompt', '')}", _PANEL - 4, 5)
        judge = item.get("judge")
        lines += _wrap(draw, f"verdict: {judge if judge else '(not judged)'}", _PANEL - 4, text_lines - len(lines))
        ty = top + _PANEL + _PAD
        for line in lines[:text_lines]:
            draw.text((x, ty), line, fill=_INK)
            ty += _LINE
    return np.asarray(canvas, dtype=np.uint8).copy()


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message, with ``<image>`` where an image part stands."""
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        parts.append("<image>" if part.get("type") == "image" else str(part.get("text", "")))
    return " ".join(parts)


def transcript(messages: Sequence[Mapping[str, Any]]) -> str:
    """The conversation as plain text, one block per message."""
    text = "\n".join(f"[{message['role']}] {message_text(message)}" for message in messages) + "\n"
    return text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from agent text become "?"
