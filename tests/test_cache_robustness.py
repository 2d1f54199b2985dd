"""The on-disk generation cache never fails a step: a read-only folder, a corrupt entry that
cannot be removed, an unreadable file or an image library that raises something unexpected are
misses (the image is generated again), counted in ``disk_errors`` and warned about once."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genagent_env.env import GenAgentEnv
from genagent_env.tools.base import GenerationRequest
from genagent_env.tools.cache import GenerationCache
from genagent_env.tools.dispatch import generate_requests
from genagent_env.vector import GenAgentVectorEnv
from tests.helpers import COLOUR_TASKS, ColourScorer, paint


def call(seed: int) -> str:
    return f'<tool_call>{{"name": "paint", "arguments": {{"prompt": "red", "seed": {seed}}}}}</tool_call>'


def painted(seed: int) -> np.ndarray:
    return np.asarray(paint("red", seed))


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make a folder read-only: its permissions (which root ignores) and every write, removal or
    rename under it (which root would otherwise be allowed)."""
    folders: list[Path] = []

    def inside(path: object) -> bool:
        return any(Path(str(path)).resolve().is_relative_to(folder) for folder in folders)

    def refuse(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    real_unlink, real_mkdir, real_mkstemp, real_replace = Path.unlink, Path.mkdir, tempfile.mkstemp, os.replace

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if inside(self):
            raise refuse(self)
        real_unlink(self, missing_ok=missing_ok)

    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        if inside(self) and not self.is_dir():
            raise refuse(self)
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    def mkstemp(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:  # noqa: A002
        if dir is not None and inside(dir):
            raise refuse(dir)
        return real_mkstemp(*args, dir=dir, **kwargs)  # type: ignore[call-overload]

    def replace(source: object, target: object) -> None:
        if inside(target):
            raise refuse(target)
        real_replace(source, target)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "replace", replace)

    def make(folder: Path) -> None:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        folders.append(folder.resolve())

    yield make
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def corrupt_every_entry(folder: Path) -> int:
    entries = list(folder.rglob("*.png"))
    for path in entries:
        path.write_bytes(b"not a png at all")
    return len(entries)


def test_a_read_only_folder_with_a_corrupt_entry_does_not_fail_the_step(tmp_path, read_only):
    env = GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": paint}, scorer=ColourScorer(), max_rounds=3,
                      generation_cache={"directory": tmp_path})
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(2))
    assert corrupt_every_entry(tmp_path) == 1
    read_only(tmp_path)

    fresh = GenerationCache(directory=tmp_path)  # a new run on the same folder: nothing in memory
    env = GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": paint}, scorer=ColourScorer(), max_rounds=3,
                      generation_cache=fresh)
    env.reset(seed=0, options={"task_index": 0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        *_, info = env.step(call(2))  # the corrupt entry: cannot be removed nor rewritten
        *_, info = env.step("<judge>bad</judge>" + call(4))  # a new image: cannot be written
        *_, info = env.step("<judge>bad</judge>" + call(2))  # served from memory
    assert info["round"] == 3 and info["format_errors"] == []
    assert np.array_equal(np.asarray(info["images"][0]), painted(2))
    assert np.array_equal(np.asarray(info["images"][1]), painted(4))
    counters = info["generation_cache"]
    assert counters["disk_errors"] == 3  # remove the corrupt entry, write it again, write the new image
    assert (counters["misses"], counters["hits"], counters["disk_hits"]) == (2, 1, 0)
    cache_warnings = [w for w in caught if "generation cache" in str(w.message)]
    assert len(cache_warnings) == 1 and issubclass(cache_warnings[0].category, RuntimeWarning)
    assert "disk_errors" in str(cache_warnings[0].message)
    assert corrupt_every_entry(tmp_path) == 1  # still there: nothing was written


def test_the_vector_env_carries_on_too(tmp_path, read_only):
    cache = GenerationCache(directory=tmp_path)
    generate_requests(GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": paint},
                                  scorer=ColourScorer()).tools["paint"], [GenerationRequest("red", 2)], cache=cache)
    corrupt_every_entry(tmp_path)
    read_only(tmp_path)
    envs = GenAgentVectorEnv(3, suite=COLOUR_TASKS, generators={"paint": paint}, scorer=ColourScorer(),
                             generation_cache={"directory": tmp_path})
    envs.reset(seed=0, options={"task_index": 0})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _, _, _, _, infos = envs.step([call(2), call(2), call(6)])
    assert list(infos["round"]) == [1, 1, 1]
    assert infos["generation_cache"]["disk_errors"][0] >= 2


def test_an_entry_that_cannot_be_read_is_a_miss_and_is_kept(tmp_path, monkeypatch):
    tool = GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": paint}, scorer=ColourScorer()).tools["paint"]
    request = GenerationRequest("red", 2)
    generate_requests(tool, [request], cache=GenerationCache(directory=tmp_path))

    def denied(*args: object, **kwargs: object) -> Image.Image:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)
    cache = GenerationCache(directory=tmp_path)
    with pytest.warns(RuntimeWarning, match="could not read"):
        [image] = generate_requests(tool, [request], cache=cache)
    assert np.array_equal(np.asarray(image), painted(2))
    assert (cache.stats.misses, cache.stats.disk_errors) == (1, 1) and len(list(tmp_path.rglob("*.png"))) == 1


@pytest.mark.parametrize("error", [IndexError("tile"), ZeroDivisionError(), MemoryError()],
                         ids=["IndexError", "ZeroDivisionError", "MemoryError"])
def test_an_image_library_error_of_any_type_is_a_bad_entry_that_is_regenerated(tmp_path, monkeypatch, error):
    tool = GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": paint}, scorer=ColourScorer()).tools["paint"]
    request = GenerationRequest("red", 2)
    generate_requests(tool, [request], cache=GenerationCache(directory=tmp_path))

    def broken(*args: object, **kwargs: object) -> Image.Image:
        raise error

    monkeypatch.setattr(Image, "open", broken)
    cache = GenerationCache(directory=tmp_path)
    [image] = generate_requests(tool, [request], cache=cache)
    assert np.array_equal(np.asarray(image), painted(2)) and cache.stats.misses == 1
