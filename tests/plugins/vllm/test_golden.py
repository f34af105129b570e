"""Golden artifacts for the hand-built plans (``pytest --update-golden`` rewrites them).

The samples' golden builds (tests/golden/<sample>/) come from the planner; these pin the
backend's own output for plans that do not depend on it.
"""

from __future__ import annotations

import pytest

from deployc.contract.backend import Emission
from deployc.planner.plan import Plan
from deployc_vllm.emission import emit
from tests.conftest import REPO
from tests.contract_helpers import deploy

GOLDEN = REPO / "tests" / "golden" / "vllm-fixtures"
NAMES = ["h100-tp1", "a100-tp4", "pcie-dp2", "t4-awq", "l40s-tp4-pcie", "mixed-pools", "moe-ep-dp", "two-nodes",
         "two-nodes-ray", "hostile"]


@pytest.mark.parametrize("name", NAMES)
def test_golden(name: str, emissions: dict[str, Emission], update_golden: bool) -> None:
    directory = GOLDEN / name
    produced = {a.path: a.content for a in emissions[name].artifacts}
    if update_golden:
        for path, text in produced.items():
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_text(text)
    on_disk = {str(p.relative_to(directory)): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}
    assert sorted(on_disk) == sorted(produced)
    for path, text in produced.items():
        assert on_disk[path] == text, f"{name}/{path} differs from its golden file (pytest --update-golden)"


def test_same_plan_same_bytes(plans: dict[str, Plan]) -> None:
    first, second = emit(deploy(plans["two-nodes"])), emit(deploy(plans["two-nodes"]))
    assert first == second
