"""``GenerationCache``: the same request to the same generator is generated once.

A request is identified by the generator's :meth:`~genagent_env.tools.base.Generator.cache_id`
(which model, which settings) and the request itself (prompt, seed, width, height, extra
arguments). GRPO groups that start from one state with the same first tool call, and branches
restored with ``set_state`` that repeat a call, then cost one generation instead of many.

Images live in an in-memory LRU bounded by a number of entries and by bytes; with ``directory``
they are also written there as PNG files named by a SHA-256 of the key, so a later process (a
resumed run, another worker) finds them. Writes are atomic (a temporary file, then a rename), so
several processes may share one folder. The folder is not bounded: delete it to clear it.

Only deterministic generators belong in a cache: the generator contract says the same request
gives the same image. A generator whose ``cache_id()`` returns ``None`` is never cached.

Images go in and come out as copies, so changing one in place changes nothing in the cache. A
cache is not thread-safe: share it between environments stepped from one thread (a vector env,
a list of envs), not between threads.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genagent_env.checks import short_repr

if TYPE_CHECKING:
    from PIL.Image import Image

    from genagent_env.tools.base import GenerationRequest, Generator

#: Bumped when the key layout changes, so an old on-disk cache is not misread.
_KEY_VERSION = 1


@dataclass
class CacheStats:
    """Counters since the cache was made (or cleared).

    Attributes:
        hits: Requests served without running the generator: from memory, from disk, or shared
            with an identical request in the same batch.
        misses: Requests the generator had to run for.
        disk_hits: The hits read from the on-disk cache.
        generator_calls: ``generate()`` calls made for the misses (a batch of misses is one call).
        evictions: Entries dropped from memory to respect the bounds.
        disk_errors: Reads, writes or removals in the on-disk cache that failed (a read-only or
            full disk, a file that cannot be removed). Each is a miss or an entry kept in memory
            only; the step goes on.
    """

    hits: int = 0
    misses: int = 0
    disk_hits: int = 0
    generator_calls: int = 0
    evictions: int = 0
    disk_errors: int = 0


class GenerationCache:
    """An LRU of generated images, with an optional on-disk store.

    Args:
        max_entries: The most images kept in memory.
        max_bytes: The most pixel bytes (width × height × 4 per image, as PIL stores RGB) kept in memory; ``None``: no
            byte bound.
        directory: A folder for the on-disk cache (made if missing); ``None``: memory only.
    """

    def __init__(
        self,
        max_entries: int = 1024,
        max_bytes: int | None = 256 * 2**20,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 0:
            raise ValueError(f"max_entries must be a non-negative integer, got {short_repr(max_entries)}")
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
            raise ValueError(f"max_bytes must be a non-negative integer or None, got {short_repr(max_bytes)}")
        if directory is not None and not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"directory must be a path (str or os.PathLike) or None, got {short_repr(directory)}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.directory = Path(directory).expanduser() if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._memory: OrderedDict[str, Image] = OrderedDict()
        self._bytes = 0
        self._warned_disk = False
        self.stats = CacheStats()

    @classmethod
    def from_any(cls, value: GenerationCache | bool | Mapping[str, Any] | None) -> GenerationCache | None:
        """``True`` → a cache with the default bounds, ``False``/``None`` → no cache, a dict → the
        keyword arguments of a new cache, a :class:`GenerationCache` → itself (shared).

        Errors name ``generation_cache``: ``TypeError`` for a value of another type, ``ValueError``
        for a dict with unknown keys or bad values, or a ``directory`` that cannot be made."""
        if isinstance(value, GenerationCache):
            return value
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, Mapping):
            known = ("max_entries", "max_bytes", "directory")
            unknown = [key for key in value if key not in known]
            if unknown:
                raise ValueError(
                    f"generation_cache: unknown argument(s) {', '.join(sorted(map(short_repr, unknown)))}; "
                    f"known: {', '.join(known)}"
                )
            try:
                return cls(**value)
            except (ValueError, TypeError) as error:
                raise type(error)(f"generation_cache: {error}") from None
            except OSError as error:
                directory = value.get("directory")
                raise ValueError(f"generation_cache: cannot use directory {directory!s}: {error}") from None
        raise TypeError(
            "generation_cache must be a bool, a dict of GenerationCache arguments (max_entries, max_bytes, directory) "
            f"or a GenerationCache, got {short_repr(value)}"
        )

    # ------------------------------------------------------------------ keys

    @staticmethod
    def key(tool: Generator, request: GenerationRequest) -> str | None:
        """The stable key of ``request`` to ``tool`` (a hex SHA-256), or ``None`` when the tool opts out."""
        tool_id = tool.cache_id()
        if tool_id is None:
            return None
        payload = [
            _KEY_VERSION,
            str(tool_id),
            request.prompt,
            int(request.seed),
            request.width,
            request.height,
            dict(request.extra),
        ]
        try:
            text = json.dumps(payload, sort_keys=True, ensure_ascii=True, allow_nan=False)
        except (TypeError, ValueError):  # an argument that is not plain JSON: do not guess a key
            return None
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    # ---------------------------------------------------------- get and put

    def get(self, key: str) -> Image | None:
        """A copy of the image stored under ``key`` (memory first, then disk), or ``None``. Counts nothing:
        the caller counts hits and misses, because an identical request in the same batch is a hit
        too."""
        image = self._memory.get(key)
        if image is not None:
            self._memory.move_to_end(key)
            return image.copy()
        image = self._read_disk(key)
        if image is not None:
            self.stats.disk_hits += 1
            self._remember(key, image.copy())
        return image

    def put(self, key: str, image: Image) -> None:
        """Store a copy of ``image`` under ``key`` in memory and, if there is a folder, on disk.
        A failed disk write is counted in ``stats.disk_errors`` (warned about once) and never raised."""
        self._remember(key, image.copy())
        try:
            self._write_disk(key, image)
        except Exception as error:  # noqa: BLE001 - a full or read-only disk costs the cache, not the episode
            self._disk_error("write to", error)

    def clear(self) -> None:
        """Empty the memory (not the folder) and reset the counters."""
        self._memory.clear()
        self._bytes = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._memory)

    @property
    def nbytes(self) -> int:
        """Pixel bytes held in memory."""
        return self._bytes

    def info(self) -> dict[str, int]:
        """The counters and the memory use, as plain ints (what the env puts in ``info``)."""
        return {
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "disk_hits": self.stats.disk_hits,
            "generator_calls": self.stats.generator_calls,
            "evictions": self.stats.evictions,
            "disk_errors": self.stats.disk_errors,
            "entries": len(self._memory),
            "bytes": self._bytes,
        }

    # -------------------------------------------------------------- private

    def _remember(self, key: str, image: Image) -> None:
        size = _nbytes(image)
        if key in self._memory:
            self._bytes -= _nbytes(self._memory.pop(key))
        if self.max_entries == 0 or (self.max_bytes is not None and size > self.max_bytes):
            return  # larger than the whole budget: keep it on disk only
        self._memory[key] = image
        self._bytes += size
        while len(self._memory) > self.max_entries or (self.max_bytes is not None and self._bytes > self.max_bytes):
            _, dropped = self._memory.popitem(last=False)
            self._bytes -= _nbytes(dropped)
            self.stats.evictions += 1

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / key[:2] / f"{key}.png"

    def _read_disk(self, key: str) -> Image | None:
        """The image on disk under ``key``, or ``None``: a missing file, a bad file (removed, if
        the folder allows it, so that it is written again) or a file-system error are all misses."""
        if self.directory is None:
            return None
        from PIL import Image as PILImage

        path = self._path(key)
        try:
            if not path.is_file():
                return None
            with PILImage.open(path) as opened:
                return opened.convert("RGB")
        except OSError as error:
            if error.errno is not None:  # a file-system error (permissions, too many open files, NFS)
                self._disk_error("read", error)
                return None  # keep the file, miss this time
        except Exception:  # noqa: BLE001 - PIL raises many types on a foreign or hostile file
            pass
        try:  # a bad file (PIL's "truncated", "cannot identify", a decompression bomb): regenerate it
            path.unlink(missing_ok=True)
        except OSError as error:  # a read-only folder: it stays, and is a miss every time
            self._disk_error("remove a corrupt entry from", error)
        return None

    def _disk_error(self, action: str, error: BaseException) -> None:
        """Count a failed disk operation; warn about the first one only (the counter has the rest)."""
        self.stats.disk_errors += 1
        if not self._warned_disk:
            self._warned_disk = True
            warnings.warn(
                f"generation cache: could not {action} {self.directory} ({type(error).__name__}: {error}); images are "
                "generated again and kept in memory. Later disk errors are counted in info['generation_cache']"
                "['disk_errors'] without a warning.",
                RuntimeWarning,
                stacklevel=4,
            )

    def _write_disk(self, key: str, image: Image) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                image.save(stream, format="PNG")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _nbytes(image: Image) -> int:
    return image.width * image.height * 4  # PIL keeps RGB pixels in 4 bytes
