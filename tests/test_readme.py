"""The README's Python examples run as written, and its commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_examples_run(index, tmp_path):
    script = tmp_path / f"readme_{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_readme_has_examples_and_ci_runs_its_test_command():
    assert len(PYTHON_BLOCKS) >= 2
    first_screen = "\n".join(README.splitlines()[:25])
    assert "python -m benchmarks.run" in first_screen
    test_command = 'pip install -e ".[test]" && python -m pytest -q'
    assert test_command in first_screen
    assert test_command in (ROOT / ".ci" / "run").read_text()
