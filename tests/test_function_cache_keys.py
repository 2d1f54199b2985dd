"""The cache key of a function generator follows its code, not its name: two scripts that each
define ``def gen`` with one cache folder, or a function whose body (or a helper, constant, default
or captured value) was edited, never get each other's images; identical code gets the same key in
every process, so a disk cache is shared across runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np

from genagent_env.env import GenAgentEnv
from genagent_env.tools.base import FunctionGenerator, GenerationRequest, code_digest
from genagent_env.tools.cache import GenerationCache
from tests.helpers import COLOUR_TASKS, ColourScorer

REPO = Path(__file__).resolve().parents[1]
REQUEST = GenerationRequest("red", 2)

SCRIPT = textwrap.dedent('''
    from PIL import Image

    COLOUR = {colour}
    SIZES = {{"small": 8, "large": 16}}
    LEVELS = frozenset({{"a", "b", "c"}})


    def shade(rgb):
        return tuple(int(v) for v in rgb)


    def gen(prompt, seed, size="small"):
        """Paints the script's colour."""
        assert "a" in LEVELS
        return Image.new("RGB", (SIZES[size], SIZES[size]), shade(COLOUR))
''')

PRINT_KEY = '''
if __name__ == "__main__":
    from genagent_env.tools.base import FunctionGenerator, GenerationRequest
    from genagent_env.tools.cache import GenerationCache

    print(GenerationCache.key(FunctionGenerator(gen), GenerationRequest("red", 2)))
'''


def script(source: str, **names: Any) -> Any:
    """``gen`` as a script run with ``python script.py`` defines it (module ``__main__``)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    code = compile(source.format(**names) if names else source, "<script>", "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 - the test's own scripts
    return namespace["gen"]


def key(function: Any) -> str | None:
    return GenerationCache.key(FunctionGenerator(function), REQUEST)


def first_pixel(function: Any, cache: GenerationCache) -> tuple[int, ...]:
    env = GenAgentEnv(suite=COLOUR_TASKS, generators={"gen": function}, scorer=ColourScorer(),
                      generation_cache=cache)
    env.reset(seed=0, options={"task_index": 0})
    *_, info = env.step('<tool_call>{"name": "gen", "arguments": {"prompt": "red", "seed": 2}}</tool_call>')
    return tuple(np.asarray(info["images"][0])[0, 0])


def test_two_scripts_defining_gen_with_one_cache_folder_get_their_own_images(tmp_path):
    red, blue = script(SCRIPT, colour=(255, 0, 0)), script(SCRIPT, colour=(0, 0, 255))
    assert red.__qualname__ == blue.__qualname__ == "gen" and red.__module__ == blue.__module__
    assert first_pixel(red, GenerationCache(directory=tmp_path)) == (255, 0, 0)
    assert first_pixel(blue, GenerationCache(directory=tmp_path)) == (0, 0, 255)  # a new run, the same folder


def test_every_edit_that_changes_the_image_changes_the_key():
    base = SCRIPT.format(colour=(255, 0, 0))
    edits = {
        "the body": base.replace("SIZES[size], SIZES[size]", "SIZES[size], 2 * SIZES[size]"),
        "a constant in the body": base.replace('assert "a" in LEVELS', 'assert "b" in LEVELS'),
        "a default argument": base.replace('size="small"', 'size="large"'),
        "a global constant": base.replace("(255, 0, 0)", "(255, 0, 1)"),
        "a global dict": base.replace('"small": 8', '"small": 9'),
        "a helper in the same script": base.replace("int(v) for v in rgb", "int(v) // 2 for v in rgb"),
        "a called name": base.replace("shade(COLOUR)", "tuple(COLOUR)"),
    }
    keys = {"base": key(script(base))}
    for what, source in edits.items():
        assert source != base, what
        keys[what] = key(script(source))
    assert all(isinstance(k, str) for k in keys.values())
    assert len(set(keys.values())) == len(keys), keys
    # What does not change the image does not change the key: moved lines, globals it does not read.
    moved = "\n\n# a comment that moves every line\n" + base + "\nUNUSED = object()\n"
    assert key(script(moved)) == keys["base"]


def test_identical_code_gets_the_same_key_in_another_process(tmp_path):
    source = SCRIPT.format(colour=(255, 0, 0))
    path = tmp_path / "script.py"
    path.write_text(source + PRINT_KEY)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    there = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True, timeout=120).stdout.strip()
    assert there == key(script(source)) and len(there) == 64
    other = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env={**env, "PYTHONHASHSEED": "99"},
                           capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    assert other == there  # set and dict order do not leak into the key


def test_functions_that_cannot_be_digested_are_only_the_same_as_themselves():
    lock = threading.Lock()

    def holds_a_lock(prompt: str, seed: int) -> Any:
        with lock:
            return None

    class Painter:
        def draw(self, prompt: str, seed: int) -> Any:
            return None

    for function in (holds_a_lock, Painter().draw):
        assert code_digest(function) is None
        first, second = FunctionGenerator(function), FunctionGenerator(function)
        assert first.cache_id() == first.cache_id() != second.cache_id()


def test_recursion_and_repeated_helpers_are_digested_once():
    source = textwrap.dedent('''
        def gen(prompt, seed):
            return gen(prompt, seed - 1) if seed else (helper(prompt), helper(prompt))


        def helper(prompt):
            return helper_two(prompt)


        def helper_two(prompt):
            return helper(prompt)
    ''')
    gen = script(source)
    assert code_digest(gen) == code_digest(script(source)) is not None


def test_huge_captured_data_falls_back_to_an_instance_id():
    data = list(range(1_000_000))

    def gen(prompt: str, seed: int) -> Any:
        return data[seed]

    assert code_digest(gen) is None
