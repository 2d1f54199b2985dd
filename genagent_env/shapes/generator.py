"""``ShapesGenerator``: the ShapesWorld "text-to-image model", a batch-first :class:`Generator`.

For each request it reads the prompt (:mod:`.reader`), draws the mistakes a diffusion model would
make on it (:mod:`.failures`) and draws the scene (:mod:`.renderer`). It is deterministic given
(prompt, seed, preset, size): the random generator is seeded from a BLAKE2 hash of (preset, seed,
prompt) — never Python's salted ``hash()`` — so the same request gives the same pixels in every
process. Failures are drawn from one stream and the layout from another, so the same request at a
different size makes the same mistakes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from genagent_env.shapes.failures import PRESETS, plan_scene
from genagent_env.shapes.reader import read_prompt
from genagent_env.shapes.renderer import render
from genagent_env.shapes.vocab import SHAPES
from genagent_env.tools.base import GenerationRequest, Generator, prompt_and_seed_schema

if TYPE_CHECKING:
    from PIL.Image import Image

#: Image sizes a request may ask for (each side).
MIN_SIZE, MAX_SIZE = 32, 1024


def _seed_sequence(preset: str, seed: int, prompt: str) -> np.random.SeedSequence:
    digest = hashlib.blake2b(f"{preset}\x00{int(seed)}\x00{prompt}".encode("utf-8", "replace"), digest_size=16).digest()
    return np.random.SeedSequence(int.from_bytes(digest, "little"))


class ShapesGenerator(Generator):
    """Draws coloured shapes from a text prompt, with the mistakes of a diffusion model.

    Args:
        preset: ``"weak"``, ``"medium"`` or ``"strong"``: how often it makes mistakes.
        image_size: Side of the square image when a request gives no width/height.
    """

    def __init__(self, preset: str = "medium", image_size: int = 128) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if not MIN_SIZE <= int(image_size) <= MAX_SIZE:
            raise ValueError(f"image_size must lie in [{MIN_SIZE}, {MAX_SIZE}], got {image_size}")
        self.preset = preset
        self.rates = PRESETS[preset]
        self.image_size = int(image_size)
        self.name = f"shapes-{preset}"
        self.description = (
            f"ShapesWorld text-to-image model ({preset}): draws flat coloured shapes ({', '.join(SHAPES)}) "
            "in ten colours on a grey background. Like a diffusion model it can miscount, leak colours between "
            "objects, drop objects from crowded sentences and ignore placement or relative size; clear prompts "
            "(one sentence per object group, counts in digits, explicit positions) and new seeds help."
        )

    def parameters(self) -> dict[str, Any]:
        return prompt_and_seed_schema(
            "What the image should show: shapes, their colours, counts, positions (left/right/top/bottom "
            "half of the image) and relative sizes."
        )

    def cache_id(self) -> str:
        from genagent_env import __version__

        return f"shapes:{self.preset}:{self.image_size}:{__version__}"

    def _size(self, request: GenerationRequest) -> tuple[int, int]:
        width = self.image_size if request.width is None else int(request.width)
        height = self.image_size if request.height is None else int(request.height)
        for name, value in (("width", width), ("height", height)):
            if not MIN_SIZE <= value <= MAX_SIZE:
                raise ValueError(f"{name} must lie in [{MIN_SIZE}, {MAX_SIZE}], got {value}")
        return width, height

    def generate_with_records(self, requests: Sequence[GenerationRequest]) -> list[tuple[Image, dict[str, Any]]]:
        """Like :meth:`generate`, with each image's scene record: ``{"objects": [{"class", "color",
        "centroid", "area", "bbox"}...], "failures": [...], "width", "height"}`` — what was drawn."""
        from PIL import Image as PILImage

        out = []
        for request in requests:
            width, height = self._size(request)
            failure_seq, layout_seq = _seed_sequence(self.preset, request.seed, request.prompt).spawn(2)
            plan, failures = plan_scene(read_prompt(request.prompt), self.rates, np.random.default_rng(failure_seq))
            pixels, objects = render(plan, width, height, np.random.default_rng(layout_seq))
            record = {"objects": objects, "failures": failures, "width": width, "height": height}
            out.append((PILImage.fromarray(pixels, "RGB"), record))
        return out

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image]:
        return [image for image, _ in self.generate_with_records(requests)]
