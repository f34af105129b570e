"""The backend contract is enforced: plugins import nothing of deployc outside ``deployc.contract``, and the
contract imports nothing of the planner, the target or the registry (type-only imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PLUGIN_ROOTS = (REPO / "plugins", REPO / "tests" / "fixtures" / "thirdparty_backend")
CONTRACT = REPO / "compiler" / "deployc" / "contract"
CORE = REPO / "compiler" / "deployc"
# What the contract may not reach: the planner, the resolved spec, the registry and the stage that builds it.
CONTRACT_FORBIDDEN = ("deployc.planner", "deployc.target", "deployc.plugins", "deployc.placement", "deployc.api")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, anywhere in it (inside functions and ``if TYPE_CHECKING:`` too)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from deployc import x` may name a submodule: count it as deployc.x.
            out += [(node.lineno, f"{node.module}.{a.name}" if node.module == "deployc" else node.module)
                    for a in node.names]
    return out


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def contract_violations(roots: tuple[Path, ...]) -> list[str]:
    """``file:line imports X`` for every import of a deployc module outside deployc.contract under the roots."""
    out: list[str] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for line, module in imported_modules(path):
                if _inside(module, "deployc") and not _inside(module, "deployc.contract"):
                    out.append(f"{path.relative_to(root.parent)}:{line} imports {module}")
    return out


def test_plugins_import_only_the_contract() -> None:
    assert contract_violations(PLUGIN_ROOTS) == []


def test_a_plugin_importing_the_planner_is_caught(tmp_path: Path) -> None:
    plugin = tmp_path / "deployc_bad"
    plugin.mkdir()
    (plugin / "plugin.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from deployc.contract import Deployment, hookimpl\n"
        "from deployc import hookimpl as marker\n"
        "if TYPE_CHECKING:\n"
        "    from deployc.planner.plan import Plan\n"
        "def emit():\n"
        "    import deployc.contract.toolkit.shell\n"
        "    import deployc.emitters.shell\n")
    assert contract_violations((plugin,)) == [
        "deployc_bad/plugin.py:3 imports deployc.hookimpl",
        "deployc_bad/plugin.py:5 imports deployc.planner.plan",
        "deployc_bad/plugin.py:8 imports deployc.emitters.shell",
    ]


def test_the_contract_reaches_no_planner_target_or_registry() -> None:
    bad = [f"{path.relative_to(CORE)}:{line} imports {module}"
           for path in sorted(CONTRACT.rglob("*.py")) for line, module in imported_modules(path)
           if any(_inside(module, f) for f in CONTRACT_FORBIDDEN)]
    assert bad == []


def _core_graph() -> dict[str, set[str]]:
    """deployc module → the deployc modules it imports (type-only imports included)."""
    graph: dict[str, set[str]] = {}
    for path in CORE.rglob("*.py"):
        parts = path.relative_to(CORE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = set()
        for _line, imported in imported_modules(path):
            module = imported
            while module and not (CORE.parent / module.replace(".", "/")).exists() \
                    and not (CORE.parent / (module.replace(".", "/") + ".py")).exists():
                module = module.rpartition(".")[0]  # `from deployc import hookimpl` names no module
            if _inside(module, "deployc"):
                graph[name].add(module)
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycle_through_the_contract() -> None:
    graph = _core_graph()
    contract = sorted(m for m in graph if _inside(m, "deployc.contract"))
    assert "deployc.contract.hookspecs" in contract
    in_cycles = [m for m in contract if any(_inside(r, "deployc.contract") is False and m in _reachable(graph, r)
                                            for r in _reachable(graph, m))]
    assert in_cycles == []
    assert not any(_inside(m, p) for m in _reachable(graph, "deployc.contract.hookspecs") for p in CONTRACT_FORBIDDEN)
