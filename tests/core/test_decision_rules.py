"""Decisions carry decision rule ids (``DPD###``), never a diagnostic's (``DPC###``)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from deployc.rules import DECISION_RULES, RULES
from tests.conftest import REPO

COMPILER = REPO / "compiler" / "deployc"
GOLDEN = REPO / "tests" / "golden"


def decision_rules_in_source(root: Path) -> list[str]:
    """``file:line rule`` for each ``Decision(...)`` call whose ``rule=`` is not a registered decision rule."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
                    == "Decision"):
                continue
            for keyword in node.keywords:
                if keyword.arg != "rule":
                    continue
                values = [n.value for n in ast.walk(keyword.value) if isinstance(n, ast.Constant)]
                bad = [v for v in values if not (isinstance(v, str) and v in DECISION_RULES)]
                if bad or not values:  # a rule computed at run time cannot be checked here: not allowed either
                    found.append(f"{path.relative_to(root)}:{node.lineno} {bad or 'computed'}")
    return found


def test_every_decision_the_compiler_makes_names_a_decision_rule() -> None:
    assert decision_rules_in_source(COMPILER) == []


def test_every_decision_a_built_in_backend_makes_names_a_decision_rule() -> None:
    assert decision_rules_in_source(REPO / "plugins") == []


def test_planned_decisions_in_the_goldens_carry_decision_rules() -> None:
    checked = 0
    for plan_json in sorted(GOLDEN.glob("*/*/plan.json")):
        for decision in json.loads(plan_json.read_text())["decisions"]:
            assert decision["rule"] in DECISION_RULES, (plan_json.parent.name, decision["id"], decision["rule"])
            checked += 1
    assert checked > 100


def test_decision_and_diagnostic_ids_do_not_overlap() -> None:
    assert not set(DECISION_RULES) & set(RULES)
    assert all(r.startswith("DPD") for r in DECISION_RULES) and all(r.startswith("DPC") for r in RULES)


def test_a_diagnostic_id_on_a_decision_is_found(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text('Decision(id="x", value=1, rule="DPC402", reason="r")\n'
                                   'knobs.Decision(id="y", value=1, rule="DPD303" if a else "DPC303", reason="r")\n'
                                   'Decision(id="z", value=1, rule="DPD303", reason="r")\n')
    assert decision_rules_in_source(tmp_path) == ["m.py:1 ['DPC402']", "m.py:2 ['DPC303']"]
