"""ShapesWorld: an offline, verifiable text-to-image world: a procedural generator that makes the
mistakes diffusion models make, and a verifier that checks the checklist on the pixels alone.

- :mod:`.vocab` — shapes, palette, number words, synonyms;
- :mod:`.reader` — free text -> object mentions + clarity features; :func:`task_from_prompt`;
- :mod:`.failures` — the documented, seeded failure model (what a diffusion model gets wrong);
- :mod:`.renderer` — scene plan -> pixels + scene record;
- :mod:`.generator` — :class:`ShapesGenerator` (tools ``shapes-weak``/``shapes-medium``/``shapes-strong``);
- :mod:`.verifier` — :class:`ShapesVerifier` (scorer ``shapes``), pixels only;
- :mod:`.suite` — :func:`make_shapes_geneval` (suite ``shapes-geneval``).

Nothing heavy is imported here: the names below load their modules (numpy, PIL, scipy) on first use,
so ``import genagent_env`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ShapesGenerator": "genagent_env.shapes.generator",
    "ShapesVerifier": "genagent_env.shapes.verifier",
    "make_shapes_geneval": "genagent_env.shapes.suite",
    "read_prompt": "genagent_env.shapes.reader",
    "task_from_prompt": "genagent_env.shapes.reader",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'genagent_env.shapes' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
