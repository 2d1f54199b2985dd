"""benchmarks/mutations.py: every named breakage still applies to the current source (the suites
are not run here; ``python -m benchmarks.mutations`` does that), and a patch whose target moved
fails loudly instead of being skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import mutations
from benchmarks.mutations import MUTATIONS, Edit, Mutation, MutationRotted, check_all, patched


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_mutation_applies_to_the_current_source(mutation: Mutation) -> None:
    check_all([mutation])
    texts = patched(mutation, mutations.ROOT)
    assert set(texts) == {mutations.ROOT / edit.path for edit in mutation.edits}
    assert mutation.tests and mutation.description


def test_the_run_covers_the_breakages_it_promises() -> None:
    names = {m.name for m in MUTATIONS}
    assert len(names) == len(MUTATIONS) >= 10
    assert {"reflection-weight-ignored", "writer-no-fsync", "writer-two-records-per-write", "writer-splits-a-record",
            "vector-env-generates-per-request", "clip-weight-ignored", "format-penalty-ignored",
            "judge-missing-not-a-violation", "seed-string-coerced", "cache-key-ignores-seed"} <= names
    check_all(MUTATIONS)


def test_a_moved_target_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "module.py").write_text("x = 1\ny = 1\n")
    gone = Mutation("gone", "", (Edit("module.py", "z = 1", "z = 2"),), ("module.py",))
    with pytest.raises(MutationRotted, match="gone: expected 1 occurrence.*found 0"):
        patched(gone, tmp_path)
    twice = Mutation("twice", "", (Edit("module.py", "= 1", "= 2"),), ("module.py",))
    with pytest.raises(MutationRotted, match="found 2"):
        check_all([twice], tmp_path)
    missing = Mutation("missing", "", (Edit("other.py", "x", "y"),), ("module.py",))
    with pytest.raises(MutationRotted, match="does not exist"):
        check_all([missing], tmp_path)
    broken = Mutation("broken", "", (Edit("module.py", "x = 1", "x = ("),), ("module.py",))
    with pytest.raises(SyntaxError):
        check_all([broken], tmp_path)
    no_tests = Mutation("no-tests", "", (Edit("module.py", "x = 1", "x = 2"),), ("tests/nowhere.py",))
    with pytest.raises(MutationRotted, match="nowhere"):
        check_all([no_tests], tmp_path)
    assert patched(Mutation("fine", "", (Edit("module.py", "x = 1", "x = 2"),), ()), tmp_path) == {
        tmp_path / "module.py": "x = 2\ny = 1\n"}


def test_list_and_unknown_names_need_no_copy(capsys: pytest.CaptureFixture[str]) -> None:
    assert mutations.main(mutations.Args(list=True)) == 0
    out = capsys.readouterr().out
    assert all(m.name in out for m in MUTATIONS)
    assert mutations.main(mutations.Args(only=("no-such-mutation",))) == 2
