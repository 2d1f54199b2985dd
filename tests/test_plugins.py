"""Generators and scorers from installed packages (entry points), and the custom-generator example."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
from PIL import Image
from genagent_env.scorers.base import Score, Scorer
from genagent_env.tools.base import Generator


class TinyGenerator(Generator):
    name = "tiny"
    description = "Paints the whole image one colour."

    def generate(self, requests):
        return [Image.new("RGB", (16, 16), (200, 0, 0)) for _ in requests]


class AlwaysScorer(Scorer):
    name = "always"

    def score(self, images, tasks):
        return [Score(passed=True, score=1.0) for _ in images]
'''


def _install_plugin(site: Path) -> None:
    """Lay the package out as an installer does: the module plus a dist-info with entry points."""
    site.mkdir()
    (site / "tiny_plugin.py").write_text(PLUGIN)
    dist = site / "tiny_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[genagent_env.generators]\ntiny = tiny_plugin:TinyGenerator\n\n"
        "[genagent_env.scorers]\nalways = tiny_plugin:AlwaysScorer\n"
    )


def test_entry_point_generators_and_scorers_are_found_by_name(tmp_path):
    site = tmp_path / "site"
    _install_plugin(site)
    code = textwrap.dedent("""
        import gymnasium as gym
        from genagent_env import GENERATORS, SCORERS
        assert "tiny" in GENERATORS.names() and "always" in SCORERS.names()
        assert "tiny_plugin" not in __import__("sys").modules  # discovered, not imported
        env = gym.make("genagent_env:GenAgent-v0", generators="tiny", scorer="always")
        env.reset(seed=0)
        env.step('<tool_call>{"name": "tiny", "arguments": {"prompt": "red"}}</tool_call>')
        *_, info = env.step("<judge>red</judge><answer>done</answer>")
        print(info["passed"], info["images"][0].size)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "(16,", "16)"]


def test_registered_factories_may_return_plain_functions():
    from PIL import Image

    from genagent_env.tools import GENERATORS, make_generator, register_generator

    def blank(prompt: str, seed: int) -> Image.Image:
        return Image.new("RGB", (8, 8))

    if "blank-test" not in GENERATORS:
        register_generator("blank-test", lambda: blank)
    tool = make_generator("blank-test")
    assert tool.name == "blank-test" and tool.parameters()["required"] == ["prompt"]


def test_custom_generator_example_runs():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_generator.py")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "passed=True" in result.stdout and "<judge>image_1" in result.stdout
