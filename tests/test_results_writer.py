"""ResultsWriter durability, observed write by write rather than through the loader (which repairs
torn lines and drops duplicates, and so would hide a writer that batches, splits or never fsyncs).

``os.write`` and ``os.fsync`` are wrapped for the duration of each test: every chunk written to the
results file is recorded, the file is read back from another handle after each chunk and at each
fsync of it. After each ``write()`` returns, the file must hold exactly the records written so
far, each a complete line, fsynced after its bytes were written, and made by exactly one
``os.write`` of one whole line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks.results import ResultsWriter, load_results


class Observer:
    """Records what reaches one file: each ``os.write`` chunk (with the file as another handle reads
    it right after) and the file's bytes at each ``os.fsync`` of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.chunks: list[bytes] = []
        self.after_chunk: list[bytes] = []
        self.fsynced: list[bytes] = []

    def ours(self, fd: Any) -> bool:
        try:
            number = fd if isinstance(fd, int) else fd.fileno()
            got, want = os.fstat(number), os.stat(self.path)
        except (OSError, AttributeError, ValueError):
            return False
        return (got.st_dev, got.st_ino) == (want.st_dev, want.st_ino)

    def mark(self) -> tuple[int, int]:
        return len(self.chunks), len(self.fsynced)


@pytest.fixture
def observed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Observer:
    observer = Observer(tmp_path / "results.jsonl")
    real_write, real_fsync = os.write, os.fsync

    def write(fd: int, data: bytes) -> int:
        ours = observer.ours(fd)
        written = real_write(fd, data)
        if ours:
            observer.chunks.append(bytes(data[:written]))
            observer.after_chunk.append(observer.path.read_bytes())
        return written

    def fsync(fd: Any) -> None:
        real_fsync(fd)
        if observer.ours(fd):
            observer.fsynced.append(observer.path.read_bytes())

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    return observer


def record(i: int, size: int = 10) -> dict[str, Any]:
    prompt = "p" * size + f" ({i}) é"
    return {"key": f"agent|gen|2|task/{i}|0", "task_id": f"task/{i}", "prompt": prompt, "passed": i % 2 == 0}


def lines(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n") or not data, f"a partial line is on disk: {data[-80:]!r}"
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def check_write(observer: Observer, writer: ResultsWriter, new: dict[str, Any], before: list[dict[str, Any]]) -> None:
    chunks, fsyncs = observer.mark()
    writer.write(new)
    on_disk = observer.path.read_bytes()
    # The record is on disk, complete, right after write() returns: nothing held back, nothing else.
    assert lines(on_disk) == [*before, new]
    # Exactly one os.write, of exactly one whole line (never a part of one, never two records).
    written = observer.chunks[chunks:]
    assert len(written) == 1, f"write() made {len(written)} os.write calls for one record: {written!r}"
    assert written[0].endswith(b"\n") and written[0].count(b"\n") == 1
    assert json.loads(written[0]) == new
    # Fsynced after its bytes were written: some fsync of the file saw the whole record.
    synced = observer.fsynced[fsyncs:]
    assert synced, "write() returned without fsyncing the file"
    assert synced[-1] == on_disk, "the last fsync came before the record's bytes were in the file"


def test_each_write_is_one_complete_fsynced_line(observed: Observer) -> None:
    written: list[dict[str, Any]] = []
    with ResultsWriter(observed.path) as writer:
        for i in range(6):
            new = record(i, size=10 if i != 3 else 300_000)  # one large record: still one write
            check_write(observed, writer, new, written)
            written.append(new)
    assert len(observed.chunks) == 6
    assert load_results(observed.path) == written


def test_no_reader_ever_sees_a_partial_line(observed: Observer) -> None:
    with ResultsWriter(observed.path) as writer:
        for i in range(5):
            writer.write(record(i))
    assert len(observed.chunks) == 5
    for state in observed.after_chunk + observed.fsynced:
        lines(state)  # every state of the file another reader could see ends with a whole line
    assert [len(lines(state)) for state in observed.after_chunk] == [1, 2, 3, 4, 5]


def test_reopening_appends_after_the_records_and_cuts_a_torn_tail(observed: Observer) -> None:
    first = [record(0), record(1)]
    with ResultsWriter(observed.path) as writer:
        for new in first:
            writer.write(new)
    with observed.path.open("ab") as handle:  # a writer killed in the middle of a record
        handle.write(b'{"key": "agent|gen|2|task/2|0", "task_')
    with ResultsWriter(observed.path) as writer:
        assert lines(observed.path.read_bytes()) == first  # the torn tail is gone before anything is written
        check_write(observed, writer, record(2), first)
        check_write(observed, writer, record(3), [*first, record(2)])
    assert load_results(observed.path) == [*first, record(2), record(3)]


def test_a_record_that_is_not_json_writes_nothing(observed: Observer) -> None:
    with ResultsWriter(observed.path) as writer:
        writer.write(record(0))
        with pytest.raises(TypeError):
            writer.write({"key": "k", "value": object()})
        check_write(observed, writer, record(1), [record(0)])
    assert len(observed.chunks) == 2
