"""Fixture plans for the vLLM backend's tests, built once per session."""

from __future__ import annotations

import pytest

from deployc.contract.backend import Emission
from deployc.planner.plan import Plan
from deployc_vllm.emission import emit
from tests.contract_helpers import deploy
from tests.plugins.vllm.plans import fixture_plans


@pytest.fixture(scope="session")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    """Every hand-built plan, by name."""
    return fixture_plans(tmp_path_factory.mktemp("plans"))


@pytest.fixture(scope="session")
def emissions(plans: dict[str, Plan]) -> dict[str, Emission]:
    """What the backend emits for each plan."""
    return {name: emit(deploy(plan)) for name, plan in plans.items()}
