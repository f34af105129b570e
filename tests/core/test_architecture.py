"""The layering, read from the source: a pure planner, and no import cycle in the house.

Imports are read from the AST (every ``import``, in ``if TYPE_CHECKING:`` blocks and functions too), so
an annotation-only import counts: it is still an arrow a reader and a type checker follow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPILER = REPO / "compiler"
PACKAGE = "deployc"
REGISTRY = "deployc.plugins"


def module_name(path: Path, root: Path) -> str:
    """``deployc.planner.plan`` for ``root/deployc/planner/plan.py`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> Iterator[tuple[str, str | None]]:
    """Every import in the file, wherever the statement is: ``(module, None)`` for ``import module``,
    ``(module, name)`` for ``from module import name`` (relative imports resolved)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            yield from ((base, alias.name) for alias in node.names)


def import_graph(root: Path, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module → the modules of the package it imports (``from pkg import submodule`` is an arrow to the submodule)."""
    files = {module_name(p, root): p for p in (root / package).rglob("*.py")}

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for module, imported in imports(path, root):
            if module == package or module.startswith(f"{package}."):
                full = f"{module}.{imported}" if imported else module
                targets.add(full if full in files else owner(module))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def registry_imports(root: Path) -> list[str]:
    """``module: imported name`` for each import of the plugin registry by the planner or by target.py."""
    planner = sorted((root / PACKAGE / "planner").rglob("*.py"))
    found = []
    for path in [*planner, root / PACKAGE / "target.py"]:
        found += [f"{module_name(path, root)}: {module}" for module, imported in imports(path, root)
                  if REGISTRY in (module, f"{module}.{imported}") or module.startswith(f"{REGISTRY}.")]
    return sorted(set(found))


def test_the_planner_and_the_target_never_import_the_plugin_registry() -> None:
    assert registry_imports(COMPILER) == []


def test_the_compiler_has_no_import_cycle_even_through_type_checking_imports() -> None:
    assert cycles(import_graph(COMPILER)) == []


@pytest.mark.parametrize("plugin", sorted(p.name for p in (REPO / "plugins").glob("deployc_*") if p.is_dir()))
def test_no_built_in_backend_has_an_import_cycle(plugin: str) -> None:
    assert cycles(import_graph(REPO / "plugins", plugin)) == []


# -- the checks themselves catch what they are for ---------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_registry_import_under_type_checking_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "deployc/__init__.py": "", "deployc/plugins.py": "", "deployc/planner/__init__.py": "",
        "deployc/planner/evaluate.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                       "    from deployc.plugins import PluginRegistry\n",
        "deployc/target.py": "def f():\n    from .plugins import PluginRegistry\n",
    })
    assert registry_imports(root) == ["deployc.planner.evaluate: deployc.plugins",
                                      "deployc.target: deployc.plugins"]


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "deployc/__init__.py": "", "deployc/hookspecs.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                           "    from deployc.target import Target\n",
        "deployc/target.py": "from deployc import plugins\n",
        "deployc/plugins.py": "from deployc import hookspecs\n",
        "deployc/alone.py": "import deployc.target\n",
    })
    assert cycles(import_graph(root)) == [["deployc.hookspecs", "deployc.plugins", "deployc.target"]]
