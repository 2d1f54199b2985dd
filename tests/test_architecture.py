"""The source keeps its layering: no module uses another module's underscore names, and the
modules of ``genagent_env`` import each other without cycles (read from the source with ``ast``)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("genagent_env", "agents", "wrappers", "benchmarks")


def modules() -> dict[str, Path]:
    """Every project module by dotted name (``genagent_env.env``, ``genagent_env`` for its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def defined_private_names(tree: ast.AST) -> set[str]:
    """Underscore names a module defines: functions, classes, variables, attributes set on self."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {name for name in names if is_private(name)}


def type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    is_package = modules()[module].name == "__init__.py"
    keep = len(base) - node.level + (1 if is_package else 0)
    return ".".join(base[:keep] + ([node.module] if node.module else []))


def private_uses(trees: dict[str, ast.AST]) -> list[str]:
    """Where a module imports or reads an underscore name that only other modules define."""
    private = {name: defined_private_names(tree) for name, tree in trees.items()}
    problems = []
    for name, tree in trees.items():
        others = set().union(*(names for other, names in private.items() if other != name)) - private[name]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in PACKAGES):
                problems += [f"{name}:{node.lineno} imports {a.name}" for a in node.names if is_private(a.name)]
            elif isinstance(node, ast.Attribute) and node.attr in others and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            ):
                problems.append(f"{name}:{node.lineno} uses {ast.unparse(node)}")
    return problems


def test_no_module_uses_another_modules_underscore_names() -> None:
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in modules().items()}
    assert private_uses(trees) == []


def import_edges(package: str) -> Iterator[tuple[str, str]]:
    """(importer, imported) for the module-level imports between modules of ``package``."""
    known = modules()
    for name, path in known.items():
        if name.split(".")[0] != package:
            continue
        tree = ast.parse(path.read_text(), str(path))
        hidden = type_checking_lines(tree)
        for node in tree.body if isinstance(tree, ast.Module) else []:
            for child in ast.walk(node):
                if getattr(child, "lineno", None) in hidden:
                    continue
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    break  # imports inside functions run late, on use
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = resolve(name, child)
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in child.names]
                for target in targets:
                    while target and target not in known:
                        target = target.rpartition(".")[0]
                    # A package's __init__ is run by importing any of its modules: not a cycle.
                    if target and target != name and not name.startswith(target + "."):
                        yield name, target


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles of ``graph`` (importer -> imported), each as the path that closes it."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def test_genagent_env_modules_import_each_other_without_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported in import_edges("genagent_env"):
        graph.setdefault(importer, set()).add(imported)
    assert {"genagent_env.config", "genagent_env.episode"} <= graph["genagent_env.env"]  # the walker sees imports
    assert find_cycles(graph) == []


def test_the_checks_catch_what_they_look_for() -> None:
    """The walkers report a cross-module underscore use and an import cycle when there is one."""
    trees = {
        "genagent_env.a": ast.parse("from genagent_env.b import _helper\ndef f(env):\n    return env._secret\n"),
        "genagent_env.b": ast.parse(
            "def _helper(): ...\nclass B:\n    def __init__(self):\n        self._secret = 1\n"
        ),
    }
    assert private_uses(trees) == ["genagent_env.a:1 imports _helper", "genagent_env.a:3 uses env._secret"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}}) == []
